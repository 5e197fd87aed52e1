// Point-in-time recovery of a physical PostgreSQL point: which WAL files it needs, whether the
// archive holds all of them (a gap is named and refused before anything is written), fetching
// and verifying them into a spool inside the data directory, the recovery settings, and
// starting the server and waiting until recovery has ended.
//
// Timelines: the target timeline is the newest one whose history descends from the point's
// timeline (recovery_target_timeline = 'latest'); for each timeline on that path, the
// segments from where it starts (or the backup's first segment) to where the next one
// branches off must all be archived; on the last one, up to the newest segment archived (the
// last may be a partial segment from wal-stream, which is padded with zeros to a full one).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "pg/wal_names.h"
#include "repo/wal_store.h"

namespace reprise {

struct RecoveryTarget {
  enum class Kind { kImmediate, kEnd, kTime, kLsn };
  Kind kind = Kind::kImmediate;  // immediate: consistent as of the point's end, then promote
  std::string time;              // kTime: as PostgreSQL parses it ("2026-11-24 19:30:00+00")
  int64_t time_ns = 0;           // kTime: the same instant, to pick the WAL to fetch
  pg::Lsn lsn = 0;               // kLsn
};

// What recovery needs: archive names in fetch order (history files first).
struct WalNeeds {
  std::vector<std::string> files;
  uint32_t target_timeline = 0;
  std::string first, last;  // first and last segment names, for messages
  uint64_t bytes = 0;
};

// Plans the WAL for `point_info` (what the postgres component recorded) and `target`.
// kFailedPrecondition naming the first missing segment when the archive has a gap.
Result<WalNeeds> PlanRecoveryWal(WalStore& wal, const nlohmann::json& point_info,
                                 const RecoveryTarget& target);

// Fetches (and so authenticates and checks) every file into `spool_dir`, named as PostgreSQL
// asks for them; partial segments are padded to `segment_size`. Files are chowned to
// `os_user` when running as root.
Status FetchRecoveryWal(WalStore& wal, const WalNeeds& needs, const std::string& spool_dir,
                        uint64_t segment_size, const std::string& os_user,
                        const std::function<void(size_t done, size_t total)>& progress);

struct RecoveryConfig {
  std::string spool_dir;
  RecoveryTarget target;
  std::optional<int> port;
  bool archive_off = false;  // archive_mode = off (drills beside the live primary)
  std::string os_user;
};
// Appends the recovery settings to postgresql.auto.conf and creates recovery.signal.
Status WriteRecoveryConfig(const std::string& data_dir, const RecoveryConfig& config);

struct StartOptions {
  std::string bin_dir = "/usr/lib/postgresql/15/bin";
  std::string os_user;        // run pg_ctl as this user (root must not run it)
  std::string start_command;  // instead of pg_ctl (sh -c), when set
  int timeout_s = 3600;
};
// Starts the server on `data_dir` and waits until recovery has ended (recovery.signal is
// gone). On failure returns the end of the server log in the message. Returns seconds taken.
Result<double> StartAndAwaitRecovery(const std::string& data_dir, const StartOptions& options);

}  // namespace reprise
