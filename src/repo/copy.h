// `copy`: copies recovery points from one repository to another (another site) that shares
// its master key (`reprise init --copy-keys-from`). Nothing is decrypted to be re-encrypted:
// the blobs a point needs that the target lacks are authenticated, then copied still sealed
// into new packs of the target; the point file is copied byte for byte, so it keeps its id.
//
// Order per point, as in a backup: packs -> one index file of them -> the point. A copy killed
// at any moment leaves at worst packs no index names (prune removes them); running it again
// skips the points the target has and the blobs it already indexes.
//
// Repositories with different master keys are refused (kFailedPrecondition): that would need
// every blob re-sealed under new ids and every manifest rewritten, which is not built yet.
// The caller holds a shared lock on both repositories.
#pragma once

#include <string>
#include <vector>

#include "repo/check.h"
#include "repo/repository.h"

namespace reprise {

struct CopyOptions {
  // Points to copy: "latest", full ids or unique prefixes. Empty: every point of the source
  // the target lacks.
  std::vector<std::string> points;
  // Needed blobs of one source pack closer than this are fetched in one ranged read.
  uint64_t max_gap = 1 << 20;
  // No ranged read is longer than this (bounds memory).
  uint64_t max_read = 32 << 20;
  // Also copy the WAL archive (wal/): every complete file the target lacks and every partial
  // one that differs, after the points.
  bool wal = true;
};

struct CopyReport {
  uint64_t points_copied = 0, points_skipped = 0;
  uint64_t blobs_copied = 0, bytes_copied = 0;  // sealed bytes
  uint64_t packs_written = 0;
  uint64_t wal_files_copied = 0;
  std::vector<Id> copied;  // ids of the points copied, in order
};

// Copies the selected points of `from` into `to`. Fails, naming the pack and the point, when
// a blob does not authenticate: damage is never propagated.
Result<CopyReport> CopyPoints(Repository& from, Repository& to, const CopyOptions& options,
                              const ProgressFn& progress);

// True when both repositories use the same master key (blob ids and seals are portable).
bool SameMasterKey(const Repository& a, const Repository& b);

}  // namespace reprise
