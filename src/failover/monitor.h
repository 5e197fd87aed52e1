// `reprise monitor`: automatic failover. Every failover.monitor.interval it checks the current
// primary site (its health checks, and that its PostgreSQL / Redis endpoints answer as
// primaries); after failover.monitor.failure_threshold consecutive failed rounds it fails over
// to the target site (--to, else the first warm site) through RunFailover, which refuses an
// unhealthy or lagging target as usual.
//
// Quorum: with failover.monitor.quorum.etcd, several monitors (one per site) campaign for one
// etcd key bound to a lease; only the holder may fail over, and a monitor that cannot reach
// etcd holds nothing, so with no quorum nobody promotes. Every monitor also publishes its view
// of the primary (KEY/views/ID, bound to its lease), and the leader fails over only when more
// than half of the live views say the primary is down: a monitor cut off from a primary that
// is alive is outvoted, so it cannot create a second writable primary. The site that is
// primary after a failover is kept in etcd (KEY/active), so every monitor follows it.
// Without etcd a monitor acts only when started with allow_no_quorum (a single monitor: no
// protection against split views).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "failover/failover.h"
#include "plan/plan.h"

namespace reprise::failover {

struct MonitorOptions {
  std::string candidate;        // this monitor's id in the election (default: hostname)
  std::string to;               // failover target; empty: the first warm site not primary
  bool allow_no_quorum = false;
  int max_rounds = 0;           // stop after this many rounds (0: until stopped)
  bool exit_after_failover = false;
  std::string crash_after_step;  // passed to RunFailover (testing hook)
};

struct MonitorReport {
  int rounds = 0;
  int failovers = 0;
  Status last_failover;  // the status of the last failover attempted
};

// Runs until `stop` becomes true, max_rounds pass, or (exit_after_failover) a failover ends.
MonitorReport RunMonitor(const Plan& plan, const MonitorOptions& options,
                         const FailoverHooks& hooks, const std::atomic<bool>& stop);

}  // namespace reprise::failover
