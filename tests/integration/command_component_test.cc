// The command component (src/components/command/command_component.h) against a real
// repository: generated output round-trips byte-exact through a restore command, a failing
// command fails the component (and makes the point partial) with its stderr tail, a fake
// `kubectl` printing Secrets is stored redacted, and a restore without a command writes a file.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/thread_pool.h"
#include "components/command/command_component.h"
#include "component_repo.h"
#include "harness.h"
#include "orchestrate/backup.h"
#include "repo/content.h"
#include "repo/crypto.h"
#include "repo/repository.h"
#include "storage/local/local_storage.h"

namespace reprise::testing {
namespace {

using nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Sha256Hex(const std::string& s) { return Sha256(AsBytes(s)).Hex(); }

// A repository in a temp dir, with the engine's sink and source around it.
class TestRepo : public ComponentRepo {
 public:
  explicit TestRepo(const std::string& dir) : ComponentRepo(dir, "cmd") {}
  // The one stored stream.
  std::string Stored() {
    auto entries = Entries();
    if (entries.size() != 1) return "<" + std::to_string(entries.size()) + " entries>";
    return Read(entries[0]["contents"][0]);
  }
};

class CommandComponentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = std::make_unique<TestRepo>(dir_.path() + "/repo");
    ASSERT_NE(repo_->repo(), nullptr);
  }
  TempDir dir_;
  std::unique_ptr<TestRepo> repo_;
};

TEST_F(CommandComponentTest, FiveMegabytesRoundTripThroughARestoreCommand) {
  const std::string printed = dir_.path() + "/printed.bin";
  const std::string restored = dir_.path() + "/restored.bin";
  constexpr size_t kSize = 5 << 20;
  CommandComponent c(CommandComponentOptions{
      .name = "generated",
      // `tee` keeps a copy of exactly what the command printed.
      .backup = "head -c " + std::to_string(kSize) + " /dev/urandom | tee '" + printed + "'",
      .restore = "cat > '" + restored + "'",
  });
  auto info = repo_->Backup(c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const std::string want = ReadFile(printed);
  ASSERT_EQ(want.size(), kSize);
  EXPECT_EQ((*info)["bytes"], kSize);
  EXPECT_EQ((*info)["exit_code"], 0);
  EXPECT_EQ((*info)["command"],
            "head -c " + std::to_string(kSize) + " /dev/urandom | tee '" + printed + "'");
  EXPECT_TRUE((*info)["redact"].is_null());

  auto entries = repo_->Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["type"], "stdout");
  EXPECT_EQ(entries[0]["bytes"], kSize);
  EXPECT_EQ(entries[0]["redacted"], false);
  EXPECT_EQ(entries[0]["sha256"], Sha256Hex(want));
  EXPECT_EQ(repo_->Stored(), want);

  Status st = repo_->Restore(c, RestoreOptions{});
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::string got = ReadFile(restored);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "restored bytes differ";
}

TEST_F(CommandComponentTest, FailingCommandFailsWithItsStderrTailNeverTheEnvironment) {
  const std::string script =
      "echo first-stderr-line >&2; echo some output; "
      "for i in $(seq 1 40); do echo progress $i >&2; done; "
      "echo 'error: the server could not find the requested resource' >&2; exit 3";
  CommandComponentOptions o{.name = "k8s",
                            .backup = script,
                            .env = {{"KUBE_TOKEN", "env-secret-value-42"}}};
  CommandComponent c(o);
  auto info = repo_->Backup(c);
  ASSERT_FALSE(info.ok());
  const std::string msg = info.status().message();
  EXPECT_EQ(info.status().code(), Code::kFailedPrecondition) << msg;
  EXPECT_NE(msg.find("component 'k8s'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("exited with status 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the server could not find the requested resource"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("progress 40"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("first-stderr-line"), std::string::npos) << "not only the tail: " << msg;
  EXPECT_EQ(msg.find("env-secret-value-42"), std::string::npos) << msg;

  // Through the orchestrator: the point is partial and says which component failed and why;
  // the other component is kept.
  BackupJob job;
  job.items.push_back(BackupItem{.name = "k8s",
                                 .kind = "command",
                                 .component = std::make_unique<CommandComponent>(o)});
  job.items.push_back(BackupItem{
      .name = "ok",
      .kind = "command",
      .component = std::make_unique<CommandComponent>(
          CommandComponentOptions{.name = "ok", .backup = "echo fine"})});
  auto point = RunBackup(*repo_->repo(), job, repo_->clock(), nullptr);
  ASSERT_TRUE(point.ok()) << point.status().ToString();
  EXPECT_EQ(point->status, "partial");
  ASSERT_EQ(point->components.size(), 2u);
  EXPECT_EQ(point->components[0].status, "failed");
  EXPECT_NE(point->components[0].error.find("the server could not find"), std::string::npos)
      << point->components[0].error;
  EXPECT_EQ(point->components[0].error.find("env-secret-value-42"), std::string::npos);
  EXPECT_EQ(point->components[1].status, "ok");
  EXPECT_EQ(point->components[1].info["bytes"], 5);
}

TEST_F(CommandComponentTest, EnvironmentReachesTheCommand) {
  CommandComponent c(CommandComponentOptions{
      .name = "env", .backup = "printf '%s' \"$REPRISE_TEST_VALUE\"",
      .env = {{"REPRISE_TEST_VALUE", "from-the-plan"}}});
  auto info = repo_->Backup(c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(repo_->Stored(), "from-the-plan");
}

TEST_F(CommandComponentTest, TimeoutStopsTheCommand) {
  CommandComponent c(CommandComponentOptions{
      .name = "slow", .backup = "echo started; sleep 30", .timeout = std::chrono::seconds(1)});
  auto t0 = std::chrono::steady_clock::now();
  auto info = repo_->Backup(c);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("timed out"), std::string::npos)
      << info.status().ToString();
  EXPECT_LT(secs, 15.0);
}

// A stand-in for `kubectl get secrets,configmaps -o yaml`.
const char* kFakeKubectl = R"(#!/bin/sh
[ "$1" = get ] || { echo "fake kubectl: unexpected $*" >&2; exit 2; }
cat <<'YAML'
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata:
    name: rag-db
    namespace: rag
    annotations:
      kubectl.kubernetes.io/last-applied-configuration: |
        {"apiVersion":"v1","data":{"password":"cGctc3VwZXItc2VjcmV0"},"kind":"Secret","metadata":{"name":"rag-db","namespace":"rag"},"type":"Opaque"}
  type: Opaque
  data:
    password: cGctc3VwZXItc2VjcmV0
    username: cmFn
- apiVersion: v1
  kind: Secret
  metadata:
    name: qdrant-key
    namespace: rag
  stringData:
    api-key: qdrant-plain-api-key
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: rag-settings
    namespace: rag
  data:
    QDRANT_URL: http://qdrant:6333
    REPLICAS: "3"
metadata:
  resourceVersion: ""
YAML
)";

TEST_F(CommandComponentTest, FakeKubectlOutputIsStoredRedacted) {
  const std::string bin = dir_.path() + "/bin";
  std::filesystem::create_directories(bin);
  WriteFile(bin + "/kubectl", kFakeKubectl);
  ASSERT_EQ(chmod((bin + "/kubectl").c_str(), 0755), 0);
  const char* path = getenv("PATH");
  CommandComponent c(CommandComponentOptions{
      .name = "k8s-secrets",
      .backup = "kubectl get secrets,configmaps -n rag -o yaml",
      .env = {{"PATH", bin + ":" + (path ? path : "/usr/bin:/bin")}},
      .redact = "kubernetes-secrets"});
  auto info = repo_->Backup(c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ((*info)["redact"], "kubernetes-secrets");
  EXPECT_EQ((*info)["secrets_redacted"], 2);

  const std::string stored = repo_->Stored();
  for (const char* secret : {"cGctc3VwZXItc2VjcmV0", "pg-super-secret", "cmFn",
                             "qdrant-plain-api-key"}) {
    EXPECT_EQ(stored.find(secret), std::string::npos) << "'" << secret << "' stored:\n" << stored;
  }
  // What is not secret is kept: names, keys, the ConfigMap's values.
  for (const char* kept : {"rag-db", "qdrant-key", "password", "username", "api-key",
                           "http://qdrant:6333", "\"3\"", "REDACTED"}) {
    EXPECT_NE(stored.find(kept), std::string::npos) << "'" << kept << "' lost:\n" << stored;
  }
  auto entries = repo_->Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["redacted"], true);
  EXPECT_EQ(entries[0]["bytes"], stored.size());
  EXPECT_EQ(entries[0]["sha256"], Sha256Hex(stored));
  EXPECT_EQ((*info)["bytes"], stored.size());
}

TEST_F(CommandComponentTest, RedactRefusesOutputThatIsNotYamlAndOutputTooLarge) {
  CommandComponent bad(CommandComponentOptions{
      .name = "bad", .backup = "printf 'a: b\\n  c: [d\\n'", .redact = "kubernetes-secrets"});
  auto info = repo_->Backup(bad);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kInvalidArgument) << info.status().ToString();
  EXPECT_NE(info.status().message().find("line 2"), std::string::npos)
      << info.status().ToString();

  CommandComponent big(CommandComponentOptions{.name = "big",
                                               .backup = "head -c 100000 /dev/zero",
                                               .redact = "kubernetes-secrets",
                                               .redact_max_bytes = 1000});
  info = repo_->Backup(big);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("more than 1000 bytes"), std::string::npos)
      << info.status().ToString();

  CommandComponent unknown(CommandComponentOptions{
      .name = "x", .backup = "true", .redact = "everything"});
  info = repo_->Backup(unknown);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kInvalidArgument);
}

TEST_F(CommandComponentTest, RestoreWithoutACommandWritesTheFile) {
  CommandComponent c(CommandComponentOptions{
      .name = "realm", .backup = "printf 'realm: rag\\n'; seq 1 20000"});
  auto info = repo_->Backup(c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const std::string want = repo_->Stored();
  ASSERT_GT(want.size(), 100000u);
  EXPECT_EQ(want.substr(0, 11), "realm: rag\n");

  // Into a directory: <dir>/<component>.out, mode 0600.
  const std::string out_dir = dir_.path() + "/out";
  std::filesystem::create_directories(out_dir);
  Status st = repo_->Restore(c, RestoreOptions{.target = out_dir});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ReadFile(out_dir + "/realm.out"), want);
  struct stat sb;
  ASSERT_EQ(stat((out_dir + "/realm.out").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);

  // No overwrite without being asked; with it, replaced.
  WriteFile(out_dir + "/realm.out", "old");
  st = repo_->Restore(c, RestoreOptions{.target = out_dir});
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_EQ(ReadFile(out_dir + "/realm.out"), "old");
  st = repo_->Restore(c, RestoreOptions{.target = out_dir, .overwrite = true});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ReadFile(out_dir + "/realm.out"), want);

  // To a file path, by a component built only for restore (its name comes from the point),
  // and no temporary file is left behind.
  CommandComponent restore_only(CommandComponentOptions{});
  st = repo_->Restore(restore_only, RestoreOptions{.target = dir_.path() + "/exact.yaml"});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ReadFile(dir_.path() + "/exact.yaml"), want);
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".reprise-"), std::string::npos) << e.path();
  }
  st = repo_->Restore(restore_only, RestoreOptions{.target = out_dir + "/"});
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << "named after the point's component: "
                                             << st.ToString();

  // A plan restore command can be overridden by params: "" forces the file.
  CommandComponent with_cmd(CommandComponentOptions{
      .name = "realm", .backup = "true", .restore = "cat > /dev/null; exit 9"});
  RestoreOptions to_file{.target = dir_.path() + "/forced.out"};
  to_file.params["restore"] = "";
  st = repo_->Restore(with_cmd, to_file);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ReadFile(dir_.path() + "/forced.out"), want);

  // No target at all: said plainly.
  st = repo_->Restore(restore_only, RestoreOptions{});
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
}

TEST_F(CommandComponentTest, RestoreCommandFailures) {
  CommandComponent c(CommandComponentOptions{.name = "data", .backup = "seq 1 200000"});
  ASSERT_TRUE(repo_->Backup(c).ok());

  CommandComponent failing(CommandComponentOptions{
      .name = "data",
      .restore = "cat > /dev/null; echo 'import failed: realm exists' >&2; exit 4"});
  Status st = repo_->Restore(failing, RestoreOptions{});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("restore command of component 'data' exited with status 4"),
            std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("import failed: realm exists"), std::string::npos)
      << st.ToString();

  // Exits 0 without reading everything: not a successful restore.
  CommandComponent lazy(CommandComponentOptions{.name = "data", .restore = "exec head -c 10"});
  st = repo_->Restore(lazy, RestoreOptions{});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("must read all"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace reprise::testing
