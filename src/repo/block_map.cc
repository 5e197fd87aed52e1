#include "repo/block_map.h"

#include <cstring>

namespace reprise {

namespace {

constexpr char kMagic[4] = {'R', 'P', 'B', 'M'};
constexpr uint8_t kVersion = 1;

void PutU32(Bytes& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

class Reader {
 public:
  explicit Reader(ByteView b) : b_(b) {}
  bool Take(size_t n, const uint8_t** p) {
    if (b_.size() - pos_ < n) return false;
    *p = b_.data() + pos_;
    pos_ += n;
    return true;
  }
  bool U8(uint8_t* v) {
    const uint8_t* p;
    if (!Take(1, &p)) return false;
    *v = *p;
    return true;
  }
  bool U32(uint32_t* v) {
    const uint8_t* p;
    if (!Take(4, &p)) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= static_cast<uint32_t>(p[i]) << (8 * i);
    return true;
  }
  bool U64(uint64_t* v) {
    const uint8_t* p;
    if (!Take(8, &p)) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return true;
  }
  bool IdOut(Id* id) {
    const uint8_t* p;
    if (!Take(32, &p)) return false;
    std::memcpy(id->bytes.data(), p, 32);
    return true;
  }
  bool AtEnd() const { return pos_ == b_.size(); }

 private:
  ByteView b_;
  size_t pos_ = 0;
};

uint32_t BlockCount(uint64_t size, uint32_t block_size) {
  return static_cast<uint32_t>((size + block_size - 1) / block_size);
}

}  // namespace

Bytes EncodeBlockMap(const BlockMap& map) {
  Bytes out;
  out.reserve(64 + map.entries.size() * 40);
  out.insert(out.end(), kMagic, kMagic + 4);
  out.push_back(kVersion);
  PutU32(out, map.block_size);
  PutU64(out, map.size);
  PutU32(out, map.block_count);
  out.push_back(map.base ? 1 : 0);
  if (map.base) out.insert(out.end(), map.base->bytes.begin(), map.base->bytes.end());
  PutU32(out, map.depth);
  PutU32(out, static_cast<uint32_t>(map.entries.size()));
  for (const auto& e : map.entries) {
    PutU32(out, e.index);
    out.insert(out.end(), e.chunk.id.bytes.begin(), e.chunk.id.bytes.end());
    PutU32(out, e.chunk.length);
  }
  return out;
}

Result<BlockMap> DecodeBlockMap(ByteView bytes) {
  Reader r(bytes);
  const uint8_t* magic;
  uint8_t version = 0, has_base = 0;
  BlockMap map;
  uint32_t n = 0;
  if (!r.Take(4, &magic) || std::memcmp(magic, kMagic, 4) != 0)
    return Corruption("block map: bad magic");
  if (!r.U8(&version) || version != kVersion)
    return Corruption("block map: unknown version " + std::to_string(version));
  if (!r.U32(&map.block_size) || !r.U64(&map.size) || !r.U32(&map.block_count) ||
      !r.U8(&has_base))
    return Corruption("block map: truncated header");
  if (map.block_size == 0 || map.block_count != BlockCount(map.size, map.block_size))
    return Corruption("block map: block size and count do not match the size");
  if (has_base > 1) return Corruption("block map: bad base flag");
  if (has_base) {
    Id base;
    if (!r.IdOut(&base)) return Corruption("block map: truncated base id");
    map.base = base;
  }
  if (!r.U32(&map.depth) || !r.U32(&n)) return Corruption("block map: truncated header");
  if ((!map.base && map.depth != 0) || (map.base && map.depth == 0) ||
      map.depth > kBlockMapMaxDepth)
    return Corruption("block map: bad depth " + std::to_string(map.depth));
  if (n > map.block_count) return Corruption("block map: more entries than blocks");
  map.entries.resize(n);
  int64_t last = -1;
  for (auto& e : map.entries) {
    if (!r.U32(&e.index) || !r.IdOut(&e.chunk.id) || !r.U32(&e.chunk.length))
      return Corruption("block map: truncated entry");
    if (static_cast<int64_t>(e.index) <= last || e.index >= map.block_count)
      return Corruption("block map: entries out of order or out of range");
    last = e.index;
    uint64_t want = e.index + 1 == map.block_count
                        ? map.size - static_cast<uint64_t>(e.index) * map.block_size
                        : map.block_size;
    if (e.chunk.length != want) return Corruption("block map: a block has the wrong length");
  }
  if (!r.AtEnd()) return Corruption("block map: trailing bytes");
  if (!map.base && n != map.block_count) return Corruption("block map: full map misses blocks");
  return map;
}

Result<Content> ResolveBlockMap(const Id& id, const MapReader& read, uint32_t* depth) {
  // Collect the chain newest first, then apply oldest first.
  std::vector<BlockMap> chain;
  std::optional<Id> next = id;
  while (next) {
    if (chain.size() > kBlockMapMaxDepth)
      return Corruption("block map '" + id.Short() + "': chain longer than allowed");
    ASSIGN_OR_RETURN(Bytes bytes, read(*next));
    auto map = DecodeBlockMap(bytes);
    if (!map.ok()) return map.status().WithContext("block map '" + next->Short() + "'");
    if (!chain.empty() && map->depth + 1 != chain.back().depth)
      return Corruption("block map '" + next->Short() + "': depth does not follow its child");
    if (!chain.empty() && map->block_size != chain.back().block_size)
      return Corruption("block map '" + next->Short() + "': block size differs from its child");
    next = map->base;
    chain.push_back(std::move(*map));
  }
  const BlockMap& top = chain.front();
  if (depth) *depth = top.depth;
  Content content;
  content.size = top.size;
  content.map = id;
  content.chunks.resize(top.block_count);
  std::vector<bool> set(top.block_count, false);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    for (const auto& e : it->entries) {
      if (e.index >= top.block_count) continue;  // the file shrank since
      uint64_t want = e.index + 1 == top.block_count
                          ? top.size - static_cast<uint64_t>(e.index) * top.block_size
                          : top.block_size;
      if (e.chunk.length != want) continue;  // a base's partial last block, since grown
      content.chunks[e.index] = e.chunk;
      set[e.index] = true;
    }
  }
  for (uint32_t i = 0; i < top.block_count; ++i)
    if (!set[i])
      return Corruption("block map '" + id.Short() + "': block " + std::to_string(i) +
                        " is in no map of its chain");
  return content;
}

BlockMap MakeBlockMap(uint32_t block_size, uint64_t size, const std::vector<ChunkRef>& blocks,
                      const std::optional<Id>& previous_id, const Content* previous,
                      uint32_t previous_depth) {
  BlockMap map;
  map.block_size = block_size;
  map.size = size;
  map.block_count = static_cast<uint32_t>(blocks.size());
  std::vector<BlockMapEntry> changed;
  if (previous_id && previous && previous_depth < kBlockMapMaxDepth) {
    for (uint32_t i = 0; i < blocks.size(); ++i) {
      if (i < previous->chunks.size() && previous->chunks[i].id == blocks[i].id &&
          previous->chunks[i].length == blocks[i].length)
        continue;
      changed.push_back(BlockMapEntry{.index = i, .chunk = blocks[i]});
    }
    // A delta pays off while it stays well under a full list.
    if (changed.size() * 4 <= blocks.size()) {
      map.base = previous_id;
      map.depth = previous_depth + 1;
      map.entries = std::move(changed);
      return map;
    }
  }
  map.entries.reserve(blocks.size());
  for (uint32_t i = 0; i < blocks.size(); ++i)
    map.entries.push_back(BlockMapEntry{.index = i, .chunk = blocks[i]});
  return map;
}

Status VisitBlockMap(const Id& id, const MapReader& read,
                     const std::function<bool(const Id&)>& seen,
                     const std::function<void(const Id&)>& visit_map,
                     const std::function<void(const ChunkRef&)>& visit_chunk) {
  std::optional<Id> next = id;
  uint32_t steps = 0;
  while (next && !seen(*next)) {
    if (steps++ > kBlockMapMaxDepth)
      return Corruption("block map '" + id.Short() + "': chain longer than allowed");
    visit_map(*next);
    ASSIGN_OR_RETURN(Bytes bytes, read(*next));
    auto map = DecodeBlockMap(bytes);
    if (!map.ok()) return map.status().WithContext("block map '" + next->Short() + "'");
    for (const auto& e : map->entries) visit_chunk(e.chunk);
    next = map->base;
  }
  return Status::Ok();
}

}  // namespace reprise
