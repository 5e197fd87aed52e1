// reprise failover to a cold site, against real servers on loopback: a PostgreSQL 15 primary
// archiving its WAL into the repository through `reprise wal-push`, under write load. The cold
// site has nothing running: failover fences the primary, has its last WAL segment archived,
// runs the site's provision commands, restores the whole stack from the site's repository
// (tier by tier, PostgreSQL replayed to the end of the archive and started), checks the site's
// health and measures RTO and RPO. The cold site's repository is the primary's archive here (a
// bucket both regions read); `reprise copy` to a separate one is tested in copy_test.cc.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ack_writer.h"
#include "harness.h"
#include "pg/connection.h"
#include "pg_env.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}


class FailoverColdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason;
    base_ = tmp_.path();
    chmod(base_.c_str(), 0755);
    ArchivingRepo a = MakeArchivingRepo(base_, "cold passphrase");
    ASSERT_TRUE(a.error.empty()) << a.error;
    bin_ = a.bin;
    repo_ = a.repo;
    key_ = a.key;
    plan_ = base_ + "/plan.yaml";
    cold_port_ = FreePort();
    cold_dir_ = base_ + "/cold/pg";
    WritePlan(1);  // the primary's port is not known yet
    PgServerOptions o;
    o.conf = {"archive_mode = on",
              "archive_command = '" + bin_ + " --plan " + plan_ + " wal-push %p'"};
    primary_ = PgServer::Create(base_ + "/main", "pg-main", o);
    ASSERT_TRUE(primary_);
    WritePlan(primary_->port());
    ASSERT_TRUE(primary_->Sql("CREATE TABLE acks (id bigint PRIMARY KEY)"));
  }

  void TearDown() override {
    // The restored cold server was started by reprise: stop it.
    if (fs::exists(cold_dir_ + "/postmaster.pid")) {
      std::vector<std::string> argv = PgServer::AsServerUser();
      argv.insert(argv.end(),
                  {PgServer::Bin("pg_ctl"), "-D", cold_dir_, "-m", "immediate", "-w", "stop"});
      RunCommand(argv);
    }
  }

  std::string ColdConninfo() const {
    return fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", cold_port_);
  }

  // Sites main (primary) and cold; components db (physical postgres restored on the cold
  // site's port) and marker (a command whose restore writes into the provisioned dir), in two
  // tiers.
  void WritePlan(int main_port, const std::string& cold_provision = "") {
    std::string main_pg =
        fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", main_port);
    std::string provision =
        cold_provision.empty()
            ? fmt::format("[\"mkdir -p {0}/cold && touch {0}/cold/provisioned\"]", base_)
            : cold_provision;
    std::string text = fmt::format(
        R"(version: 1
name: cold
secrets:
  repository_password: {{file: {key}}}
sites:
  main:
    repository: {repo}
    role: primary
    endpoints: {{postgres: "{main_pg}"}}
    health: [{{postgres: "{main_pg}", role: primary}}]
  cold:
    repository: {repo}
    role: cold
    provision: {provision}
    endpoints: {{postgres: "{cold_pg}"}}
    health: [{{postgres: "{cold_pg}", role: primary}}]
components:
  db:
    kind: postgres
    class: transactional
    connection: "{main_pg}"
    os_user: postgres
    data_directory: {cold_dir}
    start_command: "{pg_ctl} -D {cold_dir} -o '-p {cold_port}' -w -t 120 -l {cold_dir}/start.log start"
  marker:
    kind: command
    class: configuration
    backup: "echo configuration of the stack"
    restore: "cat > {base}/cold/marker"
tiers:
  - {{name: databases, components: [db]}}
  - {{name: configuration, components: [marker]}}
failover:
  catchup_timeout: 30s
  state_dir: {base}/state
)",
        fmt::arg("key", key_), fmt::arg("repo", repo_), fmt::arg("main_pg", main_pg),
        fmt::arg("cold_pg", ColdConninfo()), fmt::arg("provision", provision),
        fmt::arg("cold_dir", cold_dir_), fmt::arg("pg_ctl", PgServer::Bin("pg_ctl")),
        fmt::arg("cold_port", cold_port_), fmt::arg("base", base_));
    // Atomically: a concurrent archive_command must never read half a plan.
    WriteFile(plan_ + ".tmp", text);
    chmod((plan_ + ".tmp").c_str(), 0644);
    fs::rename(plan_ + ".tmp", plan_);
  }

  RunResult Reprise(std::vector<std::string> args) {
    args.insert(args.begin(), {bin_, "--plan", plan_});
    return RunCommand(args);
  }

  std::set<int64_t> ColdIds() {
    std::set<int64_t> ids;
    auto conn = pg::Connection::Open(ColdConninfo(), false);
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return ids;
    auto rows = (*conn)->Query("SELECT id FROM acks");
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok()) return ids;
    for (const auto& row : rows->rows) {
      if (!row.empty() && row[0]) ids.insert(std::stoll(*row[0]));
    }
    return ids;
  }

  TempDir tmp_;
  std::string base_, bin_, repo_, key_, plan_, cold_dir_;
  int cold_port_ = 0;
  std::unique_ptr<PgServer> primary_;
};

TEST_F(FailoverColdTest, PlannedFailoverToColdSiteRestoresEverythingCommitted) {
  RunResult backup = Reprise({"--json", "backup"});
  ASSERT_TRUE(backup.exit_code == 0 || backup.exit_code == 3) << backup.out << backup.err;

  AckWriter writer(primary_->conninfo());
  std::this_thread::sleep_for(milliseconds(1500));
  RunResult r = Reprise({"failover", "--to", "cold", "--reason", "region lost", "--yes"});
  writer.Stop();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << ReadText(cold_dir_ + "/start.log");
  EXPECT_NE(r.out.find("RTO (start to first write on the new primary)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("RPO (not replicated at promotion): at least 0 bytes of WAL"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(fs::exists(base_ + "/cold/provisioned"));
  EXPECT_EQ(ReadText(base_ + "/cold/marker"), "configuration of the stack\n");

  // Every transaction the old primary acknowledged is on the restored cold site.
  std::vector<int64_t> acked = writer.acked();
  ASSERT_GT(acked.size(), 20u) << "the writer made too little progress to prove anything";
  std::set<int64_t> present = ColdIds();
  size_t lost = 0;
  for (int64_t id : acked) lost += present.count(id) ? 0 : 1;
  EXPECT_EQ(lost, 0u) << acked.size() << " acknowledged, " << present.size() << " restored";

  // The old primary refuses writes; the cold site takes them.
  std::string err;
  EXPECT_FALSE(primary_->Sql("INSERT INTO acks VALUES (-1)", "postgres", &err));
  auto conn = pg::Connection::Open(ColdConninfo(), false);
  ASSERT_TRUE(conn.ok());
  EXPECT_TRUE((*conn)->Query("INSERT INTO acks VALUES (-2)").ok());

  // The journal records every step, the cold ones done.
  std::string journals;
  for (const auto& e : fs::directory_iterator(base_ + "/state")) {
    if (e.path().extension() == ".json") journals += ReadText(e.path().string());
  }
  json j = json::parse(journals, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << journals;
  std::map<std::string, std::string> status_of;
  for (const auto& step : j["steps"]) status_of[step["name"]] = step["status"];
  EXPECT_EQ(status_of["provision"], "done") << journals;
  EXPECT_EQ(status_of["restore"], "done") << journals;
  EXPECT_EQ(status_of["first-write"], "done") << journals;
}

TEST_F(FailoverColdTest, ColdSiteWithoutAPointIsRefusedAndNothingChanges) {
  // No backup taken: the cold site has nothing to restore.
  RunResult r = Reprise({"failover", "--to", "cold", "--reason", "drill", "--yes"});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.err.find("no restorable point"), std::string::npos) << r.err;
  std::string err;
  EXPECT_TRUE(primary_->Sql("INSERT INTO acks VALUES (-1)", "postgres", &err)) << err;
  EXPECT_FALSE(fs::exists(base_ + "/cold/provisioned"));
  EXPECT_FALSE(fs::exists(cold_dir_));
}

TEST_F(FailoverColdTest, FailedProvisionStopsBeforeTheRestoreAndResumes) {
  RunResult backup = Reprise({"--json", "backup"});
  ASSERT_TRUE(backup.exit_code == 0 || backup.exit_code == 3) << backup.out << backup.err;
  // The first provision fails (the "terraform" is not ready); the rerun resumes.
  WritePlan(primary_->port(),
            fmt::format("[\"test -e {0}/ready\", \"mkdir -p {0}/cold && touch "
                        "{0}/cold/provisioned\"]",
                        base_));
  RunResult first = Reprise({"failover", "--to", "cold", "--reason", "drill", "--yes"});
  EXPECT_NE(first.exit_code, 0) << first.out;
  EXPECT_NE((first.out + first.err).find("provision command 1 of site 'cold' failed"),
            std::string::npos)
      << first.out << first.err;
  EXPECT_FALSE(fs::exists(cold_dir_));
  WriteFile(base_ + "/ready", "");
  RunResult second = Reprise({"failover", "--to", "cold", "--reason", "drill", "--yes"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.err.find("resuming failover"), std::string::npos) << second.err;
  // check-target, fence and catch-up are not done again; provision runs again in full.
  size_t done = 0;
  for (size_t at = second.err.find("already done"); at != std::string::npos;
       at = second.err.find("already done", at + 1)) {
    ++done;
  }
  EXPECT_EQ(done, 3u) << second.err;
  EXPECT_TRUE(fs::exists(base_ + "/cold/provisioned"));
  // The restored server answers as a primary.
  auto conn = pg::Connection::Open(ColdConninfo(), false);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  EXPECT_TRUE((*conn)->Query("INSERT INTO acks VALUES (-3)").ok());
}

}  // namespace
}  // namespace reprise::testing
