// `reprise failover --to SITE`: an explicit state machine over the sites of the plan
// (docs/commands/failover.md). Steps, in order:
//
//   check-target  the target site's health checks and database endpoints; refuses when unhealthy.
//                 A cold target (role cold) has nothing running yet: its repository must hold
//                 a restorable point instead
//                 The checks' `role` is ignored here (the target is a replica about to be
//                 promoted); when the old primary is down, so are a replica's link to it and
//                 its replay delay, and those two are not held against the target
//   fence         the old primary stops taking writes (PostgreSQL read-only + sessions ended,
//                 Redis CLIENT PAUSE WRITE, or the site's fence_command); skipped when the old
//                 primary is unreachable (unplanned failover)
//   catch-up      the target's replicas replay up to the fenced position, bounded by
//                 failover.catchup_timeout; more than failover.max_lag behind refuses (and
//                 unfences) unless forced. Cold target: the fenced primary's last WAL
//                 segment is switched and archived (archive_mode on), so the restore has it
//   provision     cold target only: the site's provision commands (terraform, helm ...), in order
//   restore       cold target only: the whole stack restored from the site's own repository
//                 (its newest point, PostgreSQL replayed to the end of the archived WAL), then
//                 the site's health checks must pass
//   promote       pg_promote() / REPLICAOF NO ONE on the target (a restored cold site's
//                 servers are primaries already: this only lifts a fence they may carry)
//   first-write   the new primaries accept a write: the RTO is measured up to here
//   demote-old    the old Redis primary becomes a replica of the new one (when reachable)
//   dns           failover.dns points the record at the target's dns_value, then waits until
//                 the name servers answer it
//   monitoring    failover.monitoring_file lists the target's Prometheus targets
//   notify        every channel routed for failover.* gets the figures
//
// Every step is written to the journal (failover/journal.h) before the next starts, so a run
// that was killed resumes at the first step not done; each step is safe to repeat.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "failover/journal.h"
#include "plan/plan.h"

namespace reprise::failover {

using SecretLookup = std::function<Result<std::string>(const std::string& name)>;

struct FailoverOptions {
  std::string to;      // target site
  std::string from;    // the site that is primary now; empty: CurrentPrimary(plan)
  std::string reason;  // recorded and sent with the notifications
  bool force = false;  // go on although the target is unhealthy or too far behind
  // Unplanned (the monitor): the old primary is believed down; figures of the last time it
  // was seen stand in for what fencing would have measured.
  bool unplanned = false;
  std::optional<uint64_t> last_known_pg_lsn;
  std::optional<uint64_t> last_known_redis_offset;
  // Testing hook (REPRISE_TEST_CRASH_AFTER_STEP): exit the process right after this step
  // is journaled, as a kill would.
  std::string crash_after_step;
};

// The value of the secret `name`, or "" when `name` is empty (no secret configured).
Result<std::string> LookupSecret(const SecretLookup& secrets, const std::string& name);

// What a failover to a cold site needs from outside this module (the CLI opens the site's
// repository with its credentials and passphrase).
struct ColdSiteHooks {
  // The newest restorable point of the site's repository: {"id", "time_unix_ms", "status"};
  // kNotFound when there is none.
  std::function<Result<nlohmann::json>(const Site& site)> latest_point;
  // Restores the whole stack from the site's repository (orchestrate/stack_restore.h) and
  // returns its report as JSON ({"ok", "seconds", "components", ...}); an error or
  // "ok": false fails the step.
  std::function<Result<nlohmann::json>(const Site& site)> restore;
};

struct FailoverHooks {
  SecretLookup secrets;
  std::function<void(const std::string& line)> log;  // one line per step, for people
  ColdSiteHooks cold;
};

// The RPO figures of a journal for people, one phrase: "at least 1234 bytes of WAL (from the
// old primary's last position seen, not a fenced one), Redis 0 bytes", "0 bytes of WAL",
// "unknown (...)"; "-" when no database was failed over.
std::string DescribeRpo(const nlohmann::json& figures);

// The site that is primary now: the journal's active site, else the plan's primary.
Result<std::string> CurrentPrimary(const Plan& plan);

// The steps as `failover --dry-run` prints them, one line each, without doing anything.
Result<std::vector<std::string>> DescribeFailover(const Plan& plan, const FailoverOptions& o);

// Runs (or resumes) a failover. The journal is returned whatever happened; a refusal or a
// failure is also the returned Status (the journal then says which step and why):
// kFailedPrecondition for a refusal (nothing was changed), other codes for a failure.
struct FailoverOutcome {
  Journal journal;
  Status status;
};
FailoverOutcome RunFailover(const Plan& plan, const FailoverOptions& options,
                            const FailoverHooks& hooks);

}  // namespace reprise::failover
