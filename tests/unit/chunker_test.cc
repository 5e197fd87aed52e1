#include "repo/chunker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace reprise {
namespace {

Bytes Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    for (int k = 0; k < 8; ++k) b[i + k] = static_cast<uint8_t>(v >> (8 * k));
  }
  for (; i < n; ++i) b[i] = static_cast<uint8_t>(rng());
  return b;
}

Key256 TestKey(uint8_t seed) {
  Key256 k{};
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(seed * 31 + i);
  return k;
}

// Chunk lengths of `data`, given all at once.
std::vector<size_t> Split(const Chunker& c, ByteView data) {
  std::vector<size_t> out;
  size_t off = 0;
  while (off < data.size()) {
    size_t n = c.Next(data.subspan(off), true);
    EXPECT_GT(n, 0u);
    if (n == 0) break;
    out.push_back(n);
    off += n;
  }
  return out;
}

// Same, but the data arrives in pieces of the given sizes (cycled), as from a reader.
std::vector<size_t> SplitStreaming(const Chunker& c, ByteView data,
                                   const std::vector<size_t>& pieces) {
  std::vector<size_t> out;
  size_t start = 0, have = 0, k = 0;
  while (have < data.size()) {
    have = std::min(data.size(), have + pieces[k++ % pieces.size()]);
    while (true) {
      size_t n = c.Next(data.subspan(start, have - start), false);
      if (n == 0) break;
      EXPECT_LE(n, have - start);
      out.push_back(n);
      start += n;
    }
  }
  while (start < data.size()) {
    size_t n = c.Next(data.subspan(start), true);
    EXPECT_GT(n, 0u);
    if (n == 0) break;
    out.push_back(n);
    start += n;
  }
  return out;
}

const ChunkerParams kSmall{.min_size = 16 * 1024, .avg_size = 64 * 1024, .max_size = 256 * 1024};

TEST(ChunkerTest, ValidateParams) {
  EXPECT_TRUE(ValidateChunkerParams(ChunkerParams{}).ok());
  EXPECT_TRUE(ValidateChunkerParams(kSmall).ok());
  EXPECT_TRUE(ValidateChunkerParams({.min_size = 0, .avg_size = 64, .max_size = 65}).ok());
  auto bad = [](ChunkerParams p) { return ValidateChunkerParams(p).code(); };
  EXPECT_EQ(bad({.min_size = 1, .avg_size = 1000, .max_size = 4000}), Code::kInvalidArgument);
  EXPECT_EQ(bad({.min_size = 1, .avg_size = 32, .max_size = 4000}), Code::kInvalidArgument);
  EXPECT_EQ(bad({.min_size = 0, .avg_size = 0, .max_size = 4000}), Code::kInvalidArgument);
  EXPECT_EQ(bad({.min_size = 1024, .avg_size = 1024, .max_size = 4096}), Code::kInvalidArgument);
  EXPECT_EQ(bad({.min_size = 512, .avg_size = 1024, .max_size = 1024}), Code::kInvalidArgument);
  EXPECT_EQ(bad({.min_size = 512, .avg_size = 1 << 20, .max_size = (64 << 20) + 1}),
            Code::kInvalidArgument);
  EXPECT_TRUE(ValidateChunkerParams({.min_size = 1, .avg_size = 32 << 20, .max_size = 64 << 20})
                  .ok());
  auto st = ValidateChunkerParams({.min_size = 1, .avg_size = 1000, .max_size = 4000});
  EXPECT_NE(st.message().find("avg_size"), std::string::npos) << st.message();
}

TEST(ChunkerTest, DeterministicForSameKey) {
  Bytes data = Random(4 << 20, 1);
  Chunker a(TestKey(1), kSmall), b(TestKey(1), kSmall);
  auto sa = Split(a, data);
  EXPECT_EQ(sa, Split(b, data));
  EXPECT_GT(sa.size(), 10u);
}

TEST(ChunkerTest, DifferentKeyGivesDifferentBoundaries) {
  Bytes data = Random(4 << 20, 2);
  auto sa = Split(Chunker(TestKey(1), kSmall), data);
  auto sb = Split(Chunker(TestKey(2), kSmall), data);
  EXPECT_NE(sa, sb);
  // Not just a shifted start: most cut offsets differ.
  std::set<size_t> cuts_a;
  size_t off = 0;
  for (size_t n : sa) cuts_a.insert(off += n);
  size_t shared = 0;
  off = 0;
  for (size_t n : sb) shared += cuts_a.count(off += n);
  EXPECT_LT(shared, sb.size() / 2);
}

TEST(ChunkerTest, ChunksWithinBoundsAndAverageNearTarget) {
  for (ChunkerParams p : {kSmall, ChunkerParams{}}) {
    Bytes data = Random(48 << 20, 3);
    auto sizes = Split(Chunker(TestKey(3), p), data);
    ASSERT_GT(sizes.size(), 2u);
    size_t forced = 0;
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
      EXPECT_GE(sizes[i], p.min_size) << "chunk " << i;
      EXPECT_LE(sizes[i], p.max_size) << "chunk " << i;
      if (sizes[i] == p.max_size) ++forced;
    }
    EXPECT_LE(sizes.back(), p.max_size);
    double avg = static_cast<double>(data.size()) / static_cast<double>(sizes.size());
    EXPECT_GE(avg, 0.5 * p.avg_size) << "avg_size " << p.avg_size;
    EXPECT_LE(avg, 2.0 * p.avg_size) << "avg_size " << p.avg_size;
    // On random data, nearly every cut comes from content, not from max_size.
    EXPECT_LT(forced * 20, sizes.size()) << forced << " of " << sizes.size() << " forced";
    size_t total = 0;
    for (size_t n : sizes) total += n;
    EXPECT_EQ(total, data.size());
  }
}

TEST(ChunkerTest, InsertionOnlyChangesNearbyChunks) {
  const ChunkerParams p;  // repository defaults
  Chunker c(TestKey(4), p);
  Bytes before = Random(64 << 20, 4);
  Bytes after = before;
  const Bytes inserted = ToBytes("hello!!");
  after.insert(after.begin() + static_cast<std::ptrdiff_t>(before.size() / 2), inserted.begin(),
               inserted.end());

  auto hashes = [&](const Bytes& data) {
    std::vector<Id> ids;
    size_t off = 0;
    for (size_t n : Split(c, data)) {
      // A cheap content fingerprint: the keyed hash is not the point here.
      ids.push_back(Sha256(ByteView(data).subspan(off, n)));
      off += n;
    }
    return ids;
  };
  auto hb = hashes(before), ha = hashes(after);
  std::set<Id> set_b(hb.begin(), hb.end());
  size_t shared = 0;
  for (const Id& id : ha) shared += set_b.count(id);
  EXPECT_GE(shared * 10, ha.size() * 9) << shared << " of " << ha.size() << " chunks shared";
  EXPECT_LT(shared, ha.size()) << "the edited chunk must differ";
  EXPECT_LE(ha.size() - shared, 3u);
}

TEST(ChunkerTest, StreamingMatchesAllAtOnce) {
  Chunker c(TestKey(5), kSmall);
  Bytes data = Random(3 << 20, 5);
  auto whole = Split(c, data);
  EXPECT_EQ(SplitStreaming(c, data, {4096}), whole);
  EXPECT_EQ(SplitStreaming(c, data, {1, 65537, 333, 100000}), whole);
  EXPECT_EQ(SplitStreaming(c, data, {kSmall.max_size}), whole);
}

TEST(ChunkerTest, NextNeedsMoreDataOrStopsAtMax) {
  Chunker c(TestKey(6), kSmall);
  Bytes zeros(3 * kSmall.max_size + 5, 0);
  // Not at eof and shorter than min: never a cut.
  EXPECT_EQ(c.Next(ByteView(zeros).first(kSmall.min_size), false), 0u);
  EXPECT_EQ(c.Next(ByteView(zeros).first(kSmall.min_size), true), kSmall.min_size);
  EXPECT_EQ(c.Next(ByteView(zeros).first(10), true), 10u);
  EXPECT_EQ(c.Next(ByteView(), true), 0u);
  EXPECT_EQ(c.Next(ByteView(), false), 0u);
  // Constant data has no content boundary (the hash settles on one value), so chunks are
  // forced at max_size and the chunker asks for more until it has max_size bytes.
  EXPECT_EQ(c.Next(ByteView(zeros).first(kSmall.max_size - 1), false), 0u);
  EXPECT_EQ(c.Next(ByteView(zeros).first(kSmall.max_size), false), kSmall.max_size);
  EXPECT_EQ(c.Next(zeros, false), kSmall.max_size);
  std::vector<size_t> want = {kSmall.max_size, kSmall.max_size, kSmall.max_size, 5};
  EXPECT_EQ(Split(c, zeros), want);
}

TEST(ChunkerTest, NeverCutsBeforeMin) {
  // A boundary in the first min_size bytes would show up as a short chunk; changing the data
  // there must not move the cut either, since those bytes are not hashed.
  Chunker c(TestKey(7), kSmall);
  Bytes data = Random(1 << 20, 7);
  size_t first = c.Next(data, true);
  ASSERT_GE(first, kSmall.min_size);
  Bytes changed = data;
  for (size_t i = 0; i < kSmall.min_size; i += 97) changed[i] ^= 0xff;
  EXPECT_EQ(c.Next(changed, true), first);
}

}  // namespace
}  // namespace reprise
