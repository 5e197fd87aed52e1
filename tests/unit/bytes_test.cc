#include "common/bytes.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <unordered_set>

namespace reprise {
namespace {

TEST(BytesTest, HexEncodeDecode) {
  EXPECT_EQ(HexEncode({}), "");
  EXPECT_EQ(HexEncode(Bytes{0x00, 0x01, 0x7f, 0x80, 0xab, 0xff}), "00017f80abff");
  auto d = HexDecode("00017f80abff");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, (Bytes{0x00, 0x01, 0x7f, 0x80, 0xab, 0xff}));
  EXPECT_EQ(*HexDecode("ABcdEF"), (Bytes{0xab, 0xcd, 0xef}));
  EXPECT_TRUE(HexDecode("")->empty());
}

TEST(BytesTest, HexDecodeRejectsBadInput) {
  EXPECT_EQ(HexDecode("abc").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HexDecode("zz").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HexDecode("0g").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HexDecode("0 ").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(HexDecode("-1").status().code(), Code::kInvalidArgument);
}

TEST(BytesTest, HexRoundTripsAllByteValues) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  std::string hex = HexEncode(all);
  EXPECT_EQ(hex.size(), 512u);
  EXPECT_EQ(*HexDecode(hex), all);
}

// RFC 4648 section 10.
TEST(BytesTest, Base64Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},       {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(AsBytes(plain)), encoded) << plain;
    auto d = Base64Decode(encoded);
    ASSERT_TRUE(d.ok()) << encoded << ": " << d.status().ToString();
    EXPECT_EQ(AsString(*d), plain) << encoded;
  }
}

TEST(BytesTest, Base64RoundTripsBinary) {
  std::mt19937 rng(1);
  for (size_t n = 0; n < 70; ++n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    // Zero bytes at the end must survive (they look like padding once decoded).
    if (n > 0) b.back() = 0;
    std::string text = Base64Encode(b);
    EXPECT_EQ(text.size() % 4, 0u);
    auto d = Base64Decode(text);
    ASSERT_TRUE(d.ok()) << text;
    EXPECT_EQ(*d, b) << "n=" << n;
  }
}

TEST(BytesTest, Base64RejectsBadInput) {
  for (std::string bad : {"Zg=", "Zm9", "Z", "Zm9v!A==", "Zm 9v", "Zm9v\n"}) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << "'" << bad << "'";
  }
}

// '=' is only padding: at most two, only at the very end.
TEST(BytesTest, Base64RejectsMisplacedPadding) {
  for (std::string bad : {"====", "Z===", "Zg=a", "Zm=v", "=Zm9"}) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << "'" << bad << "'";
  }
}

TEST(BytesTest, Utf8Validator) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9"));                  // é
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));                 // €
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));             // 😀
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));             // U+10FFFF
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));         // NUL is valid UTF-8
  EXPECT_FALSE(IsValidUtf8("\x80"));                        // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xc3"));                        // truncated
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));                    // truncated
  EXPECT_FALSE(IsValidUtf8("\xc3\x28"));                    // bad continuation
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));                    // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));                // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xf0\x80\x80\xaf"));            // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));                // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));            // U+110000
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xf8\x88\x80\x80\x80"));        // 5-byte form
  EXPECT_FALSE(IsValidUtf8("ok then \xfe"));
}

TEST(BytesTest, IdHexRoundTrip) {
  Id id;
  for (size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<uint8_t>(i * 7 + 1);
  std::string hex = id.Hex();
  EXPECT_EQ(hex.size(), 64u);
  EXPECT_EQ(hex.substr(0, 8), "01080f16");
  EXPECT_EQ(id.Short(), "01080f16");
  auto back = Id::FromHex(hex);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, id);
}

TEST(BytesTest, IdFromHexRejectsBadInput) {
  EXPECT_EQ(Id::FromHex("abcd").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Id::FromHex(std::string(66, 'a')).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Id::FromHex(std::string(63, 'a') + "x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Id::FromHex("").status().code(), Code::kInvalidArgument);
}

TEST(BytesTest, IdRandomZeroAndOrdering) {
  Id zero;
  EXPECT_TRUE(zero.IsZero());
  Id a = Id::Random(), b = Id::Random();
  EXPECT_FALSE(a.IsZero());
  EXPECT_NE(a, b);
  Id one;
  one.bytes[31] = 1;
  EXPECT_FALSE(one.IsZero());
  EXPECT_LT(zero, one);
  Id high;
  high.bytes[0] = 1;
  EXPECT_LT(one, high);  // ordered by bytes, first byte most significant
  std::set<Id> ordered{high, one, zero};
  EXPECT_EQ(*ordered.begin(), zero);
  std::unordered_set<Id, IdHash> hashed{a, b, a};
  EXPECT_EQ(hashed.size(), 2u);
}

TEST(BytesTest, StringViews) {
  Bytes b = ToBytes("hello");
  EXPECT_EQ(b.size(), 5u);
  EXPECT_EQ(AsString(b), "hello");
  EXPECT_EQ(AsBytes("hi").size(), 2u);
  EXPECT_EQ(AsBytes("hi")[1], 'i');
}

}  // namespace
}  // namespace reprise
