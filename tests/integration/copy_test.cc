// `reprise copy` and `reprise init --copy-keys-from`, with the real binary: local to local
// through plan sites, re-encryption between different keys (restored byte for byte, idempotent,
// killed half-way and resumed), a copy killed half-way and resumed, and local -> S3 -> S3 on
// Ceph RGW (CopyS3Test: only with REPRISE_TEST_S3_ENV_FILE or the
// REPRISE_TEST_S3_* variables, as in s3_storage_test.cc; it skips otherwise).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "harness.h"
#include "rgw_env.h"
#include "storage/s3/s3_storage.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;

nlohmann::json Json(const RunResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
  return j;
}


class CopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = tmp_.path() + "/site-a";
    b_ = tmp_.path() + "/site-b";
    pw_ = tmp_.path() + "/pw";
    WriteFile(pw_, "copy passphrase\n");
    env_ = {"REPRISE_PASSWORD_FILE=" + pw_};
  }

  RunResult Reprise(std::vector<std::string> args, std::vector<std::string> extra_env = {}) {
    args.insert(args.begin(), REPRISE_BINARY);
    auto env = env_;
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    return RunCommand(args, env);
  }

  std::string Backup(const std::string& repo, const std::string& dir) {
    auto r = Reprise({"-r", repo, "--json", "backup", dir});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = Json(r);
    return j.is_object() ? j.value("point", "") : "";
  }

  std::set<std::string> PointIds(const std::string& repo, std::vector<std::string> global = {}) {
    global.insert(global.end(), {"-r", repo, "--json", "points"});
    auto r = Reprise(global);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::set<std::string> ids;
    for (const auto& p : Json(r)) ids.insert(p.value("id", ""));
    return ids;
  }

  // Restores `point` of `repo` and compares the copy of `source` with it.
  std::string RestoreDiff(const std::string& repo, const std::string& point,
                          const std::string& source, std::vector<std::string> global = {}) {
    return RestoreDiff(repo, point, source, Snapshot(source), std::move(global));
  }
  // The same against `want`, a snapshot of `source` taken earlier.
  std::string RestoreDiff(const std::string& repo, const std::string& point,
                          const std::string& source,
                          const std::map<std::string, EntryFacts>& want,
                          std::vector<std::string> global = {}) {
    std::string target = tmp_.path() + "/restore-" + std::to_string(++restores_);
    global.insert(global.end(), {"-r", repo, "restore", point, "--target", target});
    auto r = Reprise(global);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Diff(want, Snapshot(target + source));
  }

  TempDir tmp_;
  std::string a_, b_, pw_;
  std::vector<std::string> env_;
  int restores_ = 0;
};

TEST_F(CopyTest, LocalToLocalThroughPlanSites) {
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src + "/sub");
  std::string plan = tmp_.path() + "/reprise.yaml";
  WriteFile(plan, "version: 1\nname: test\nsites:\n  primary:\n    repository: " + a_ +
                      "\n  cold:\n    repository: " + b_ + "\n    role: cold\n" +
                      "components:\n  docs:\n    kind: files\n    class: documents\n" +
                      "    paths: [" + tmp_.path() + "/src]\n");
  ASSERT_EQ(Reprise({"--plan", plan, "init"}).exit_code, 0);
  auto init = Reprise({"--plan", plan, "--site", "cold", "init", "--copy-keys-from", "primary"});
  ASSERT_EQ(init.exit_code, 0) << init.err;

  WriteFile(src + "/a.txt", RandomText(3 << 20, 1));
  WriteNoise(src + "/sub/noise.bin", 5 << 20, 2);
  std::string p1 = Backup(a_, src);
  WriteFile(src + "/b.txt", RandomText(1 << 20, 3));
  std::string p2 = Backup(a_, src);
  ASSERT_EQ(p1.size(), 64u);
  ASSERT_EQ(p2.size(), 64u);

  auto copy = Reprise({"--plan", plan, "--json", "copy", "--from", "primary", "--to", "cold"});
  ASSERT_EQ(copy.exit_code, 0) << copy.err;
  auto j = Json(copy);
  EXPECT_EQ(j.value("points_copied", -1), 2) << copy.out;
  EXPECT_EQ(j.value("points_skipped", -1), 0) << copy.out;
  EXPECT_GT(j.value("blobs_copied", 0), 0) << copy.out;
  EXPECT_GT(j.value("bytes_copied", 0), 5 << 20) << copy.out;
  EXPECT_GT(j.value("packs_written", 0), 0) << copy.out;

  // Same ids (the point files are copied byte for byte), listed through --site too.
  EXPECT_EQ(PointIds(b_), (std::set<std::string>{p1, p2}));
  auto by_site = Reprise({"--plan", plan, "--site", "cold", "--json", "points"});
  ASSERT_EQ(by_site.exit_code, 0) << by_site.err;
  EXPECT_EQ(Json(by_site).size(), 2u);

  EXPECT_EQ(RestoreDiff(b_, p2, src), "");
  auto check = Reprise({"-r", b_, "check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  auto again = Reprise({"--json", "copy", "--from", a_, "--to", b_});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto k = Json(again);
  EXPECT_EQ(k.value("points_copied", -1), 0) << again.out;
  EXPECT_EQ(k.value("points_skipped", -1), 2) << again.out;
  EXPECT_EQ(k.value("blobs_copied", -1), 0) << again.out;
  EXPECT_EQ(k.value("packs_written", -1), 0) << again.out;
}

TEST_F(CopyTest, OnlyTheNamedPointAndOnlyNewBlobs) {
  ASSERT_EQ(Reprise({"-r", a_, "init"}).exit_code, 0);
  ASSERT_EQ(Reprise({"-r", b_, "init", "--copy-keys-from", a_}).exit_code, 0);
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src);
  WriteNoise(src + "/one.bin", 2 << 20, 5);
  std::string p1 = Backup(a_, src);
  WriteNoise(src + "/two.bin", 2 << 20, 6);
  std::string p2 = Backup(a_, src);

  auto first = Reprise({"--json", "copy", "--from", a_, "--to", b_, "--point", p1.substr(0, 8)});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(PointIds(b_), (std::set<std::string>{p1}));
  uint64_t first_bytes = Json(first).value("bytes_copied", uint64_t{0});
  auto second = Reprise({"--json", "copy", "--from", a_, "--to", b_});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  auto j = Json(second);
  EXPECT_EQ(j.value("points_copied", -1), 1);
  EXPECT_EQ(j.value("points_skipped", -1), 1);
  // one.bin is already there: only two.bin (and the manifest) travel.
  uint64_t second_bytes = j.value("bytes_copied", uint64_t{0});
  EXPECT_GT(second_bytes, uint64_t{2} << 20);
  EXPECT_LT(second_bytes, (uint64_t{2} << 20) + (uint64_t{1} << 20)) << first_bytes;
  EXPECT_EQ(RestoreDiff(b_, p2, src), "");
}

// Two repositories initialised apart, with different passphrases: different master keys.
class CopyReencryptCliTest : public CopyTest {
 protected:
  void SetUp() override {
    CopyTest::SetUp();
    pw_b_ = tmp_.path() + "/pw-b";
    WriteFile(pw_b_, "the other site's passphrase\n");
    b_pass_ = {"--password-file", pw_b_};
  }
  // `reprise copy` from a_ to b_ (the target's passphrase by flag, the source's by file).
  RunResult Copy(bool json = true) {
    std::vector<std::string> args = b_pass_;
    if (json) args.push_back("--json");
    args.insert(args.end(),
                {"copy", "--from", a_, "--to", b_, "--from-password-file", pw_});
    return Reprise(args);
  }
  // b_'s point ids, oldest first.
  std::vector<std::string> TargetPoints() {
    auto r = Reprise({"--password-file", pw_b_, "-r", b_, "--json", "points"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids;
    for (const auto& p : Json(r)) ids.push_back(p.value("id", ""));
    return ids;
  }
  std::string pw_b_;
  std::vector<std::string> b_pass_;
};

TEST_F(CopyReencryptCliTest, DifferentKeysReencryptAndRestoreIdentically) {
  ASSERT_EQ(Reprise({"-r", a_, "init"}).exit_code, 0);
  ASSERT_EQ(Reprise({"--password-file", pw_b_, "-r", b_, "init"}).exit_code, 0);
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src + "/sub");
  WriteFile(src + "/a.txt", RandomText(3 << 20, 1));
  WriteNoise(src + "/sub/noise.bin", 5 << 20, 2);
  WriteFile(src + "/empty", "");
  fs::create_symlink("a.txt", src + "/link");
  std::string p1 = Backup(a_, src);
  auto snap1 = Snapshot(src);
  WriteFile(src + "/b.txt", RandomText(1 << 20, 3));
  std::string p2 = Backup(a_, src);
  ASSERT_EQ(p2.size(), 64u);

  auto copy = Copy();
  ASSERT_EQ(copy.exit_code, 0) << copy.err;
  auto j = Json(copy);
  EXPECT_EQ(j.value("reencrypted", false), true) << copy.out;
  EXPECT_EQ(j.value("points_copied", -1), 2) << copy.out;
  EXPECT_GT(j.value("bytes_copied", 0), 5 << 20) << copy.out;
  EXPECT_GT(j.value("packs_written", 0), 0) << copy.out;
  ASSERT_EQ(j["copied_from"], nlohmann::json({p1, p2})) << copy.out;
  ASSERT_EQ(j["copied"].size(), 2u) << copy.out;
  std::string q1 = j["copied"][0], q2 = j["copied"][1];
  EXPECT_NE(q1, p1);  // new keys, new ids
  EXPECT_EQ(TargetPoints(), (std::vector<std::string>{q1, q2}));

  EXPECT_EQ(RestoreDiff(b_, q2, src, b_pass_), "");
  EXPECT_EQ(RestoreDiff(b_, q1, src, snap1, b_pass_), "");
  auto check = Reprise({"--password-file", pw_b_, "-r", b_, "check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  // The target does not open with the source's passphrase: it really has its own key.
  EXPECT_NE(Reprise({"-r", b_, "points"}).exit_code, 0);

  auto again = Copy();
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto k = Json(again);
  EXPECT_EQ(k.value("points_copied", -1), 0) << again.out;
  EXPECT_EQ(k.value("points_skipped", -1), 2) << again.out;
  EXPECT_EQ(k.value("blobs_copied", -1), 0) << again.out;
  EXPECT_EQ(k.value("packs_written", -1), 0) << again.out;
  EXPECT_EQ(TargetPoints().size(), 2u);

  // A new point: only it travels, and the text output says the copy re-encrypted.
  WriteFile(src + "/c.txt", RandomText(1 << 20, 4));
  std::string p3 = Backup(a_, src);
  auto text = Copy(false);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("copied point " + p3.substr(0, 8) + " as "), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("re-encrypted"), std::string::npos) << text.out;
  auto ids = TargetPoints();
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(RestoreDiff(b_, ids[2], src, b_pass_), "");
}

TEST_F(CopyTest, WrongSourcePassphraseFileIsRefused) {
  ASSERT_EQ(Reprise({"-r", a_, "init"}).exit_code, 0);
  std::string other = tmp_.path() + "/other-pw";
  WriteFile(other, "not the passphrase\n");
  auto r = Reprise({"-r", b_, "init", "--copy-keys-from", a_, "--from-password-file", other});
  EXPECT_EQ(r.exit_code, 11) << r.err;
  EXPECT_FALSE(fs::exists(b_ + "/config"));
}

TEST_F(CopyTest, DamagedSourceBlobIsNotPropagated) {
  ASSERT_EQ(Reprise({"-r", a_, "init"}).exit_code, 0);
  ASSERT_EQ(Reprise({"-r", b_, "init", "--copy-keys-from", a_}).exit_code, 0);
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src);
  WriteNoise(src + "/noise.bin", 3 << 20, 7);
  std::string point = Backup(a_, src);
  // Flip one byte inside the first blob of the biggest pack (a data pack).
  std::string biggest;
  for (const auto& e : fs::recursive_directory_iterator(a_ + "/data"))
    if (e.is_regular_file() && (biggest.empty() || e.file_size() > fs::file_size(biggest)))
      biggest = e.path();
  ASSERT_FALSE(biggest.empty());
  {
    std::fstream f(biggest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(1000);
    char c = 0;
    f.read(&c, 1);
    c ^= 0x5a;
    f.seekp(1000);
    f.write(&c, 1);
  }
  auto r = Reprise({"copy", "--from", a_, "--to", b_});
  EXPECT_EQ(r.exit_code, 12) << r.err;
  EXPECT_NE(r.err.find(point.substr(0, 8)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(fs::path(biggest).filename().string()), std::string::npos) << r.err;
  EXPECT_TRUE(PointIds(b_).empty());
}

// Counts the pack files under `repo`/data (temp files of unfinished writes included).
size_t PackFiles(const std::string& repo) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(repo + "/data", ec), end; !ec && it != end;
       it.increment(ec))
    if (it->is_regular_file(ec)) ++n;
  return n;
}

// Runs the binary and SIGKILLs it as soon as `ready()` says so (polled every millisecond),
// unless it ends first. Returns true when it was killed. Triggering on progress rather than
// on a delay keeps the test meaningful on fast and slow machines alike.
bool RunAndKillWhen(const std::vector<std::string>& args, const std::vector<std::string>& env,
                    const std::function<bool()>& ready) {
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ready()) {
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    if (std::chrono::steady_clock::now() > give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

TEST_F(CopyTest, KilledCopyResumesAndChecks) {
  ASSERT_EQ(Reprise({"-r", a_, "init", "--pack-size", "1"}).exit_code, 0);
  ASSERT_EQ(Reprise({"-r", b_, "init", "--copy-keys-from", a_}).exit_code, 0);
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src);
  for (int i = 0; i < 6; ++i) WriteNoise(src + "/f" + std::to_string(i), 6 << 20, 10 + i);
  std::string p1 = Backup(a_, src);
  WriteNoise(src + "/late", 4 << 20, 99);
  std::string p2 = Backup(a_, src);

  // Kill each copy once it has written some packs, later each round, until one finishes by
  // itself: every kill lands in the middle of writing packs. (A killed copy keeps whole points
  // only: the packs of the point it was copying are orphans that prune removes.)
  int killed = 0;
  for (int round = 0; round < 40; ++round) {
    size_t before = PackFiles(b_);
    size_t wanted = before + 2 + 6 * static_cast<size_t>(round);
    if (!RunAndKillWhen({REPRISE_BINARY, "copy", "--from", a_, "--to", b_}, env_,
                        [&] { return PackFiles(b_) >= wanted; }))
      break;
    ++killed;
  }
  EXPECT_GE(killed, 2) << "the copies ended before they could be killed: make the tree bigger";
  EXPECT_GT(PackFiles(b_), 0u);
  auto resumed = Reprise({"--json", "copy", "--from", a_, "--to", b_});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(PointIds(b_), (std::set<std::string>{p1, p2}));
  auto check = Reprise({"-r", b_, "--json", "check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(RestoreDiff(b_, p2, src), "");
  auto again = Reprise({"--json", "copy", "--from", a_, "--to", b_});
  EXPECT_EQ(Json(again).value("blobs_copied", -1), 0) << again.out;
}

TEST_F(CopyReencryptCliTest, KilledReencryptingCopyResumesAndChecks) {
  ASSERT_EQ(Reprise({"-r", a_, "init", "--pack-size", "1"}).exit_code, 0);
  ASSERT_EQ(Reprise({"--password-file", pw_b_, "-r", b_, "init", "--pack-size", "1"}).exit_code,
            0);
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src);
  // Five points, each adding two files: the copy is killed inside various points.
  std::vector<std::map<std::string, EntryFacts>> snaps;
  std::vector<std::string> sources;
  for (int i = 0; i < 5; ++i) {
    WriteNoise(src + "/f" + std::to_string(2 * i), 4 << 20, 20 + 2 * i);
    WriteNoise(src + "/f" + std::to_string(2 * i + 1), 4 << 20, 21 + 2 * i);
    sources.push_back(Backup(a_, src));
    snaps.push_back(Snapshot(src));
  }

  std::vector<std::string> args = {REPRISE_BINARY, "--password-file", pw_b_, "copy", "--from",
                                   a_, "--to", b_, "--from-password-file", pw_};
  int killed = 0;
  for (int round = 0; round < 40; ++round) {
    size_t before = PackFiles(b_);
    size_t wanted = before + 2 + 5 * static_cast<size_t>(round);
    if (!RunAndKillWhen(args, env_, [&] { return PackFiles(b_) >= wanted; })) break;
    ++killed;
  }
  EXPECT_GE(killed, 2) << "the copies ended before they could be killed: make the tree bigger";
  auto resumed = Copy();
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  // Exactly one copy of each point, whatever the kills: oldest first, as in the source.
  auto ids = TargetPoints();
  ASSERT_EQ(ids.size(), sources.size());
  auto check = Reprise({"--password-file", pw_b_, "-r", b_, "--json", "check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  for (size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(RestoreDiff(b_, ids[i], src, snaps[i], b_pass_), "") << "point " << i;
  auto again = Copy();
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(Json(again).value("points_copied", -1), 0) << again.out;
  EXPECT_EQ(Json(again).value("blobs_copied", -1), 0) << again.out;
  EXPECT_EQ(TargetPoints().size(), sources.size());
}

// ---- local -> S3 -> S3 on Ceph RGW ----

class CopyS3Test : public CopyTest {
 protected:
  void SetUp() override {
    CopyTest::SetUp();
    rgw_ = LoadRgwEnv();
    if (!rgw_)
      GTEST_SKIP() << "no S3 server: set REPRISE_TEST_S3_ENV_FILE (tests/services/rgw-start.sh)";
    env_.push_back("AWS_ACCESS_KEY_ID=" + rgw_->access_key);
    env_.push_back("AWS_SECRET_ACCESS_KEY=" + rgw_->secret_key);
  }
  void TearDown() override {
    for (auto& s : buckets_) {
      auto all = s->List("");
      if (all.ok())
        for (const auto& o : *all) (void)s->Delete(o.key);
      (void)s->DeleteBucket();
    }
  }

  // Creates a bucket for this test, owned by the user of these keys (default: the main
  // user); returns its repository URL.
  std::string NewBucketRepo(const std::string& tag, std::string access_key = "",
                            std::string secret_key = "") {
    if (access_key.empty()) access_key = rgw_->access_key;
    if (secret_key.empty()) secret_key = rgw_->secret_key;
    std::string bucket = rgw_->bucket_prefix + "-copy-" + tag + "-" + std::to_string(getpid());
    auto s = S3Storage::Create(S3Options{
        .bucket = bucket,
        .prefix = "",
        .endpoint = rgw_->endpoint,
        .region = rgw_->region,
        .path_style = true,
        .credentials = {.access_key_id = access_key, .secret_access_key = secret_key}});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return "";
    Status st = (*s)->CreateBucket();
    EXPECT_TRUE(st.ok()) << st.ToString();
    buckets_.push_back(std::move(*s));
    return "s3://" + bucket + "/repo?endpoint=" + rgw_->endpoint + "&region=" + rgw_->region +
           "&path_style=1";
  }

  std::optional<RgwEnv> rgw_;
  std::vector<std::unique_ptr<S3Storage>> buckets_;
};

TEST_F(CopyS3Test, LocalToS3ToS3RestoresIdentically) {
  std::string warm = NewBucketRepo("warm"), cold = NewBucketRepo("cold");
  ASSERT_FALSE(warm.empty());
  ASSERT_FALSE(cold.empty());
  ASSERT_EQ(Reprise({"-r", a_, "init"}).exit_code, 0);
  auto i1 = Reprise({"-r", warm, "init", "--copy-keys-from", a_});
  ASSERT_EQ(i1.exit_code, 0) << i1.err;
  auto i2 = Reprise({"-r", cold, "init", "--copy-keys-from", warm});
  ASSERT_EQ(i2.exit_code, 0) << i2.err;

  std::string src = tmp_.path() + "/src";
  fs::create_directories(src + "/nested");
  WriteFile(src + "/a.txt", RandomText(2 << 20, 1));
  WriteNoise(src + "/nested/noise.bin", 20 << 20, 2);
  WriteFile(src + "/empty", "");
  std::string p1 = Backup(a_, src);
  ASSERT_EQ(p1.size(), 64u);

  auto c1 = Reprise({"--json", "copy", "--from", a_, "--to", warm});
  ASSERT_EQ(c1.exit_code, 0) << c1.err;
  EXPECT_EQ(Json(c1).value("points_copied", -1), 1);
  auto c2 = Reprise({"--json", "copy", "--from", warm, "--to", cold});
  ASSERT_EQ(c2.exit_code, 0) << c2.err;
  EXPECT_EQ(Json(c2).value("points_copied", -1), 1);
  EXPECT_EQ(PointIds(cold), (std::set<std::string>{p1}));
  EXPECT_EQ(RestoreDiff(cold, p1, src), "");
  auto check = Reprise({"-r", cold, "check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

// Two sites on RGW owned by two users, each site's keys given by a secret of the plan (one
// from environment variables, one from a file), and no AWS_* credentials anywhere: backup to
// one, copy to the other, restore from it. Each key can reach only its own bucket, so a copy
// that used one key for both sites would be refused. A wrong secret is one error naming the
// site and the secret, never the value.
TEST_F(CopyS3Test, SiteCredentialsFromPlanSecrets) {
  if (rgw_->other_access_key.empty() || rgw_->other_secret_key.empty())
    GTEST_SKIP() << "the RGW env has no second user (REPRISE_TEST_S3_OTHER_*)";
  const RgwEnv& g = *rgw_;
  std::string primary = NewBucketRepo("site-pri");
  std::string dr = NewBucketRepo("site-dr", g.other_access_key, g.other_secret_key);
  ASSERT_FALSE(primary.empty());
  ASSERT_FALSE(dr.empty());
  // The repositories are created with -r and AWS_* (init takes no site credentials here);
  // different master keys, so the copy re-encrypts.
  auto i1 = Reprise({"-r", primary, "init"});
  ASSERT_EQ(i1.exit_code, 0) << i1.err;
  auto i2 = Reprise({"-r", dr, "init"}, {"AWS_ACCESS_KEY_ID=" + g.other_access_key,
                                         "AWS_SECRET_ACCESS_KEY=" + g.other_secret_key});
  ASSERT_EQ(i2.exit_code, 0) << i2.err;

  // From here on: no credentials in the environment or in a credentials file.
  std::erase_if(env_, [](const std::string& e) { return e.starts_with("AWS_"); });
  for (const char* v : {"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=",
                        "AWS_PROFILE="})
    env_.push_back(v);
  env_.push_back("AWS_SHARED_CREDENTIALS_FILE=" + tmp_.path() + "/no-credentials");
  env_.push_back("HOME=" + tmp_.path());
  std::vector<std::string> primary_keys = {"PRI_KEY_ID=" + g.access_key,
                                           "PRI_SECRET=" + g.secret_key};
  std::string dr_file = tmp_.path() + "/dr-credentials";
  WriteFile(dr_file, g.other_access_key + "\n" + g.other_secret_key + "\n");

  std::string src = tmp_.path() + "/src";
  fs::create_directories(src + "/sub");
  WriteFile(src + "/a.txt", RandomText(1 << 20, 5));
  WriteNoise(src + "/sub/noise.bin", 3 << 20, 6);
  std::string plan = tmp_.path() + "/reprise.yaml";
  WriteFile(plan, "version: 1\nname: test\nsecrets:\n"
                  "  s3_primary: {env: [PRI_KEY_ID, PRI_SECRET]}\n"
                  "  s3_dr: {file: " + dr_file + "}\n"
                  "sites:\n  primary:\n    repository: " + primary +
                  "\n    credentials: s3_primary\n"
                  "  dr:\n    role: cold\n    repository: " + dr +
                  "\n    credentials: s3_dr\n"
                  "components:\n  docs:\n    kind: files\n    class: documents\n"
                  "    paths: [" + src + "]\n");

  // Without the secrets' variables: the site and the variable are named.
  auto unset = Reprise({"--plan", plan, "points"});
  EXPECT_NE(unset.exit_code, 0);
  EXPECT_NE(unset.err.find("site 'primary'"), std::string::npos) << unset.err;
  EXPECT_NE(unset.err.find("'PRI_KEY_ID'"), std::string::npos) << unset.err;

  auto backup = Reprise({"--plan", plan, "--json", "backup", src}, primary_keys);
  ASSERT_EQ(backup.exit_code, 0) << backup.err;
  std::string point = Json(backup).value("point", "");
  ASSERT_EQ(point.size(), 64u) << backup.out;
  // The site's keys win over AWS_* variables (here: the other user's, refused on primary).
  auto with_env = Reprise({"--plan", plan, "--json", "points"},
                          {primary_keys[0], primary_keys[1],
                           "AWS_ACCESS_KEY_ID=" + g.other_access_key,
                           "AWS_SECRET_ACCESS_KEY=" + g.other_secret_key});
  ASSERT_EQ(with_env.exit_code, 0) << with_env.err;
  EXPECT_EQ(Json(with_env).size(), 1u) << with_env.out;

  auto copy =
      Reprise({"--plan", plan, "--json", "copy", "--from", "primary", "--to", "dr"}, primary_keys);
  ASSERT_EQ(copy.exit_code, 0) << copy.err;
  EXPECT_EQ(Json(copy).value("points_copied", -1), 1) << copy.out;
  EXPECT_GT(Json(copy).value("blobs_copied", 0), 0) << copy.out;

  std::string target = tmp_.path() + "/restored";
  auto restore =
      Reprise({"--plan", plan, "--site", "dr", "restore", "latest", "--target", target});
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  EXPECT_EQ(Diff(Snapshot(src), Snapshot(target + src)), "");

  // A wrong secret key for dr: one error line naming the site and its secret, no value.
  std::string wrong = "wrongSecretKey0123456789abcdefghijklmnopq";
  WriteFile(dr_file, g.other_access_key + "\n" + wrong + "\n");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--plan", plan, "copy", "--from", "primary", "--to", "dr"},
           {"--plan", plan, "--site", "dr", "points"}}) {
    auto r = Reprise(args, primary_keys);
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.err.find("site 'dr'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("secret 's3_dr'"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(wrong), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(g.other_secret_key), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(g.secret_key), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // A file of one line is refused before any request, naming the site.
  WriteFile(dr_file, g.other_access_key + "\n");
  auto short_file = Reprise({"--plan", plan, "--site", "dr", "points"});
  EXPECT_NE(short_file.exit_code, 0);
  EXPECT_NE(short_file.err.find("site 'dr'"), std::string::npos) << short_file.err;
  EXPECT_NE(short_file.err.find("2 or 3 lines"), std::string::npos) << short_file.err;
}

}  // namespace
}  // namespace reprise::testing
