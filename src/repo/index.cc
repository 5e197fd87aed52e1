#include "repo/index.h"

#include <cstring>

#include "repo/compress.h"
#include "repo/format.h"

namespace reprise {

namespace {
constexpr char kIndexMagic[4] = {'R', 'I', 'X', '1'};
constexpr size_t kMaxIndexBody = size_t{1} << 31;

void PutU32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(Bytes& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

class Reader {
 public:
  explicit Reader(ByteView b) : b_(b) {}
  bool Need(size_t n) const { return pos_ + n <= b_.size(); }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = v << 8 | b_[pos_ + i];
    pos_ += 4;
    return v;
  }
  uint64_t U64() {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | b_[pos_ + i];
    pos_ += 8;
    return v;
  }
  uint8_t U8() { return b_[pos_++]; }
  void Copy(uint8_t* out, size_t n) {
    std::memcpy(out, b_.data() + pos_, n);
    pos_ += n;
  }
  bool AtEnd() const { return pos_ == b_.size(); }

 private:
  ByteView b_;
  size_t pos_ = 0;
};
}  // namespace

Bytes EncodeIndex(const Key256& key, const std::vector<IndexPack>& packs) {
  Bytes body(kIndexMagic, kIndexMagic + 4);
  PutU32(body, static_cast<uint32_t>(packs.size()));
  for (const auto& p : packs) {
    body.insert(body.end(), p.pack.bytes.begin(), p.pack.bytes.end());
    PutU32(body, static_cast<uint32_t>(p.entries.size()));
    for (const auto& e : p.entries) {
      body.push_back(static_cast<uint8_t>(e.type));
      body.insert(body.end(), e.id.bytes.begin(), e.id.bytes.end());
      PutU64(body, e.offset);
      PutU32(body, e.length);
      PutU32(body, e.raw_length);
    }
  }
  return Seal(key, CompressBlob(body, 3), AsBytes(kAadIndex));
}

Result<std::vector<IndexPack>> DecodeIndex(const Key256& key, ByteView file) {
  auto stored = Open(key, file, AsBytes(kAadIndex));
  if (!stored.ok()) return Corruption("index fails authentication");
  auto body = DecompressBlob(*stored, kMaxIndexBody);
  if (!body.ok()) return Corruption("index: " + body.status().message());
  Reader r(*body);
  if (!r.Need(8)) return Corruption("index is truncated");
  char magic[4];
  r.Copy(reinterpret_cast<uint8_t*>(magic), 4);
  if (std::memcmp(magic, kIndexMagic, 4) != 0) return Corruption("index has a bad magic");
  uint32_t npacks = r.U32();
  std::vector<IndexPack> packs;
  for (uint32_t i = 0; i < npacks; ++i) {
    if (!r.Need(36)) return Corruption("index is truncated");
    IndexPack p;
    r.Copy(p.pack.bytes.data(), 32);
    uint32_t n = r.U32();
    if (!r.Need(static_cast<size_t>(n) * 49)) return Corruption("index is truncated");
    p.entries.resize(n);
    for (auto& e : p.entries) {
      uint8_t t = r.U8();
      if (t > 1) return Corruption("index has an unknown blob type");
      e.type = static_cast<BlobType>(t);
      r.Copy(e.id.bytes.data(), 32);
      e.offset = r.U64();
      e.length = r.U32();
      e.raw_length = r.U32();
    }
    packs.push_back(std::move(p));
  }
  if (!r.AtEnd()) return Corruption("index has trailing bytes");
  return packs;
}

void MasterIndex::AddPack(const IndexPack& pack) {
  std::unique_lock lk(mu_);
  for (const auto& e : pack.entries) {
    blobs_.try_emplace(e.id, BlobLocation{.pack = pack.pack,
                                          .type = e.type,
                                          .offset = e.offset,
                                          .length = e.length,
                                          .raw_length = e.raw_length});
  }
  packs_[pack.pack] = pack.entries;
}

bool MasterIndex::Has(const Id& blob) const {
  std::shared_lock lk(mu_);
  return blobs_.count(blob) != 0;
}

Result<BlobLocation> MasterIndex::Find(const Id& blob) const {
  std::shared_lock lk(mu_);
  auto it = blobs_.find(blob);
  if (it == blobs_.end()) return NotFound("blob '" + blob.Short() + "' is not in the index");
  return it->second;
}

size_t MasterIndex::size() const {
  std::shared_lock lk(mu_);
  return blobs_.size();
}

std::unordered_map<Id, std::vector<PackEntry>, IdHash> MasterIndex::Packs() const {
  std::shared_lock lk(mu_);
  return packs_;
}

}  // namespace reprise
