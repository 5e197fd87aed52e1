#include "common/duration.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace reprise {
namespace {

using std::chrono::seconds;

int64_t Secs(std::string_view text) {
  Result<seconds> d = ParseDuration(text);
  EXPECT_TRUE(d.ok()) << text << ": " << d.status().ToString();
  return d.ok() ? d->count() : -1;
}

std::string DurationError(std::string_view text) {
  Result<seconds> d = ParseDuration(text);
  EXPECT_FALSE(d.ok()) << "'" << text << "' parsed as " << (d.ok() ? d->count() : 0);
  if (d.ok()) return "";
  EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
  return d.status().message();
}

TEST(DurationTest, ParsesEachUnit) {
  EXPECT_EQ(Secs("90s"), 90);
  EXPECT_EQ(Secs("15m"), 15 * 60);
  EXPECT_EQ(Secs("2h"), 2 * 3600);
  EXPECT_EQ(Secs("7d"), 7 * 86400);
  EXPECT_EQ(Secs("1w"), 7 * 86400);
  EXPECT_EQ(Secs("1y"), 365 * 86400);
  EXPECT_EQ(Secs("0s"), 0);
  EXPECT_EQ(Secs("0m"), 0);
}

TEST(DurationTest, ParsesCompoundsLargestUnitFirst) {
  EXPECT_EQ(Secs("1h30m"), 5400);
  EXPECT_EQ(Secs("1d12h"), 36 * 3600);
  EXPECT_EQ(Secs("2w3d4h5m6s"), 2 * 604800 + 3 * 86400 + 4 * 3600 + 5 * 60 + 6);
  EXPECT_EQ(Secs("120m"), 7200);  // no carrying rule: large counts are fine
}

TEST(DurationTest, RejectsBadInput) {
  EXPECT_NE(DurationError("").find("empty"), std::string::npos);
  EXPECT_NE(DurationError("15").find("no unit"), std::string::npos);
  EXPECT_NE(DurationError("15x").find("unknown unit 'x'"), std::string::npos);
  EXPECT_NE(DurationError("-5m").find("negative"), std::string::npos);
  EXPECT_NE(DurationError("1.5h").find("fractions"), std::string::npos);
  EXPECT_NE(DurationError("30m1h").find("largest to smallest"), std::string::npos);
  EXPECT_NE(DurationError("1h1h").find("largest to smallest"), std::string::npos);
  EXPECT_NE(DurationError("h").find("digit"), std::string::npos);
  EXPECT_NE(DurationError("5 m").find("unknown unit ' '"), std::string::npos);
  EXPECT_NE(DurationError("1M").find("unknown unit 'M'"), std::string::npos);
  // Every message names the text and tells how to write it.
  std::string m = DurationError("15");
  EXPECT_NE(m.find("'15'"), std::string::npos) << m;
  EXPECT_NE(m.find("HINT:"), std::string::npos) << m;
}

TEST(DurationTest, RejectsOverflow) {
  EXPECT_NE(DurationError("9223372036854775808s").find("too large"), std::string::npos);
  EXPECT_NE(DurationError("300000000000y").find("too large"), std::string::npos);
  // Just below the limit is fine.
  EXPECT_EQ(Secs("9223372036854775807s"), std::numeric_limits<int64_t>::max());
  EXPECT_NE(DurationError("9223372036854775807s1s").find("largest"), std::string::npos);
  EXPECT_NE(DurationError("292471208677y1y").find("largest"), std::string::npos);
  EXPECT_NE(DurationError("292471208677y200d").find("too large"), std::string::npos);
  EXPECT_EQ(Secs("292471208677y195d"), 292471208677LL * 31536000 + 195 * 86400);
}

TEST(DurationTest, FormatsShortestExactForm) {
  EXPECT_EQ(FormatDuration(seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(seconds(90)), "1m30s");
  EXPECT_EQ(FormatDuration(seconds(5400)), "1h30m");
  EXPECT_EQ(FormatDuration(seconds(604800)), "1w");
  EXPECT_EQ(FormatDuration(seconds(8 * 86400)), "1w1d");
  EXPECT_EQ(FormatDuration(seconds(365 * 86400)), "1y");
  EXPECT_EQ(FormatDuration(seconds(-60)), "-1m");
}

TEST(DurationTest, FormatRoundTrips) {
  for (int64_t s : {1LL, 59LL, 61LL, 3599LL, 86401LL, 999999999LL, 31536000LL * 3 + 7}) {
    Result<seconds> back = ParseDuration(FormatDuration(seconds(s)));
    ASSERT_TRUE(back.ok()) << s;
    EXPECT_EQ(back->count(), s);
  }
}

uint64_t Bytes(std::string_view text) {
  Result<uint64_t> s = ParseSize(text);
  EXPECT_TRUE(s.ok()) << text << ": " << s.status().ToString();
  return s.ok() ? *s : 0;
}

TEST(SizeTest, DecimalAndBinaryUnits) {
  EXPECT_EQ(Bytes("16MB"), 16'000'000u);
  EXPECT_EQ(Bytes("4MiB"), 4u * 1024 * 1024);
  EXPECT_EQ(Bytes("1kB"), 1000u);
  EXPECT_EQ(Bytes("1KB"), 1000u);
  EXPECT_EQ(Bytes("1KiB"), 1024u);
  EXPECT_EQ(Bytes("2GiB"), 2u * 1024 * 1024 * 1024);
  EXPECT_EQ(Bytes("3TB"), 3'000'000'000'000u);
  EXPECT_EQ(Bytes("1PiB"), 1ULL << 50);
  EXPECT_EQ(Bytes("512B"), 512u);
  EXPECT_EQ(Bytes("512"), 512u);
  EXPECT_EQ(Bytes("0"), 0u);
  EXPECT_EQ(Bytes("16 MB"), 16'000'000u);
  EXPECT_EQ(Bytes("16mib"), 16u << 20);
}

TEST(SizeTest, Fractions) {
  EXPECT_EQ(Bytes("1.5KiB"), 1536u);
  EXPECT_EQ(Bytes("1.5GB"), 1'500'000'000u);
  EXPECT_EQ(Bytes("0.5B"), 0u);  // rounded down
  EXPECT_EQ(Bytes("2.25MiB"), 2u * 1048576 + 262144);
}

TEST(SizeTest, RejectsBadInput) {
  for (std::string_view bad : {"", "MB", "-1MB", "16XB", "1.5", "1.MB", "16 M B", "abc"}) {
    Result<uint64_t> s = ParseSize(bad);
    EXPECT_FALSE(s.ok()) << "'" << bad << "' parsed as " << (s.ok() ? *s : 0);
    if (!s.ok()) {
      EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
      EXPECT_NE(s.status().message().find("HINT:"), std::string::npos);
    }
  }
  EXPECT_FALSE(ParseSize("18446744073709551616").ok());
  EXPECT_FALSE(ParseSize("16385PiB").ok());
  EXPECT_TRUE(ParseSize("18446744073709551615").ok());
}

TEST(SizeTest, Formats) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
  EXPECT_EQ(FormatSize(1024), "1 KiB");
  EXPECT_EQ(FormatSize(1536), "1.5 KiB");
  EXPECT_EQ(FormatSize(16u << 20), "16 MiB");
  EXPECT_EQ(FormatSize((1u << 20) - 1), "1023.9 KiB");
}

}  // namespace
}  // namespace reprise
