// reprise failover / monitor against real servers on loopback: a PostgreSQL 15 primary with a
// streaming replica, a Redis 7 primary with a replica, a webhook receiver (cpp-httplib), and
// where installed Knot DNS and an SMTP sink. Every test builds its own servers.
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "pg/connection.h"
#include "etcd_env.h"
#include "ack_writer.h"
#include "fault_proxy.h"
#include "harness.h"
#include "knot_env.h"
#include "pg_env.h"
#include "redis_env.h"
#include "smtp_env.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;

// Collects what the webhook channel receives.
class WebhookReceiver {
 public:
  WebhookReceiver() : port_(FreePort()) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
      res.set_content("ok", "text/plain");
    });
    bound_ = server_.bind_to_port("127.0.0.1", port_);
    thread_ = std::thread([this] {
      if (bound_) server_.listen_after_bind();
    });
    while (bound_ && !server_.is_running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~WebhookReceiver() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<nlohmann::json> Received() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<nlohmann::json> out;
    for (const auto& b : bodies_) out.push_back(nlohmann::json::parse(b, nullptr, false));
    return out;
  }

 private:
  int port_;
  bool bound_ = false;
  httplib::Server server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> bodies_;
};


// How many of the acknowledged ids are missing from `server`'s acks table.
size_t LostOn(const PgServer& server, const std::vector<int64_t>& acked) {
  auto rows = server.Sql("SELECT string_agg(id::text, ',') FROM acks WHERE id > 0");
  EXPECT_TRUE(rows);
  std::set<int64_t> present;
  std::stringstream ss(rows.value_or(""));
  for (std::string item; std::getline(ss, item, ',');) present.insert(std::stoll(item));
  size_t lost = 0;
  for (int64_t id : acked) lost += present.count(id) ? 0 : 1;
  return lost;
}

struct PlanOptions {
  std::string etcd;        // monitor.quorum.etcd endpoint
  std::string main_pg;     // main's postgres endpoint instead of the server's own
  std::string main_redis;  // main's redis endpoint instead of the server's own
  std::string file = "plan.yaml";
  std::string dns_server;  // Knot "127.0.0.1:port": failover.dns with TSIG secret dns_tsig
  std::string smtp_url;    // an smtp channel "mail" routed for failover.*
};

class FailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason;
    if (!RedisAvailable()) GTEST_SKIP() << kRedisSkipReason;
    base_ = tmp_.path();
    chmod(base_.c_str(), 0755);
    // wal_log_hints lets failback rewind the old primary instead of copying it whole.
    pg_primary_ = PgServer::Create(base_, "pg-main", {.conf = {"wal_log_hints = on"}});
    ASSERT_TRUE(pg_primary_);
    ASSERT_TRUE(pg_primary_->Sql("CREATE TABLE acks (id bigint PRIMARY KEY)"));
    pg_replica_ = PgServer::CreateReplica(*pg_primary_, "pg-dr");
    ASSERT_TRUE(pg_replica_);
    redis_primary_ = RedisServer::Create(base_, "redis-main");
    ASSERT_TRUE(redis_primary_);
    redis_replica_ = RedisServer::CreateReplica(*redis_primary_, "redis-dr");
    ASSERT_TRUE(redis_replica_);
  }

  std::string Pg(const PgServer& s) const { return s.conninfo(); }

  // The plan: site main (primary) and dr (warm) with their endpoints and health checks.
  std::string WritePlan(const std::string& extra_failover = "",
                        const std::string& dr_health = "", const PlanOptions& po = {}) {
    std::string dr_checks =
        dr_health.empty()
            ? fmt::format("[{{postgres: \"{}\", role: replica}}, {{redis: \"{}\", role: "
                          "replica}}]",
                          Pg(*pg_replica_), redis_replica_->url())
            : dr_health;
    std::string dns, secrets, mail, mail_route;
    if (!po.dns_server.empty()) {
      secrets = fmt::format("secrets:\n  dns_tsig: {{file: {}/tsig}}\n", base_);
      dns = fmt::format("  dns: {{server: \"{}\", zone: test.reprise, record: api.test.reprise, "
                        "ttl: 30, tsig: {{secret: dns_tsig}}, propagation_timeout: 10s}}\n",
                        po.dns_server);
    }
    if (!po.smtp_url.empty()) {
      mail = fmt::format("    mail: {{smtp: \"{}\", from: reprise@test, to: [ops@test]}}\n",
                         po.smtp_url);
      mail_route = ", mail";
    }
    std::string plan = fmt::format(R"(version: 1
name: fo
{secrets}sites:
  main:
    repository: {base}/repo-main
    role: primary
    endpoints: {{postgres: "{pg1}", redis: "{r1}"}}
    health: [{{postgres: "{pg1}", role: primary}}]
    dns_value: 10.0.0.1
    monitoring: ["127.0.0.1:9101"]
    rebuild: {{data_directory: "{pg1dir}", bin_dir: "{bindir}"{osuser}}}
  dr:
    repository: {base}/repo-dr
    role: warm
    endpoints: {{postgres: "{pg2}", redis: "{r2}"}}
    health: {dr_checks}
    dns_value: 10.0.0.2
    monitoring: ["127.0.0.1:9102", "127.0.0.1:9103"]
    rebuild: {{data_directory: "{pg2dir}", bin_dir: "{bindir}"{osuser}}}
components:
  cfg: {{kind: files, class: configuration, paths: [{base}]}}
failover:
  max_lag: 1MB
  catchup_timeout: 10s
  state_dir: {base}/state
  monitoring_file: {base}/targets.json
  monitor: {{interval: 1s, failure_threshold: 3{quorum}}}
{dns}{extra}
notifications:
  channels:
    hook: {{webhook: "http://127.0.0.1:{hook}/hook"}}
{mail}  routes: [{{on: ["failover.*"], to: [hook{mail_route}]}}]
)",
                                   fmt::arg("secrets", secrets), fmt::arg("dns", dns),
                                   fmt::arg("mail", mail), fmt::arg("mail_route", mail_route),
                                   fmt::arg("base", base_),
                                   fmt::arg("pg1", po.main_pg.empty() ? Pg(*pg_primary_)
                                                                      : po.main_pg),
                                   fmt::arg("quorum", po.etcd.empty()
                                                          ? std::string()
                                                          : ", lease_ttl: 3s, quorum: {etcd: [\"" +
                                                                po.etcd + "\"]}"),
                                   fmt::arg("pg2", Pg(*pg_replica_)),
                                   fmt::arg("r1", po.main_redis.empty() ? redis_primary_->url()
                                                                        : po.main_redis),
                                   fmt::arg("r2", redis_replica_->url()),
                                   fmt::arg("dr_checks", dr_checks),
                                   fmt::arg("extra", extra_failover),
                                   fmt::arg("hook", hook_.port()),
                                   fmt::arg("pg1dir", pg_primary_->data_dir()),
                                   fmt::arg("pg2dir", pg_replica_->data_dir()),
                                   fmt::arg("bindir", fs::path(PgServer::Bin("pg_ctl"))
                                                          .parent_path()
                                                          .string()),
                                   fmt::arg("osuser",
                                            geteuid() == 0 ? ", os_user: postgres" : ""));
    std::string path = base_ + "/" + po.file;
    WriteFile(path, plan);
    return path;
  }

  RunResult Reprise(std::vector<std::string> args, std::vector<std::string> env = {},
                    const std::string& plan = "plan.yaml") {
    args.insert(args.begin(), {REPRISE_BINARY, "--plan", base_ + "/" + plan});
    return RunCommand(args, env);
  }

  // Runs two monitors at once, one per plan file, each for `rounds` rounds.
  std::pair<RunResult, RunResult> TwoMonitors(const std::string& plan_a,
                                              const std::string& plan_b, int rounds) {
    RunResult a, b;
    std::thread ta([&] {
      a = Reprise({"monitor", "--id", "mon-a", "--rounds", std::to_string(rounds)}, {}, plan_a);
    });
    std::thread tb([&] {
      b = Reprise({"monitor", "--id", "mon-b", "--rounds", std::to_string(rounds)}, {}, plan_b);
    });
    ta.join();
    tb.join();
    return {a, b};
  }

  static int Count(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  bool InRecovery(const PgServer& s) { return s.Sql("SELECT pg_is_in_recovery()") == "t"; }

  // Nothing changed: main still takes writes, dr is still a replica.
  void ExpectNothingChanged() {
    EXPECT_FALSE(InRecovery(*pg_primary_));
    std::string err;
    EXPECT_TRUE(pg_primary_->Sql("INSERT INTO acks VALUES (-1); DELETE FROM acks WHERE id = -1",
                                 "postgres", &err))
        << err;
    EXPECT_TRUE(InRecovery(*pg_replica_));
    EXPECT_EQ(redis_replica_->Cli({"ROLE"}).value_or("").substr(0, 5), "slave");
    EXPECT_TRUE(redis_primary_->Cli({"SET", "k", "v"}).has_value());
    EXPECT_FALSE(fs::exists(base_ + "/state/active"));
  }

  TempDir tmp_;
  std::string base_;
  WebhookReceiver hook_;
  std::unique_ptr<PgServer> pg_primary_, pg_replica_;
  std::unique_ptr<RedisServer> redis_primary_, redis_replica_;
};

TEST_F(FailoverTest, PlannedFailoverUnderLoadLosesNoCommittedTransaction) {
  if (!KnotAvailable()) GTEST_SKIP() << kKnotSkipReason;
  if (!SmtpSinkAvailable()) GTEST_SKIP() << kSmtpSkipReason;
  auto knot = KnotServer::Start(base_ + "/knot");
  ASSERT_TRUE(knot);
  auto smtp = SmtpSink::Start(base_ + "/smtp");
  ASSERT_TRUE(smtp);
  WriteFile(base_ + "/tsig", knot->tsig_key_text());
  chmod((base_ + "/tsig").c_str(), 0600);
  WritePlan("", "", {.dns_server = knot->server(), .smtp_url = smtp->url()});
  // Load on both databases while the failover runs: pgbench, and a writer that counts what
  // the primary acknowledged (pgbench cannot say which of its commits were acknowledged).
  ASSERT_EQ(pg_primary_->Pgbench({"-i", "-s", "1"}), 0);
  std::thread pgbench([&] {
    // Fails once the primary is fenced (read-only): that is expected.
    (void)RunCommand({PgServer::Bin("pgbench"), "-h", "127.0.0.1", "-p",
                      std::to_string(pg_primary_->port()), "-U", "postgres", "-n", "-c", "2",
                      "-T", "4", "postgres"});
  });
  AckWriter writer(Pg(*pg_primary_));
  std::atomic<bool> stop_redis{false};
  std::thread redis_load([&] {
    for (int i = 0; !stop_redis; ++i) {
      redis_primary_->Cli({"INCR", "counter"});
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  RunResult r = Reprise({"failover", "--to", "dr", "--reason", "planned test", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  writer.Stop();
  stop_redis = true;
  redis_load.join();
  pgbench.join();
  EXPECT_NE(r.out.find("RTO (start to first write on the new primary)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("RPO (not replicated at promotion): 0 bytes of WAL"), std::string::npos)
      << r.out;

  // Every transaction the old primary acknowledged is on the new one.
  std::vector<int64_t> acked = writer.acked();
  ASSERT_GT(acked.size(), 50u) << "the writer made too little progress to prove anything";
  size_t lost = LostOn(*pg_replica_, acked);
  std::cout << "[ failover ] acknowledged " << acked.size() << " transactions, lost " << lost
            << "\n";
  EXPECT_EQ(lost, 0u);

  // The new primary takes writes, the old one refuses them.
  EXPECT_FALSE(InRecovery(*pg_replica_));
  EXPECT_TRUE(pg_replica_->Sql("INSERT INTO acks VALUES (-2)"));
  std::string err;
  EXPECT_FALSE(pg_primary_->Sql("INSERT INTO acks VALUES (-3)", "postgres", &err));
  EXPECT_NE(err.find("read-only"), std::string::npos) << err;
  // Redis: the DR node is primary and has every increment; the old one follows it.
  EXPECT_EQ(redis_replica_->Cli({"ROLE"}).value_or("").substr(0, 6), "master");
  EXPECT_TRUE(redis_primary_->WaitForInfo("master_link_status:up"));
  EXPECT_EQ(redis_replica_->Cli({"GET", "counter"}), redis_primary_->Cli({"GET", "counter"}));

  // Monitoring targets, journal, notification with the figures.
  std::ifstream sd(base_ + "/targets.json");
  nlohmann::json targets = nlohmann::json::parse(sd, nullptr, false);
  ASSERT_TRUE(targets.is_array()) << "targets.json is not a JSON list";
  EXPECT_EQ(targets[0]["targets"], (nlohmann::json{"127.0.0.1:9102", "127.0.0.1:9103"}));
  std::ifstream active(base_ + "/state/active");
  std::string site;
  active >> site;
  EXPECT_EQ(site, "dr");
  auto received = hook_.Received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0]["type"], "failover.completed");
  EXPECT_EQ(received[0]["data"]["site"], "dr");
  EXPECT_EQ(received[0]["data"]["rpo_wal_bytes"], 0);
  EXPECT_GT(received[0]["data"]["rto_seconds"].get<double>(), 0.0);

  // DNS answers the DR address, straight from the name server.
  RunResult dig = RunCommand({"/usr/bin/kdig", "@127.0.0.1", "-p", std::to_string(knot->port()),
                              "+short", "+norecurse", "api.test.reprise", "A"});
  EXPECT_EQ(dig.out, "10.0.0.2\n") << dig.err;
  // The mail has the figures.
  auto mails = smtp->WaitForMessages(1, std::chrono::seconds(10));
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_NE(mails[0].find("failover from 'main' to 'dr' completed"), std::string::npos)
      << mails[0];
  EXPECT_NE(mails[0].find("RTO (start to first write)"), std::string::npos) << mails[0];
  // The TSIG secret never reaches a log line or the journal.
  EXPECT_EQ((r.out + r.err).find(knot->secret()), std::string::npos);

  // A second failover to the same site has nothing to do.
  RunResult again = Reprise({"failover", "--to", "dr", "--reason", "again", "--yes"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("already the primary"), std::string::npos) << again.err;
}

TEST_F(FailoverTest, HealthAndDryRunChangeNothing) {
  WritePlan();
  RunResult h = Reprise({"--json", "health"});
  EXPECT_EQ(h.exit_code, 0) << h.out << h.err;
  nlohmann::json sites = nlohmann::json::parse(h.out, nullptr, false);
  ASSERT_TRUE(sites.is_array()) << h.out;
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[0]["site"], "main");
  EXPECT_EQ(sites[0]["checks"][0]["facts"]["role"], "primary");
  EXPECT_EQ(sites[1]["checks"][0]["facts"]["role"], "replica");
  EXPECT_EQ(sites[1]["checks"][1]["kind"], "redis");
  // An unhealthy site makes `health` exit 1 and names the failed check.
  redis_replica_->Kill();
  RunResult bad = Reprise({"health", "--site", "dr"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("dr (warm): UNHEALTHY"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("FAIL  redis redis://127.0.0.1:"), std::string::npos) << bad.out;

  RunResult dry = Reprise({"failover", "--to", "dr", "--reason", "test", "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("failover from 'main' to 'dr'"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("(dry run: nothing was done)"), std::string::npos) << dry.out;
  EXPECT_FALSE(InRecovery(*pg_primary_));
  EXPECT_TRUE(InRecovery(*pg_replica_));
  EXPECT_FALSE(fs::exists(base_ + "/state"));
}

TEST_F(FailoverTest, UnhealthyTargetIsRefusedAndNothingChanges) {
  WritePlan("", fmt::format("[{{tcp: \"127.0.0.1:{}\"}}]", FreePort()));
  RunResult r = Reprise({"failover", "--to", "dr", "--reason", "test", "--yes"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("target unhealthy"), std::string::npos) << r.err;
  ExpectNothingChanged();
  auto received = hook_.Received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0]["type"], "failover.refused");
}

TEST_F(FailoverTest, WrongConfirmationChangesNothing) {
  WritePlan();
  SubprocessOptions o;
  o.argv = {REPRISE_BINARY, "--plan", base_ + "/plan.yaml", "failover", "--to", "dr",
            "--reason", "test"};
  o.stdin_feed = [](const StdinWriter& write) {
    std::string typed = "main\n";
    return write(ByteView(reinterpret_cast<const uint8_t*>(typed.data()), typed.size()));
  };
  auto r = RunSubprocess(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_NE(r->exit_code, 0);
  EXPECT_NE(r->stderr_tail.find("not confirmed"), std::string::npos) << r->stderr_tail;
  ExpectNothingChanged();
  EXPECT_TRUE(hook_.Received().empty());
}

TEST_F(FailoverTest, ReplicaTooFarBehindIsRefusedAndTheFenceLifted) {
  WritePlan("  # lag test\n");
  // Replay stops on the replica while the primary writes ~3 MB of WAL (max_lag is 1 MB).
  ASSERT_TRUE(pg_replica_->Sql("SELECT pg_wal_replay_pause()"));
  ASSERT_TRUE(pg_primary_->Sql(
      "CREATE TABLE filler AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 5000) g"));
  // catchup_timeout is 10 s in the plan; lower it for this test.
  std::string plan = base_ + "/plan.yaml";
  std::ifstream in(plan);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  s.replace(s.find("catchup_timeout: 10s"), 20, "catchup_timeout: 2s");
  WriteFile(plan, s);
  RunResult r = Reprise({"failover", "--to", "dr", "--reason", "test", "--yes"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("too far behind"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("postgres unfenced"), std::string::npos) << r.err;
  ExpectNothingChanged();
  ASSERT_TRUE(pg_replica_->Sql("SELECT pg_wal_replay_resume()"));
}

TEST_F(FailoverTest, KilledFailoverResumesWhereItStopped) {
  WritePlan();
  RunResult first = Reprise({"failover", "--to", "dr", "--reason", "crash test", "--yes"},
                            {"REPRISE_TEST_CRASH_AFTER_STEP=promote"});
  EXPECT_EQ(first.exit_code, 137) << first.out << first.err;
  EXPECT_FALSE(InRecovery(*pg_replica_));  // promoted before the "crash"
  EXPECT_FALSE(fs::exists(base_ + "/state/active"));
  EXPECT_TRUE(hook_.Received().empty());

  RunResult second = Reprise({"failover", "--to", "dr", "--reason", "crash test", "--yes"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.err.find("resuming failover"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("promote      already done"), std::string::npos) << second.err;
  EXPECT_NE(second.out.find("RPO (not replicated at promotion): 0 bytes of WAL"),
            std::string::npos)
      << second.out;
  ASSERT_EQ(hook_.Received().size(), 1u);
  EXPECT_TRUE(pg_replica_->Sql("INSERT INTO acks VALUES (-2)"));
}

TEST_F(FailoverTest, MonitorFailsOverAfterKConsecutiveFailures) {
  WritePlan();
  AckWriter writer(Pg(*pg_primary_));
  RunResult r;
  auto start = std::chrono::steady_clock::now();
  std::thread monitor([&] {
    r = Reprise({"monitor", "--allow-no-quorum", "--exit-after-failover", "--rounds", "30"});
  });
  // Two healthy rounds (1 s apart) let the monitor see the primary's position; then the
  // primary's PostgreSQL and Redis die at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  pg_primary_->Kill();
  redis_primary_->Kill();
  auto killed = std::chrono::steady_clock::now();
  writer.Stop();
  monitor.join();
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("failed check 3/3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("failover to 'dr' completed"), std::string::npos) << r.err;
  EXPECT_FALSE(InRecovery(*pg_replica_));
  // Three failed one-second rounds, then the failover: seconds, never the 30 rounds.
  EXPECT_LT(took, 15.0);
  (void)start;
  std::string summary = r.err.substr(r.err.rfind("monitor: failover"));
  std::cout << "[ monitor ] " << summary;
  // The RPO is estimated from the last position the monitor saw, so it is a number.
  EXPECT_EQ(summary.find("RPO unknown"), std::string::npos) << summary;
  // What was really kept: the acknowledged rows found on the new primary.
  std::vector<int64_t> acked = writer.acked();
  auto n = pg_replica_->Sql("SELECT count(*) FROM acks WHERE id > 0");
  ASSERT_TRUE(n);
  size_t kept = std::stoul(*n);
  ASSERT_FALSE(acked.empty());
  std::cout << "[ monitor ] acknowledged " << acked.size() << ", on the new primary " << kept
            << ", lost " << (acked.size() > kept ? acked.size() - kept : 0)
            << ", RTO from the kill " << took << " s\n";
  // Asynchronous replication on loopback loses at most the last few milliseconds of writes.
  EXPECT_GE(kept + 200, acked.size()) << "more lost than a loopback replica can lag";
}

TEST_F(FailoverTest, FailbackReturnsToThePrimaryWithZeroLoss) {
  WritePlan();
  RunResult out = Reprise({"failover", "--to", "dr", "--reason", "drill", "--yes"});
  ASSERT_EQ(out.exit_code, 0) << out.out << out.err;
  // The application now writes to dr; failback must keep every acknowledged row.
  AckWriter writer(Pg(*pg_replica_));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  RunResult back = Reprise({"failback", "--to", "main", "--reason", "drill over", "--yes"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  writer.Stop();
  ASSERT_EQ(back.exit_code, 0) << back.out << back.err;
  EXPECT_NE(back.err.find("pg_rewind"), std::string::npos) << back.err;
  EXPECT_NE(back.out.find("RPO (not replicated at promotion): 0 bytes of WAL"),
            std::string::npos)
      << back.out;
  EXPECT_NE(back.out.find("site 'dr': now follows 'main'"), std::string::npos)
      << back.out << back.err << "\n"
      << [&] {
           std::ifstream log(pg_replica_->data_dir() + "/reprise-start.log");
           std::stringstream ss;
           ss << log.rdbuf();
           return ss.str();
         }();

  std::vector<int64_t> acked = writer.acked();
  ASSERT_GT(acked.size(), 50u);
  size_t lost = LostOn(*pg_primary_, acked);
  std::cout << "[ failback ] acknowledged " << acked.size() << " on dr, lost " << lost << "\n";
  EXPECT_EQ(lost, 0u);
  EXPECT_FALSE(InRecovery(*pg_primary_));
  EXPECT_TRUE(pg_primary_->Sql("INSERT INTO acks VALUES (-5)"));
  // dr streams from main again, and Redis follows the same way.
  EXPECT_TRUE(InRecovery(*pg_replica_));
  EXPECT_EQ(redis_primary_->Cli({"ROLE"}).value_or("").substr(0, 6), "master");
  EXPECT_TRUE(redis_replica_->WaitForInfo("master_link_status:up"));
  std::ifstream active(base_ + "/state/active");
  std::string site;
  active >> site;
  EXPECT_EQ(site, "main");
}

TEST_F(FailoverTest, MonitorsWithoutEtcdNeverPromote) {
  if (!EtcdAvailable()) GTEST_SKIP() << kEtcdSkipReason;
  auto etcd = EtcdServer::Create(base_, "etcd");
  ASSERT_TRUE(etcd);
  WritePlan("", "", {.etcd = etcd->endpoint()});
  etcd->Stop();
  pg_primary_->Kill();
  redis_primary_->Kill();
  auto [a, b] = TwoMonitors("plan.yaml", "plan.yaml", 5);
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(a.err.find("no quorum"), std::string::npos) << a.err;
  EXPECT_NE(b.err.find("no quorum"), std::string::npos) << b.err;
  EXPECT_EQ(Count(a.err + b.err, "failing over"), 0) << a.err << b.err;
  EXPECT_TRUE(InRecovery(*pg_replica_));
}

TEST_F(FailoverTest, CutMonitorIsOutvotedAndARealOutageFailsOverOnce) {
  if (!EtcdAvailable()) GTEST_SKIP() << kEtcdSkipReason;
  auto etcd = EtcdServer::Create(base_, "etcd");
  ASSERT_TRUE(etcd);
  // Monitor A reaches main's PostgreSQL and Redis through proxies; monitor B directly.
  FaultProxy pg_proxy({.target_port = static_cast<uint16_t>(pg_primary_->port())});
  FaultProxy redis_proxy({.target_port = static_cast<uint16_t>(redis_primary_->port())});
  ASSERT_TRUE(pg_proxy.error().empty()) << pg_proxy.error();
  WritePlan("", "",
            {.etcd = etcd->endpoint(),
             .main_pg = fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres",
                                    pg_proxy.port()),
             .main_redis = fmt::format("redis://127.0.0.1:{}", redis_proxy.port()),
             .file = "plan-a.yaml"});
  WritePlan("", "", {.etcd = etcd->endpoint()});
  // The network between A and the primary is cut; the primary is fine.
  pg_proxy.Pause();
  redis_proxy.Pause();
  auto [a, b] = TwoMonitors("plan-a.yaml", "plan.yaml", 7);
  EXPECT_EQ(Count(a.err + b.err, "failing over"), 0) << a.err << b.err;
  EXPECT_NE(a.err.find("failed check 3/3"), std::string::npos) << a.err;
  EXPECT_TRUE(InRecovery(*pg_replica_));
  EXPECT_FALSE(InRecovery(*pg_primary_));

  // Now the primary really goes: both monitors see it, the leader alone fails over, once.
  pg_primary_->Kill();
  redis_primary_->Kill();
  auto [a2, b2] = TwoMonitors("plan-a.yaml", "plan.yaml", 9);
  std::string both = a2.err + b2.err;
  EXPECT_EQ(Count(both, "failing over from 'main' to 'dr'"), 1) << a2.err << "----\n" << b2.err;
  EXPECT_EQ(Count(both, "failover to 'dr' completed"), 1) << both;
  EXPECT_FALSE(InRecovery(*pg_replica_));
  // The other monitor follows the new primary recorded in etcd.
  EXPECT_NE(both.find("watching primary site 'dr'"), std::string::npos) << both;
}

TEST_F(FailoverTest, MonitorWithoutQuorumOnlyWatches) {
  WritePlan();
  pg_primary_->Kill();
  RunResult r = Reprise({"monitor", "--rounds", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("not the leader: not acting"), std::string::npos) << r.err;
  EXPECT_TRUE(InRecovery(*pg_replica_));
}

}  // namespace
}  // namespace reprise::testing
