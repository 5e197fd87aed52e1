// redis::Crc64 against Redis's published check value and a bit-by-bit reference, RdbVerifier
// on hand-made RDBs (header, EOF opcode, trailing CRC64), and the Redis -> RDB version table.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "components/redis/rdb_stream.h"
#include "components/redis/redis_component.h"

namespace reprise::redis {
namespace {

// The definition, one bit at a time: reflected Jones polynomial, init 0, no final xor.
uint64_t BitwiseCrc64(const std::string& s) {
  const uint64_t poly = 0x95ac9329ac4bc9b5ULL;  // 0xad93d23594c935a9 bit-reversed
  uint64_t crc = 0;
  for (unsigned char c : s) {
    crc ^= c;
    for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ poly : crc >> 1;
  }
  return crc;
}

std::string Le64(uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// "REDIS" + version + an aux field + EOF opcode (+ CRC64 for version >= 5).
std::string MakeRdb(const std::string& version, bool with_crc = true, bool zero_crc = false) {
  std::string body = "REDIS" + version;
  body += "\xfa\x09redis-ver\x06" "7.0.15";  // AUX redis-ver 7.0.15
  body += std::string("\xfe\x00\xfb\x01\x00", 5);  // SELECTDB 0, RESIZEDB 1 0
  body += std::string("\x00\x01k\x01v", 5);   // string "k" = "v"
  body += '\xff';
  if (with_crc) body += Le64(zero_crc ? 0 : Crc64(0, AsBytes(body)));
  return body;
}

Status Verify(const std::string& rdb, size_t piece, RdbVerifier* v) {
  for (size_t i = 0; i < rdb.size(); i += piece) {
    RETURN_IF_ERROR(v->Update(AsBytes(std::string_view(rdb).substr(i, piece))));
  }
  return v->Finish();
}

TEST(Crc64, RedisCheckValue) {
  EXPECT_EQ(Crc64(0, AsBytes("123456789")), 0xe9c6d914c4b8d9caULL);
  EXPECT_EQ(BitwiseCrc64("123456789"), 0xe9c6d914c4b8d9caULL);
  EXPECT_EQ(Crc64(0, AsBytes("")), 0u);
}

TEST(Crc64, SlicedEqualsBitwiseAndIsIncremental) {
  std::mt19937 rng(7);
  std::string data(10007, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  uint64_t whole = Crc64(0, AsBytes(data));
  EXPECT_EQ(whole, BitwiseCrc64(data));
  for (size_t step : {1u, 3u, 8u, 13u, 4096u}) {
    uint64_t crc = 0;
    for (size_t i = 0; i < data.size(); i += step) {
      crc = Crc64(crc, AsBytes(std::string_view(data).substr(i, step)));
    }
    EXPECT_EQ(crc, whole) << "pieces of " << step;
  }
  data[5000] ^= 0x10;
  EXPECT_NE(Crc64(0, AsBytes(data)), whole);
}

TEST(RdbVerifier, AcceptsAGoodRdbInAnyPieces) {
  std::string rdb = MakeRdb("0010");
  for (size_t piece : {1u, 2u, 7u, 8u, 9u, 100u}) {
    RdbVerifier v;
    Status st = Verify(rdb, piece, &v);
    ASSERT_TRUE(st.ok()) << "pieces of " << piece << ": " << st.ToString();
    EXPECT_EQ(v.version(), 10);
    EXPECT_TRUE(v.checksummed());
    EXPECT_EQ(v.size(), rdb.size());
  }
}

TEST(RdbVerifier, FlippedByteFailsTheCrc) {
  std::string rdb = MakeRdb("0011");
  for (size_t at : {size_t{9}, size_t{15}, rdb.size() - 10, rdb.size() - 1}) {
    std::string bad = rdb;
    bad[at] ^= 0x01;
    RdbVerifier v;
    Status st = Verify(bad, 4, &v);
    EXPECT_EQ(st.code(), Code::kCorruption) << "byte " << at << ": " << st.ToString();
    EXPECT_NE(st.message().find("CRC64"), std::string::npos) << st.message();
  }
}

TEST(RdbVerifier, ZeroCrcMeansChecksumsOff) {
  RdbVerifier v;
  Status st = Verify(MakeRdb("0009", true, true), 5, &v);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(v.checksummed());
  EXPECT_EQ(v.version(), 9);
}

TEST(RdbVerifier, OldVersionWithoutCrc) {
  RdbVerifier v;
  Status st = Verify(MakeRdb("0004", false), 3, &v);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(v.version(), 4);
}

TEST(RdbVerifier, RefusesBadHeadersAndTruncation) {
  {
    RdbVerifier v;
    Status st = v.Update(AsBytes("REDIX0010\xff"));
    EXPECT_EQ(st.code(), Code::kCorruption);
  }
  {
    RdbVerifier v;
    Status st = v.Update(AsBytes("REDIS00a0\xff"));
    EXPECT_EQ(st.code(), Code::kCorruption);
  }
  {
    RdbVerifier v;
    Status st = Verify("REDIS00", 3, &v);  // header cut short
    EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  }
  {
    std::string rdb = MakeRdb("0010");
    RdbVerifier v;
    Status st = Verify(rdb.substr(0, rdb.size() - 5), 6, &v);  // trailer cut short
    EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  }
  {
    std::string rdb = MakeRdb("0010");
    rdb.erase(rdb.size() - 9, 1);  // the EOF opcode gone, CRC left
    RdbVerifier v;
    Status st = Verify(rdb, 6, &v);
    EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  }
}

TEST(MaxRdbVersion, Table) {
  EXPECT_EQ(MaxRdbVersion("7.0.15"), 10);
  EXPECT_EQ(MaxRdbVersion("7.2.4"), 11);
  EXPECT_EQ(MaxRdbVersion("7.4.1"), 12);
  EXPECT_EQ(MaxRdbVersion("8.0.2"), 12);
  EXPECT_EQ(MaxRdbVersion("6.2.14"), 9);
  EXPECT_EQ(MaxRdbVersion("6.0.9"), 9);
  EXPECT_EQ(MaxRdbVersion("5.0.7"), 9);
  EXPECT_EQ(MaxRdbVersion("4.0.14"), 8);
  EXPECT_EQ(MaxRdbVersion("3.2.12"), 7);
  EXPECT_EQ(MaxRdbVersion("3.0.7"), 6);
  EXPECT_EQ(MaxRdbVersion(""), 0);
  EXPECT_EQ(MaxRdbVersion("unknown"), 0);
}

}  // namespace
}  // namespace reprise::redis
