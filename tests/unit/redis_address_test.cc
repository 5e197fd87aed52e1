// redis::ParseAddress: the URL and host:port forms, and what it refuses.
#include <gtest/gtest.h>

#include "redis/client.h"

namespace reprise::redis {
namespace {

Address Parse(const std::string& s) {
  auto a = ParseAddress(s);
  EXPECT_TRUE(a.ok()) << s << ": " << a.status().ToString();
  return a.ok() ? *a : Address{"<failed>", -1, -1};
}

TEST(RedisAddress, UrlWithPortAndDb) {
  Address a = Parse("redis://10.0.0.5:6380/3");
  EXPECT_EQ(a.host, "10.0.0.5");
  EXPECT_EQ(a.port, 6380);
  EXPECT_EQ(a.db, 3);
}

TEST(RedisAddress, UrlDefaults) {
  Address a = Parse("redis://cache.internal");
  EXPECT_EQ(a.host, "cache.internal");
  EXPECT_EQ(a.port, 6379);
  EXPECT_EQ(a.db, 0);
  Address b = Parse("redis://cache.internal/");
  EXPECT_EQ(b.host, "cache.internal");
  EXPECT_EQ(b.db, 0);
  Address c = Parse("redis://cache.internal/12");
  EXPECT_EQ(c.port, 6379);
  EXPECT_EQ(c.db, 12);
}

TEST(RedisAddress, HostPort) {
  Address a = Parse("127.0.0.1:16379");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 16379);
  EXPECT_EQ(a.db, 0);
  Address b = Parse("redis-1");
  EXPECT_EQ(b.host, "redis-1");
  EXPECT_EQ(b.port, 6379);
}

TEST(RedisAddress, Ipv6InBrackets) {
  Address a = Parse("redis://[::1]:7000/1");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 7000);
  EXPECT_EQ(a.db, 1);
  Address b = Parse("[fe80::1]");
  EXPECT_EQ(b.host, "fe80::1");
  EXPECT_EQ(b.port, 6379);
}

TEST(RedisAddress, PasswordRefusedWithoutEchoingIt) {
  for (const std::string url : {"redis://user:s3cr3t-value@host:6379", "redis://:s3cr3t-value@host",
                                "s3cr3t-value@host:6379"}) {
    auto a = ParseAddress(url);
    ASSERT_FALSE(a.ok()) << url;
    EXPECT_EQ(a.status().code(), Code::kInvalidArgument);
    EXPECT_NE(a.status().message().find("secret"), std::string::npos) << a.status().message();
    EXPECT_EQ(a.status().message().find("s3cr3t-value"), std::string::npos)
        << a.status().message();
  }
}

TEST(RedisAddress, Refused) {
  for (const std::string bad :
       {"", "redis://", "redis://:6379", "host:", "host:0", "host:65536", "host:port",
        "redis://host:6379/x", "redis://host:6379/-1", "host:6379/2", "rediss://host:6379",
        "http://host:6379", "::1:6379", "[::1", "[::1]x", "redis://host?db=2"}) {
    auto a = ParseAddress(bad);
    EXPECT_FALSE(a.ok()) << "'" << bad << "' was accepted as " << (a.ok() ? a->host : "");
    if (!a.ok()) EXPECT_EQ(a.status().code(), Code::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace reprise::redis
