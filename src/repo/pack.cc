#include "repo/pack.h"

#include <cstring>

#include "repo/compress.h"

namespace reprise {

namespace {
constexpr size_t kHeaderEntrySize = 1 + 32 + 8 + 4 + 4;
constexpr char kPackMagic[4] = {'R', 'P', 'K', '1'};

void PutU32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(Bytes& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
}  // namespace

std::string_view BlobTypeName(BlobType t) { return t == BlobType::kTree ? "tree" : "data"; }

Bytes SealBlob(const Key256& key, const Id& id, ByteView plaintext, int level) {
  // Compressed into this thread's scratch and sealed from there: one allocation per blob,
  // of its sealed size.
  thread_local Bytes scratch;
  size_t n = CompressBlobInto(plaintext, level, scratch);
  return Seal(key, ByteView(scratch.data(), n), id.bytes);
}

Result<Bytes> OpenBlob(const Key256& key, const Id& id, ByteView sealed, uint32_t raw_length) {
  if (sealed.size() < kSealOverhead)
    return Corruption("blob '" + id.Short() + "' fails authentication");
  // The decrypted (still compressed) bytes only live until they are decompressed: a buffer
  // per thread, grown and never shrunk, spares a restore an allocation, its zeroing and its
  // page faults per blob. Blobs larger than kKeepScratch get a buffer of their own.
  constexpr size_t kKeepScratch = 16 << 20;
  thread_local Bytes scratch;
  const size_t need = sealed.size() - kSealOverhead;
  Bytes own;
  Bytes& buffer = need <= kKeepScratch ? scratch : own;
  if (buffer.size() < need) buffer.resize(need);
  auto stored = OpenTo(key, sealed, id.bytes, buffer.data());
  if (!stored.ok()) return Corruption("blob '" + id.Short() + "' fails authentication");
  auto plain = DecompressBlob(ByteView(buffer.data(), *stored), raw_length);
  if (!plain.ok()) return Corruption("blob '" + id.Short() + "': " + plain.status().message());
  if (plain->size() != raw_length)
    return Corruption("blob '" + id.Short() + "' has length " + std::to_string(plain->size()) +
                      ", index says " + std::to_string(raw_length));
  return plain;
}

void PackBuilder::Add(BlobType type, const Id& id, ByteView sealed, uint32_t raw_length) {
  entries_.push_back(PackEntry{.type = type,
                               .id = id,
                               .offset = data_.size(),
                               .length = static_cast<uint32_t>(sealed.size()),
                               .raw_length = raw_length});
  data_.insert(data_.end(), sealed.begin(), sealed.end());
}

Bytes SealPackTrailer(const Key256& key, const std::vector<PackEntry>& entries) {
  Bytes header;
  header.reserve(8 + entries.size() * kHeaderEntrySize);
  header.insert(header.end(), kPackMagic, kPackMagic + 4);
  PutU32(header, static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) {
    header.push_back(static_cast<uint8_t>(e.type));
    header.insert(header.end(), e.id.bytes.begin(), e.id.bytes.end());
    PutU64(header, e.offset);
    PutU32(header, e.length);
    PutU32(header, e.raw_length);
  }
  Bytes sealed = Seal(key, header, AsBytes(kAadPackHeader));
  PutU32(sealed, static_cast<uint32_t>(sealed.size()));
  return sealed;
}

Bytes PackBuilder::Finish(const Key256& key) {
  Bytes trailer = SealPackTrailer(key, entries_);
  Bytes out = std::move(data_);
  out.insert(out.end(), trailer.begin(), trailer.end());
  data_.clear();
  return out;
}

uint64_t ExpectedPackSize(const std::vector<PackEntry>& entries) {
  uint64_t blobs = 0;
  for (const auto& e : entries) blobs = std::max<uint64_t>(blobs, e.offset + e.length);
  return blobs + 8 + entries.size() * kHeaderEntrySize + kSealOverhead + 4;
}

Result<std::vector<PackEntry>> ReadPackHeader(const Key256& key, ByteView pack) {
  if (pack.size() < 4 + kSealOverhead + 8) return Corruption("pack is too short for a header");
  uint32_t hlen = GetU32(pack.data() + pack.size() - 4);
  if (hlen < kSealOverhead + 8 || hlen > pack.size() - 4)
    return Corruption("pack header length " + std::to_string(hlen) + " is out of range");
  ByteView sealed = pack.subspan(pack.size() - 4 - hlen, hlen);
  auto header = Open(key, sealed, AsBytes(kAadPackHeader));
  if (!header.ok()) return Corruption("pack header fails authentication");
  const Bytes& h = *header;
  if (h.size() < 8 || std::memcmp(h.data(), kPackMagic, 4) != 0)
    return Corruption("pack header has a bad magic");
  uint32_t n = GetU32(h.data() + 4);
  if (h.size() != 8 + static_cast<size_t>(n) * kHeaderEntrySize)
    return Corruption("pack header size does not match its entry count");
  std::vector<PackEntry> entries(n);
  const uint8_t* p = h.data() + 8;
  uint64_t blob_region = pack.size() - 4 - hlen;
  for (uint32_t i = 0; i < n; ++i, p += kHeaderEntrySize) {
    auto& e = entries[i];
    if (p[0] > 1) return Corruption("pack header has an unknown blob type");
    e.type = static_cast<BlobType>(p[0]);
    std::memcpy(e.id.bytes.data(), p + 1, 32);
    e.offset = GetU64(p + 33);
    e.length = GetU32(p + 41);
    e.raw_length = GetU32(p + 45);
    if (e.offset + e.length > blob_region)
      return Corruption("pack header places blob '" + e.id.Short() + "' past the blobs");
  }
  return entries;
}

}  // namespace reprise
