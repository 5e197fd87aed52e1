// The S3 backend against a real S3 server (Ceph RGW from tests/services/rgw-start.sh):
// the whole storage conformance suite, then what only S3 has (pagination, multipart,
// missing buckets, refused credentials, clock skew, odd key names), then the real binary
// end to end on an s3:// repository.
//
// The server comes from the environment: REPRISE_TEST_S3_ENDPOINT, REPRISE_TEST_S3_REGION,
// REPRISE_TEST_S3_ACCESS_KEY, REPRISE_TEST_S3_SECRET_KEY, REPRISE_TEST_S3_OTHER_ACCESS_KEY,
// REPRISE_TEST_S3_OTHER_SECRET_KEY, REPRISE_TEST_S3_BUCKET (a bucket-name prefix), or from
// the file REPRISE_TEST_S3_ENV_FILE names (rgw-start.sh writes DIR/env). Without them every
// test here skips, saying so. Each run creates its own bucket and empties and deletes it at
// the end.
#include "storage/s3/s3_storage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "harness.h"
#include "rgw_env.h"
#include "storage/retry_storage.h"
#include "storage/s3/http.h"
#include "storage/s3/sigv4.h"
#include "storage/s3/xml.h"

// The conformance suite is compiled into this binary too, so the S3 backend is held to the
// very same TEST_Ps as the local one; the RGW instantiation is at the bottom of this file.
// (When the suite moves to tests/conformance/ as a header, include that instead.)
#include "../conformance/storage_conformance.h"

namespace reprise {
namespace {

using testing::kRgwSkipReason;
using testing::LoadRgwEnv;
using testing::RandomHex;
using testing::RgwEnv;

const std::optional<RgwEnv>& Env() {
  static const std::optional<RgwEnv> env = LoadRgwEnv();
  return env;
}

S3Options BaseOptions(const std::string& bucket, const std::string& prefix) {
  const RgwEnv& e = *Env();
  return S3Options{
      .bucket = bucket,
      .prefix = prefix,
      .endpoint = e.endpoint,
      .region = e.region,
      .path_style = true,
      .credentials = {.access_key_id = e.access_key, .secret_access_key = e.secret_key}};
}

std::unique_ptr<S3Storage> MakeS3(S3Options o) {
  auto s = S3Storage::Create(std::move(o));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

// One bucket per test process, created on first use, emptied and deleted at exit.
const std::string& SharedBucket() {
  static const std::string bucket = [] {
    std::string b = Env()->bucket_prefix + "-" + std::to_string(::getpid()) + "-" + RandomHex(6);
    Status st = MakeS3(BaseOptions(b, ""))->CreateBucket();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return b;
  }();
  return bucket;
}

void EmptyStorage(Storage& s) {
  auto all = s.List("");
  if (!all.ok()) return;
  for (const auto& o : *all) (void)s.Delete(o.key);
}

class BucketCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    if (!Env() || !used_) return;
    auto s = MakeS3(BaseOptions(SharedBucket(), ""));
    EmptyStorage(*s);
    Status st = s->DeleteBucket();
    if (!st.ok()) std::fprintf(stderr, "could not delete test bucket: %s\n", st.ToString().c_str());
  }
  static inline std::atomic<bool> used_{false};
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new BucketCleanup);

StorageUnderTest MakeRgwBackend() {
  StorageUnderTest t;
  BucketCleanup::used_ = true;
  std::string prefix = "conformance/" + RandomHex(12);
  t.storage = MakeS3(BaseOptions(SharedBucket(), prefix));
  std::string bucket = SharedBucket();
  t.cleanup = [bucket, prefix] {
    auto s = MakeS3(BaseOptions(bucket, prefix));
    EmptyStorage(*s);
  };
  return t;  // no plant_temp_file: an S3 PUT is atomic on the server, there are no temp files
}

// Instantiated only when a server is configured: the suite then runs as
// "Rgw/StorageConformance.*/rgw". Without one, S3RgwTest.ServerIsConfigured says why.
std::vector<StorageBackend> RgwBackends() {
  if (!Env()) return {};
  return {StorageBackend{"rgw", MakeRgwBackend}};
}
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StorageConformance);
INSTANTIATE_TEST_SUITE_P(Rgw, StorageConformance, ::testing::ValuesIn(RgwBackends()),
                         [](const ::testing::TestParamInfo<StorageBackend>& info) {
                           return info.param.name;
                         });

// A raw signed request, for what the Storage interface does not show (ETags, uploads, bucket
// policies). The body, if any, is signed with its SHA-256.
s3::HttpResponse SignedRequest(const s3::Credentials& creds, const std::string& method,
                               const std::string& path,
                               std::vector<std::pair<std::string, std::string>> query = {},
                               ByteView body = {}) {
  const RgwEnv& e = *Env();
  std::string host = e.endpoint.substr(e.endpoint.find("://") + 3);
  s3::SigV4Request req{
      .method = method,
      .path = path,
      .query = query,
      .headers = {{"Host", host}},
      .payload_hash = body.empty() ? std::string(s3::kUnsignedPayload) : s3::PayloadHash(body)};
  s3::SignRequest(req, creds, e.region, SystemClock().NowUnix());
  s3::HttpClient http({});
  std::string url = e.endpoint + s3::EncodePath(path);
  if (!query.empty()) url += "?" + s3::CanonicalQuery(query);
  auto resp = http.Send({.method = method, .url = url, .headers = req.headers, .body = body});
  EXPECT_TRUE(resp.ok()) << resp.status().ToString();
  return resp.ok() ? *resp : s3::HttpResponse{};
}

s3::HttpResponse RawRequest(const std::string& method, const std::string& path,
                            std::vector<std::pair<std::string, std::string>> query = {}) {
  return SignedRequest({.access_key_id = Env()->access_key, .secret_access_key = Env()->secret_key},
                       method, path, std::move(query));
}

class S3RgwTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Env()) GTEST_SKIP() << kRgwSkipReason;
    BucketCleanup::used_ = true;
    bucket_ = SharedBucket();
    prefix_ = "s3test/" + RandomHex(12);
  }
  S3Options Options() { return BaseOptions(bucket_, prefix_); }

  std::string bucket_, prefix_;
};

TEST_F(S3RgwTest, ServerIsConfigured) {
  auto s = MakeS3(Options());
  auto list = s->List("");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
}

TEST_F(S3RgwTest, ListFollowsPagesPastAThousandKeys) {
  S3Options o = Options();
  o.max_keys = 97;  // 1050 keys -> 11 pages, without putting 10 000 objects
  auto s = MakeS3(o);
  constexpr int kKeys = 1050;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kKeys; i += 6) {
        char key[32];
        std::snprintf(key, sizeof key, "index/%04d", i);
        if (!s->Put(key, ToBytes(std::to_string(i))).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(s->Put("other/x", ToBytes("not listed under index/")).ok());

  auto list = s->List("index/");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), static_cast<size_t>(kKeys));
  std::vector<std::string> keys = Keys(*list);
  for (int i = 0; i < kKeys; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "index/%04d", i);
    ASSERT_EQ(keys[static_cast<size_t>(i)], key);
  }
  EXPECT_EQ((*list)[0].size, 1u);
  // The default page size (1000) needs two pages for the same listing.
  auto again = MakeS3(Options())->List("index/");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(MakeS3(Options())->List("")->size(), static_cast<size_t>(kKeys) + 1);
}

TEST_F(S3RgwTest, MultipartUploadOfTwelveMiB) {
  S3Options o = Options();
  o.multipart_threshold = 6 << 20;
  o.part_size = 5 << 20;
  auto s = MakeS3(o);
  Bytes data = Pattern(12 << 20, 42);
  ASSERT_TRUE(s->Put("data/mp/big", data).ok());
  auto got = s->Get("data/mp/big");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
  EXPECT_EQ(s->Stat("data/mp/big")->size, data.size());
  // Across the boundary of parts 1 and 2.
  auto across = s->GetRange("data/mp/big", (5 << 20) - 10, 20);
  ASSERT_TRUE(across.ok()) << across.status().ToString();
  EXPECT_EQ(*across, Bytes(data.begin() + (5 << 20) - 10, data.begin() + (5 << 20) + 10));

  // It really went up in 3 parts ("<md5>-3" ETag), and no upload is left in progress.
  auto head = RawRequest("HEAD", "/" + bucket_ + "/" + prefix_ + "/data/mp/big");
  EXPECT_EQ(head.status, 200);
  EXPECT_NE(head.Header("etag").find("-3"), std::string::npos) << head.Header("etag");
  auto uploads = RawRequest("GET", "/" + bucket_, {{"uploads", ""}, {"prefix", prefix_}});
  EXPECT_EQ(uploads.status, 200);
  EXPECT_TRUE(s3::XmlElements(AsString(uploads.body), "Upload").empty()) << AsString(uploads.body);

  // Below the threshold: one PUT, a plain MD5 ETag.
  ASSERT_TRUE(s->Put("data/mp/small", Pattern(1 << 20, 43)).ok());
  auto small = RawRequest("HEAD", "/" + bucket_ + "/" + prefix_ + "/data/mp/small");
  EXPECT_EQ(small.Header("etag").find('-'), std::string::npos) << small.Header("etag");
}

TEST_F(S3RgwTest, OddKeyNamesSurviveSigningAndListing) {
  auto s = MakeS3(Options());
  std::vector<std::string> keys = {"a b/c d",
                                   "plus+and=eq&amp",
                                   "pct%41%zz",
                                   "tilde~_-.",
                                   "caf\xc3\xa9/\xe2\x82\xac",
                                   "semi;colon,comma",
                                   "paren(1)!*'",
                                   "star*/q?mark",
                                   "hash#tag/@at"};
  for (const auto& k : keys) {
    SCOPED_TRACE(k);
    ASSERT_TRUE(s->Put(k, ToBytes("v:" + k)).ok());
    auto got = s->Get(k);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(AsString(*got), "v:" + k);
    EXPECT_EQ(s->Stat(k)->size, k.size() + 2);
  }
  auto list = s->List("");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  auto want = keys;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Keys(*list), want);
  EXPECT_EQ(Keys(*s->List("caf\xc3\xa9/")), std::vector<std::string>{keys[4]});
  for (const auto& k : keys) EXPECT_TRUE(s->Delete(k).ok()) << k;
  EXPECT_TRUE(s->List("")->empty());
}

TEST_F(S3RgwTest, MissingBucketIsNamedWithTheEndpoint) {
  auto s = MakeS3(BaseOptions("reprise-no-such-bucket-" + RandomHex(8), "p"));
  for (Status st :
       {s->Get("config").status(), s->List("").status(), s->Put("config", ToBytes("x"))}) {
    EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
    EXPECT_NE(st.message().find("bucket 'reprise-no-such-bucket-"), std::string::npos)
        << st.ToString();
    EXPECT_NE(st.message().find("does not exist at " + Env()->endpoint), std::string::npos)
        << st.ToString();
  }
  EXPECT_EQ(s->Delete("config").code(), Code::kNotFound);
}

TEST_F(S3RgwTest, RefusedCredentials) {
  auto ok = MakeS3(Options());
  ASSERT_TRUE(ok->Put("config", ToBytes("x")).ok());

  S3Options wrong_secret = Options();
  wrong_secret.credentials.secret_access_key = "not-the-secret-0000000000000000000000000";
  auto a = MakeS3(wrong_secret)->Get("config");
  EXPECT_EQ(a.status().code(), Code::kUnauthenticated) << a.status().ToString();
  EXPECT_NE(a.status().message().find("SignatureDoesNotMatch"), std::string::npos);
  EXPECT_NE(a.status().message().find("'s3://" + bucket_ + "/" + prefix_ + "/config'"),
            std::string::npos)
      << a.status().ToString();
  EXPECT_EQ(a.status().message().find(wrong_secret.credentials.secret_access_key),
            std::string::npos);

  // Stat is a HEAD, whose error has no body; the backend still tells the two apart.
  auto head = MakeS3(wrong_secret)->Stat("config");
  EXPECT_EQ(head.status().code(), Code::kUnauthenticated) << head.status().ToString();
  EXPECT_NE(head.status().message().find("SignatureDoesNotMatch"), std::string::npos);

  S3Options unknown_key = Options();
  unknown_key.credentials.access_key_id = "NOSUCHKEY0000000000X";
  auto b = MakeS3(unknown_key)->List("");
  EXPECT_EQ(b.status().code(), Code::kUnauthenticated) << b.status().ToString();
  EXPECT_NE(b.status().message().find("InvalidAccessKeyId"), std::string::npos);
}

TEST_F(S3RgwTest, AnotherUsersBucketIsAccessDenied) {
  if (Env()->other_access_key.empty()) GTEST_SKIP() << "no REPRISE_TEST_S3_OTHER_ACCESS_KEY";
  ASSERT_TRUE(MakeS3(Options())->Put("keys/k1", ToBytes("mine")).ok());
  S3Options o = Options();
  o.credentials = {.access_key_id = Env()->other_access_key,
                   .secret_access_key = Env()->other_secret_key};
  auto stranger = MakeS3(o);
  auto got = stranger->Get("keys/k1");
  EXPECT_EQ(got.status().code(), Code::kPermissionDenied) << got.status().ToString();
  EXPECT_NE(got.status().message().find("access denied to 's3://" + bucket_ + "/" + prefix_ +
                                        "/keys/k1'"),
            std::string::npos)
      << got.status().ToString();
  EXPECT_NE(got.status().message().find("AccessDenied"), std::string::npos);
  auto head = stranger->Stat("keys/k1");
  EXPECT_EQ(head.status().code(), Code::kPermissionDenied) << head.status().ToString();
  EXPECT_NE(head.status().message().find("AccessDenied"), std::string::npos);
  EXPECT_EQ(stranger->Put("keys/k2", ToBytes("theirs")).code(), Code::kPermissionDenied);
  EXPECT_EQ(stranger->List("").status().code(), Code::kPermissionDenied);
}

TEST_F(S3RgwTest, ClockSkewIsAFailedPrecondition) {
  FakeClock behind(SystemClock().NowUnixNanos() - 3600LL * 1000000000LL);
  S3Options o = Options();
  o.clock = &behind;
  auto got = MakeS3(o)->List("");
  EXPECT_EQ(got.status().code(), Code::kFailedPrecondition) << got.status().ToString();
  EXPECT_NE(got.status().message().find("off by more than 15 minutes"), std::string::npos);
}

TEST_F(S3RgwTest, OpenStorageUrlWithRetryAndConcurrency) {
  std::string url = "s3://" + bucket_ + "/" + prefix_ + "?endpoint=" + Env()->endpoint +
                    "&region=" + Env()->region + "&path_style=1&max_keys=50";
  ::setenv("AWS_ACCESS_KEY_ID", Env()->access_key.c_str(), 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", Env()->secret_key.c_str(), 1);
  auto opened = OpenStorage(url);
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Storage& s = **opened;
  EXPECT_EQ(s.Location(), "s3://" + bucket_ + "/" + prefix_);
  // Two writers and four readers, as backup and restore use it.
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 60; ++i)
        if (!s.Put("data/" + std::to_string(t) + "/" + std::to_string(i), Pattern(3000, i)).ok())
          ++failures;
    });
  }
  for (auto& th : threads) th.join();
  threads.clear();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 60; i += 4) {
        auto got = s.Get("data/1/" + std::to_string(i));
        if (!got.ok() || *got != Pattern(3000, i)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(s.List("data/")->size(), 120u);
}

// ---- the real binary on an s3:// repository ----

TEST_F(S3RgwTest, CliInitBackupRestoreCheck) {
  using reprise::testing::RunCommand;
  reprise::testing::TempDir tmp;
  std::string src = tmp.path() + "/src";
  std::filesystem::create_directories(src + "/nested/deeper");
  reprise::testing::WriteFile(src + "/small.txt", "hello s3\n");
  reprise::testing::WriteFile(src + "/nested/deeper/text",
                              reprise::testing::RandomText(3 << 20, 7));
  // Incompressible, so that 16 MiB packs fill up and go up as multipart uploads.
  Bytes noise = Pattern(20 << 20, 8);
  reprise::testing::WriteFile(src + "/nested/big.bin", std::string(AsString(noise)));
  reprise::testing::WriteFile(src + "/empty", "");
  std::string pw = tmp.path() + "/pw";
  reprise::testing::WriteFile(pw, "s3 integration passphrase\n");

  // Small multipart settings so that 16 MiB packs go up in parts.
  std::string repo = "s3://" + bucket_ + "/" + prefix_ + "/repo?endpoint=" + Env()->endpoint +
                     "&region=" + Env()->region +
                     "&path_style=1&multipart_threshold=8MiB&part_size=5MiB";
  std::vector<std::string> env = {"REPRISE_PASSWORD_FILE=" + pw,
                                  "AWS_ACCESS_KEY_ID=" + Env()->access_key,
                                  "AWS_SECRET_ACCESS_KEY=" + Env()->secret_key};
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {REPRISE_BINARY, "-r", repo});
    return RunCommand(args, env);
  };

  auto init = run({"init"});
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  auto backup = run({"--json", "backup", src});
  ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;
  auto j = nlohmann::json::parse(backup.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << backup.out;
  std::string point = j.value("point", "");
  ASSERT_EQ(point.size(), 64u) << backup.out;

  std::string target = tmp.path() + "/restore";
  auto restore = run({"restore", point, "--target", target});
  ASSERT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  EXPECT_EQ(reprise::testing::Diff(reprise::testing::Snapshot(src),
                                   reprise::testing::Snapshot(target + src)),
            "");

  auto check = run({"check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  // The repository's objects are really in the bucket, under the prefix.
  auto s = MakeS3(BaseOptions(bucket_, prefix_ + "/repo"));
  auto objects = s->List("");
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  bool has_config = false, has_data = false, has_multipart = false;
  for (const auto& o : *objects) {
    has_config |= o.key == "config";
    if (!o.key.starts_with("data/")) continue;
    has_data = true;
    // Packs of 8 MiB or more went up as multipart uploads ("<md5>-<parts>" ETags).
    auto head = RawRequest("HEAD", "/" + bucket_ + "/" + prefix_ + "/repo/" + o.key);
    if (o.size >= (8u << 20)) {
      EXPECT_NE(head.Header("etag").find('-'), std::string::npos) << o.key;
      has_multipart = true;
    }
  }
  EXPECT_TRUE(has_config);
  EXPECT_TRUE(has_data);
  EXPECT_TRUE(has_multipart) << "no pack reached the 8 MiB multipart threshold";

  // A wrong secret is an error a person can act on, and the secret is not printed.
  auto refused =
      RunCommand({REPRISE_BINARY, "-r", repo, "check"},
                 {"REPRISE_PASSWORD_FILE=" + pw, "AWS_ACCESS_KEY_ID=" + Env()->access_key,
                  "AWS_SECRET_ACCESS_KEY=wrong-secret-value-123"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("SignatureDoesNotMatch"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find("wrong-secret-value-123"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.out.find("wrong-secret-value-123"), std::string::npos) << refused.out;

  // No credentials at all: told where to put them.
  auto none =
      RunCommand({REPRISE_BINARY, "-r", repo, "check"},
                 {"REPRISE_PASSWORD_FILE=" + pw, "HOME=" + tmp.path(), "AWS_ACCESS_KEY_ID=",
                  "AWS_SECRET_ACCESS_KEY=", "AWS_SHARED_CREDENTIALS_FILE=", "AWS_PROFILE="});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("AWS_ACCESS_KEY_ID"), std::string::npos) << none.err;
}


// ---- append-only repositories (docs/storage-s3.md, "Append-only repositories") ----

// The bucket policy exactly as the documentation gives it: the first ```json block after the
// section's heading, with <bucket>, <prefix>, <owner> and <writer> filled in.
std::string DocumentedAppendOnlyPolicy(const std::string& bucket, const std::string& prefix,
                                       const std::string& owner, const std::string& writer) {
  std::ifstream in(std::string(REPRISE_SOURCE_DIR) + "/docs/storage-s3.md");
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t section = doc.find("\n## Append-only repositories");
  if (section == std::string::npos) return "";
  size_t start = doc.find("```json\n", section);
  if (start == std::string::npos) return "";
  start += 8;
  size_t end = doc.find("```", start);
  if (end == std::string::npos) return "";
  std::string policy = doc.substr(start, end - start);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"<bucket>", bucket}, {"<prefix>", prefix}, {"<owner>", owner}, {"<writer>", writer}}) {
    for (size_t at = policy.find(from); at != std::string::npos; at = policy.find(from, at))
      policy.replace(at, from.size(), to);
  }
  return policy;
}

// Backup, copy and check with credentials that may put, get and list but delete only locks;
// forget and prune refused with one line that names the object and says why; the owner's
// credentials prune, and the repository checks clean afterwards.
TEST_F(S3RgwTest, AppendOnlyCredentialsBackUpButCannotForgetOrPrune) {
  const RgwEnv& e = *Env();
  if (e.append_access_key.empty() || e.user.empty() || e.append_user.empty())
    GTEST_SKIP() << "no append-only user (REPRISE_TEST_S3_APPEND_*): run a current "
                    "tests/services/rgw-start.sh";
  using reprise::testing::RunCommand;
  reprise::testing::TempDir tmp;

  // A bucket of its own: its policy must not change what the other tests see.
  const std::string bucket = e.bucket_prefix + "-ao-" + RandomHex(8);
  const std::string prefix = "team/rag";
  auto owner_storage = MakeS3(BaseOptions(bucket, ""));
  ASSERT_TRUE(owner_storage->CreateBucket().ok());
  struct DropBucket {
    S3Storage* s;
    ~DropBucket() {
      EmptyStorage(*s);
      (void)s->DeleteBucket();
    }
  } drop{owner_storage.get()};

  std::string policy = DocumentedAppendOnlyPolicy(bucket, prefix, e.user, e.append_user);
  ASSERT_FALSE(policy.empty()) << "no ```json policy under '## Append-only repositories' in "
                                  "docs/storage-s3.md";
  ASSERT_TRUE(nlohmann::json::parse(policy, nullptr, false).is_object()) << policy;
  auto put_policy =
      SignedRequest({.access_key_id = e.access_key, .secret_access_key = e.secret_key}, "PUT",
                    "/" + bucket, {{"policy", ""}}, AsBytes(policy));
  ASSERT_TRUE(put_policy.status == 204 || put_policy.status == 200)
      << put_policy.status << " " << AsString(put_policy.body);

  std::string pw = tmp.path() + "/pw";
  reprise::testing::WriteFile(pw, "append-only passphrase\n");
  std::string repo = "s3://" + bucket + "/" + prefix + "?endpoint=" + e.endpoint +
                     "&region=" + e.region + "&path_style=1";
  std::string local = tmp.path() + "/local";
  std::vector<std::string> writer = {"REPRISE_PASSWORD_FILE=" + pw,
                                     "AWS_ACCESS_KEY_ID=" + e.append_access_key,
                                     "AWS_SECRET_ACCESS_KEY=" + e.append_secret_key};
  std::vector<std::string> owner = {"REPRISE_PASSWORD_FILE=" + pw,
                                    "AWS_ACCESS_KEY_ID=" + e.access_key,
                                    "AWS_SECRET_ACCESS_KEY=" + e.secret_key};
  auto run = [](const std::vector<std::string>& env, std::vector<std::string> args) {
    args.insert(args.begin(), REPRISE_BINARY);
    return RunCommand(args, env);
  };
  // What the owner sees under the repository's prefix.
  auto count = [&](const std::string& dir) -> size_t {
    auto list = MakeS3(BaseOptions(bucket, prefix))->List(dir);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    return list.ok() ? list->size() : 0;
  };

  // The writer's key really is limited: it may not delete a data object by itself either.
  ASSERT_TRUE(owner_storage->Put(prefix + "/data/probe", ToBytes("x")).ok());
  S3Options writer_options = BaseOptions(bucket, prefix);
  writer_options.credentials = {.access_key_id = e.append_access_key,
                                .secret_access_key = e.append_secret_key};
  auto writer_storage = MakeS3(writer_options);
  Status denied = writer_storage->Delete("data/probe");
  EXPECT_EQ(denied.code(), Code::kPermissionDenied) << denied.ToString();
  EXPECT_TRUE(writer_storage->Put("locks/probe", ToBytes("x")).ok());
  EXPECT_TRUE(writer_storage->Delete("locks/probe").ok());
  ASSERT_TRUE(owner_storage->Delete(prefix + "/data/probe").ok());

  // A point in a local repository, copied up with the writer's key...
  std::string src1 = tmp.path() + "/first", src2 = tmp.path() + "/second";
  std::filesystem::create_directories(src1);
  std::filesystem::create_directories(src2);
  reprise::testing::WriteFile(src1 + "/a.bin", std::string(AsString(Pattern(1 << 20, 51))));
  reprise::testing::WriteFile(src2 + "/b.bin", std::string(AsString(Pattern(1 << 20, 52))));
  ASSERT_EQ(run(owner, {"-r", local, "init"}).exit_code, 0);
  ASSERT_EQ(run(owner, {"-r", local, "backup", src1}).exit_code, 0);
  auto init = run(writer, {"-r", repo, "init", "--copy-keys-from", local});
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  auto copy = run(writer, {"copy", "--from", local, "--to", repo});
  ASSERT_EQ(copy.exit_code, 0) << copy.out << copy.err;
  // ... and a second one backed up straight to S3, of other data.
  auto backup = run(writer, {"-r", repo, "backup", src2});
  ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;
  auto check = run(writer, {"-r", repo, "check"});
  ASSERT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(count("points/"), 2u);
  EXPECT_EQ(count("locks/"), 0u) << "the writer's commands did not remove their locks";

  // forget with the writer's key: refused at the first point, in one line, and nothing lost.
  auto forget = run(writer, {"-r", repo, "forget", "--keep-last", "1"});
  EXPECT_NE(forget.exit_code, 0) << forget.out << forget.err;
  std::vector<std::string> lines = reprise::testing::NonEmptyLines(forget.err);
  ASSERT_EQ(lines.size(), 1u) << forget.err;
  EXPECT_EQ(lines[0].rfind("reprise: error: access denied to delete 's3://" + bucket + "/" +
                               prefix + "/points/",
                           0),
            0u)
      << lines[0];
  EXPECT_NE(lines[0].find("AccessDenied"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("HINT: these credentials may not delete objects (an append-only "
                          "repository?); run forget and prune with the credentials that may"),
            std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[0].find(e.append_secret_key), std::string::npos);
  EXPECT_EQ(count("points/"), 2u);
  EXPECT_EQ(count("locks/"), 0u) << "forget's exclusive lock was left behind";

  // The owner forgets; the writer's prune is refused just the same.
  auto owner_forget = run(owner, {"-r", repo, "forget", "--keep-last", "1"});
  ASSERT_EQ(owner_forget.exit_code, 0) << owner_forget.out << owner_forget.err;
  EXPECT_EQ(count("points/"), 1u);
  auto dry = run(owner, {"-r", repo, "--json", "prune", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  auto dry_json = nlohmann::json::parse(dry.out, nullptr, false);
  ASSERT_TRUE(dry_json.is_object()) << dry.out;
  ASSERT_GT(dry_json.value("packs_deleted", 0) + dry_json.value("packs_repacked", 0), 0)
      << "prune would delete nothing, so it would not need to delete: " << dry.out;
  size_t packs_before = count("data/");
  size_t indexes_before = count("index/");

  auto prune = run(writer, {"-r", repo, "prune"});
  EXPECT_NE(prune.exit_code, 0) << prune.out << prune.err;
  lines = reprise::testing::NonEmptyLines(prune.err);
  ASSERT_EQ(lines.size(), 1u) << prune.err;
  EXPECT_EQ(lines[0].rfind("reprise: error: refusing to prune, nothing was changed: access "
                           "denied to delete 's3://" + bucket + "/" + prefix + "/data/",
                           0),
            0u)
      << lines[0];
  EXPECT_NE(lines[0].find("HINT: these credentials may not delete objects"), std::string::npos)
      << lines[0];
  // Refused before writing: no pack deleted, and no repacked pack or new index left behind.
  EXPECT_EQ(count("data/"), packs_before) << "the writer's prune changed the packs";
  EXPECT_EQ(count("index/"), indexes_before) << "the writer's prune wrote an index";
  EXPECT_EQ(count("locks/"), 0u) << "prune's exclusive lock was left behind";

  // The owner prunes; the writer's key then reads every byte back.
  auto owner_prune = run(owner, {"-r", repo, "--json", "prune"});
  ASSERT_EQ(owner_prune.exit_code, 0) << owner_prune.out << owner_prune.err;
  auto pruned = nlohmann::json::parse(owner_prune.out, nullptr, false);
  ASSERT_TRUE(pruned.is_object()) << owner_prune.out;
  EXPECT_GT(pruned.value("packs_deleted", 0), 0) << owner_prune.out;
  auto read_all = run(writer, {"-r", repo, "check", "--read-data"});
  EXPECT_EQ(read_all.exit_code, 0) << read_all.out << read_all.err;
  auto restore = run(writer, {"-r", repo, "restore", "latest", "--target", tmp.path() + "/r"});
  EXPECT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  EXPECT_EQ(reprise::testing::Diff(reprise::testing::Snapshot(src2),
                                   reprise::testing::Snapshot(tmp.path() + "/r" + src2)),
            "");
}

}  // namespace
}  // namespace reprise
