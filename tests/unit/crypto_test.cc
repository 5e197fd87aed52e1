#include "repo/crypto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace reprise {
namespace {

Bytes Hex(std::string_view hex) {
  auto b = HexDecode(hex);
  EXPECT_TRUE(b.ok()) << hex;
  return b.ok() ? *b : Bytes{};
}

Key256 KeyFrom(std::string_view text) {
  Key256 k{};
  for (size_t i = 0; i < text.size() && i < k.size(); ++i) k[i] = static_cast<uint8_t>(text[i]);
  return k;
}

Key256 KeyFromHex(std::string_view hex) {
  Bytes b = Hex(hex);
  Key256 k{};
  EXPECT_EQ(b.size(), k.size());
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

TEST(CryptoTest, SealOpenRoundTrip) {
  MasterKey mk = MasterKey::Generate();
  for (size_t size : {0, 1, 15, 16, 17, 1000, 1 << 20}) {
    Bytes plain = RandomBytes(size);
    Bytes sealed = Seal(mk.encryption, plain, AsBytes("aad"));
    EXPECT_EQ(sealed.size(), size + kSealOverhead);
    auto opened = Open(mk.encryption, sealed, AsBytes("aad"));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ(*opened, plain);
  }
}

TEST(CryptoTest, OpenToWritesPlaintextAndWipesItWhenTheTagFails) {
  MasterKey mk = MasterKey::Generate();
  Bytes plain = RandomBytes(70000);
  Bytes sealed = Seal(mk.encryption, plain, AsBytes("aad"));
  Bytes out(plain.size() + 8, 0xEE);
  auto n = OpenTo(mk.encryption, sealed, AsBytes("aad"), out.data());
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, plain.size());
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), out.begin()));
  EXPECT_EQ(out[plain.size()], 0xEE);  // nothing past the plaintext is touched

  sealed[sealed.size() - 1] ^= 1;  // the tag no longer verifies
  std::fill(out.begin(), out.end(), 0xEE);
  auto bad = OpenTo(mk.encryption, sealed, AsBytes("aad"), out.data());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kCorruption);
  // Decrypted bytes that did not authenticate are not left behind.
  EXPECT_TRUE(std::all_of(out.begin(), out.begin() + plain.size(), [](uint8_t b) { return b == 0; }));
}

TEST(CryptoTest, SealUsesFreshNonces) {
  Key256 key = KeyFrom("k");
  Bytes a = Seal(key, AsBytes("same text"), {});
  Bytes b = Seal(key, AsBytes("same text"), {});
  EXPECT_NE(Bytes(a.begin(), a.begin() + kNonceSize), Bytes(b.begin(), b.begin() + kNonceSize));
  EXPECT_NE(a, b);
}

TEST(CryptoTest, CiphertextDoesNotContainPlaintext) {
  Key256 key = KeyFrom("k");
  std::string text(200, 'A');
  Bytes sealed = Seal(key, AsBytes(text), {});
  EXPECT_EQ(AsString(sealed).find("AAAAAAAA"), std::string_view::npos);
}

// Every region of nonce || ciphertext || tag is covered by the tag.
TEST(CryptoTest, FlippedBitAnywhereIsDetected) {
  Key256 key = KeyFrom("key");
  Bytes sealed = Seal(key, AsBytes("attack at dawn, bring snacks"), AsBytes("blob-id"));
  ASSERT_TRUE(Open(key, sealed, AsBytes("blob-id")).ok());
  const size_t positions[] = {0, kNonceSize - 1,                     // nonce
                              kNonceSize, sealed.size() - kTagSize - 1,  // ciphertext
                              sealed.size() - kTagSize, sealed.size() - 1};  // tag
  for (size_t pos : positions) {
    for (int bit : {0, 7}) {
      Bytes bad = sealed;
      bad[pos] ^= static_cast<uint8_t>(1u << bit);
      auto r = Open(key, bad, AsBytes("blob-id"));
      ASSERT_FALSE(r.ok()) << "flip at byte " << pos << " bit " << bit;
      EXPECT_EQ(r.status().code(), Code::kCorruption);
      EXPECT_NE(r.status().message().find("authentication"), std::string::npos)
          << r.status().message();
    }
  }
}

TEST(CryptoTest, WrongAadIsDetected) {
  Key256 key = KeyFrom("key");
  Bytes sealed = Seal(key, AsBytes("payload"), AsBytes("reprise-index-v1"));
  for (std::string_view aad : {"reprise-point-v1", "", "reprise-index-v", "reprise-index-v1 "}) {
    auto r = Open(key, sealed, AsBytes(aad));
    EXPECT_EQ(r.status().code(), Code::kCorruption) << "aad '" << aad << "'";
  }
  // Sealed with empty aad, opened with some: also rejected.
  Bytes no_aad = Seal(key, AsBytes("payload"), {});
  EXPECT_TRUE(Open(key, no_aad, {}).ok());
  EXPECT_EQ(Open(key, no_aad, AsBytes("x")).status().code(), Code::kCorruption);
}

TEST(CryptoTest, WrongKeyIsDetected) {
  MasterKey a = MasterKey::Generate(), b = MasterKey::Generate();
  Bytes sealed = Seal(a.encryption, AsBytes("secret"), {});
  EXPECT_EQ(Open(b.encryption, sealed, {}).status().code(), Code::kCorruption);
  Key256 off_by_one = a.encryption;
  off_by_one[31] ^= 1;
  EXPECT_EQ(Open(off_by_one, sealed, {}).status().code(), Code::kCorruption);
}

// Each thread keeps its cipher contexts keyed between calls (crypto.cc, ThreadCipher): a call
// with another key must rekey, also right after a failure, and a good open after a failed one
// must still work, in both directions.
TEST(CryptoTest, KeyChangesBetweenCallsOnOneThread) {
  MasterKey a = MasterKey::Generate(), b = MasterKey::Generate();
  Bytes by_a = Seal(a.encryption, AsBytes("from a"), AsBytes("aad"));
  Bytes by_b = Seal(b.encryption, AsBytes("from b"), AsBytes("aad"));
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(Open(b.encryption, by_a, AsBytes("aad")).status().code(), Code::kCorruption);
    auto ra = Open(a.encryption, by_a, AsBytes("aad"));
    ASSERT_TRUE(ra.ok()) << ra.status().ToString();
    EXPECT_EQ(AsString(*ra), "from a");
    EXPECT_EQ(Open(a.encryption, by_b, AsBytes("aad")).status().code(), Code::kCorruption);
    auto rb = Open(b.encryption, by_b, AsBytes("aad"));
    ASSERT_TRUE(rb.ok()) << rb.status().ToString();
    EXPECT_EQ(AsString(*rb), "from b");
  }
  // Sealing alternately with two keys gives what each key opens, and nothing else.
  Bytes again_a = Seal(a.encryption, AsBytes("x"), {});
  Bytes again_b = Seal(b.encryption, AsBytes("y"), {});
  EXPECT_EQ(AsString(*Open(a.encryption, again_a, {})), "x");
  EXPECT_EQ(AsString(*Open(b.encryption, again_b, {})), "y");
  EXPECT_FALSE(Open(a.encryption, again_b, {}).ok());
}

TEST(CryptoTest, ShortOrTruncatedInputIsCorruption) {
  Key256 key = KeyFrom("key");
  for (size_t n : {size_t{0}, size_t{1}, kNonceSize, kSealOverhead - 1}) {
    auto r = Open(key, Bytes(n, 0), {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kCorruption);
    EXPECT_NE(r.status().message().find("too short"), std::string::npos)
        << r.status().message();
  }
  Bytes sealed = Seal(key, AsBytes("hello world"), {});
  sealed.pop_back();
  EXPECT_EQ(Open(key, sealed, {}).status().code(), Code::kCorruption);
  // Exactly nonce + tag of an empty plaintext, but a made-up tag.
  EXPECT_EQ(Open(key, Bytes(kSealOverhead, 0), {}).status().code(), Code::kCorruption);
}

// The layout is standard AES-256-GCM: test case 16 of McGrew & Viega, "The Galois/Counter
// Mode of Operation" (256-bit key, 96-bit IV, with AAD), framed as nonce || ciphertext || tag.
TEST(CryptoTest, OpensStandardGcmVector) {
  Key256 key = KeyFromHex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  Bytes nonce = Hex("cafebabefacedbaddecaf888");
  Bytes aad = Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  Bytes ct = Hex(
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
  Bytes tag = Hex("76fc6ece0f4e1768cddf8853bb2d551b");
  Bytes plain = Hex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  Bytes sealed = nonce;
  sealed.insert(sealed.end(), ct.begin(), ct.end());
  sealed.insert(sealed.end(), tag.begin(), tag.end());
  auto opened = Open(key, sealed, aad);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(HexEncode(*opened), HexEncode(plain));
}

TEST(CryptoTest, Sha256KnownAnswers) {
  EXPECT_EQ(Sha256(AsBytes("abc")).Hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256({}).Hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).Hex(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

// RFC 4231 test case 2. Its key "Jefe" is 4 bytes; HMAC pads short keys with zeros to the
// block size, so "Jefe" followed by 28 zero bytes is the same key.
TEST(CryptoTest, HmacSha256Rfc4231Case2) {
  Key256 key = KeyFrom("Jefe");
  Key256 mac = HmacSha256(key, AsBytes("what do ya want for nothing?"));
  EXPECT_EQ(HexEncode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// RFC 4231 test case 1: key = 20 bytes of 0x0b (zero-padded to 32, as above).
TEST(CryptoTest, HmacSha256Rfc4231Case1) {
  Key256 key{};
  for (int i = 0; i < 20; ++i) key[i] = 0x0b;
  EXPECT_EQ(HexEncode(HmacSha256(key, AsBytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(CryptoTest, BlobIdIsKeyedHmac) {
  MasterKey a = MasterKey::Generate(), b = MasterKey::Generate();
  Bytes data = ToBytes("chunk contents");
  Id id = BlobIdOf(a.id, data);
  EXPECT_EQ(id.bytes, HmacSha256(a.id, data));
  EXPECT_EQ(id, BlobIdOf(a.id, data));
  EXPECT_NE(id, BlobIdOf(b.id, data));
  EXPECT_NE(id, BlobIdOf(a.id, AsBytes("chunk contentz")));
  EXPECT_NE(id, Sha256(data));
}

// RFC 7914 section 12, the third vector: scrypt("password", "NaCl", N=1024, r=8, p=16, 64).
TEST(CryptoTest, ScryptRfc7914Vector) {
  auto out = ScryptRaw("password", AsBytes("NaCl"), ScryptParams{.n = 1024, .r = 8, .p = 16}, 64);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(HexEncode(*out),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

// RFC 7914 section 12, the first vector (empty passphrase and salt).
TEST(CryptoTest, ScryptEmptyInputsVector) {
  auto out = ScryptRaw("", {}, ScryptParams{.n = 16, .r = 1, .p = 1}, 64);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(HexEncode(*out),
            "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
            "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
}

TEST(CryptoTest, DeriveKeyIsScryptPrefixAndDependsOnInputs) {
  ScryptParams p{.n = 1024, .r = 8, .p = 1};
  Bytes salt = ToBytes("0123456789abcdef");
  auto k1 = DeriveKey("correct horse", salt, p);
  auto k2 = DeriveKey("correct horse", salt, p);
  auto raw = ScryptRaw("correct horse", salt, p, 32);
  ASSERT_TRUE(k1.ok() && k2.ok() && raw.ok());
  EXPECT_EQ(*k1, *k2);
  EXPECT_EQ(Bytes(k1->begin(), k1->end()), *raw);
  EXPECT_NE(*k1, *DeriveKey("correct horsf", salt, p));
  EXPECT_NE(*k1, *DeriveKey("correct horse", ToBytes("0123456789abcdeF"), p));
  EXPECT_NE(*k1, *DeriveKey("correct horse", salt, ScryptParams{.n = 2048, .r = 8, .p = 1}));
}

TEST(CryptoTest, DeriveKeyDefaultParamsWork) {
  auto k = DeriveKey("pass", ToBytes("salt"), ScryptParams{});
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  auto big = DeriveKey("pass", ToBytes("salt"), ScryptParams{.n = 1 << 17, .r = 8, .p = 1});
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_NE(*k, *big);
}

TEST(CryptoTest, ScryptRejectsBadParams) {
  Bytes salt = ToBytes("salt");
  for (ScryptParams p : {ScryptParams{.n = 1000, .r = 8, .p = 1},
                         ScryptParams{.n = 0, .r = 8, .p = 1},
                         ScryptParams{.n = 1, .r = 8, .p = 1},
                         ScryptParams{.n = 1024, .r = 0, .p = 1},
                         ScryptParams{.n = 1024, .r = 8, .p = 0},
                         ScryptParams{.n = uint64_t{1} << 40, .r = 8, .p = 1},  // memory cap
                         ScryptParams{.n = 1 << 20, .r = 8, .p = 1}}) {
    auto r = DeriveKey("pass", salt, p);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << "n=" << p.n << " r=" << p.r;
  }
}

TEST(CryptoTest, RandomnessLooksRandom) {
  EXPECT_EQ(RandomBytes(0).size(), 0u);
  EXPECT_EQ(RandomBytes(100).size(), 100u);
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
  MasterKey m = MasterKey::Generate();
  const Key256 zero{};
  EXPECT_NE(m.encryption, zero);
  EXPECT_NE(m.id, zero);
  EXPECT_NE(m.chunker, zero);
  EXPECT_NE(m.encryption, m.id);
  EXPECT_NE(m.id, m.chunker);
  EXPECT_NE(m.encryption, MasterKey::Generate().encryption);
}

// The per-thread contexts must not mix state between threads.
TEST(CryptoTest, ConcurrentUseGivesSameResults) {
  Key256 key = KeyFrom("Jefe");
  Bytes data = RandomBytes(4096);
  const Key256 want_mac = HmacSha256(key, data);
  const Id want_sha = Sha256(data);
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        if (HmacSha256(key, data) != want_mac) ++failures[t];
        if (Sha256(data) != want_sha) ++failures[t];
        Bytes sealed = Seal(key, data, AsBytes("x"));
        auto opened = Open(key, sealed, AsBytes("x"));
        if (!opened.ok() || *opened != data) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace reprise
