#include "repo/lock.h"

#include <unistd.h>

#include "common/sysinfo.h"
#include "repo/format.h"

namespace reprise {

namespace {

nlohmann::json LockToJson(const LockInfo& l) {
  return {{"exclusive", l.exclusive}, {"host", l.host},
          {"user", l.user},           {"command", l.command},
          {"pid", l.pid},             {"pid_start", l.pid_start},
          {"created", FormatRfc3339(l.created_ns)},
          {"refreshed", FormatRfc3339(l.refreshed_ns)}};
}

Result<LockInfo> LockFromJson(const nlohmann::json& j) {
  try {
    LockInfo l;
    l.exclusive = j.at("exclusive").get<bool>();
    l.host = j.at("host").get<std::string>();
    l.user = j.value("user", "");
    l.command = j.value("command", "");
    l.pid = j.at("pid").get<int>();
    l.pid_start = j.value("pid_start", int64_t{-1});
    if (!ParseRfc3339(j.at("created").get<std::string>(), &l.created_ns) ||
        !ParseRfc3339(j.at("refreshed").get<std::string>(), &l.refreshed_ns))
      return Corruption("lock has a bad time");
    return l;
  } catch (const nlohmann::json::exception& e) {
    return Corruption(std::string("lock is malformed: ") + e.what());
  }
}

}  // namespace

std::string LockInfo::Describe() const {
  return std::string(exclusive ? "exclusive" : "shared") + " lock '" + id.Short() + "' by '" +
         command + "' (pid " + std::to_string(pid) + " on host '" + host + "') since " +
         FormatRfc3339(created_ns).substr(0, 19) + "Z";
}

bool IsStale(const LockInfo& lock, const Clock& clock) {
  if (lock.host == HostName()) {
    int64_t start = ProcessStartTicks(lock.pid);
    if (start < 0 || (lock.pid_start >= 0 && start != lock.pid_start)) return true;
    return false;  // the holder runs here: it is alive whatever the refresh time says
  }
  return clock.NowUnixNanos() - lock.refreshed_ns > kLockStaleAfterNs;
}

Result<std::vector<LockInfo>> ListLocks(Repository& repo, std::vector<std::string>* damaged) {
  ASSIGN_OR_RETURN(auto files, repo.storage().List(std::string(kLocksDir)));
  std::vector<LockInfo> locks;
  for (const auto& f : files) {
    auto id = Id::FromHex(f.key.substr(kLocksDir.size()));
    if (!id.ok()) continue;
    auto j = repo.LoadJsonFile(f.key, kAadLock);
    if (!j.ok()) {
      // A lock that vanished between List and Get was released: not damage.
      if (j.status().code() == Code::kNotFound) continue;
      if (damaged) damaged->push_back("lock '" + f.key + "': " + j.status().message());
      continue;
    }
    auto l = LockFromJson(*j);
    if (!l.ok()) {
      if (damaged) damaged->push_back("lock '" + f.key + "': " + l.status().message());
      continue;
    }
    l->id = *id;
    locks.push_back(std::move(*l));
  }
  return locks;
}

RepoLock::RepoLock(Repository& repo, LockInfo info, const Clock& clock)
    : repo_(repo), info_(std::move(info)), clock_(clock) {
  refresher_ = std::thread([this] { RefreshLoop(); });
}

RepoLock::~RepoLock() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  refresher_.join();
  (void)repo_.storage().Delete(LockKey(info_.id));
}

void RepoLock::RefreshLoop() {
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, std::chrono::nanoseconds(kLockRefreshEveryNs), [&] { return stop_; })) {
    LockInfo next = info_;
    next.refreshed_ns = clock_.NowUnixNanos();
    auto id = repo_.SaveJsonFile(kLocksDir, kAadLock, LockToJson(next));
    if (!id.ok()) continue;  // try again next round; the old lock stays valid meanwhile
    (void)repo_.storage().Delete(LockKey(info_.id));
    next.id = *id;
    info_ = next;
  }
}

Result<std::unique_ptr<RepoLock>> RepoLock::Acquire(Repository& repo, bool exclusive,
                                                    std::string command, const Clock& clock,
                                                    const std::function<void(std::string)>& warn) {
  LockInfo mine;
  mine.exclusive = exclusive;
  mine.host = HostName();
  mine.user = UserName();
  mine.command = std::move(command);
  mine.pid = static_cast<int>(getpid());
  mine.pid_start = ProcessStartTicks(mine.pid);
  mine.created_ns = mine.refreshed_ns = clock.NowUnixNanos();
  ASSIGN_OR_RETURN(mine.id, repo.SaveJsonFile(kLocksDir, kAadLock, LockToJson(mine)));

  std::vector<std::string> damaged;
  auto others = ListLocks(repo, &damaged);
  if (!others.ok()) {
    (void)repo.storage().Delete(LockKey(mine.id));
    return others.status();
  }
  for (const auto& d : damaged) warn(d + " (ignored)");
  for (const auto& other : *others) {
    if (other.id == mine.id) continue;
    if (IsStale(other, clock)) {
      warn("ignoring stale " + other.Describe() + ". HINT: 'reprise unlock' removes it");
      continue;
    }
    if (exclusive || other.exclusive) {
      (void)repo.storage().Delete(LockKey(mine.id));
      return Locked("repository '" + repo.storage().Location() + "' is locked: " +
                    other.Describe() +
                    ". HINT: wait for it to finish; if that process is gone, "
                    "'reprise unlock' removes stale locks");
    }
  }
  return std::unique_ptr<RepoLock>(new RepoLock(repo, std::move(mine), clock));
}

Result<std::vector<std::string>> RemoveLocks(Repository& repo, bool force, const Clock& clock) {
  std::vector<std::string> damaged;
  ASSIGN_OR_RETURN(auto locks, ListLocks(repo, &damaged));
  std::vector<std::string> removed;
  for (const auto& l : locks) {
    if (!force && !IsStale(l, clock)) continue;
    RETURN_IF_ERROR(repo.storage().Delete(LockKey(l.id)));
    removed.push_back(l.Describe());
  }
  return removed;
}

}  // namespace reprise
