// Writes blobs that are already sealed, unchanged, into new packs of a repository: the shared
// step of prune's repack and of copy between repositories sharing a master key. The caller
// authenticates each blob first and, once the packs are put, writes an index file listing
// them (packs -> index, as everywhere).
#pragma once

#include <vector>

#include "repo/index.h"
#include "repo/pack.h"
#include "repo/repository.h"

namespace reprise {

class SealedPackWriter {
 public:
  explicit SealedPackWriter(Repository& repo) : repo_(repo) {}

  // Appends a sealed blob; puts the pack once it reaches the repository's pack size.
  Status Add(BlobType type, const Id& id, ByteView sealed, uint32_t raw_length);
  // Puts the open pack, if any.
  Status Flush();
  // The packs put since the last call, with their entries.
  std::vector<IndexPack> TakeWritten();
  uint64_t packs_written() const { return packs_written_; }

 private:
  Repository& repo_;
  PackBuilder builder_;
  std::vector<IndexPack> written_;
  uint64_t packs_written_ = 0;
};

}  // namespace reprise
