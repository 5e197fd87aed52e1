// One backup: runs each component into the repository, flushes packs and index, and records
// one recovery point. A component that fails makes the point "partial" (the others are still
// restorable); the point is written only after everything it names is durable.
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
};

struct BackupTick {
  std::string component;
  uint64_t entries = 0, bytes_read = 0;
  uint64_t new_bytes = 0, stored_bytes = 0;
  double seconds = 0;
};

// `tick` (optional) is called about 4 times a second from another thread while it runs.
Result<Point> RunBackup(Repository& repo, BackupJob& job, const Clock& clock,
                        const std::function<void(const BackupTick&)>& tick);

}  // namespace reprise
