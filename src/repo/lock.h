// The lock protocol. Backups, copies and checks take shared locks; prune and forget take an
// exclusive one. A lock is a sealed file locks/<id> naming host, pid (with the process's start
// time, so a reused pid is not mistaken for the holder), command and times; a holder refreshes
// it every 5 minutes. A lock is stale when its process is gone from this host, or when it has
// not been refreshed for 30 minutes. Stale locks never block anyone: they are reported, and
// `unlock` removes them (`unlock --force` removes all locks).
//
// Acquire writes its own lock first, then lists the others: if a conflicting live lock
// exists it removes its own and fails with kLocked. Two racing writers may both back off;
// neither can both succeed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "repo/repository.h"

namespace reprise {

struct LockInfo {
  Id id;
  bool exclusive = false;
  std::string host, user, command;
  int pid = 0;
  int64_t pid_start = -1;
  int64_t created_ns = 0, refreshed_ns = 0;
  std::string Describe() const;  // "exclusive lock by 'prune' (pid 12 on host 'db1') since ..."
};

inline constexpr int64_t kLockStaleAfterNs = int64_t{30} * 60 * 1000000000;
inline constexpr int64_t kLockRefreshEveryNs = int64_t{5} * 60 * 1000000000;

bool IsStale(const LockInfo& lock, const Clock& clock);
// Every lock file; ones that do not open are returned as damaged messages.
Result<std::vector<LockInfo>> ListLocks(Repository& repo, std::vector<std::string>* damaged);

class RepoLock {
 public:
  // `warn` receives messages about stale locks found on the way.
  static Result<std::unique_ptr<RepoLock>> Acquire(Repository& repo, bool exclusive,
                                                   std::string command, const Clock& clock,
                                                   const std::function<void(std::string)>& warn);
  ~RepoLock();  // removes the lock file
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

 private:
  RepoLock(Repository& repo, LockInfo info, const Clock& clock);
  void RefreshLoop();

  Repository& repo_;
  LockInfo info_;
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread refresher_;
};

// Removes stale locks (all locks when `force`); returns the descriptions of what it removed.
Result<std::vector<std::string>> RemoveLocks(Repository& repo, bool force, const Clock& clock);

}  // namespace reprise
