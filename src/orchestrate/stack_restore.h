// Whole-stack restore (docs/commands/restore.md, "The whole stack"): every component of a point
// back to where the plan says it lives, tier after tier in the plan's order, the components
// of a tier in parallel, the tier's health checks after it. What `reprise restore` does with a
// plan and no --target, and what failover to a cold site does after provisioning it.
//
// Where each kind goes (no --target):
//   postgres (physical): components.X.data_directory, WAL fetched first (a gap is refused before
//                        anything is written), recovery settings written, the server started
//                        and awaited unless start_postgres is false;
//   postgres (logical):  the plan's connection;
//   redis:               restore.rdb_path (stop/start commands of the plan);
//   command:             the plan's restore command;
//   qdrant, s3:          the plan's url;
//   files:               the original paths (overwrite needed when they exist).
// A component the plan cannot place is refused before anything is restored, naming the key
// to set. A failed component fails its tier; later tiers are not started (their components are
// reported "skipped"), so a half-restored stack is never reported as restored.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "health/health.h"
#include "orchestrate/component_factory.h"
#include "orchestrate/pg_recovery.h"
#include "plan/plan.h"
#include "repo/point.h"
#include "repo/repository.h"

namespace reprise {

struct StackRestoreOptions {
  std::vector<std::string> components;  // empty: every component that succeeded in the point
  RecoveryTarget pg_target;             // physical postgres: where recovery stops
  bool start_postgres = true;           // start restored servers and wait for recovery to end
  bool overwrite = false;               // files: replace existing files
  int parallel = 4;                     // components of one tier restored at once
  bool run_health = true;               // the tiers' health checks
  // A tier's checks that fail are run again, every second, until they pass or this much time
  // has passed since the tier's components were restored (services take a moment to come
  // up); 0: run once.
  std::chrono::milliseconds health_timeout{30000};
  std::vector<std::string> include;  // files: restore only these paths (prefix match)
  // Physical postgres: update an existing data directory in place (only differing blocks);
  // without it, a data directory that is not empty is refused before anything is written.
  bool pg_delta = false;
  std::optional<int> pg_port;   // port of the restored servers; unset: as in the backup
  bool pg_archive_off = false;  // archive_mode = off (drills beside the live primary)
  std::string os_user;          // postgres: instead of the plan's os_user
  bool keep_wal_spool = false;  // keep <data_dir>/reprise-wal after recovery
  // Kind-specific RestoreOptions::params added for every component (s3: {"delete": true};
  // qdrant: {"force": true}); components ignore keys they do not know.
  nlohmann::json params = nlohmann::json::object();
  const Clock* clock = nullptr;  // WAL store records; null: the system clock
  // One line per event ("tier critical: 3 components", "postgres: restored in 4.2 s"), for a
  // terminal or a log; may be null. Called from several threads, never at once.
  std::function<void(const std::string&)> say;
  std::function<void(const std::string&)> warn;  // non-fatal problems; may be null
};

struct StackComponentReport {
  std::string name, kind, tier;
  // ok | failed | skipped (a later tier after a failure, or a component that failed during
  // the backup, so the point has nothing to restore for it)
  std::string status;
  std::string error;
  Code code = Code::kOk;  // of the error, when failed
  std::string target;     // where it went: data directory, rdb path, url, "restore command", "/"
  double started = 0;     // seconds since the restore started
  double seconds = 0;     // in its tier: restore, recovery settings, server start and recovery
  double wal_seconds = 0;  // physical postgres: fetching the WAL, before any tier (in the RTO)
  double recovery_seconds = 0;  // physical postgres: server start to end of recovery
  uint64_t bytes = 0;
};

struct StackTierReport {
  std::string name;
  std::string status;  // ok | failed | skipped (after an earlier tier failed)
  double started = 0;  // seconds since the restore started
  double seconds = 0;  // from the tier's start to its checks' end
  std::vector<health::HealthResult> checks;
  bool ok = false;  // every component restored and every check passed
};

struct StackRestoreReport {
  std::vector<StackTierReport> tiers;  // the plan's tiers holding a component of the point
  std::vector<StackComponentReport> components;  // in tier order
  double seconds = 0;  // the measured RTO: start to the last tier's checks passing
  uint64_t bytes = 0;
  // Every tier ok and no component skipped (a partial point restores what it has, with
  // ok == false, so a half-restored stack is never reported as restored).
  bool ok = false;
  // {"ok", "seconds", "bytes", "tiers": [{"name", "status", "ok", "started", "seconds",
  //  "checks": [HealthResult::ToJson()]}], "components": [{"name", "kind", "tier", "status",
  //  "error", "target", "started", "seconds", "wal_seconds", "recovery_seconds", "bytes"}]}
  nlohmann::json ToJson() const;
};

// Errors (as a Result) only for what makes the restore impossible before it starts: unknown
// components (not in the point, or not in the plan), a component named in `components` that
// failed during the backup, a component the plan cannot place, a physical postgres data
// directory that is not empty (without pg_delta), missing or damaged WAL (fetched into each
// data directory's spool before any tier starts). Once started, failures are in the report
// (ok == false). The caller has loaded the repository's index and holds its lock.
Result<StackRestoreReport> RestoreStack(Repository& repo, const Point& point, const Plan& plan,
                                        const SecretLookup& secrets,
                                        const StackRestoreOptions& options);

}  // namespace reprise
