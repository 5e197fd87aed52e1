// The real binary on an s3:// repository reached through a fault-injecting proxy
// (fault_proxy.h) in front of Ceph RGW: connection resets, stalls and response bodies cut
// half-way must be ridden out by the retry wrapper (init, backup, restore, check --read-data,
// copy all succeed and restore identically), and a ~10 s outage during a backup must end in a
// completed backup or a clean failure, after which the repository is whole.
//
// The server comes from REPRISE_TEST_S3_ENV_FILE (tests/services/rgw-start.sh writes DIR/env)
// or the REPRISE_TEST_S3_* variables, as in s3_storage_test.cc; without them every test here
// skips, saying so.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "fault_proxy.h"
#include "harness.h"
#include "rgw_env.h"
#include "storage/s3/s3_storage.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// "http://127.0.0.1:7480" -> 7480; 0 when it is not a loopback http endpoint with a port.
uint16_t LoopbackPort(const std::string& endpoint) {
  const std::string head = "http://127.0.0.1:";
  if (!endpoint.starts_with(head)) return 0;
  return static_cast<uint16_t>(std::atoi(endpoint.c_str() + head.size()));
}


nlohmann::json Json(const RunResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
  return j;
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class S3FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rgw_ = LoadRgwEnv();
    if (!rgw_) {
      GTEST_SKIP() << "no S3 server to test against: run `tests/services/rgw-start.sh DIR` and "
                      "set REPRISE_TEST_S3_ENV_FILE=DIR/env (needs Ceph: apt-get install "
                      "ceph-mon ceph-osd radosgw ceph-common)";
    }
    if (LoopbackPort(rgw_->endpoint) == 0) {
      GTEST_SKIP() << "the fault proxy forwards to 127.0.0.1 only; REPRISE_TEST_S3_ENDPOINT is '"
                   << rgw_->endpoint << "'";
    }
    pw_ = tmp_.path() + "/pw";
    WriteFile(pw_, "fault passphrase\n");
    env_ = {"REPRISE_PASSWORD_FILE=" + pw_, "AWS_ACCESS_KEY_ID=" + rgw_->access_key,
            "AWS_SECRET_ACCESS_KEY=" + rgw_->secret_key};
  }

  void TearDown() override {
    for (auto& s : buckets_) {
      auto all = s->List("");
      if (all.ok())
        for (const auto& o : *all) (void)s->Delete(o.key);
      (void)s->DeleteBucket();
    }
  }

  std::unique_ptr<FaultProxy> StartProxy(FaultProxyOptions o) {
    o.target_port = LoopbackPort(rgw_->endpoint);
    auto p = std::make_unique<FaultProxy>(o);
    EXPECT_NE(p->port(), 0) << p->error();
    return p;
  }

  // Creates a bucket (directly, not through any proxy); returns the repository URL that
  // reaches it through `proxy`.
  std::string NewBucketRepo(const std::string& tag, const FaultProxy& proxy) {
    std::string bucket = rgw_->bucket_prefix + "-fault-" + tag + "-" + std::to_string(getpid());
    auto s = S3Storage::Create(S3Options{
        .bucket = bucket,
        .prefix = "",
        .endpoint = rgw_->endpoint,
        .region = rgw_->region,
        .path_style = true,
        .credentials = {.access_key_id = rgw_->access_key,
                        .secret_access_key = rgw_->secret_key}});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return "";
    Status st = (*s)->CreateBucket();
    EXPECT_TRUE(st.ok()) << st.ToString();
    buckets_.push_back(std::move(*s));
    return "s3://" + bucket + "/repo?endpoint=" + proxy.endpoint() + "&region=" + rgw_->region +
           "&path_style=1";
  }

  RunResult Reprise(std::vector<std::string> args) {
    args.insert(args.begin(), REPRISE_BINARY);
    return RunCommand(args, env_);
  }

  std::string Backup(const std::string& repo, const std::string& dir) {
    auto r = Reprise({"-r", repo, "--json", "backup", dir});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = Json(r);
    return j.is_object() ? j.value("point", "") : "";
  }

  std::vector<std::string> PointIds(const std::string& repo) {
    auto r = Reprise({"-r", repo, "--json", "points"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids;
    auto j = Json(r);
    if (j.is_array())
      for (const auto& p : j) ids.push_back(p.value("id", ""));
    return ids;
  }

  // Restores `point` of `repo` and compares it with `want` (a Snapshot of `source`).
  std::string RestoreDiff(const std::string& repo, const std::string& point,
                          const std::string& source,
                          const std::map<std::string, EntryFacts>& want) {
    std::string target = tmp_.path() + "/restore-" + std::to_string(++restores_);
    auto r = Reprise({"-r", repo, "restore", point, "--target", target});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Diff(want, Snapshot(target + source));
  }

  // A few tens of MB: incompressible files, text, small files.
  void MakeTree(const std::string& src) {
    fs::create_directories(src + "/docs/deeper");
    for (int i = 0; i < 3; ++i)
      WriteNoise(src + "/noise-" + std::to_string(i) + ".bin", 6 << 20, 100 + i);
    WriteFile(src + "/docs/a.txt", RandomText(3 << 20, 1));
    WriteFile(src + "/docs/deeper/b.txt", RandomText(2 << 20, 2));
    for (int i = 0; i < 20; ++i)
      WriteFile(src + "/docs/small-" + std::to_string(i), RandomText(100 + i * 37, 10 + i));
    WriteFile(src + "/empty", "");
  }

  std::optional<RgwEnv> rgw_;
  TempDir tmp_;
  std::string pw_;
  std::vector<std::string> env_;
  std::vector<std::unique_ptr<S3Storage>> buckets_;
  int restores_ = 0;
};

TEST_F(S3FaultTest, ResetsStallsAndCutBodiesAreRiddenOut) {
  // About one failed request per 3.5 MiB moved (and a stall per 7 MiB): dense enough for dozens
  // of faults, sparse enough that a pack of a few MiB gets through within the retry budget.
  auto proxy = StartProxy({.seed = 20261124,
                           .reset_probability = 0.6,
                           .stall_probability = 0.6,
                           .cut_probability = 0.6,
                           .stall = milliseconds(200),
                           .max_fault_offset = 4u << 20});
  ASSERT_NE(proxy->port(), 0);
  std::string repo = NewBucketRepo("rw", *proxy);
  ASSERT_FALSE(repo.empty());
  std::string src = tmp_.path() + "/src";
  MakeTree(src);
  auto want = Snapshot(src);

  auto t0 = Clock::now();
  // 1 MiB packs: many requests, so that faults land on many of them.
  auto init = Reprise({"-r", repo, "init", "--pack-size", "1"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  std::string point = Backup(repo, src);
  ASSERT_EQ(point.size(), 64u);
  FaultCounts after_backup = proxy->counts();
  EXPECT_EQ(RestoreDiff(repo, point, src, want), "");
  auto check = Reprise({"-r", repo, "check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  FaultCounts after_check = proxy->counts();
  double main_seconds = SecondsSince(t0);

  // copy from a local repository to S3, through the same proxy.
  std::string local = tmp_.path() + "/local";
  ASSERT_EQ(Reprise({"-r", local, "init", "--pack-size", "1"}).exit_code, 0);
  std::string local_point = Backup(local, src);
  ASSERT_EQ(local_point.size(), 64u);
  std::string copy_repo = NewBucketRepo("copy", *proxy);
  auto t1 = Clock::now();
  auto init2 = Reprise({"-r", copy_repo, "init", "--copy-keys-from", local});
  ASSERT_EQ(init2.exit_code, 0) << init2.err;
  auto copy = Reprise({"--json", "copy", "--from", local, "--to", copy_repo});
  ASSERT_EQ(copy.exit_code, 0) << copy.err;
  EXPECT_EQ(Json(copy).value("points_copied", -1), 1) << copy.out;
  EXPECT_EQ(PointIds(copy_repo), std::vector<std::string>{local_point});
  auto check2 = Reprise({"-r", copy_repo, "check", "--read-data"});
  EXPECT_EQ(check2.exit_code, 0) << check2.out << check2.err;
  double copy_seconds = SecondsSince(t1);

  FaultCounts c = proxy->counts();
  std::printf("[ faults ] backup: %s\n[ faults ] backup+restore+check (%.1f s): %s\n"
              "[ faults ] total with copy (copy+check %.1f s): %s\n",
              after_backup.ToString().c_str(), main_seconds, after_check.ToString().c_str(),
              copy_seconds, c.ToString().c_str());
  // The faults really happened, of every kind, and plenty of them.
  EXPECT_GE(after_backup.resets, 1u) << after_backup.ToString();
  EXPECT_GE(c.faults(), 24u) << c.ToString();
  EXPECT_GE(c.resets, 5u) << c.ToString();
  EXPECT_GE(c.cuts, 3u) << c.ToString();
  EXPECT_GE(c.stalls, 3u) << c.ToString();
}

TEST_F(S3FaultTest, OutageDuringBackup) {
  auto proxy = StartProxy({.seed = 7});
  ASSERT_NE(proxy->port(), 0);
  std::string repo = NewBucketRepo("outage", *proxy);
  ASSERT_FALSE(repo.empty());
  std::string src = tmp_.path() + "/src";
  MakeTree(src);
  auto want1 = Snapshot(src);
  ASSERT_EQ(Reprise({"-r", repo, "init", "--pack-size", "1"}).exit_code, 0);

  // The backup starts; the server goes away for 10 s shortly after, then comes back.
  // The outage starts as soon as the backup has reached the server (not after a fixed delay,
  // which a fast machine could outrun).
  RunResult first;
  std::atomic<bool> first_done{false};
  uint64_t baseline = proxy->counts().connections;
  auto t0 = Clock::now();
  std::thread runner([&] {
    first = Reprise({"-r", repo, "--json", "backup", src});
    first_done = true;
  });
  while (!first_done && proxy->counts().connections <= baseline && SecondsSince(t0) < 30)
    std::this_thread::sleep_for(milliseconds(1));
  bool running_at_pause = !first_done;
  proxy->Pause();
  std::this_thread::sleep_for(seconds(10));
  proxy->Resume();
  runner.join();
  double first_seconds = SecondsSince(t0);
  EXPECT_TRUE(running_at_pause) << "the backup ended before the outage: make the tree bigger";
  EXPECT_GT(proxy->counts().refused, 0u) << proxy->counts().ToString();
  std::printf("[ outage ] first backup: exit %d after %.1f s; %s\n", first.exit_code,
              first_seconds, proxy->counts().ToString().c_str());

  // The retry policy (docs/storage-s3.md) waits at least 53 s before an operation gives up,
  // so a 10 s outage is ridden out.
  EXPECT_EQ(first.exit_code, 0) << first.err;
  std::map<std::string, std::map<std::string, EntryFacts>> want_of;  // point -> tree
  if (first.exit_code == 0) {
    std::string p = Json(first).value("point", "");
    EXPECT_EQ(p.size(), 64u) << first.out;
    want_of[p] = want1;
  } else {
    // Still a clean failure: an exit code, and a message naming the unreachable server; the
    // next backup must work all the same.
    EXPECT_NE(first.err.find("s3 request"), std::string::npos) << first.err;
    EXPECT_NE(first.err.find("attempts"), std::string::npos) << first.err;
    std::printf("[ outage ] first backup failed: %s\n", first.err.c_str());
  }

  WriteFile(src + "/after-outage.txt", RandomText(200000, 99));
  auto want2 = Snapshot(src);
  std::string second = Backup(repo, src);
  ASSERT_EQ(second.size(), 64u);
  want_of[second] = want2;

  auto check = Reprise({"-r", repo, "check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  auto points = PointIds(repo);
  EXPECT_EQ(points.size(), want_of.size());
  for (const auto& id : points) {
    SCOPED_TRACE(id);
    auto it = want_of.find(id);
    ASSERT_NE(it, want_of.end()) << "a point no backup reported";
    EXPECT_EQ(RestoreDiff(repo, id, src, it->second), "");
  }
}

}  // namespace
}  // namespace reprise::testing

namespace reprise::testing {
namespace {

// A GET whose body is cut mid-way asks for the rest (Range + If-Match) instead of starting
// again: through a proxy that cuts every connection within its first MiB, a bare S3Storage (no
// retry wrapper) still reads a 6 MiB object whole, and a ranged read too. Starting again from
// zero could never finish: every connection is cut before 1 MiB.
TEST_F(S3FaultTest, CutDownloadsResumeWhereTheyStopped) {
  auto proxy = StartProxy({.seed = 11, .cut_probability = 1.0, .max_fault_offset = 1u << 20});
  std::string repo = NewBucketRepo("resume", *proxy);
  ASSERT_FALSE(repo.empty());
  S3Storage& direct = *buckets_.back();
  std::string data = RandomText(6u << 20, 5);
  ASSERT_TRUE(direct.Put("big", AsBytes(data)).ok());

  auto through = S3Storage::Create(S3Options{
      .bucket = direct.Location().substr(5),
      .prefix = "",
      .endpoint = proxy->endpoint(),
      .region = rgw_->region,
      .path_style = true,
      .credentials = {.access_key_id = rgw_->access_key, .secret_access_key = rgw_->secret_key},
      .connections = 1});
  ASSERT_TRUE(through.ok()) << through.status().ToString();
  Result<Bytes> got = (*through)->Get("big");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(std::string(AsString(*got)) == data) << "content differs";
  uint64_t cuts_whole = proxy->counts().cuts;
  EXPECT_GE(cuts_whole, 3u) << proxy->counts().ToString();

  Result<Bytes> range = (*through)->GetRange("big", 1000, 3u << 20);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_TRUE(std::string(AsString(*range)) == data.substr(1000, 3u << 20)) << "range differs";
  EXPECT_GT(proxy->counts().cuts, cuts_whole) << proxy->counts().ToString();
}

}  // namespace
}  // namespace reprise::testing
