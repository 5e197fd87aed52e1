// `check`: proves that every point can be restored. Without read_data it checks structure
// (index files open, every pack the index names exists with the right size, every blob every
// point needs is indexed); with read_data it also reads packs (all, or a random subset) and
// authenticates every blob and header. Damage is reported with the pack and the points it
// affects; check never changes the repository.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "repo/repository.h"

namespace reprise {

struct CheckOptions {
  bool read_data = false;
  double subset = 1.0;  // fraction of packs to read with read_data, (0, 1]
};

struct CheckReport {
  std::vector<std::string> errors;    // damage: the repository cannot restore everything
  std::vector<std::string> warnings;  // harmless: stale locks, unreferenced packs
  std::vector<Id> damaged_packs;
  std::vector<Point> affected_points;
  uint64_t packs = 0, packs_read = 0, bytes_read = 0, points = 0, blobs = 0, wal_files = 0;
  bool ok() const { return errors.empty(); }
};

using ProgressFn = std::function<void(const std::string& phase, uint64_t done, uint64_t total)>;

Result<CheckReport> CheckRepository(Repository& repo, const CheckOptions& options,
                                    const Clock& clock, const ProgressFn& progress);

}  // namespace reprise
