#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "pg/backup_manifest.h"
#include "pg/connection.h"
#include "pg/crc32c.h"
#include "pg/wal_names.h"

namespace reprise::pg {
namespace {

TEST(PgNamesTest, LsnRoundTrip) {
  for (Lsn lsn : {Lsn{0}, Lsn{0x3000028}, Lsn{0x16B374D848}, Lsn{0xFFFFFFFFFFFFFFFF},
                  Lsn{0x100000000}, Lsn{1}}) {
    auto parsed = ParseLsn(FormatLsn(lsn));
    ASSERT_TRUE(parsed.ok()) << FormatLsn(lsn);
    EXPECT_EQ(*parsed, lsn);
  }
  EXPECT_EQ(FormatLsn(0x16B374D848), "16/B374D848");
  EXPECT_EQ(FormatLsn(0x3000028), "0/3000028");
  EXPECT_EQ(FormatLsn(0), "0/0");
  EXPECT_EQ(*ParseLsn("16/b374d848"), Lsn{0x16B374D848});
  EXPECT_EQ(*ParseLsn("0/00000001"), Lsn{1});
}

TEST(PgNamesTest, LsnErrors) {
  for (const char* bad : {"", "/", "0/", "/1", "16B374D848", "1/2/3", "G/0", "0/123456789",
                          "123456789/0", " 0/1", "0/1 ", "-1/0"}) {
    auto r = ParseLsn(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
      EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
          << r.status().message();
    }
  }
}

TEST(PgNamesTest, SegmentNames16MiB) {
  EXPECT_EQ(SegmentName(1, 0x3000028), "000000010000000000000003");
  EXPECT_EQ(SegmentName(1, 0x16B374D848), "0000000100000016000000B3");
  EXPECT_EQ(SegmentName(0x1A, 0x16FFFFFFFF), "0000001A00000016000000FF");
  EXPECT_EQ(SegmentName(2, 0x1700000000), "000000020000001700000000");
  auto id = ParseSegmentName("0000000100000016000000B3");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->tli, 1u);
  EXPECT_EQ(id->segno, 0x16B374D848ull / kDefaultSegmentSize);
  EXPECT_EQ(SegmentStartLsn(*id), Lsn{0x16B3000000});
  EXPECT_EQ(SegmentNameOf(*id), "0000000100000016000000B3");
}

TEST(PgNamesTest, SegmentNames64MiB) {
  const uint64_t seg = 64ull << 20;
  // 64 segments per 4 GiB: B374D848 >> 26 = 0x2C
  EXPECT_EQ(SegmentName(1, 0x16B374D848, seg), "00000001000000160000002C");
  EXPECT_EQ(SegmentName(1, 0x3000028, seg), "000000010000000000000000");
  EXPECT_EQ(SegmentName(1, 0x4000000, seg), "000000010000000000000001");
  auto id = ParseSegmentName("00000001000000160000002C", seg);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(SegmentStartLsn(*id, seg), Lsn{0x16B0000000});
  // Segment number 0x40 does not exist with 64 MiB segments.
  EXPECT_FALSE(ParseSegmentName("000000010000001600000040", seg).has_value());
  EXPECT_TRUE(ParseSegmentName("000000010000001600000040").has_value());
}

TEST(PgNamesTest, SegmentNameRejects) {
  for (const char* bad : {"", "00000001000000160000002", "0000000100000016000000B3.partial",
                          "0000000100000016000000b3", "00000001.history",
                          "00000001000000160000002G"}) {
    EXPECT_FALSE(ParseSegmentName(bad).has_value()) << bad;
  }
}

TEST(PgNamesTest, HistoryNames) {
  EXPECT_EQ(HistoryFileName(2), "00000002.history");
  EXPECT_EQ(HistoryFileName(0x1A), "0000001A.history");
  EXPECT_TRUE(IsHistoryFileName("0000001A.history"));
  EXPECT_FALSE(IsHistoryFileName("0000001a.history"));
  EXPECT_FALSE(IsHistoryFileName("000000010000000000000003"));
  EXPECT_FALSE(IsHistoryFileName("00000002.history.partial"));
}

TEST(PgNamesTest, ParseHistory) {
  // As a server writes it after two promotions.
  std::string text =
      "1\t0/3000158\tno recovery target specified\n"
      "\n"
      "2\t16/B374D848\tat restore point \"before upgrade\"\n";
  auto h = ParseHistory(text);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].parent_tli, 1u);
  EXPECT_EQ((*h)[0].switch_lsn, Lsn{0x3000158});
  EXPECT_EQ((*h)[0].reason, "no recovery target specified");
  EXPECT_EQ((*h)[1].parent_tli, 2u);
  EXPECT_EQ((*h)[1].switch_lsn, Lsn{0x16B374D848});
  EXPECT_EQ((*h)[1].reason, "at restore point \"before upgrade\"");

  auto commented = ParseHistory("# comment\n  \n1\t0/3000158\n");
  ASSERT_TRUE(commented.ok());
  ASSERT_EQ(commented->size(), 1u);
  EXPECT_EQ((*commented)[0].reason, "");
  EXPECT_TRUE(ParseHistory("").ok());

  EXPECT_FALSE(ParseHistory("x\t0/1\treason\n").ok());
  EXPECT_FALSE(ParseHistory("1\tnope\treason\n").ok());
  EXPECT_FALSE(ParseHistory("1\n").ok());
  EXPECT_FALSE(ParseHistory("2\t0/1\ta\n1\t0/2\tb\n").ok());  // not increasing
}

// ---- CRC-32C ----

struct CrcImpl {
  const char* name;
  uint32_t (*fn)(uint32_t, const void*, size_t);
};

std::vector<CrcImpl> Implementations() {
  std::vector<CrcImpl> impls = {{"table", crc32c_internal::Table}, {"default", Crc32c}};
  if (crc32c_internal::HardwareAvailable()) impls.push_back({"sse4.2", crc32c_internal::Sse42});
  return impls;
}

TEST(PgCrc32cTest, PublishedVectors) {
  std::string digits = "123456789";
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  for (const auto& impl : Implementations()) {
    SCOPED_TRACE(impl.name);
    EXPECT_EQ(impl.fn(0, digits.data(), digits.size()), 0xE3069283u);
    EXPECT_EQ(impl.fn(0, zeros.data(), zeros.size()), 0x8A9136AAu);
    EXPECT_EQ(impl.fn(0, ones.data(), ones.size()), 0x62A8AB43u);
    EXPECT_EQ(impl.fn(0, inc.data(), inc.size()), 0x46DD794Eu);  // RFC 3720 B.4
    EXPECT_EQ(impl.fn(0, dec.data(), dec.size()), 0x113FDB5Cu);
    EXPECT_EQ(impl.fn(0, "", 0), 0u);
  }
}

TEST(PgCrc32cTest, HardwarePathIsTested) {
#if defined(__x86_64__)
  // The build machines have SSE4.2; if this fails the hardware path is silently untested.
  EXPECT_TRUE(crc32c_internal::HardwareAvailable());
#else
  GTEST_SKIP() << "no SSE4.2 on this architecture";
#endif
}

TEST(PgCrc32cTest, SplitUpdatesAndImplementationsAgree) {
  std::mt19937 rng(7);
  std::vector<uint8_t> data(10000);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  uint32_t whole = crc32c_internal::Table(0, data.data(), data.size());
  for (const auto& impl : Implementations()) {
    SCOPED_TRACE(impl.name);
    EXPECT_EQ(impl.fn(0, data.data(), data.size()), whole);
    // Unaligned starts and odd lengths, split at every kind of boundary.
    for (size_t split : {0, 1, 3, 7, 8, 9, 63, 4097, 9999, 10000}) {
      uint32_t c = impl.fn(0, data.data(), split);
      c = impl.fn(c, data.data() + split, data.size() - split);
      EXPECT_EQ(c, whole) << "split at " << split;
    }
    for (size_t off = 0; off < 9; ++off) {
      EXPECT_EQ(impl.fn(0, data.data() + off, 100 - off),
                crc32c_internal::Table(0, data.data() + off, 100 - off));
    }
  }
}

// ---- manifests (the real-server check is in tests/integration/pg_protocol_test.cc) ----

TEST(PgManifestTest, ChecksummerCrcIsLittleEndianHex) {
  auto c = ManifestChecksummer::Make("CRC32C");
  ASSERT_TRUE(c.ok());
  c->Update(AsBytes("1234"));
  c->Update(AsBytes("56789"));
  EXPECT_EQ(c->HexDigest(), "839206e3");  // 0xE3069283 in memory order
}

TEST(PgManifestTest, ChecksummerSha) {
  auto c = ManifestChecksummer::Make("SHA256");
  ASSERT_TRUE(c.ok());
  c->Update(AsBytes("ab"));
  c->Update(AsBytes("c"));
  EXPECT_EQ(c->HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto s224 = ManifestChecksummer::Make("SHA224");
  ASSERT_TRUE(s224.ok());
  s224->Update(AsBytes("abc"));
  EXPECT_EQ(s224->HexDigest(), "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7");
  EXPECT_FALSE(ManifestChecksummer::Make("MD5").ok());
}

TEST(PgManifestTest, RejectsBadChecksum) {
  std::string text =
      "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"
      "\"Files\": [\n"
      "{ \"Path\": \"PG_VERSION\", \"Size\": 3, \"Last-Modified\": \"2024-01-01 00:00:00 GMT\", "
      "\"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"00000000\" }\n"
      "],\n"
      "\"WAL-Ranges\": [\n"
      "{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n"
      "],\n"
      "\"Manifest-Checksum\": \"";
  std::string body = text.substr(0, text.rfind('\n') + 1);
  auto sha = ManifestChecksummer::Make("SHA256");
  ASSERT_TRUE(sha.ok());
  sha->Update(AsBytes(body));
  std::string good = text + sha->HexDigest() + "\"}\n";
  auto m = ParseBackupManifest(good);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->files.count("PG_VERSION"), 1u);
  EXPECT_EQ(m->files["PG_VERSION"].size, 3u);
  ASSERT_EQ(m->wal_ranges.size(), 1u);
  EXPECT_EQ(m->wal_ranges[0].end, Lsn{0x2000100});

  std::string tampered = good;
  tampered.replace(tampered.find("\"Size\": 3"), 9, "\"Size\": 4");
  auto bad = ParseBackupManifest(tampered);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kCorruption);
  EXPECT_FALSE(ParseBackupManifest("{}").ok());
}

// ---- connection helpers ----

TEST(PgConnectionTest, QuoteAndRedact) {
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
  EXPECT_EQ(QuoteLiteral(""), "''");
  EXPECT_EQ(RedactConninfo("host=db password=s3cret user=x"), "host=db password=*** user=x");
  EXPECT_EQ(RedactConninfo("password = 'a b\\' c' host=db"), "password = *** host=db");
  EXPECT_EQ(RedactConninfo("postgresql://u:s3cret@db:5432/x?password=zz&sslmode=require"),
            "postgresql://u:***@db:5432/x?password=***&sslmode=require");
  EXPECT_EQ(RedactConninfo("postgres://u@db/x"), "postgres://u@db/x");
  EXPECT_EQ(RedactConninfo("host=db"), "host=db");
}

}  // namespace
}  // namespace reprise::pg
