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

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
  // One line per event ("tier critical: 3 components", "postgres: restored in 4.2 s"), for a
  // terminal or a log; may be null. Called from several threads, never at once.
  std::function<void(const std::string&)> say;
  std::function<void(const std::string&)> warn;  // non-fatal problems; may be null
};

struct StackComponentReport {
  std::string name, kind, tier;
  std::string status;  // ok | failed | skipped
  std::string error;
  double started = 0;  // seconds since the restore started
  double seconds = 0;
  uint64_t bytes = 0;
};

struct StackTierReport {
  std::string name;
  double seconds = 0;  // from the tier's start to its checks' end
  std::vector<health::HealthResult> checks;
  bool ok = false;  // every component restored and every check passed
};

struct StackRestoreReport {
  std::vector<StackTierReport> tiers;
  std::vector<StackComponentReport> components;  // in tier order
  double seconds = 0;  // the measured RTO: start to the last tier's checks passing
  uint64_t bytes = 0;
  bool ok = false;
  nlohmann::json ToJson() const;
};

// Errors (as a Result) only for what makes the restore impossible before it starts: unknown
// components, a component the plan cannot place, missing WAL. Once started, failures are in
// the report (ok == false).
Result<StackRestoreReport> RestoreStack(Repository& repo, const Point& point, const Plan& plan,
                                        const SecretLookup& secrets,
                                        const StackRestoreOptions& options);

}  // namespace reprise
