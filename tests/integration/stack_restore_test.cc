// One recovery point of the whole stack and its ordered restore, through the real `reprise`
// binary: a plan with PostgreSQL (pg_env.h), Redis (redis_env.h), command and files
// components in three tiers. Backup runs the components side by side (command components
// that wait for each other prove it); `reprise restore latest` with the plan and no --target
// brings everything back where the plan says, tier after tier, with the tiers' health checks
// in between (command components and command checks append to one file, which records the
// order). Also: a failing tier check stops the later tiers, a point with a failed component
// is "partial" and says which, and a component's own kUnavailable does not stop a backup.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "component_repo.h"
#include "components/command/command_component.h"
#include "harness.h"
#include "orchestrate/backup.h"
#include "pg_env.h"
#include "redis_env.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(ReadText(path));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// Index of the first line equal to `line`, or -1.
int IndexOf(const std::vector<std::string>& lines, const std::string& line) {
  auto it = std::find(lines.begin(), lines.end(), line);
  return it == lines.end() ? -1 : static_cast<int>(it - lines.begin());
}

class StackRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = tmp_.path();
    ArchivingRepo a = MakeArchivingRepo(base_, "stack passphrase");
    ASSERT_TRUE(a.error.empty()) << a.error;
    bin_ = a.bin;
    repo_ = a.repo;
    key_ = a.key;
    plan_ = base_ + "/plan.yaml";
    order_ = base_ + "/order";
  }

  // The plan's head; `rest` is its components and tiers.
  void WritePlan(const std::string& rest) {
    WriteFile(plan_ + ".tmp", "version: 1\nname: stack\nsecrets:\n  repository_password: {file: " +
                                  key_ + "}\nsites:\n  main: {repository: " + repo_ + "}\n" +
                                  rest);
    chmod((plan_ + ".tmp").c_str(), 0644);
    fs::rename(plan_ + ".tmp", plan_);
  }

  // A command component whose restore appends "restore <name>" to the order file.
  std::string CommandYaml(const std::string& name, const std::string& backup) {
    return "  " + name + ":\n    kind: command\n    class: configuration\n    backup: \"" +
           backup + "\"\n    restore: \"cat > " + base_ + "/" + name + ".out && echo restore " +
           name + " >> " + order_ + "\"\n";
  }
  // A health check that appends "check <tier>" to the order file.
  std::string OrderCheck(const std::string& tier) {
    return "      - command: \"echo check " + tier + " >> " + order_ + "\"\n";
  }

  RunResult Reprise(std::vector<std::string> args) {
    args.insert(args.begin(), {bin_, "--plan", plan_});
    return RunCommand(args);
  }
  json Json(const RunResult& r) {
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j.is_discarded() ? json::object() : j;
  }
  static const json* Find(const json& report, const std::string& name) {
    for (const auto& c : report["components"])
      if (c.value("name", "") == name) return &c;
    return nullptr;
  }

  TempDir tmp_;
  std::string base_, bin_, repo_, key_, plan_, order_;
};

// A component whose own server does not answer (kUnavailable) fails alone: the point is
// partial, not aborted as if the repository had failed.
class UnavailableComponent final : public reprise::Component {
 public:
  std::string kind() const override { return "command"; }
  Result<json> Backup(BackupSink&) override {
    return Unavailable("server 'db.internal:9000' did not answer within 5 s");
  }
  Status Restore(const json&, RestoreSource&, const RestoreOptions&) override {
    return Status::Ok();
  }
};

TEST_F(StackRestoreTest, ComponentUnavailableMakesThePointPartialNotAborted) {
  ComponentRepo repo(base_ + "/engine");
  BackupJob job;
  job.parallel = 2;
  job.items.push_back(BackupItem{.name = "remote",
                                 .kind = "command",
                                 .component = std::make_unique<UnavailableComponent>()});
  job.items.push_back(BackupItem{
      .name = "local",
      .kind = "command",
      .component = std::make_unique<reprise::CommandComponent>(
          CommandComponentOptions{.name = "local", .backup = "echo fine"})});
  auto point = RunBackup(*repo.repo(), job, repo.clock(), nullptr);
  ASSERT_TRUE(point.ok()) << point.status().ToString();
  EXPECT_EQ(point->status, "partial");
  ASSERT_EQ(point->components.size(), 2u);
  EXPECT_EQ(point->components[0].name, "remote") << "the point keeps the job's order";
  EXPECT_EQ(point->components[0].status, "failed");
  EXPECT_NE(point->components[0].error.find("did not answer"), std::string::npos);
  EXPECT_EQ(point->components[1].status, "ok");
  EXPECT_GT(point->components[1].finished_ns, 0);
  EXPECT_LE(point->components[1].started_ns, point->components[1].finished_ns);
}

TEST_F(StackRestoreTest, PartialPointSaysWhichComponentFailedAndExitsNonZero) {
  WritePlan("components:\n" + CommandYaml("good", "echo good data") +
            CommandYaml("bad", "echo cannot reach the cluster >&2; exit 4") +
            "tiers:\n  - name: all\n    components: [good, bad]\n");
  auto b = Reprise({"--json", "backup"});
  EXPECT_EQ(b.exit_code, 3) << b.out << b.err;
  json j = Json(b);
  EXPECT_EQ(j.value("status", ""), "partial");
  EXPECT_EQ(j["failed"], json::array({"bad"}));
  const json* bad = Find(j, "bad");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->value("status", ""), "failed");
  EXPECT_NE(bad->value("error", "").find("cannot reach the cluster"), std::string::npos) << *bad;
  EXPECT_NE(b.err.find("component 'bad' FAILED"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("PARTIAL"), std::string::npos) << b.err;

  // Text output says so too, and `points` lists the point as partial.
  auto text = Reprise({"backup"});
  EXPECT_EQ(text.exit_code, 3);
  EXPECT_NE(text.out.find("PARTIAL point"), std::string::npos) << text.out;
  auto points = Reprise({"--json", "points"});
  ASSERT_EQ(points.exit_code, 0) << points.err;
  EXPECT_NE(points.out.find("\"partial\""), std::string::npos) << points.out;

  // The stack restore brings back what the point has and says what it could not.
  auto r = Reprise({"--json", "restore", "latest"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  json rep = Json(r);
  EXPECT_EQ(rep.value("ok", true), false);
  const json* rg = Find(rep, "good");
  const json* rb = Find(rep, "bad");
  ASSERT_TRUE(rg && rb) << rep;
  EXPECT_EQ(rg->value("status", ""), "ok");
  EXPECT_EQ(rb->value("status", ""), "skipped");
  EXPECT_EQ(ReadText(base_ + "/good.out"), "good data\n");
  EXPECT_FALSE(fs::exists(base_ + "/bad.out"));
}

TEST_F(StackRestoreTest, FailingTierHealthCheckStopsLaterTiers) {
  WritePlan("components:\n" + CommandYaml("one", "echo 1") +
            CommandYaml("two", "echo 2") + CommandYaml("three", "echo 3") +
            "tiers:\n"
            "  - name: first\n    components: [one]\n    health:\n" + OrderCheck("first") +
            "  - name: second\n    components: [two]\n    health:\n" + OrderCheck("second") +
            "      - {name: always-down, command: \"echo down >&2; exit 1\"}\n"
            "  - name: third\n    components: [three]\n    health:\n" + OrderCheck("third"));
  auto b = Reprise({"backup"});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  auto r = Reprise({"--json", "restore", "latest", "--health-timeout", "0"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.exit_code, 3) << "a failed tier is not a partial point";
  json rep = Json(r);
  EXPECT_EQ(rep.value("ok", true), false);
  ASSERT_EQ(rep["tiers"].size(), 3u) << rep;
  EXPECT_EQ(rep["tiers"][0].value("status", ""), "ok");
  EXPECT_EQ(rep["tiers"][1].value("status", ""), "failed");
  EXPECT_EQ(rep["tiers"][2].value("status", ""), "skipped");
  bool down_reported = false;
  for (const auto& c : rep["tiers"][1]["checks"])
    if (c.value("name", "") == "always-down") down_reported = !c.value("ok", true);
  EXPECT_TRUE(down_reported) << rep["tiers"][1];
  const json* three = Find(rep, "three");
  ASSERT_TRUE(three);
  EXPECT_EQ(three->value("status", ""), "skipped");
  EXPECT_EQ(Lines(order_), (std::vector<std::string>{"restore one", "check first",
                                                     "restore two", "check second"}));
  EXPECT_FALSE(fs::exists(base_ + "/three.out")) << "a tier after a failed one was restored";

  // A component that fails stops the later tiers the same way.
  fs::remove(order_);
  WritePlan("components:\n" + CommandYaml("one", "echo 1") +
            "  two:\n    kind: command\n    class: configuration\n    backup: \"echo 2\"\n"
            "    restore: \"cat >/dev/null; exit 7\"\n" +
            CommandYaml("three", "echo 3") +
            "tiers:\n  - name: first\n    components: [one]\n"
            "  - name: second\n    components: [two]\n"
            "  - name: third\n    components: [three]\n");
  r = Reprise({"--json", "restore", "latest"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  rep = Json(r);
  const json* two = Find(rep, "two");
  ASSERT_TRUE(two);
  EXPECT_EQ(two->value("status", ""), "failed");
  EXPECT_NE(two->value("error", ""), "");
  EXPECT_EQ(Lines(order_), std::vector<std::string>{"restore one"});
}

TEST_F(StackRestoreTest, WholeStackBackupAndOrderedRestore) {
  if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason;
  if (!RedisAvailable()) GTEST_SKIP() << kRedisSkipReason;
  PgServerOptions po;
  po.conf = {"archive_mode = on",
             "archive_command = '" + bin_ + " --plan " + plan_ + " wal-push %p'"};
  auto pg = PgServer::Create(base_ + "/pg", "primary", po);
  ASSERT_TRUE(pg);
  ASSERT_TRUE(pg->Sql("CREATE TABLE marker(note text); INSERT INTO marker VALUES ('stack'); "
                      "CREATE TABLE sessions(key text PRIMARY KEY); "
                      "INSERT INTO sessions VALUES ('session:1')"));
  auto redis = RedisServer::Create(base_, "cache");
  ASSERT_TRUE(redis);
  ASSERT_TRUE(redis->Cli({"SET", "session:1", "alice"}));
  ASSERT_TRUE(redis->Cli({"HSET", "cart:1", "apples", "3"}));
  WriteFile(base_ + "/redis-stop.sh", redis->StopCommand() + "\n");
  WriteFile(base_ + "/redis-start.sh", redis->StartCommand() + "\n");
  std::string docs = base_ + "/docs";
  fs::create_directories(docs + "/sub");
  WriteFile(docs + "/a.txt", "document a\n");
  WriteFile(docs + "/sub/b.txt", RandomText(100000, 3));
  auto docs_before = Snapshot(docs);
  // Two components that each wait (up to 10 s) until the other has started: run one after
  // the other, neither sees the other. The start stamp appears whole (rename): a file created
  // by the redirection but not yet holding its time would let the other side stop waiting
  // before that time was taken, and the two spans would seem not to overlap.
  fs::create_directories(base_ + "/meet");
  WriteFile(base_ + "/meet.sh",
            "d=" + base_ + "/meet; date +%s%N > $d/$1.start.tmp; mv $d/$1.start.tmp $d/$1.start; i=0\n"
            "while [ ! -e $d/$2.start ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done\n"
            "date +%s%N > $d/$1.end; echo payload $1\n");
  std::string pg_conn = "host=127.0.0.1 port=" + std::to_string(pg->port()) + " user=postgres";
  WritePlan(
      "components:\n"
      "  db:\n    kind: postgres\n    class: transactional\n    connection: \"" + pg_conn +
      "\"\n    os_user: postgres\n    data_directory: " + pg->data_dir() + "\n" +
      CommandYaml("schema", "echo schema v7") +
      "  cache:\n    kind: redis\n    class: transactional\n    connection: " + redis->url() +
      "\n    restore:\n      rdb_path: " + redis->dir() + "/dump.rdb\n"
      "      stop_command: sh " + base_ + "/redis-stop.sh\n"
      "      start_command: sh " + base_ + "/redis-start.sh\n" +
      CommandYaml("vectors", "echo vectors") +
      CommandYaml("slow_a", "sh " + base_ + "/meet.sh a b") +
      CommandYaml("slow_b", "sh " + base_ + "/meet.sh b a") +
      "  docs:\n    kind: files\n    class: documents\n    paths: [" + docs + "]\n"
      "tiers:\n"
      "  - name: databases\n    components: [db, schema]\n    health:\n"
      "      - postgres: \"" + pg_conn + " dbname=postgres\"\n" + OrderCheck("databases") +
      "  - name: caches\n    components: [cache, vectors]\n    health:\n"
      "      - redis: " + redis->url() + "\n" + OrderCheck("caches") +
      "  - name: config\n    components: [slow_a, slow_b, docs]\n    health:\n" +
      OrderCheck("config") +
      "consistency:\n  - name: every session has its row\n    each: {cache: \"session:*\"}\n"
      "    exists_in: {db: \"select 1 from sessions where key = $1\"}\n");

  auto b = Reprise({"--json", "backup"});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  json point = Json(b);
  EXPECT_EQ(point.value("status", ""), "complete");
  // The two waiting components ran at the same time.
  auto stamp = [&](const std::string& f) {
    std::string t = ReadText(base_ + "/meet/" + f);
    return t.empty() ? 0ll : std::stoll(t);
  };
  long long a0 = stamp("a.start"), a1 = stamp("a.end"), b0 = stamp("b.start"),
            b1 = stamp("b.end");
  ASSERT_TRUE(a0 && a1 && b0 && b1);
  EXPECT_LT(std::max(a0, b0), std::min(a1, b1))
      << "the backups of slow_a [" << a0 << ", " << a1 << "] and slow_b [" << b0 << ", " << b1
      << "] did not overlap";
  // The point keeps the plan's order and each component's times and positions.
  std::vector<std::string> names;
  for (const auto& c : point["components"]) names.push_back(c.value("name", ""));
  EXPECT_EQ(names, (std::vector<std::string>{"db", "schema", "cache", "vectors", "slow_a",
                                             "slow_b", "docs"}));
  const json* db = Find(point, "db");
  const json* cache = Find(point, "cache");
  ASSERT_TRUE(db && cache);
  EXPECT_TRUE((*db)["position"].contains("start_lsn")) << *db;
  EXPECT_TRUE((*db)["position"].contains("end_lsn")) << *db;
  EXPECT_TRUE((*cache)["position"].contains("master_repl_offset")) << *cache;
  EXPECT_FALSE(db->value("started", "").empty());

  // Everything destroyed.
  pg->Kill();
  fs::remove_all(pg->data_dir());
  ASSERT_TRUE(redis->Cli({"FLUSHALL"}));
  fs::remove_all(docs);
  fs::remove(order_);

  auto r = Reprise({"--json", "restore", "latest"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json rep = Json(r);
  EXPECT_EQ(rep.value("ok", false), true) << rep;

  // Tier order, health checks after each tier.
  auto order = Lines(order_);
  int schema = IndexOf(order, "restore schema"), c1 = IndexOf(order, "check databases"),
      vectors = IndexOf(order, "restore vectors"), c2 = IndexOf(order, "check caches"),
      sa = IndexOf(order, "restore slow_a"), sb = IndexOf(order, "restore slow_b"),
      c3 = IndexOf(order, "check config");
  std::string all;
  for (const auto& l : order) all += l + "; ";
  ASSERT_TRUE(schema >= 0 && c1 >= 0 && vectors >= 0 && c2 >= 0 && sa >= 0 && sb >= 0 && c3 >= 0)
      << all;
  EXPECT_LT(schema, c1) << all;
  EXPECT_LT(c1, vectors) << all;
  EXPECT_LT(vectors, c2) << all;
  EXPECT_LT(c2, std::min(sa, sb)) << all;
  EXPECT_LT(std::max(sa, sb), c3) << all;

  // The report: tiers in order with their checks, per-component times, the total.
  ASSERT_EQ(rep["tiers"].size(), 3u) << rep;
  std::vector<std::string> tiers;
  for (const auto& t : rep["tiers"]) {
    tiers.push_back(t.value("name", ""));
    EXPECT_EQ(t.value("status", ""), "ok") << t;
    EXPECT_FALSE(t["checks"].empty()) << t;
    for (const auto& c : t["checks"]) EXPECT_TRUE(c.value("ok", false)) << c;
  }
  EXPECT_EQ(tiers, (std::vector<std::string>{"databases", "caches", "config"}));
  double total = rep.value("seconds", 0.0);
  EXPECT_GT(total, 0);
  ASSERT_EQ(rep["components"].size(), 7u);
  for (const auto& c : rep["components"]) {
    EXPECT_EQ(c.value("status", ""), "ok") << c;
    EXPECT_GT(c.value("seconds", 0.0), 0) << c;
    EXPECT_LE(c.value("started", 0.0) + c.value("seconds", 0.0), total + 1e-6) << c;
  }
  // Each tier started after the previous one had finished (checks included).
  for (size_t i = 1; i < rep["tiers"].size(); ++i) {
    const auto& prev = rep["tiers"][i - 1];
    EXPECT_GE(rep["tiers"][i].value("started", 0.0),
              prev.value("started", 0.0) + prev.value("seconds", 0.0) - 1e-3);
  }
  const json* rdb = Find(rep, "db");
  ASSERT_TRUE(rdb);
  EXPECT_EQ(rdb->value("target", ""), pg->data_dir());
  EXPECT_GT(rdb->value("recovery_seconds", 0.0), 0) << *rdb;

  // Everything is back, where it was.
  EXPECT_EQ(pg->Sql("SELECT note FROM marker").value_or("?"), "stack");
  EXPECT_EQ(pg->Sql("SELECT pg_is_in_recovery()").value_or("?"), "f");
  EXPECT_EQ(redis->Cli({"GET", "session:1"}).value_or("?"), "alice");
  EXPECT_EQ(redis->Cli({"HGET", "cart:1", "apples"}).value_or("?"), "3");
  EXPECT_EQ(Diff(docs_before, Snapshot(docs)), "");
  EXPECT_EQ(ReadText(base_ + "/schema.out"), "schema v7\n");
  EXPECT_EQ(ReadText(base_ + "/slow_a.out"), "payload a\n");

  // The restored stack is consistent; an orphan planted in it is found and named.
  auto clean = Reprise({"verify-stack"});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  ASSERT_TRUE(redis->Cli({"SET", "session:9", "mallory"}));
  auto orphan = Reprise({"--json", "verify-stack"});
  EXPECT_EQ(orphan.exit_code, 12) << orphan.out << orphan.err;
  EXPECT_NE(orphan.out.find("session:9"), std::string::npos) << orphan.out;
  EXPECT_EQ(orphan.out.find("\"session:1\""), std::string::npos) << orphan.out;

  // The terminal output ends with the measured RTO.
  fs::remove_all(docs);
  auto text = Reprise({"restore", "latest", "--component", "docs"});
  ASSERT_EQ(text.exit_code, 0) << text.out << text.err;
  EXPECT_NE(text.out.find("tier 'config'"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("measured RTO"), std::string::npos) << text.out;
  EXPECT_EQ(Diff(docs_before, Snapshot(docs)), "");
}

}  // namespace
}  // namespace reprise::testing
