// Rebuilding a former primary as a replica of the current one (`reprise rebuild`, and the
// first step of `reprise failback`).
//
// PostgreSQL (the site's `rebuild` settings; reprise runs where its data directory is):
//   1. nothing to do when the node already streams from the current primary;
//   2. stop it (stop_command, or pg_ctl stop -m fast);
//   3. pg_rewind from the current primary (needs wal_log_hints or data checksums); when that
//      fails, the old directory is moved aside (never deleted) to DIR.reprise-old-<time> and a
//      fresh pg_basebackup is taken;
//   4. the node's own postgresql.conf, pg_hba.conf and pg_ident.conf are put back (a rewind
//      copies the source's), standby.signal and primary_conninfo are written (no password:
//      the server's user needs a .pgpass entry when the primary asks for one);
//   5. start it (start_command, or pg_ctl start) and wait until it streams.
// Redis: REPLICAOF the current primary, then wait for the link.
#pragma once

#include <string>

#include "common/result.h"
#include "failover/failover.h"
#include "plan/plan.h"

namespace reprise::failover {

struct RebuildReport {
  std::string postgres;  // "pg_rewind in 1.2 s", "pg_basebackup ...", "already streaming", ""
  std::string redis;     // "replicating", ""
  std::string moved_aside;  // where the old data directory went (pg_basebackup), or ""
};

// Makes `site` a replica of `primary`. Refuses when `site` is the current primary.
Result<RebuildReport> RebuildSite(const Plan& plan, const Site& site, const Site& primary,
                                  const FailoverHooks& hooks);

}  // namespace reprise::failover
