// Block maps: how fixed-block contents (database relation files, cut on page boundaries) are
// recorded. A map lists, for a stream of `size` bytes cut into `block_size` blocks, the id and
// length of every block. A delta map names a base map (the same object in an earlier point)
// and lists only the blocks that differ from it (or lie beyond its end), so a backup after
// scattered page changes writes a small map, not a list of every block again. Chains are cut
// (a full map is written) once they reach kMaxDepth or when most blocks changed.
//
// Map blob (a tree blob; plaintext, little-endian), docs/repository-format.md "Block maps":
//   "RPBM" u8 version=1 | u32 block_size | u64 size | u32 block_count | u8 has_base
//   | [32-byte base map id] | u32 depth | u32 n | n x (u32 block index, 32-byte id, u32 length)
// A full map has has_base=0, depth=0 and lists every block in order.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "components/component.h"

namespace reprise {

inline constexpr uint32_t kBlockMapMaxDepth = 12;

struct BlockMapEntry {
  uint32_t index = 0;
  ChunkRef chunk;
};

struct BlockMap {
  uint32_t block_size = 0;
  uint64_t size = 0;
  uint32_t block_count = 0;
  std::optional<Id> base;
  uint32_t depth = 0;
  std::vector<BlockMapEntry> entries;
};

Bytes EncodeBlockMap(const BlockMap& map);
Result<BlockMap> DecodeBlockMap(ByteView bytes);

// Reads a map blob by id (the repository's ReadBlob).
using MapReader = std::function<Result<Bytes>(const Id&)>;

// The full block list of map `id`, following its bases (at most kBlockMapMaxDepth + 1 maps).
Result<Content> ResolveBlockMap(const Id& id, const MapReader& read,
                                uint32_t* depth = nullptr);

// The map to write for `blocks` (a stream of `size` bytes cut into `block_size` blocks) when
// the previous point holds `previous` (resolved from map `previous_id` at depth
// `previous_depth`): a delta against it when that is small and the chain short, else full.
BlockMap MakeBlockMap(uint32_t block_size, uint64_t size, const std::vector<ChunkRef>& blocks,
                      const std::optional<Id>& previous_id, const Content* previous,
                      uint32_t previous_depth);

// Calls visit(map id) for the map and each base, and visit_chunk for every block any of them
// lists (a superset of the resolved list: what keeps the whole chain readable). Stops early at
// a map for which `seen` returns true.
Status VisitBlockMap(const Id& id, const MapReader& read,
                     const std::function<bool(const Id&)>& seen,
                     const std::function<void(const Id&)>& visit_map,
                     const std::function<void(const ChunkRef&)>& visit_chunk);

}  // namespace reprise
