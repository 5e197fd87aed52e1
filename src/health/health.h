// Health checks (plan: sites.<name>.health) and the database probes failover decides on.
//
// RunCheck never fails as a call: every problem, including a wrong secret or an unreachable
// target, is a failed HealthResult whose `detail` says why in one line. Passwords come from
// the SecretLookup and never appear in a name, a detail or a log line.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "plan/plan.h"

namespace reprise::health {

// Returns a secret's value by name (Context::SecretValue).
using SecretLookup = std::function<Result<std::string>(const std::string& name)>;

struct HealthResult {
  std::string name;
  HealthCheckSpec::Kind kind = HealthCheckSpec::Kind::kTcp;
  bool ok = false;
  std::string detail;   // "200 in 12 ms", "connection refused", "replica, lag 1.2 MB > 1 MB"
  double seconds = 0;   // time the check took
  nlohmann::json facts = nlohmann::json::object();  // role, lsn, lag_bytes, offset ...

  nlohmann::json ToJson() const;
};

HealthResult RunCheck(const HealthCheckSpec& spec, const SecretLookup& secrets);
// All checks, run concurrently; results in the order of `specs`.
std::vector<HealthResult> RunChecks(const std::vector<HealthCheckSpec>& specs,
                                    const SecretLookup& secrets);

// PostgreSQL node as failover sees it (one libpq connection, a few queries).
struct PgState {
  bool in_recovery = false;
  // Primary: pg_current_wal_lsn(). Replica: pg_last_wal_replay_lsn(); receive_lsn is
  // pg_last_wal_receive_lsn() (0 when not streaming).
  uint64_t lsn = 0;
  uint64_t receive_lsn = 0;
  std::optional<double> replay_delay_seconds;  // replica: now() - pg_last_xact_replay_timestamp()
  bool read_only = false;                      // default_transaction_read_only is on
  int timeline = 0;
};
Result<PgState> ProbePostgres(const std::string& conninfo, const std::string& password,
                              std::chrono::milliseconds timeout);

}  // namespace reprise::health
