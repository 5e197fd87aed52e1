// zstd compression of blobs. A blob's plaintext is stored as one mode byte then the body:
//   0x00 = stored raw, 0x01 = zstd frame. Raw is chosen when zstd does not shrink the data.
#pragma once

#include "common/bytes.h"
#include "common/result.h"

namespace reprise {

// Returns mode byte + body. `level` is a zstd level (1 = fast default).
Bytes CompressBlob(ByteView data, int level);
// The same into the front of `scratch` (grown when too small, never shrunk, so that a thread
// reuses one buffer); returns how many bytes of it hold the result.
size_t CompressBlobInto(ByteView data, int level, Bytes& scratch);
// Inverse of CompressBlob. kCorruption on an unknown mode or a bad frame; `max_size` bounds
// the output so a hostile frame cannot exhaust memory.
Result<Bytes> DecompressBlob(ByteView stored, size_t max_size);

}  // namespace reprise
