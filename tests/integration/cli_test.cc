// The real binary on real directories: what a user does, checked byte for byte and metadata
// for metadata.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_.path() + "/repo";
    pw_ = tmp_.path() + "/pw";
    WriteFile(pw_, "integration passphrase\n");
    chmod(pw_.c_str(), 0600);
    env_ = {"REPRISE_REPOSITORY=" + repo_, "REPRISE_PASSWORD_FILE=" + pw_};
    auto r = Reprise({"init"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  RunResult Reprise(std::vector<std::string> args, std::vector<std::string> extra_env = {}) {
    args.insert(args.begin(), REPRISE_BINARY);
    auto env = env_;
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    return RunCommand(args, env);
  }

  nlohmann::json Json(const RunResult& r) {
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  }

  // Backs up `dir`, returns the point id.
  std::string Backup(const std::string& dir, int expect_code = 0) {
    auto r = Reprise({"--json", "backup", dir});
    EXPECT_EQ(r.exit_code, expect_code) << r.err;
    auto j = Json(r);
    return j.is_object() ? j.value("point", "") : "";
  }

  // Restores `point` into a new dir and returns the restored copy of `source`.
  std::string Restore(const std::string& point, const std::string& source) {
    std::string target = tmp_.path() + "/restore-" + std::to_string(++restores_);
    auto r = Reprise({"restore", point, "--target", target});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return target + source;
  }

  TempDir tmp_;
  std::string repo_, pw_;
  std::vector<std::string> env_;
  int restores_ = 0;
};

// A tree with every case the files component promises to keep.
void MakeOddTree(const std::string& root) {
  fs::create_directories(root + "/nested/deeper/deepest");
  fs::create_directories(root + "/empty-dir");
  WriteFile(root + "/empty-file", "");
  WriteFile(root + "/nested/deeper/deepest/text.txt", RandomText(3 << 20, 1));
  WriteFile(root + "/name with spaces", "spaces\n");
  WriteFile(root + "/name\nwith\nnewlines", "newlines\n");
  WriteFile(root + "/bad-utf8-\xff\xfe-name", "bytes\n");
  WriteFile(root + "/caf\xc3\xa9", "utf-8\n");
  std::string big = RandomText(9 << 20, 2);
  WriteFile(root + "/big.bin", big);
  fs::create_symlink("nested/deeper/deepest/text.txt", root + "/link-to-text");
  fs::create_symlink("/does/not/exist", root + "/dangling");
  WriteFile(root + "/hard-a", "shared inode\n");
  ASSERT_EQ(link((root + "/hard-a").c_str(), (root + "/nested/hard-b").c_str()), 0);
  ASSERT_EQ(mkfifo((root + "/a-fifo").c_str(), 0640), 0);
  // Sparse: 256 MiB apparent, two 64 KiB data regions.
  int fd = open((root + "/sparse").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  std::string region = RandomText(65536, 3);
  ASSERT_EQ(pwrite(fd, region.data(), region.size(), 1 << 20), 65536);
  ASSERT_EQ(pwrite(fd, region.data(), region.size(), 200 << 20), 65536);
  ASSERT_EQ(ftruncate(fd, 256 << 20), 0);
  close(fd);
  WriteFile(root + "/setuid", "x");
  chmod((root + "/setuid").c_str(), 04755);
  WriteFile(root + "/private", "x");
  chmod((root + "/private").c_str(), 0600);
  fs::create_directories(root + "/sticky");
  chmod((root + "/sticky").c_str(), 01777);
  if (geteuid() == 0) ASSERT_EQ(lchown((root + "/private").c_str(), 1234, 5678), 0);
  struct timespec times[2] = {{1000000000, 123456789}, {1000000000, 123456789}};
  ASSERT_EQ(utimensat(AT_FDCWD, (root + "/big.bin").c_str(), times, 0), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, (root + "/nested").c_str(), times, 0), 0);
}

TEST_F(CliTest, OddTreeRoundTripsExactly) {
  std::string src = tmp_.path() + "/src";
  MakeOddTree(src);
  auto want = Snapshot(src);
  std::string point = Backup(src);
  ASSERT_EQ(point.size(), 64u);
  auto got = Snapshot(Restore(point, src));
  EXPECT_EQ(Diff(want, got), "");
  EXPECT_GE(want.size(), 18u);
}

TEST_F(CliTest, UnchangedSecondBackupWritesAlmostNothing) {
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src);
  for (int i = 0; i < 50; ++i) WriteFile(src + "/f" + std::to_string(i), RandomText(200000, i));
  Backup(src);
  auto r = Reprise({"--json", "backup", src});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto stats = Json(r)["stats"];
  EXPECT_EQ(stats["bytes"].get<uint64_t>(), 50u * 200000u);
  // The manifest lists the source's ancestors too (here under /tmp), whose mtimes other
  // processes may change between the two backups: then the manifest (~15 KB) is stored anew.
  // The 10 MB of file data never is.
  EXPECT_LT(stats["new_bytes"].get<uint64_t>(), 64u << 10)
      << "an unchanged tree must store nothing but, at most, its manifest";
  auto component = Json(r)["components"][0]["stats"];
  EXPECT_EQ(component["bytes_read"].get<uint64_t>(), 0u) << "unchanged files were read again";
  EXPECT_EQ(component["reused_bytes"].get<uint64_t>(), 50u * 200000u);
}

TEST_F(CliTest, ChangedContentUnderAnOldMtimeIsStillSaved) {
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src);
  WriteFile(src + "/f", RandomText(100000, 1));
  struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (src + "/f").c_str(), times, 0), 0);
  Backup(src);
  // Same size, same mtime, different bytes: only ctime tells. It must be read again.
  WriteFile(src + "/f", RandomText(100000, 2));
  ASSERT_EQ(utimensat(AT_FDCWD, (src + "/f").c_str(), times, 0), 0);
  auto want = Snapshot(src);
  std::string point = Backup(src);
  EXPECT_EQ(Diff(want, Snapshot(Restore(point, src))), "");
}

TEST_F(CliTest, SmallChangeStoresOnlyNearbyChunks) {
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src);
  std::string big = RandomText(48 << 20, 7);
  WriteFile(src + "/big", big);
  Backup(src);
  big.insert(big.size() / 2, "an insertion in the middle");
  WriteFile(src + "/big", big);
  auto r = Reprise({"--json", "backup", src});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto new_bytes = Json(r)["stats"]["new_bytes"].get<uint64_t>();
  EXPECT_GT(new_bytes, 0u);
  EXPECT_LT(new_bytes, big.size() / 4) << "an insertion re-stored far more than its neighbourhood";
}

TEST_F(CliTest, ForgetAndPruneKeepExactlyThePolicy) {
  std::string src = tmp_.path() + "/src";
  fs::create_directories(src);
  std::vector<std::string> points;
  std::vector<std::map<std::string, EntryFacts>> snaps;
  for (int i = 0; i < 5; ++i) {
    WriteFile(src + "/changing", RandomText(3 << 20, 100 + i));
    WriteFile(src + "/gen" + std::to_string(i), RandomText(1 << 20, 200 + i));
    snaps.push_back(Snapshot(src));
    points.push_back(Backup(src));
  }
  auto r = Reprise({"forget", "--keep-last", "2", "--prune"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto listed = Json(Reprise({"--json", "points"}));
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0]["id"], points[3]);
  EXPECT_EQ(listed[1]["id"], points[4]);
  auto check = Reprise({"check", "--read-data"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_EQ(Diff(snaps[3], Snapshot(Restore(points[3], src))), "");
  EXPECT_EQ(Diff(snaps[4], Snapshot(Restore(points[4], src))), "");
  // The forgotten points' unique data is gone from the repository.
  auto stats = Json(Reprise({"--json", "stats"}));
  EXPECT_LT(stats["unique_bytes"].get<uint64_t>(), 14u << 20);
}

TEST_F(CliTest, WrongPassphraseExitsElevenAndSaysSo) {
  std::string other = tmp_.path() + "/other-pw";
  WriteFile(other, "not it");
  auto r = Reprise({"points"}, {"REPRISE_PASSWORD_FILE=" + other});
  EXPECT_EQ(r.exit_code, 11);
  EXPECT_NE(r.err.find("wrong passphrase"), std::string::npos) << r.err;
}

TEST_F(CliTest, NotARepositoryAndMissingPasswordAreClear) {
  auto r = Reprise({"points"}, {"REPRISE_REPOSITORY=" + tmp_.path() + "/nothing-here"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not a reprise repository"), std::string::npos) << r.err;
  auto none = RunCommand({REPRISE_BINARY, "points"}, {"REPRISE_REPOSITORY=" + repo_});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("password"), std::string::npos) << none.err;
}

TEST_F(CliTest, KeysCanBeAddedChangedAndRemoved) {
  std::string second = tmp_.path() + "/second";
  WriteFile(second, "second passphrase");
  ASSERT_EQ(Reprise({"key", "add", "--new-password-file", second}).exit_code, 0);
  EXPECT_EQ(Reprise({"points"}, {"REPRISE_PASSWORD_FILE=" + second}).exit_code, 0);
  auto keys = Json(Reprise({"--json", "key", "list"}));
  ASSERT_EQ(keys.size(), 2u);
  std::string current;
  for (const auto& k : keys)
    if (k["current"]) current = k["id"];
  auto refuse = Reprise({"key", "remove", current.substr(0, 8)});
  EXPECT_NE(refuse.exit_code, 0);
  // The second key removes the first.
  EXPECT_EQ(Reprise({"key", "remove", current.substr(0, 8)}, {"REPRISE_PASSWORD_FILE=" + second})
                .exit_code,
            0);
  EXPECT_EQ(Reprise({"points"}).exit_code, 11);
  std::string third = tmp_.path() + "/third";
  WriteFile(third, "third passphrase");
  ASSERT_EQ(Reprise({"key", "passwd", "--new-password-file", third},
                    {"REPRISE_PASSWORD_FILE=" + second})
                .exit_code,
            0);
  EXPECT_EQ(Reprise({"points"}, {"REPRISE_PASSWORD_FILE=" + second}).exit_code, 11);
  EXPECT_EQ(Reprise({"points"}, {"REPRISE_PASSWORD_FILE=" + third}).exit_code, 0);
}

TEST_F(CliTest, PlanBackupAndPlanCheck) {
  std::string src = tmp_.path() + "/docs";
  fs::create_directories(src);
  WriteFile(src + "/a.txt", "hello");
  std::string plan = tmp_.path() + "/reprise.yaml";
  WriteFile(plan, "version: 1\nname: test\nsites:\n  primary:\n    repository: " + repo_ +
                      "\ncomponents:\n  docs:\n    kind: files\n    class: documents\n"
                      "    paths: [" + src + "]\n");
  auto check = Reprise({"--plan", plan, "plan", "check"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  auto r = RunCommand({REPRISE_BINARY, "--plan", plan, "--json", "backup"},
               {"REPRISE_PASSWORD_FILE=" + pw_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json(r);
  EXPECT_EQ(j["components"][0]["name"], "docs");
  WriteFile(plan, "version: 1\ncomponents:\n  docs:\n    kind: filez\n    class: documents\n");
  auto bad = Reprise({"--plan", plan, "plan", "check"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("reprise.yaml:4:"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("components.docs.kind"), std::string::npos) << bad.err;
}

// Components backed up side by side each count what they stored themselves: the numbers add
// up to the point's, and each is about its own data, not the other's.
TEST_F(CliTest, ComponentsRunningAtOnceEachCountTheirOwnNewBytes) {
  std::string a = tmp_.path() + "/a", b = tmp_.path() + "/b";
  fs::create_directories(a);
  fs::create_directories(b);
  for (int i = 0; i < 8; ++i) WriteFile(a + "/f" + std::to_string(i), RandomText(1 << 20, 10 + i));
  for (int i = 0; i < 2; ++i) WriteFile(b + "/f" + std::to_string(i), RandomText(1 << 20, 30 + i));
  std::string plan = tmp_.path() + "/reprise.yaml";
  WriteFile(plan, "version: 1\nname: test\ncomponents:\n  big:\n    kind: files\n"
                  "    class: documents\n    paths: [" + a + "]\n  small:\n    kind: files\n"
                  "    class: documents\n    paths: [" + b + "]\n");
  auto r = Reprise({"--plan", plan, "--json", "backup", "--parallel", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = Json(r);
  ASSERT_EQ(j["components"].size(), 2u);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& c : j["components"]) by_name[c["name"].get<std::string>()] = c["stats"];
  ASSERT_TRUE(by_name["big"].contains("new_bytes")) << by_name["big"].dump();
  ASSERT_TRUE(by_name["small"].contains("new_bytes")) << by_name["small"].dump();
  const uint64_t big_new = by_name["big"]["new_bytes"].get<uint64_t>();
  const uint64_t small_new = by_name["small"]["new_bytes"].get<uint64_t>();
  // New bytes are plaintext: each component's files plus its own manifest.
  EXPECT_GE(big_new, 8u << 20);
  EXPECT_LT(big_new, (8u << 20) + (1u << 20));
  EXPECT_GE(small_new, 2u << 20);
  EXPECT_LT(small_new, (2u << 20) + (1u << 20));
  EXPECT_GT(by_name["big"]["stored_bytes"].get<uint64_t>(), 0u);
  EXPECT_GT(by_name["small"]["stored_bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(big_new + small_new, j["stats"]["new_bytes"].get<uint64_t>());
}

TEST_F(CliTest, FailingComponentMakesAPartialPoint) {
  std::string src = tmp_.path() + "/docs";
  fs::create_directories(src);
  WriteFile(src + "/a.txt", "hello");
  std::string plan = tmp_.path() + "/reprise.yaml";
  WriteFile(plan, "version: 1\nname: test\ncomponents:\n  docs:\n    kind: files\n"
                  "    class: documents\n    paths: [" + src + "]\n  vectors:\n    kind: qdrant\n"
                  "    class: embeddings\n    url: http://127.0.0.1:1\n");
  auto r = Reprise({"--plan", plan, "--json", "backup"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  auto j = Json(r);
  EXPECT_EQ(j["status"], "partial");
  auto listed = Json(Reprise({"--json", "points"}));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["status"], "partial");
  // The component that worked restores.
  auto target = tmp_.path() + "/t";
  auto restored = Reprise({"restore", "latest", "--target", target, "--component", "docs"});
  EXPECT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_TRUE(fs::exists(target + src + "/a.txt"));
}

// A plan's command component through the CLI: its output is backed up (with Kubernetes
// Secrets redacted), and restore pipes it into the plan's restore command.
TEST_F(CliTest, CommandComponentBacksUpOutputAndRestoresThroughItsCommand) {
  std::string dir = tmp_.path();
  WriteFile(dir + "/secret.yaml",
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n"
            "  metadata: {name: db}\n  data: {password: c3VwZXJzZWNyZXQ=}\n"
            "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: cfg}\n"
            "  data: {mode: fast}\n");
  WriteFile(dir + "/plan.yaml",
            "version: 1\nname: cmd\ncomponents:\n"
            "  k8s:\n    kind: command\n    class: configuration\n"
            "    backup: \"cat " + dir + "/secret.yaml\"\n"
            "    restore: \"cat > " + dir + "/restored.yaml\"\n"
            "    redact: kubernetes-secrets\n");
  auto b = Reprise({"--plan", dir + "/plan.yaml", "--json", "backup"});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  auto r = Reprise({"--plan", dir + "/plan.yaml", "restore", "latest", "--component", "k8s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::ifstream in(dir + "/restored.yaml");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str().find("c3VwZXJzZWNyZXQ="), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("REDACTED"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("mode: fast"), std::string::npos) << text.str();
}

// reprise re-executes itself once with GLIBC_TUNABLES asking malloc for huge pages where the
// kernel gives them on request (src/cli/malloc_tuning.h); the commands it runs must not
// inherit that, and a GLIBC_TUNABLES of the user's own is left alone (and passed on).
TEST_F(CliTest, MallocTuningReachesReprisesHeapButNotItsCommands) {
  std::string dir = tmp_.path();
  // The command prints its own environment, then the one reprise (its parent) started with
  // and reprise's process name.
  WriteFile(dir + "/plan.yaml",
            "version: 1\nname: env\ncomponents:\n"
            "  env:\n    kind: command\n    class: configuration\n"
            "    backup: \"env; echo ---; tr '\\\\0' '\\\\n' < /proc/$PPID/environ; echo;"
            " echo comm=$(cat /proc/$PPID/comm)\"\n"
            "    restore: \"cat > " + dir + "/restored.txt\"\n");
  auto read_back = [&](std::vector<std::string> extra_env) {
    auto b = Reprise({"--plan", dir + "/plan.yaml", "--json", "backup"}, extra_env);
    EXPECT_EQ(b.exit_code, 0) << b.out << b.err;
    auto r = Reprise({"--plan", dir + "/plan.yaml", "restore", "latest", "--component", "env"},
                     extra_env);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::ifstream in(dir + "/restored.txt");
    std::stringstream text;
    text << in.rdbuf();
    std::string all = text.str();
    size_t cut = all.find("---\n");
    EXPECT_NE(cut, std::string::npos) << all;
    if (cut == std::string::npos) cut = all.size();
    return std::pair<std::string, std::string>(all.substr(0, cut), all.substr(cut));
  };

  auto [child, parent] = read_back({});
  EXPECT_EQ(child.find("GLIBC_TUNABLES"), std::string::npos) << child;
  EXPECT_EQ(child.find("REPRISE_MALLOC_REEXEC"), std::string::npos) << child;
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(thp, modes);
  bool on_request = modes.find("[madvise]") != std::string::npos;
  EXPECT_EQ(parent.find("GLIBC_TUNABLES=glibc.malloc.hugetlb=1") != std::string::npos, on_request)
      << "transparent huge pages: " << modes << "\nreprise started with:\n" << parent;
  // Re-executed or not, the process keeps its name (ps, pgrep): not "exe".
  EXPECT_NE(parent.find("comm=reprise\n"), std::string::npos) << parent;

  auto [child2, parent2] = read_back({"GLIBC_TUNABLES=glibc.malloc.tcache_count=7"});
  EXPECT_NE(child2.find("GLIBC_TUNABLES=glibc.malloc.tcache_count=7\n"), std::string::npos)
      << child2;
  EXPECT_EQ(parent2.find("hugetlb"), std::string::npos) << parent2;

  auto [child3, parent3] = read_back({"REPRISE_HUGE_PAGES=0"});
  EXPECT_EQ(parent3.find("GLIBC_TUNABLES"), std::string::npos) << parent3;
}

}  // namespace
}  // namespace reprise::testing
