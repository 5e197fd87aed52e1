// Packs: immutable objects holding many sealed blobs, then a sealed header listing them.
//
//   pack   = blob_0 || ... || blob_{n-1} || Seal(header, aad="reprise-pack-header-v1") || u32le len
//   blob_i = Seal(CompressBlob(plaintext), aad = blob id (32 bytes))
//   header = "RPK1" || u32le n || n x (u8 type || id[32] || u64le offset || u32le length ||
//                                       u32le raw_length)
// Because a sealed blob is bound to its id and not to its place, blobs can be copied between
// packs (repack, copy between repositories sharing a master key) without decrypting.
#pragma once

#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "repo/crypto.h"
#include "repo/format.h"

namespace reprise {

struct PackEntry {
  BlobType type = BlobType::kData;
  Id id;
  uint64_t offset = 0;
  uint32_t length = 0;
  uint32_t raw_length = 0;
};

// Seals plaintext as a blob: compresses (zstd `level`, raw when it does not shrink), seals.
Bytes SealBlob(const Key256& key, const Id& id, ByteView plaintext, int level);
// Opens a sealed blob and decompresses it; kCorruption when anything does not verify.
Result<Bytes> OpenBlob(const Key256& key, const Id& id, ByteView sealed, uint32_t raw_length);

// What follows the blobs of a pack whose entries these are: the sealed header and its u32le
// length. A pack streamed to a Storage::OpenWriter is its blobs, then this.
Bytes SealPackTrailer(const Key256& key, const std::vector<PackEntry>& entries);

class PackBuilder {
 public:
  // Appends an already sealed blob.
  void Add(BlobType type, const Id& id, ByteView sealed, uint32_t raw_length);
  // Reserves room for a pack of about this size (no copying as it grows).
  void Reserve(size_t bytes) { data_.reserve(bytes); }
  size_t size() const { return data_.size(); }
  size_t count() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<PackEntry>& entries() const { return entries_; }
  // Appends the sealed header and its length; returns the finished pack's bytes.
  Bytes Finish(const Key256& key);

 private:
  Bytes data_;
  std::vector<PackEntry> entries_;
};

// Parses the header at the end of a whole pack and checks it against the pack's size.
Result<std::vector<PackEntry>> ReadPackHeader(const Key256& key, ByteView pack);
// The size a pack with these entries has (blobs + sealed header + 4).
uint64_t ExpectedPackSize(const std::vector<PackEntry>& entries);

}  // namespace reprise
