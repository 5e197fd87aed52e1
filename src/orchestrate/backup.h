// One backup: runs the components into the repository, several at once, flushes packs and
// index, and records one recovery point. The point lists the components in the job's order,
// each with its status, start and end times, what it returned (positions: PostgreSQL start
// and end LSN, Redis replication offset, Qdrant snapshot names ...) and its stats.
//
// A component that fails makes the point "partial" (the others are still restorable); its
// entry says why. A storage failure (writing the component's data into the repository fails)
// is not a component's: it stops the backup, no point is written, and RunBackup returns it.
// Errors are told apart by where they come from, not by their code: a component's own
// kUnavailable (a server that did not answer) only fails that component. The point is written
// only after everything it names is durable.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "components/component.h"
#include "repo/point.h"
#include "repo/repository.h"

namespace reprise {

struct BackupItem {
  std::string name;
  std::string kind;
  std::unique_ptr<Component> component;  // null when it could not be built
  Status build_error;                    // why it could not be built
};

struct BackupJob {
  std::vector<BackupItem> items;
  std::vector<std::string> tags;
  std::string plan_name, site;
  // Components backed up at once (at least 1). They share the repository's pack writer and
  // one chunk-processing pool; each has its own sink and manifest.
  int parallel = 4;
};

struct BackupTick {
  std::string component;
  uint64_t entries = 0, bytes_read = 0;
  uint64_t new_bytes = 0, stored_bytes = 0;
  double seconds = 0;
};

// `tick` (optional) is called about 4 times a second from one other thread, once for each
// component running at that moment.
Result<Point> RunBackup(Repository& repo, BackupJob& job, const Clock& clock,
                        const std::function<void(const BackupTick&)>& tick);

// Where a component's data stood when it was saved, from what its backup returned, for people
// and reports: {"start_lsn", "end_lsn", "timeline"} (postgres physical),
// {"master_repl_offset"} (redis), {"snapshots": [...]} (qdrant); an empty object when the
// kind records none.
nlohmann::json PositionOf(const PointComponent& component);
// The same in one phrase: "lsn 0/3000028 .. 0/3000100", "offset 1234"; "" when none.
std::string DescribePosition(const PointComponent& component);

}  // namespace reprise
