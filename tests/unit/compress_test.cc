#include "repo/compress.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <algorithm>
#include <random>
#include <string>

namespace reprise {
namespace {

// Text-like data: words from a small vocabulary, so zstd has something to find.
Bytes TextLike(size_t n, uint32_t seed) {
  static const char* kWords[] = {"backup ", "restore ", "point ", "chunk ", "repository ",
                                 "index ", "pack ", "the ", "a ", "of ", "\n", "2024-05-01 "};
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) s += kWords[rng() % std::size(kWords)];
  s.resize(n);
  return ToBytes(s);
}

Bytes Random(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// A zstd frame written without its content size (legal, though CompressBlob never does it).
Bytes FrameWithoutContentSize(ByteView data) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
  Bytes out(ZSTD_compressBound(data.size()));
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  ZSTD_inBuffer ib{data.data(), data.size(), 0};
  size_t rem = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
  EXPECT_EQ(rem, 0u);
  ZSTD_freeCCtx(c);
  out.resize(ob.pos);
  EXPECT_EQ(ZSTD_getFrameContentSize(out.data(), out.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  return out;
}

Bytes WithMode(uint8_t mode, ByteView body) {
  Bytes b(1 + body.size());
  b[0] = mode;
  std::copy(body.begin(), body.end(), b.begin() + 1);
  return b;
}

TEST(CompressTest, TextRoundTripsCompressed) {
  for (int level : {1, 3, 9}) {
    Bytes text = TextLike(1 << 20, 7);
    Bytes stored = CompressBlob(text, level);
    EXPECT_EQ(stored[0], 0x01);
    EXPECT_LT(stored.size(), text.size() / 2) << "level " << level;
    auto back = DecompressBlob(stored, text.size());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, text);
  }
}

TEST(CompressTest, IncompressibleDataIsStoredRaw) {
  Bytes data = Random(100000, 1);
  Bytes stored = CompressBlob(data, 1);
  ASSERT_EQ(stored.size(), data.size() + 1);
  EXPECT_EQ(stored[0], 0x00);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), stored.begin() + 1));
  auto back = DecompressBlob(stored, data.size());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
}

TEST(CompressTest, TinyAndEmptyInputs) {
  for (std::string_view s : {"", "a", "ab", "aaaa"}) {
    Bytes stored = CompressBlob(AsBytes(s), 1);
    EXPECT_EQ(stored[0], 0x00) << "'" << s << "' should not grow by compressing";
    EXPECT_EQ(stored.size(), s.size() + 1);
    auto back = DecompressBlob(stored, 16);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(AsString(*back), s);
  }
}

TEST(CompressTest, ZeroesCompressHard) {
  Bytes zeros(8 << 20, 0);
  Bytes stored = CompressBlob(zeros, 1);
  EXPECT_EQ(stored[0], 0x01);
  EXPECT_LT(stored.size(), 4096u);
  auto back = DecompressBlob(stored, zeros.size());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, zeros);
}

// Blobs are compressed into a per-thread scratch that only grows: what a blob gets must never
// depend on what an earlier, larger one left in it.
TEST(CompressTest, ScratchReuseNeverLeaksEarlierBytes) {
  Bytes big = TextLike(4 << 20, 3), noise = Random(1000, 5), text = TextLike(70000, 9);
  for (int round = 0; round < 2; ++round) {
    for (const Bytes* in : {&big, &noise, &text}) {
      Bytes stored = CompressBlob(*in, 3);
      auto back = DecompressBlob(stored, in->size());
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(*back, *in);
    }
    EXPECT_EQ(CompressBlob(noise, 3).size(), noise.size() + 1);
  }
  Bytes scratch(10 << 20, 0xEE);
  size_t n = CompressBlobInto(text, 3, scratch);
  EXPECT_EQ(scratch.size(), size_t{10} << 20) << "a large enough scratch is not resized";
  auto back = DecompressBlob(ByteView(scratch.data(), n), text.size());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, text);
  Bytes small;
  n = CompressBlobInto(noise, 3, small);
  EXPECT_EQ(n, noise.size() + 1);
  EXPECT_EQ(small[0], 0x00);
  EXPECT_TRUE(std::equal(noise.begin(), noise.end(), small.begin() + 1));
}

TEST(CompressTest, CorruptedFramesAreCorruption) {
  Bytes text = TextLike(50000, 3);
  Bytes stored = CompressBlob(text, 1);
  ASSERT_EQ(stored[0], 0x01);

  Bytes truncated(stored.begin(), stored.end() - 10);
  EXPECT_EQ(DecompressBlob(truncated, text.size()).status().code(), Code::kCorruption);

  Bytes bad_magic = stored;
  bad_magic[1] ^= 0xff;
  EXPECT_EQ(DecompressBlob(bad_magic, text.size()).status().code(), Code::kCorruption);

  Bytes trailing = stored;
  trailing.push_back(0x42);
  EXPECT_EQ(DecompressBlob(trailing, text.size()).status().code(), Code::kCorruption);

  Bytes garbage = WithMode(0x01, Random(1000, 9));
  EXPECT_EQ(DecompressBlob(garbage, 1 << 20).status().code(), Code::kCorruption);

  EXPECT_EQ(DecompressBlob(WithMode(0x01, {}), 1 << 20).status().code(), Code::kCorruption);

  // The mode byte itself.
  Bytes unknown = stored;
  unknown[0] = 0x02;
  auto r = DecompressBlob(unknown, text.size());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("mode"), std::string::npos) << r.status().message();
  EXPECT_EQ(DecompressBlob(Bytes{}, 10).status().code(), Code::kCorruption);
}

// Damaging the compressed body in many places: never a crash, never a silent wrong length.
TEST(CompressTest, DamagedBodyNeverYieldsWrongSize) {
  Bytes text = TextLike(20000, 5);
  Bytes stored = CompressBlob(text, 1);
  int detected = 0;
  for (size_t pos = 1; pos < stored.size(); pos += 7) {
    Bytes bad = stored;
    bad[pos] ^= 0x5a;
    auto r = DecompressBlob(bad, text.size());
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kCorruption);
      ++detected;
    } else {
      // Without a checksum a flipped literal can decode; AES-GCM above catches that.
      EXPECT_EQ(r->size(), text.size());
    }
  }
  EXPECT_GT(detected, 0);
}

TEST(CompressTest, MaxSizeIsEnforced) {
  Bytes text = TextLike(1 << 20, 11);
  Bytes stored = CompressBlob(text, 1);
  ASSERT_EQ(stored[0], 0x01);
  EXPECT_TRUE(DecompressBlob(stored, text.size()).ok());
  auto r = DecompressBlob(stored, text.size() - 1);
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("limit"), std::string::npos) << r.status().message();

  Bytes raw = CompressBlob(Random(1000, 2), 1);
  ASSERT_EQ(raw[0], 0x00);
  EXPECT_TRUE(DecompressBlob(raw, 1000).ok());
  EXPECT_EQ(DecompressBlob(raw, 999).status().code(), Code::kCorruption);
}

// A hostile frame claiming a huge content size must fail before allocating it.
TEST(CompressTest, HugeDeclaredSizeIsRefused) {
  Bytes zeros(64 << 20, 0);
  Bytes stored = CompressBlob(zeros, 1);
  ASSERT_EQ(stored[0], 0x01);
  EXPECT_EQ(DecompressBlob(stored, 1 << 20).status().code(), Code::kCorruption);
}

TEST(CompressTest, FramesWithoutContentSizeAreBounded) {
  Bytes text = TextLike(300000, 13);
  Bytes stored = WithMode(0x01, FrameWithoutContentSize(text));
  auto ok = DecompressBlob(stored, text.size());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, text);
  EXPECT_EQ(DecompressBlob(stored, text.size() - 1).status().code(), Code::kCorruption);
  EXPECT_EQ(DecompressBlob(stored, 1000).status().code(), Code::kCorruption);
  Bytes cut(stored.begin(), stored.end() - 5);
  EXPECT_EQ(DecompressBlob(cut, text.size()).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace reprise
