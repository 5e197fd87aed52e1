// Cryptography of the repository (docs/repository-format.md, "Cryptography"), on OpenSSL 3.
//
// - Seal/Open: AES-256-GCM; sealed = nonce(12 random bytes) || ciphertext || tag(16).
//   `aad` is authenticated but not stored: the repository binds a blob to its id and a file to
//   its kind with it, so a swapped object fails to open.
// - BlobIdOf: HMAC-SHA256 of the plaintext under the repository's id key (keyed, so ids leak
//   nothing about content to someone without the key).
// - DeriveKey: scrypt(passphrase, salt, N, r, p) -> 32 bytes, to wrap the master key.
// All functions are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace reprise {

using Key256 = std::array<uint8_t, 32>;

inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kSealOverhead = kNonceSize + kTagSize;

// The secret of a repository, stored only wrapped in key files.
struct MasterKey {
  Key256 encryption{};  // AES-256-GCM key for every sealed object
  Key256 id{};          // HMAC-SHA256 key for blob ids
  Key256 chunker{};     // seeds the chunker's gear table
  static MasterKey Generate();
};

Bytes Seal(const Key256& key, ByteView plaintext, ByteView aad);
// Seal into `out`, which has room for plaintext.size() + kSealOverhead bytes; returns that.
size_t SealTo(const Key256& key, ByteView plaintext, ByteView aad, uint8_t* out);
// kCorruption when the tag does not verify or the input is too short.
Result<Bytes> Open(const Key256& key, ByteView sealed, ByteView aad);
// Open into `out`, which has room for sealed.size() - kSealOverhead bytes; returns that. On
// failure those bytes of `out` are wiped: plaintext that did not authenticate is never left.
Result<size_t> OpenTo(const Key256& key, ByteView sealed, ByteView aad, uint8_t* out);

Id BlobIdOf(const Key256& id_key, ByteView plaintext);
Id Sha256(ByteView data);
Key256 HmacSha256(const Key256& key, ByteView data);

struct ScryptParams {
  uint64_t n = 1 << 15;
  uint32_t r = 8;
  uint32_t p = 1;
};
Result<Key256> DeriveKey(std::string_view passphrase, ByteView salt, const ScryptParams& params);
// scrypt with any output length (DeriveKey is ScryptRaw(..., 32)); for test vectors.
// kInvalidArgument when n is not a power of two > 1, r or p is 0, or it would need > 1 GiB.
Result<Bytes> ScryptRaw(std::string_view passphrase, ByteView salt, const ScryptParams& params,
                        size_t out_len);

Bytes RandomBytes(size_t n);

}  // namespace reprise
