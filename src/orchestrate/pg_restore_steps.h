// The steps around restoring one physical PostgreSQL component, shared by `reprise restore
// --target-dir` and the whole-stack restore (stack_restore.h), in the order they must run:
//   1. PlanPgRestore: which WAL recovery needs; a gap is refused (kFailedPrecondition naming
//      the first missing segment) before anything is written;
//   2. CheckPgDataDir + FetchPgWal: the target must be empty (or --delta), and every WAL file
//      is fetched and authenticated into <data_dir>/reprise-wal before the data directory is
//      written, so damaged WAL never leaves something that looks like a data directory;
//   3. (the component writes the data directory)
//   4. FinishPgRestore: recovery settings, and optionally the server started and awaited.
// None of these keep state between calls; several components may run them on different
// threads at once.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/result.h"
#include "orchestrate/pg_recovery.h"
#include "plan/plan.h"
#include "repo/point.h"
#include "repo/repository.h"

namespace reprise {

// One physical postgres component on its way back.
struct PgRestoreStep {
  std::string component;
  nlohmann::json info;  // what the point recorded, plus "component"
  std::string data_dir;
  std::string os_user;  // owner of the files and user of the server; empty: as is
  RecoveryTarget target;
  WalNeeds needs;
  double wal_seconds = 0;  // time FetchPgWal took
  std::string spool_dir() const;  // <data_dir>/reprise-wal
};

// True for a postgres component that the point saved in physical mode.
bool IsPhysicalPostgres(const PointComponent& pc);

// The user that owns restored files and runs the server: `given` (--os-user), else the
// plan's os_user, else "postgres" when running as root (root cannot run postgres), else "".
std::string PgOsUser(const std::string& given, const ComponentSpec* spec);

// Step 1. `pc` must be a successful physical postgres component of the point.
Result<PgRestoreStep> PlanPgRestore(Repository& repo, const PointComponent& pc,
                                    std::string data_dir, std::string os_user,
                                    const RecoveryTarget& target, const Clock& clock);

// Step 2a: kFailedPrecondition (with a HINT) when `data_dir` holds anything but a WAL spool
// and `delta` is false. A missing directory is fine.
Status CheckPgDataDir(const std::string& data_dir, bool delta);

// Step 2b: fetches the planned WAL into the spool; on failure removes the spool and says
// that nothing was written to the data directory. Sets step.wal_seconds.
Status FetchPgWal(Repository& repo, PgRestoreStep& step, const Clock& clock,
                  const std::function<void(size_t done, size_t total)>& progress);

struct PgFinishOptions {
  std::optional<int> port;   // port of the restored server; unset: as in the backup
  bool archive_off = false;  // archive_mode = off (drills beside the live primary)
  bool start = false;        // start the server and wait until recovery has ended
  std::string bin_dir = "/usr/lib/postgresql/15/bin";
  std::string start_command;  // instead of pg_ctl (sh -c), when set
  bool keep_spool = false;    // keep <data_dir>/reprise-wal after a started recovery
};

// Step 4: writes the recovery settings; with `start`, starts the server and waits until
// recovery has ended. Returns the seconds recovery took (0 when not started).
Result<double> FinishPgRestore(const PgRestoreStep& step, const PgFinishOptions& options);

}  // namespace reprise
