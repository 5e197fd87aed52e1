// Single-core throughput of the primitives under the repository engine. It prints and does
// not assert (timings depend on the machine); it checks only that the work was done.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "repo/chunker.h"
#include "repo/compress.h"
#include "repo/crypto.h"

namespace reprise {
namespace {

template <typename F>
double MiBPerSecond(size_t bytes_per_call, int calls, F&& f) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) f();
  std::chrono::duration<double> s = std::chrono::steady_clock::now() - start;
  return static_cast<double>(bytes_per_call) * calls / (1 << 20) / s.count();
}

TEST(PrimitivesThroughput, Report) {
  std::mt19937_64 rng(42);
  Bytes random(32 << 20);
  for (auto& b : random) b = static_cast<uint8_t>(rng());
  std::string words;
  static const char* kWords[] = {"backup ", "restore ", "point ", "chunk ", "the ", "of ",
                                 "repository ", "2024-05-01T02:00:00Z ", "\n", "error "};
  while (words.size() < (8 << 20)) words += kWords[rng() % std::size(kWords)];
  ByteView text = AsBytes(words);

  MasterKey key = MasterKey::Generate();
  Chunker chunker(key.chunker, ChunkerParams{});
  size_t chunks = 0;
  double chunk_rate = MiBPerSecond(random.size(), 1, [&] {
    ByteView rest(random);
    while (!rest.empty()) {
      size_t n = chunker.Next(rest, true);
      rest = rest.subspan(n);
      ++chunks;
    }
  });
  EXPECT_GT(chunks, 1u);
  // The same with almost nothing skipped: the rate of the rolling hash itself.
  Chunker hash_only(key.chunker, ChunkerParams{.min_size = 64, .avg_size = 1 << 20,
                                               .max_size = 8 << 20});
  size_t hash_chunks = 0;
  double hash_rate = MiBPerSecond(random.size(), 1, [&] {
    ByteView rest(random);
    while (!rest.empty()) {
      rest = rest.subspan(hash_only.Next(rest, true));
      ++hash_chunks;
    }
  });
  EXPECT_GT(hash_chunks, 1u);

  ByteView chunk = ByteView(random).first(1 << 20);
  Key256 mac{};
  double hmac_rate = MiBPerSecond(chunk.size(), 32, [&] { mac = HmacSha256(key.id, chunk); });
  EXPECT_NE(mac, Key256{});

  size_t compressed = 0;
  double zstd_rate = MiBPerSecond(text.size(), 1, [&] {
    for (size_t off = 0; off < text.size(); off += 1 << 20)
      compressed += CompressBlob(text.subspan(off, 1 << 20), 1).size();
  });
  EXPECT_LT(compressed, text.size());
  Bytes one = CompressBlob(text.first(1 << 20), 1);
  double unzstd_rate = MiBPerSecond(1 << 20, 16, [&] {
    auto r = DecompressBlob(one, 1 << 20);
    EXPECT_TRUE(r.ok());
  });

  Bytes sealed;
  double seal_rate =
      MiBPerSecond(chunk.size(), 32, [&] { sealed = Seal(key.encryption, chunk, {}); });
  double open_rate = MiBPerSecond(chunk.size(), 32, [&] {
    EXPECT_TRUE(Open(key.encryption, sealed, {}).ok());
  });

  std::printf("single-core throughput (MiB/s):\n");
  std::printf("  chunker (FastCDC, 1 MiB avg) %8.0f  (%zu chunks in 32 MiB)\n", chunk_rate,
              chunks);
  std::printf("  gear hash only (min 64 B)    %8.0f\n", hash_rate);
  std::printf("  HMAC-SHA256 (1 MiB)          %8.0f\n", hmac_rate);
  std::printf("  zstd level 1, text           %8.0f  (ratio %.2f)\n", zstd_rate,
              static_cast<double>(text.size()) / static_cast<double>(compressed));
  std::printf("  zstd decompress, text        %8.0f\n", unzstd_rate);
  std::printf("  AES-256-GCM seal (1 MiB)     %8.0f\n", seal_rate);
  std::printf("  AES-256-GCM open (1 MiB)     %8.0f\n", open_rate);
}

}  // namespace
}  // namespace reprise
