#include "repo/chunker.h"

#include <algorithm>
#include <bit>
#include <string>

namespace reprise {
namespace {

// Repository format (changing anything here changes every chunk boundary):
//
// gear[i] = the first 8 bytes, read little endian, of HMAC-SHA256(chunker key,
//           "reprise-gear" || uint32 little endian i), for i in 0..255.
//
// Rolling hash: h = (h << 1) + gear[byte], wrapping mod 2^64, starting at h = 0 at offset
// min_size of the chunk (the first min_size bytes are not hashed). After hashing the byte at
// offset i (0-based), the chunk ends at i + 1 when (h & mask) == 0, where mask is mask_small
// while i + 1 < avg_size and mask_large from there on. A chunk that reaches max_size bytes
// ends there.
//
// Masks (normalized chunking, level 2), with b = log2(avg_size): mask_small has b + 2 one
// bits, mask_large has b - 2. Bit k of h depends on the last k + 1 bytes, so the one bits are
// spread evenly over bits 16..63 instead of packed at the bottom: with n one bits, bit j
// (j = 0..n-1) is at position 63 - floor((47 * j + (n - 1) / 2) / (n - 1)), i.e. 47*j/(n-1)
// rounded to nearest, counted down from bit 63. The highest is always bit 63, the lowest bit 16.
uint64_t SpreadMask(int ones) {
  if (ones <= 0) return 0;
  if (ones == 1) return uint64_t{1} << 63;
  if (ones > 48) ones = 48;  // cannot happen with valid params (b <= 25)
  uint64_t mask = 0;
  const int den = ones - 1;
  for (int j = 0; j < ones; ++j) {
    int pos = 63 - (47 * j + den / 2) / den;
    mask |= uint64_t{1} << pos;
  }
  return mask;
}

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

Status ValidateChunkerParams(const ChunkerParams& p) {
  auto str = [](uint32_t v) { return std::to_string(v); };
  if (!IsPowerOfTwo(p.avg_size) || p.avg_size < 64)
    return InvalidArgument("chunker 'avg_size' " + str(p.avg_size) +
                           " is not a power of two of at least 64");
  if (p.min_size >= p.avg_size)
    return InvalidArgument("chunker 'min_size' " + str(p.min_size) +
                           " must be smaller than 'avg_size' " + str(p.avg_size));
  if (p.max_size <= p.avg_size)
    return InvalidArgument("chunker 'max_size' " + str(p.max_size) +
                           " must be larger than 'avg_size' " + str(p.avg_size));
  if (p.max_size > 64u * 1024 * 1024)
    return InvalidArgument("chunker 'max_size' " + str(p.max_size) +
                           " is larger than the limit of 64 MiB");
  return Status::Ok();
}

Chunker::Chunker(const Key256& chunker_key, const ChunkerParams& params) : params_(params) {
  static constexpr char kLabel[] = "reprise-gear";
  constexpr size_t kLabelLen = sizeof(kLabel) - 1;
  uint8_t msg[kLabelLen + 4];
  for (size_t k = 0; k < kLabelLen; ++k) msg[k] = static_cast<uint8_t>(kLabel[k]);
  for (uint32_t i = 0; i < 256; ++i) {
    for (int k = 0; k < 4; ++k) msg[kLabelLen + k] = static_cast<uint8_t>(i >> (8 * k));
    Key256 mac = HmacSha256(chunker_key, ByteView(msg, sizeof(msg)));
    gear_[i] = LoadLe64(mac.data());
  }
  // Invalid params (see ValidateChunkerParams) still give a working chunker, not UB.
  int bits = params_.avg_size == 0 ? 0 : std::bit_width(params_.avg_size) - 1;
  mask_small_ = SpreadMask(bits + 2);
  mask_large_ = SpreadMask(bits - 2);
}

size_t Chunker::Next(ByteView data, bool eof) const {
  const size_t size = data.size();
  const size_t max = params_.max_size == 0 ? size : params_.max_size;
  const size_t min = std::min<size_t>(params_.min_size, max);
  if (size <= min) return eof ? size : 0;

  const size_t end = std::min(size, max);
  const uint8_t* p = data.data();
  const uint64_t* gear = gear_.data();
  uint64_t h = 0;
  size_t i = min;
  // While i + 1 < avg_size the stricter mask applies, so chunks shorter than avg are rarer.
  const size_t small_end =
      std::min<size_t>(params_.avg_size > 0 ? params_.avg_size - 1 : 0, end);
  const uint64_t ms = mask_small_, ml = mask_large_;
  for (; i < small_end; ++i) {
    h = (h << 1) + gear[p[i]];
    if ((h & ms) == 0) return i + 1;
  }
  for (; i < end; ++i) {
    h = (h << 1) + gear[p[i]];
    if ((h & ml) == 0) return i + 1;
  }
  if (end == max) return max;  // a chunk never exceeds max_size
  return eof ? size : 0;
}

}  // namespace reprise
