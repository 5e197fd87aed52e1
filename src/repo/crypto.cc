#include "repo/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace reprise {
namespace {

// Randomness failing means the process cannot keep any of its promises (nonces, keys): stop
// rather than hand out predictable bytes.
[[noreturn]] void FatalCrypto(const char* what) {
  std::fprintf(stderr, "reprise: fatal: %s failed (openssl error %lu)\n", what, ERR_get_error());
  std::abort();
}

void FillRandom(uint8_t* out, size_t n) {
  while (n > 0) {
    int step = n > (1u << 30) ? (1 << 30) : static_cast<int>(n);
    if (RAND_bytes(out, step) != 1) FatalCrypto("RAND_bytes");
    out += step;
    n -= static_cast<size_t>(step);
  }
}

// Algorithms are fetched once per process; an explicitly fetched object skips the implicit
// fetch (a locked table lookup) that every EVP_*Init on EVP_aes_256_gcm() would do. These are
// immutable after the first call, so sharing them across threads is safe.
const EVP_CIPHER* AesGcm() {
  static const EVP_CIPHER* cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (c == nullptr) FatalCrypto("fetching AES-256-GCM");
    return c;
  }();
  return cipher;
}

const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) FatalCrypto("fetching SHA256");
    return m;
  }();
  return md;
}

EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* mac = [] {
    EVP_MAC* m = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (m == nullptr) FatalCrypto("fetching HMAC");
    return m;
  }();
  return mac;
}

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

// Per-thread contexts for the small, hot operations (blob ids, hashes): re-initialising an
// existing context costs far less than allocating one per call.
EVP_MD_CTX* ThreadMdCtx() {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) FatalCrypto("EVP_MD_CTX_new");
  return ctx.get();
}

// A per-thread AES-256-GCM context that keeps its key schedule: a blob sealed or opened with
// the key of the previous one (nearly always: one repository key) only sets its nonce, which
// saves the context allocation and the key expansion per 8 KiB page block. `encrypt` picks
// one of two contexts. The copy of the key is wiped with the context when the thread ends.
struct KeyedCipher {
  CipherCtx ctx{EVP_CIPHER_CTX_new()};
  Key256 key{};
  bool keyed = false;
  ~KeyedCipher() { OPENSSL_cleanse(key.data(), key.size()); }
};

EVP_CIPHER_CTX* ThreadCipher(bool encrypt, const Key256& key, const uint8_t* nonce) {
  thread_local KeyedCipher enc, dec;
  KeyedCipher& c = encrypt ? enc : dec;
  if (!c.ctx) FatalCrypto("EVP_CIPHER_CTX_new");
  const bool same = c.keyed && CRYPTO_memcmp(c.key.data(), key.data(), key.size()) == 0;
  // AES-256-GCM's default IV length is 12 bytes, which is kNonceSize.
  int ok = encrypt ? EVP_EncryptInit_ex2(c.ctx.get(), same ? nullptr : AesGcm(),
                                         same ? nullptr : key.data(), nonce, nullptr)
                   : EVP_DecryptInit_ex2(c.ctx.get(), same ? nullptr : AesGcm(),
                                         same ? nullptr : key.data(), nonce, nullptr);
  if (ok != 1) {
    c.keyed = false;
    return nullptr;
  }
  if (!same) {
    c.key = key;
    c.keyed = true;
  }
  return c.ctx.get();
}

EVP_MAC_CTX* ThreadHmacCtx() {
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx = [] {
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> c(EVP_MAC_CTX_new(HmacAlgorithm()));
    if (!c) FatalCrypto("EVP_MAC_CTX_new");
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(c.get(), params) != 1) FatalCrypto("setting the HMAC digest");
    return c;
  }();
  return ctx.get();
}

// EVP update calls take int lengths; feed large inputs in slices.
constexpr size_t kMaxSlice = size_t{1} << 30;

}  // namespace

MasterKey MasterKey::Generate() {
  MasterKey k;
  FillRandom(k.encryption.data(), k.encryption.size());
  FillRandom(k.id.data(), k.id.size());
  FillRandom(k.chunker.data(), k.chunker.size());
  return k;
}

Bytes RandomBytes(size_t n) {
  Bytes out(n);
  FillRandom(out.data(), n);
  return out;
}

Bytes Seal(const Key256& key, ByteView plaintext, ByteView aad) {
  Bytes out(kNonceSize + plaintext.size() + kTagSize);
  SealTo(key, plaintext, aad, out.data());
  return out;
}

size_t SealTo(const Key256& key, ByteView plaintext, ByteView aad, uint8_t* out) {
  uint8_t* nonce = out;
  uint8_t* body = out + kNonceSize;
  FillRandom(nonce, kNonceSize);

  EVP_CIPHER_CTX* ctx = ThreadCipher(true, key, nonce);
  if (!ctx) FatalCrypto("EVP_EncryptInit_ex2");
  int len = 0;
  for (size_t off = 0; off < aad.size(); off += kMaxSlice) {
    size_t n = std::min(kMaxSlice, aad.size() - off);
    if (EVP_EncryptUpdate(ctx, nullptr, &len, aad.data() + off, static_cast<int>(n)) != 1)
      FatalCrypto("EVP_EncryptUpdate (aad)");
  }
  size_t written = 0;
  for (size_t off = 0; off < plaintext.size(); off += kMaxSlice) {
    size_t n = std::min(kMaxSlice, plaintext.size() - off);
    if (EVP_EncryptUpdate(ctx, body + written, &len, plaintext.data() + off,
                          static_cast<int>(n)) != 1)
      FatalCrypto("EVP_EncryptUpdate");
    written += static_cast<size_t>(len);
  }
  if (EVP_EncryptFinal_ex(ctx, body + written, &len) != 1) FatalCrypto("EVP_EncryptFinal");
  written += static_cast<size_t>(len);
  // GCM is a stream mode: the ciphertext is exactly as long as the plaintext.
  if (written != plaintext.size()) FatalCrypto("AES-GCM output length");
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize),
                          body + written) != 1)
    FatalCrypto("reading the GCM tag");
  return kNonceSize + plaintext.size() + kTagSize;
}

Result<size_t> OpenTo(const Key256& key, ByteView sealed, ByteView aad, uint8_t* out) {
  if (sealed.size() < kSealOverhead) {
    return Corruption("sealed object is too short (" + std::to_string(sealed.size()) +
                      " bytes, at least " + std::to_string(kSealOverhead) + " needed)");
  }
  const uint8_t* nonce = sealed.data();
  const uint8_t* body = sealed.data() + kNonceSize;
  size_t body_size = sealed.size() - kSealOverhead;
  const uint8_t* tag = body + body_size;

  EVP_CIPHER_CTX* ctx = ThreadCipher(false, key, nonce);
  if (!ctx) return Internal("cannot initialise AES-256-GCM decryption");
  int len = 0;
  for (size_t off = 0; off < aad.size(); off += kMaxSlice) {
    size_t n = std::min(kMaxSlice, aad.size() - off);
    if (EVP_DecryptUpdate(ctx, nullptr, &len, aad.data() + off, static_cast<int>(n)) != 1)
      return Internal("AES-256-GCM rejected the associated data");
  }
  size_t written = 0;
  for (size_t off = 0; off < body_size; off += kMaxSlice) {
    size_t n = std::min(kMaxSlice, body_size - off);
    if (EVP_DecryptUpdate(ctx, out + written, &len, body + off, static_cast<int>(n)) != 1)
      return Internal("AES-256-GCM decryption failed");
    written += static_cast<size_t>(len);
  }
  // The tag is only read by OpenSSL, despite the non-const parameter.
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize),
                          const_cast<uint8_t*>(tag)) != 1)
    return Internal("cannot set the AES-256-GCM tag");
  if (EVP_DecryptFinal_ex(ctx, out + written, &len) != 1) {
    // Never hand out plaintext that did not authenticate.
    OPENSSL_cleanse(out, body_size);
    ERR_clear_error();
    return Corruption(
        "sealed object failed authentication (" + std::to_string(sealed.size()) +
        " bytes): it was modified, or it is opened with the wrong key or as the wrong object");
  }
  return body_size;
}

Result<Bytes> Open(const Key256& key, ByteView sealed, ByteView aad) {
  Bytes out(sealed.size() >= kSealOverhead ? sealed.size() - kSealOverhead : 0);
  RETURN_IF_ERROR(OpenTo(key, sealed, aad, out.data()).status());
  return out;
}

Key256 HmacSha256(const Key256& key, ByteView data) {
  EVP_MAC_CTX* ctx = ThreadHmacCtx();
  if (EVP_MAC_init(ctx, key.data(), key.size(), nullptr) != 1) FatalCrypto("EVP_MAC_init");
  for (size_t off = 0; off < data.size(); off += kMaxSlice) {
    size_t n = std::min(kMaxSlice, data.size() - off);
    if (EVP_MAC_update(ctx, data.data() + off, n) != 1) FatalCrypto("EVP_MAC_update");
  }
  Key256 out;
  size_t out_len = 0;
  if (EVP_MAC_final(ctx, out.data(), &out_len, out.size()) != 1 || out_len != out.size())
    FatalCrypto("EVP_MAC_final");
  return out;
}

Id BlobIdOf(const Key256& id_key, ByteView plaintext) {
  Id id;
  id.bytes = HmacSha256(id_key, plaintext);
  return id;
}

Id Sha256(ByteView data) {
  EVP_MD_CTX* ctx = ThreadMdCtx();
  if (EVP_DigestInit_ex2(ctx, Sha256Md(), nullptr) != 1) FatalCrypto("EVP_DigestInit_ex2");
  if (!data.empty() && EVP_DigestUpdate(ctx, data.data(), data.size()) != 1)
    FatalCrypto("EVP_DigestUpdate");
  Id id;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, id.bytes.data(), &len) != 1 || len != id.bytes.size())
    FatalCrypto("EVP_DigestFinal_ex");
  return id;
}

Result<Bytes> ScryptRaw(std::string_view passphrase, ByteView salt, const ScryptParams& params,
                        size_t out_len) {
  const uint64_t n = params.n;
  if (n < 2 || (n & (n - 1)) != 0)
    return InvalidArgument("scrypt parameter n=" + std::to_string(n) +
                           " is not a power of two greater than 1");
  if (params.r == 0 || params.p == 0)
    return InvalidArgument("scrypt parameters r and p must be positive");
  if (out_len == 0) return InvalidArgument("scrypt output length must be positive");
  // scrypt needs 128*r*(n+p) bytes (V plus B) and a little more; refuse parameters needing
  // over 1 GiB, so a tampered key file cannot make us allocate without bound.
  constexpr uint64_t kMaxMem = uint64_t{1} << 30;
  const uint64_t r = params.r, p = params.p;
  if (n > kMaxMem || r > kMaxMem || p > kMaxMem || 128 * r * (n + p + 2) > kMaxMem)
    return InvalidArgument("scrypt parameters n=" + std::to_string(n) + " r=" +
                           std::to_string(r) + " p=" + std::to_string(p) +
                           " need more than 1 GiB of memory");
  Bytes out(out_len);
  if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(), salt.data(), salt.size(), n, r, p,
                     kMaxMem + (uint64_t{1} << 20), out.data(), out.size()) != 1) {
    ERR_clear_error();
    return Internal("scrypt key derivation failed (n=" + std::to_string(n) + " r=" +
                    std::to_string(r) + " p=" + std::to_string(p) + ")");
  }
  return out;
}

Result<Key256> DeriveKey(std::string_view passphrase, ByteView salt, const ScryptParams& params) {
  ASSIGN_OR_RETURN(Bytes raw, ScryptRaw(passphrase, salt, params, Key256{}.size()));
  Key256 key;
  std::memcpy(key.data(), raw.data(), key.size());
  OPENSSL_cleanse(raw.data(), raw.size());
  return key;
}

}  // namespace reprise
