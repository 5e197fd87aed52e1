// Content-defined chunking (FastCDC with normalized chunking, gear hash). The 256-entry gear
// table is derived from the repository's chunker key, so boundaries depend on a secret and
// leak nothing about content. Parameters are in the repository config (defaults below).
//
// Usage: feed data in order; Next() returns the length of the next chunk at the front of
// `data`, or 0 when it needs more bytes (only when !eof). With eof, the rest is a final chunk.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "common/bytes.h"
#include "repo/crypto.h"

namespace reprise {

struct ChunkerParams {
  uint32_t min_size = 512 * 1024;
  uint32_t avg_size = 1024 * 1024;  // power of two
  uint32_t max_size = 8 * 1024 * 1024;
};

// OK when avg_size is a power of two in [64, 32 MiB], min_size < avg_size < max_size and
// max_size <= 64 MiB; kInvalidArgument naming the bad field otherwise. Chunker assumes this.
Status ValidateChunkerParams(const ChunkerParams& params);

class Chunker {
 public:
  Chunker(const Key256& chunker_key, const ChunkerParams& params);

  // Length of the first chunk in `data` (<= data.size()), or 0 when more data is needed.
  size_t Next(ByteView data, bool eof) const;
  const ChunkerParams& params() const { return params_; }

 private:
  std::array<uint64_t, 256> gear_{};
  ChunkerParams params_;
  uint64_t mask_small_;  // harder to cut before avg_size
  uint64_t mask_large_;  // easier to cut after avg_size
};

}  // namespace reprise
