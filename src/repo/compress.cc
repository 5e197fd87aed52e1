#include "repo/compress.h"

#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

namespace reprise {
namespace {

constexpr uint8_t kModeRaw = 0x00;
constexpr uint8_t kModeZstd = 0x01;

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One context per thread: creating a zstd context allocates its tables, which would cost
// more than compressing a small blob.
ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  return cctx.get();
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx(ZSTD_createDCtx());
  return dctx.get();
}

std::string Str(size_t n) { return std::to_string(n); }

// Frames written without a content size (not by CompressBlob, but legal zstd) are decoded
// with the streaming API, stopping as soon as the output would pass max_size.
Result<Bytes> DecompressUnknownSize(ZSTD_DCtx* dctx, ByteView frame, size_t max_size) {
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
  // Decode at most one byte past the limit: enough to tell "too large" from "exactly max".
  const size_t limit = max_size < SIZE_MAX ? max_size + 1 : max_size;
  Bytes out;
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  size_t remaining_hint = 1;
  while (remaining_hint != 0) {
    if (out.size() >= limit) break;
    size_t old = out.size();
    size_t grow = std::min<size_t>(std::max<size_t>(ZSTD_DStreamOutSize(), old), limit - old);
    out.resize(old + grow);
    ZSTD_outBuffer ob{out.data() + old, grow, 0};
    remaining_hint = ZSTD_decompressStream(dctx, &ob, &in);
    out.resize(old + ob.pos);
    if (ZSTD_isError(remaining_hint))
      return Corruption(std::string("blob is not a valid zstd frame: ") +
                        ZSTD_getErrorName(remaining_hint));
    if (remaining_hint != 0 && in.pos == in.size && ob.pos < grow)
      return Corruption("blob's zstd frame is truncated");
  }
  if (out.size() > max_size)
    return Corruption("blob decompresses to more than the limit of " + Str(max_size) + " bytes");
  if (in.pos != in.size) return Corruption("blob has trailing bytes after its zstd frame");
  return out;
}

}  // namespace

size_t CompressBlobInto(ByteView data, int level, Bytes& scratch) {
  // The scratch only grows: a resize past its size would zero the new bytes, for nothing.
  if (scratch.size() < 1 + data.size()) scratch.resize(1 + data.size());
  ZSTD_CCtx* cctx = data.empty() ? nullptr : ThreadCCtx();
  // zstd gets room for one byte less than the input, so it either saves at least a byte or
  // fails with "destination too small" and the data is stored raw.
  size_t n = 0;
  bool compressed = false;
  if (cctx) {
    n = ZSTD_compressCCtx(cctx, scratch.data() + 1, data.size() - 1, data.data(), data.size(),
                          level);
    compressed = !ZSTD_isError(n);
  }
  if (!compressed) {
    scratch[0] = kModeRaw;
    if (!data.empty()) std::memcpy(scratch.data() + 1, data.data(), data.size());
    return 1 + data.size();
  }
  scratch[0] = kModeZstd;
  return 1 + n;
}

Bytes CompressBlob(ByteView data, int level) {
  // Compressed into this thread's scratch, then copied out at its final size: allocating
  // (and zeroing) room for the whole input per blob costs more than the copy.
  thread_local Bytes scratch;
  size_t n = CompressBlobInto(data, level, scratch);
  return Bytes(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(n));
}

Result<Bytes> DecompressBlob(ByteView stored, size_t max_size) {
  if (stored.empty()) return Corruption("blob is empty: it lacks its compression mode byte");
  ByteView body = stored.subspan(1);
  switch (stored[0]) {
    case kModeRaw: {
      if (body.size() > max_size)
        return Corruption("raw blob of " + Str(body.size()) +
                          " bytes is larger than the limit of " + Str(max_size) + " bytes");
      return Bytes(body.begin(), body.end());
    }
    case kModeZstd:
      break;
    default:
      return Corruption("blob has unknown compression mode " + Str(stored[0]));
  }

  ZSTD_DCtx* dctx = ThreadDCtx();
  if (dctx == nullptr) return Internal("cannot create a zstd decompression context");
  size_t frame_size = ZSTD_findFrameCompressedSize(body.data(), body.size());
  if (ZSTD_isError(frame_size))
    return Corruption(std::string("blob is not a valid zstd frame: ") +
                      ZSTD_getErrorName(frame_size));
  if (frame_size != body.size())
    return Corruption("blob has " + Str(body.size() - frame_size) +
                      " trailing bytes after its zstd frame");

  unsigned long long content = ZSTD_getFrameContentSize(body.data(), body.size());
  if (content == ZSTD_CONTENTSIZE_ERROR) return Corruption("blob is not a valid zstd frame");
  if (content == ZSTD_CONTENTSIZE_UNKNOWN) return DecompressUnknownSize(dctx, body, max_size);
  if (content > max_size)
    return Corruption("blob claims to decompress to " + std::to_string(content) +
                      " bytes, more than the limit of " + Str(max_size) + " bytes");

  Bytes out(static_cast<size_t>(content));
  size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), body.data(), body.size());
  if (ZSTD_isError(n))
    return Corruption(std::string("blob's zstd frame does not decode: ") + ZSTD_getErrorName(n));
  if (n != out.size())
    return Corruption("blob's zstd frame decodes to " + Str(n) + " bytes, not the " +
                      Str(out.size()) + " it declares");
  return out;
}

}  // namespace reprise
