// `copy`: copies recovery points (and the WAL archive) from one repository to another site.
//
// Same master key (`reprise init --copy-keys-from`): nothing is decrypted to be re-encrypted.
// The blobs a point needs that the target lacks are authenticated, then copied still sealed
// into new packs of the target; the point file is copied byte for byte, so it keeps its id.
//
// Different master keys: blob ids are keyed and seals bound to them, so every blob a point
// needs is read and authenticated from the source, given its id under the target's key and
// saved by the target (dedup, compression); block maps and manifests are rewritten with the
// new ids and the manifests re-cut into the target's tree blobs. The new point keeps the
// source's metadata, gets a new id, and records the source point's id in `copied_from`,
// which is how a later run knows it is there. WAL records are rewritten likewise.
//
// Order, as in a backup: packs -> index files -> the point (or WAL record). A copy killed at
// any moment leaves at worst packs (and index files) that no point needs (prune removes them);
// running it again skips the points the target has and the blobs it already indexes.
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
  // Re-encrypting copy: blobs re-sealed in parallel on this many threads (0: one per core).
  size_t threads = 0;
};

struct CopyReport {
  uint64_t points_copied = 0, points_skipped = 0;
  uint64_t blobs_copied = 0, bytes_copied = 0;  // blobs new to the target; sealed bytes
  uint64_t packs_written = 0;
  uint64_t wal_files_copied = 0;
  std::vector<Id> copied;  // ids of the points copied (in the target), in order
  // The keys differed: every blob was decrypted and sealed again. Then `copied_from[i]` is the
  // source id of `copied[i]` (the ids differ); otherwise copied_from is empty.
  bool reencrypted = false;
  std::vector<Id> copied_from;
};

// Copies the selected points of `from` into `to`, re-encrypting when their master keys differ.
// Fails (kCorruption), naming the pack and the point, when a blob does not authenticate:
// damage is never propagated.
Result<CopyReport> CopyPoints(Repository& from, Repository& to, const CopyOptions& options,
                              const ProgressFn& progress);

// True when both repositories use the same master key (blob ids and seals are portable, and
// the copy needs no re-encryption).
bool SameMasterKey(const Repository& a, const Repository& b);

}  // namespace reprise
