// `prune`: mark and sweep. Marks every blob a point needs, then
// - deletes packs no blob of which is needed, and packs no index names (left by killed runs);
// - repacks packs that are mostly garbage (more than `repack_threshold` of their bytes unused):
//   the needed blobs are authenticated and copied, still sealed, into new packs.
// Order, so that a kill at any moment leaves a good repository: new packs -> one new index of
// everything kept -> delete the old index files -> delete the dropped packs.
// Before anything is written, credentials that may not delete (append-only) are refused.
// The caller holds the exclusive lock. A repository with damaged index files or points, or a
// point whose blobs are missing, is refused: prune never deletes on incomplete knowledge.
#pragma once

#include "repo/check.h"
#include "repo/repository.h"

namespace reprise {

struct PruneOptions {
  bool dry_run = false;
  double repack_threshold = 0.5;
};

struct PruneReport {
  uint64_t packs_total = 0, packs_deleted = 0, packs_repacked = 0, packs_written = 0;
  uint64_t orphan_packs = 0;
  uint64_t bytes_total = 0, bytes_freed = 0;
  uint64_t blobs_used = 0, blobs_unused = 0;
};

Result<PruneReport> PruneRepository(Repository& repo, const PruneOptions& options,
                                    const ProgressFn& progress);

}  // namespace reprise
