// The index: which pack holds each blob. Index files are written after the packs they list
// are durable, and before any point that needs them.
//
//   index file = Seal(CompressBlob(body), aad="reprise-index-v1"), named by SHA-256 of itself
//   body       = "RIX1" || u32le npacks || npacks x (pack id[32] || u32le n ||
//                 n x (u8 type || id[32] || u64le offset || u32le length || u32le raw_length))
#pragma once

#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "repo/crypto.h"
#include "repo/pack.h"

namespace reprise {

struct IndexPack {
  Id pack;
  std::vector<PackEntry> entries;
};

Bytes EncodeIndex(const Key256& key, const std::vector<IndexPack>& packs);
Result<std::vector<IndexPack>> DecodeIndex(const Key256& key, ByteView file);

// All blobs known to the repository. Thread-safe.
class MasterIndex {
 public:
  void AddPack(const IndexPack& pack);
  bool Has(const Id& blob) const;
  Result<BlobLocation> Find(const Id& blob) const;  // kNotFound when absent
  size_t size() const;
  // Every pack named by the index, with its entries (blobs listed once per pack).
  std::unordered_map<Id, std::vector<PackEntry>, IdHash> Packs() const;

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<Id, BlobLocation, IdHash> blobs_;
  std::unordered_map<Id, std::vector<PackEntry>, IdHash> packs_;
};

}  // namespace reprise
