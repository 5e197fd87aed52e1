// Opening an S3 repository: the s3:// URL, where credentials and the region come from, and
// OpenStorage's routing.
#include "storage/s3/s3_url.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "storage/retry_storage.h"
#include "storage/s3/credentials.h"
#include "storage/s3/s3_storage.h"

namespace reprise::s3 {
namespace {

namespace fs = std::filesystem;

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

TEST(S3UrlTest, BucketAndPrefix) {
  auto a = ParseS3Url("s3://my-backups");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->bucket, "my-backups");
  EXPECT_EQ(a->prefix, "");
  EXPECT_EQ(a->endpoint, "");
  EXPECT_FALSE(a->path_style.has_value());
  EXPECT_EQ(DisplayUrl(*a), "s3://my-backups");

  auto b = ParseS3Url("s3://my-backups/rag/prod/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->prefix, "rag/prod");
  EXPECT_EQ(DisplayUrl(*b), "s3://my-backups/rag/prod");

  auto c = ParseS3Url("s3://b.with.dots/x");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->bucket, "b.with.dots");
}

TEST(S3UrlTest, Options) {
  auto u = ParseS3Url(
      "s3://bkt/pre?endpoint=http%3A%2F%2F127.0.0.1%3A7480/&region=eu-west-3&path_style=1"
      "&ca_file=/etc/ca.pem&multipart_threshold=8MiB&part_size=5M&max_keys=7&connections=3");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->endpoint, "http://127.0.0.1:7480");
  EXPECT_EQ(u->region, "eu-west-3");
  EXPECT_EQ(u->path_style, std::optional<bool>(true));
  EXPECT_EQ(u->ca_file, "/etc/ca.pem");
  EXPECT_EQ(u->multipart_threshold, std::optional<uint64_t>(8u << 20));
  EXPECT_EQ(u->part_size, std::optional<uint64_t>(5u << 20));
  EXPECT_EQ(u->max_keys, std::optional<int>(7));
  EXPECT_EQ(u->connections, std::optional<int>(3));
  EXPECT_EQ(DisplayUrl(*u), "s3://bkt/pre");

  auto raw = ParseS3Url("s3://bkt?endpoint=https://s3.example.com:9000&path_style=false");
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  EXPECT_EQ(raw->endpoint, "https://s3.example.com:9000");
  EXPECT_EQ(raw->path_style, std::optional<bool>(false));
  EXPECT_EQ(raw->connections, std::nullopt);
  EXPECT_EQ(ParseS3Url("s3://bkt?connections=1")->connections, std::optional<int>(1));
  EXPECT_EQ(ParseS3Url("s3://bkt?connections=256")->connections, std::optional<int>(256));
}

TEST(S3UrlTest, BadUrlsSayWhatIsWrong) {
  struct Case {
    std::string url, needle;
  };
  for (const Case& c : std::vector<Case>{
           {"s3://", "bucket name ''"},
           {"s3://ab", "bucket name 'ab'"},
           {"s3://-bad/x", "bucket name '-bad'"},
           {"s3://bkt/a//b", "empty, '.' or '..'"},
           {"s3://bkt/a/../b", "empty, '.' or '..'"},
           {"s3://bkt?endpoint=ftp://x", "http:// or https://"},
           {"s3://bkt?endpoint=http://", "has no host"},
           {"s3://bkt?endpoint=http://h/path", "without a path"},
           {"s3://bkt?path_style=maybe", "not 0 or 1"},
           {"s3://bkt?part_size=1M", "at least 5MiB"},
           {"s3://bkt?multipart_threshold=12XB", "unknown unit"},
           {"s3://bkt?max_keys=0", "1 to 1000"},
           {"s3://bkt?max_keys=1001", "1 to 1000"},
           {"s3://bkt?connections=0", "'connections' must be a number from 1 to 256"},
           {"s3://bkt?connections=257", "from 1 to 256"},
           {"s3://bkt?connections=", "from 1 to 256"},
           {"s3://bkt?connections=4K", "from 1 to 256"},
           {"s3://bkt?connections=-2", "from 1 to 256"},
           {"s3://bkt?connections=99999999999", "from 1 to 256"},
           {"s3://bkt?colour=blue", "unknown option 'colour'"},
           {"s3://bkt?region=a&region=b", "given twice"},
           {"s3://bkt?endpoint=http://x%zz", "bad %-escape"},
       }) {
    auto r = ParseS3Url(c.url);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << c.url;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos)
        << c.url << " -> " << r.status().message();
  }
}

TEST(S3UrlTest, CredentialsInTheUrlAreRefusedWithoutEchoingThem) {
  for (std::string url :
       {"s3://AKIAXXXX:sEcReT123@bucket/prefix", "s3://bucket/p?secret_key=sEcReT123",
        "s3://bucket/p?aws_access_key_id=AKIAXXXX", "s3://bucket/p?session_token=sEcReT123",
        "s3://bucket/p?endpoint=http://AKIAXXXX:sEcReT123@host"}) {
    auto r = ParseS3Url(url);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << url;
    EXPECT_NE(r.status().message().find("AWS_ACCESS_KEY_ID"), std::string::npos) << url;
    EXPECT_EQ(r.status().message().find("sEcReT123"), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find("AKIAXXXX"), std::string::npos) << r.status().message();
  }
}

TEST(S3UrlTest, ParseSize) {
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("1048576"), 1048576u);
  EXPECT_EQ(*ParseSize("64MiB"), 64u << 20);
  EXPECT_EQ(*ParseSize("8M"), 8u << 20);
  EXPECT_EQ(*ParseSize("2K"), 2048u);
  EXPECT_EQ(*ParseSize("1G"), 1u << 30);
  EXPECT_FALSE(ParseSize("").ok());
  EXPECT_FALSE(ParseSize("M").ok());
  EXPECT_FALSE(ParseSize("-1").ok());
  EXPECT_FALSE(ParseSize("99999999999999999999").ok());
  EXPECT_FALSE(ParseSize("99999999999999G").ok());
}

class CredentialsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "reprise-creds-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / ".aws");
    std::ofstream(dir_ / ".aws/credentials") << "# comment\n"
                                                "[default]\n"
                                                "aws_access_key_id = HOMEID\n"
                                                "aws_secret_access_key=HOMESECRET\n"
                                                "\n"
                                                "[profile ci]\n"
                                                "AWS_ACCESS_KEY_ID = CIID\n"
                                                "aws_secret_access_key = CISECRET\n"
                                                "aws_session_token = CITOKEN\n"
                                                "[half]\n"
                                                "aws_access_key_id = ONLYID\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CredentialsFileTest, EnvironmentFirst) {
  auto c = ResolveCredentials(FakeEnv({{"AWS_ACCESS_KEY_ID", "ENVID"},
                                       {"AWS_SECRET_ACCESS_KEY", "ENVSECRET"},
                                       {"AWS_SESSION_TOKEN", "ENVTOKEN"},
                                       {"HOME", dir_.string()}}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "ENVID");
  EXPECT_EQ(c->secret_access_key, "ENVSECRET");
  EXPECT_EQ(c->session_token, "ENVTOKEN");
}

TEST_F(CredentialsFileTest, HalfAPairInTheEnvironmentIsAnError) {
  auto c = ResolveCredentials(FakeEnv({{"AWS_ACCESS_KEY_ID", "ENVID"}, {"HOME", dir_.string()}}));
  EXPECT_EQ(c.status().code(), Code::kUnauthenticated);
  EXPECT_NE(c.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
}

TEST_F(CredentialsFileTest, ProfilesOfTheSharedFile) {
  auto d = ResolveCredentials(FakeEnv({{"HOME", dir_.string()}}));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->access_key_id, "HOMEID");
  EXPECT_EQ(d->secret_access_key, "HOMESECRET");
  EXPECT_EQ(d->session_token, "");

  auto ci = ResolveCredentials(FakeEnv({{"HOME", dir_.string()}, {"AWS_PROFILE", "ci"}}));
  ASSERT_TRUE(ci.ok()) << ci.status().ToString();
  EXPECT_EQ(ci->access_key_id, "CIID");
  EXPECT_EQ(ci->session_token, "CITOKEN");

  auto missing = ResolveCredentials(FakeEnv({{"HOME", dir_.string()}, {"AWS_PROFILE", "nope"}}));
  EXPECT_EQ(missing.status().code(), Code::kUnauthenticated);
  EXPECT_NE(missing.status().message().find("profile 'nope'"), std::string::npos);

  auto half = ResolveCredentials(FakeEnv({{"HOME", dir_.string()}, {"AWS_PROFILE", "half"}}));
  EXPECT_EQ(half.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(half.status().message().find("ONLYID"), std::string::npos);
}

TEST_F(CredentialsFileTest, ExplicitFileAndNothingAtAll) {
  fs::path other = dir_ / "other-creds";
  std::ofstream(other) << "[default]\naws_access_key_id=FILEID\naws_secret_access_key=FS\n";
  auto f = ResolveCredentials(
      FakeEnv({{"HOME", "/nonexistent"}, {"AWS_SHARED_CREDENTIALS_FILE", other.string()}}));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->access_key_id, "FILEID");

  auto none = ResolveCredentials(FakeEnv({{"HOME", (dir_ / "empty-home").string()}}));
  EXPECT_EQ(none.status().code(), Code::kUnauthenticated);
  EXPECT_NE(none.status().message().find("HINT:"), std::string::npos);
  EXPECT_NE(none.status().message().find("AWS_ACCESS_KEY_ID"), std::string::npos);
}

TEST(S3OpenTest, RegionAndStyleDefaults) {
  auto env = FakeEnv({{"AWS_ACCESS_KEY_ID", "ID"}, {"AWS_SECRET_ACCESS_KEY", "SECRET"}});
  EXPECT_EQ(DefaultRegion(env), "us-east-1");
  EXPECT_EQ(DefaultRegion(FakeEnv({{"AWS_DEFAULT_REGION", "ap-south-1"}})), "ap-south-1");
  EXPECT_EQ(
      DefaultRegion(FakeEnv({{"AWS_REGION", "eu-north-1"}, {"AWS_DEFAULT_REGION", "ap-south-1"}})),
      "eu-north-1");

  auto s = OpenS3Storage("s3://bucket/prefix", env);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Location(), "s3://bucket/prefix");

  auto no_creds = OpenS3Storage("s3://bucket/prefix", FakeEnv({{"HOME", "/nonexistent"}}));
  EXPECT_EQ(no_creds.status().code(), Code::kUnauthenticated);
  EXPECT_NE(no_creds.status().message().find("'s3://bucket/prefix'"), std::string::npos);
}

TEST(S3OpenTest, OpenStorageWrapsS3InRetry) {
  // OpenStorage reads the real environment; give it credentials for this test only.
  const char* old_id = ::getenv("AWS_ACCESS_KEY_ID");
  const char* old_secret = ::getenv("AWS_SECRET_ACCESS_KEY");
  std::string saved_id = old_id ? old_id : "", saved_secret = old_secret ? old_secret : "";
  ::setenv("AWS_ACCESS_KEY_ID", "ID", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "SECRET", 1);
  auto s = OpenStorage("s3://bucket/some/prefix?endpoint=http://127.0.0.1:1&region=x-y-1");
  if (old_id)
    ::setenv("AWS_ACCESS_KEY_ID", saved_id.c_str(), 1);
  else
    ::unsetenv("AWS_ACCESS_KEY_ID");
  if (old_secret)
    ::setenv("AWS_SECRET_ACCESS_KEY", saved_secret.c_str(), 1);
  else
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Location(), "s3://bucket/some/prefix");
  auto* retry = dynamic_cast<RetryStorage*>(s->get());
  ASSERT_NE(retry, nullptr);
  EXPECT_NE(dynamic_cast<S3Storage*>(retry->inner()), nullptr);

  auto bad = OpenStorage("s3://bucket?bogus=1");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace reprise::s3
