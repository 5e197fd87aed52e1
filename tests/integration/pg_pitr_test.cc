// Point-in-time recovery of the physical PostgreSQL component, end to end: the real `reprise`
// binary (backup, wal-push as archive_command, wal-stream, restore --to-time/--to-end/--delta
// --start) against real PostgreSQL 15 servers (pg_env.h). Each test builds its own repository,
// plan and servers in a temp dir; servers and the archive_command run as user "postgres".
//
// The RPO tests print how many acknowledged transactions a crash lost ("RPO ...").
// Skips when PostgreSQL 15 is not installed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "common/clock.h"
#include "harness.h"
#include "pg/connection.h"
#include "pg_env.h"
#include "repo/format.h"
#include "repo/repository.h"
#include "repo/wal_store.h"
#include "storage/local/local_storage.h"

extern char** environ;

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Steady = std::chrono::steady_clock;

constexpr char kPassphrase[] = "pitr passphrase";

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "2026-11-24T19:30:05Z" for a whole second.
std::string Rfc3339(time_t t) {
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A process running in the background (wal-stream, pgbench), output into a log file.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& log) : log_(log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("REPRISE_", 0) != 0) envs.push_back(*e);
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
    if (posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), cenv.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Background() { Stop(SIGKILL); }
  bool started() const { return pid_ > 0; }
  // Sends `sig` and waits; the exit code (128 + signal when killed), -1 when not running.
  int Stop(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string Log() const { return ReadText(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

// A server that `reprise restore --start` left running on `port`: queried with psql, stopped
// (immediate) on destruction.
class Restored {
 public:
  Restored(std::string data_dir, int port) : dir_(std::move(data_dir)), port_(port) {}
  ~Restored() { Stop("immediate"); }
  std::optional<std::string> Sql(const std::string& sql, std::string* error = nullptr) const {
    auto r = RunCommand({PgServer::Bin("psql"), "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-h",
                         "127.0.0.1", "-p", std::to_string(port_), "-U", "postgres", "-d",
                         "postgres", "-c", sql});
    if (r.exit_code != 0) {
      if (error) *error += r.err;
      return std::nullopt;
    }
    while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
  }
  std::string Value(const std::string& sql) const {
    std::string err;
    auto v = Sql(sql, &err);
    return v ? *v : "error: " + err;
  }
  void Stop(const std::string& mode = "fast") {
    if (!fs::exists(dir_ + "/postmaster.pid")) return;
    std::vector<std::string> argv = PgServer::AsServerUser();
    for (std::string a : {PgServer::Bin("pg_ctl"), std::string("-D"), dir_, std::string("-m"),
                          mode, std::string("-w"), std::string("stop")})
      argv.push_back(a);
    RunCommand(argv);
  }
  std::string Log() const { return ReadText(dir_ + "/reprise-recovery.log"); }

 private:
  std::string dir_;
  int port_;
};

// Inserts ids 1, 2, 3 ... into table seq, one transaction each, over one connection, and
// remembers the highest id whose COMMIT the server acknowledged. Ends at the first error
// (the server was killed) or when stopped.
class Writer {
 public:
  explicit Writer(const std::string& conninfo) {
    thread_ = std::thread([this, conninfo] {
      auto conn = pg::Connection::Open(conninfo, false);
      if (!conn.ok()) {
        error_ = conn.status().ToString();
        return;
      }
      for (int64_t i = 1; !stop_.load(); ++i) {
        auto r = (*conn)->Query("INSERT INTO seq VALUES (" + std::to_string(i) + ")");
        if (!r.ok()) {
          error_ = r.status().ToString();
          return;
        }
        acked_ = i;
      }
    });
  }
  ~Writer() { Join(); }
  void Stop() {
    stop_ = true;
    Join();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  int64_t acked() const { return acked_.load(); }
  const std::string& error() const { return error_; }  // after Join()

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_{0};
  std::string error_;
};

class PgPitrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason;
    Prepare();
  }

  // Binary, repository, generated key file and plan, all usable by user postgres.
  void Prepare() {
    base_ = tmp_.path();
    ArchivingRepo a = MakeArchivingRepo(base_, kPassphrase);
    ASSERT_TRUE(a.error.empty()) << a.error;
    bin_ = a.bin;
    repo_ = a.repo;
    key_ = a.key;
    plan_ = base_ + "/plan.yaml";
    WritePlan(plan_, "host=127.0.0.1 port=1 user=postgres");  // until a server exists
  }

  // Atomically, so that a concurrent archive_command never reads half a plan.
  void WritePlan(const std::string& path, const std::string& conninfo) {
    std::string text = "version: 1\nname: pitr\nsecrets:\n  repository_password: {file: " + key_ +
                       "}\nsites:\n  primary: {repository: " + repo_ +
                       "}\ncomponents:\n  db:\n    kind: postgres\n    class: transactional\n"
                       "    connection: \"" + conninfo + "\"\n    os_user: postgres\n";
    WriteFile(path + ".tmp", text);
    chmod((path + ".tmp").c_str(), 0644);
    fs::rename(path + ".tmp", path);
  }
  void PointPlanAt(const PgServer& s) {
    WritePlan(plan_, "host=127.0.0.1 port=" + std::to_string(s.port()) + " user=postgres");
  }

  std::vector<std::string> ArchiveConf() const {
    return {"archive_mode = on",
            "archive_command = '" + bin_ + " --plan " + plan_ + " wal-push %p'"};
  }

  // A primary archiving into the repository through wal-push, the plan pointing at it.
  std::unique_ptr<PgServer> ArchivingPrimary(const std::string& name,
                                             std::vector<std::string> extra_conf = {}) {
    PgServerOptions o;
    o.conf = ArchiveConf();
    o.conf.insert(o.conf.end(), extra_conf.begin(), extra_conf.end());
    auto s = PgServer::Create(base_ + "/pg", name, o);
    if (s) PointPlanAt(*s);
    return s;
  }

  RunResult Reprise(std::vector<std::string> args) {
    args.insert(args.begin(), {bin_, "--plan", plan_});
    return RunCommand(args);
  }

  json Json(const RunResult& r) {
    auto j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  }

  // Takes a backup of the plan's component and returns the point id ("" on failure).
  // `expect_exit` 3: the point was written but its WAL did not reach the archive in time.
  std::string Backup(std::vector<std::string> extra = {}, int expect_exit = 0) {
    std::vector<std::string> args = {"--json", "backup"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = Reprise(args);
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err;
    auto j = Json(r);
    return j.is_object() ? j.value("point", "") : "";
  }

  // restore <point> --component db --target-dir <dir> <extra...>
  RunResult Restore(const std::string& point, const std::string& dir,
                    std::vector<std::string> extra) {
    std::vector<std::string> args = {"restore", point, "--component", "db", "--target-dir", dir};
    args.insert(args.end(), extra.begin(), extra.end());
    return Reprise(args);
  }

  // Restores with --start on a fresh port; the returned server is running unless the
  // restore failed (then the RunResult says why).
  std::unique_ptr<Restored> RestoreAndStart(const std::string& point, const std::string& dir,
                                            std::vector<std::string> extra, RunResult* out) {
    int port = FreePort();
    extra.insert(extra.end(), {"--start", "--port", std::to_string(port), "--no-archive"});
    *out = Restore(point, dir, extra);
    return std::make_unique<Restored>(dir, port);
  }

  // Closes the current segment and waits until archive_command has archived it; returns its
  // name ("" after 60 s).
  std::string SwitchAndWaitArchived(const PgServer& s) {
    auto seg = s.Sql("SELECT pg_walfile_name(pg_switch_wal())");
    EXPECT_TRUE(seg.has_value());
    if (!seg) return "";
    auto deadline = Steady::now() + seconds(60);
    while (Steady::now() < deadline) {
      auto last = s.Sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
      if (last && last->size() == 24 && *last >= *seg) return *seg;
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "segment " << *seg << " was not archived: "
                  << s.Sql("SELECT row_to_json(a) FROM pg_stat_archiver a").value_or("?")
                  << "\n" << ReadText(s.log_file());
    return "";
  }

  // Rows, total and a digest of a table, to compare two servers.
  static std::string Digest(const std::function<std::optional<std::string>(const std::string&)>& q,
                            const std::string& table) {
    auto v = q("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY "
               "t::text)), '-') FROM " + table + " t");
    return v.value_or("error");
  }

  // Makes sure everything written so far, the last backup's WAL included, is archived: a
  // backup does not wait for its WAL (BASE_BACKUP ... WAIT false).
  void ArchiveAll(const PgServer& s) {
    ASSERT_TRUE(s.Sql("SELECT txid_current()"));  // a commit record: the switch is not a no-op
    ASSERT_FALSE(SwitchAndWaitArchived(s).empty());
  }

  std::string Dir(const std::string& name) const { return base_ + "/" + name; }

  TempDir tmp_;
  std::string base_, bin_, repo_, key_, plan_;
};

// LSNs as numbers, for comparisons in the test ("16/B374D848").
uint64_t Lsn(const std::string& text) {
  size_t slash = text.find('/');
  if (slash == std::string::npos) return 0;
  return (std::stoull(text.substr(0, slash), nullptr, 16) << 32) |
         std::stoull(text.substr(slash + 1), nullptr, 16);
}

TEST_F(PgPitrTest, BackupUnderLoadRestoresToEndLsn) {
  auto primary = ArchivingPrimary("primary");
  ASSERT_TRUE(primary);
  ASSERT_EQ(primary->Pgbench({"-i", "-s", "5"}), 0);
  ASSERT_TRUE(primary->Sql("CREATE TABLE marker(note text); INSERT INTO marker VALUES ('here');"
                           "CREATE TABLE ticks(id bigserial PRIMARY KEY, lsn pg_lsn NOT NULL)"));
  // tpcb-like, plus a row stamped with the WAL insert position inside each transaction.
  std::string script = base_ + "/load.sql";
  WriteFile(script,
            "\\set aid random(1, 100000 * :scale)\n\\set bid random(1, :scale)\n"
            "\\set tid random(1, 10 * :scale)\n\\set delta random(-5000, 5000)\n"
            "BEGIN;\n"
            "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
            "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n"
            "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
            "VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n"
            "INSERT INTO ticks(lsn) VALUES (pg_current_wal_insert_lsn());\n"
            "END;\n");
  Background load({PgServer::Bin("pgbench"), "-n", "-h", "127.0.0.1", "-p",
                   std::to_string(primary->port()), "-U", "postgres", "-c", "2", "-T", "120",
                   "-f", script, "postgres"},
                  base_ + "/pgbench.log");
  ASSERT_TRUE(load.started());
  std::this_thread::sleep_for(milliseconds(1500));
  std::string point = Backup();
  std::this_thread::sleep_for(milliseconds(500));
  load.Stop(SIGINT);
  ASSERT_EQ(point.size(), 64u);
  ArchiveAll(*primary);
  auto during = primary->Sql("SELECT count(*) FROM ticks");
  ASSERT_TRUE(during);
  ASSERT_GT(std::stoll(*during), 0) << load.Log();

  RunResult r;
  std::string dir = Dir("restored");
  auto restored = RestoreAndStart(point, dir, {"--json"}, &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  // The backup's WAL range, as the server wrote it into the manifest kept beside the data.
  auto manifest = json::parse(ReadText(dir + "/backup_manifest"), nullptr, false);
  ASSERT_TRUE(manifest.is_object());
  const auto& range = manifest["WAL-Ranges"].at(0);
  const std::string start_lsn = range["Start-LSN"], end_lsn = range["End-LSN"];
  ASSERT_LT(Lsn(start_lsn), Lsn(end_lsn));

  EXPECT_EQ(restored->Value("SELECT note FROM marker"), "here");
  // Nothing after the consistency point...
  EXPECT_EQ(restored->Value("SELECT count(*) FROM ticks WHERE lsn > '" + end_lsn + "'"), "0");
  // ... and everything committed before the backup began.
  std::string before = "SELECT count(*) FROM ticks WHERE lsn < '" + start_lsn + "'";
  EXPECT_EQ(restored->Value(before), primary->Sql(before).value_or("?"));
  // The load ran during the backup, and its transactions were replayed from the WAL.
  auto replayed = restored->Value("SELECT count(*) FROM ticks WHERE lsn >= '" + start_lsn + "'");
  EXPECT_NE(replayed, "0") << "no transaction of the backup's window was replayed";
  // pgbench's invariant holds on the restored server: no half transaction.
  EXPECT_EQ(restored->Value("SELECT (SELECT sum(abalance) FROM pgbench_accounts) = "
                            "(SELECT coalesce(sum(delta), 0) FROM pgbench_history) AND "
                            "(SELECT sum(tbalance) FROM pgbench_tellers) = "
                            "(SELECT coalesce(sum(delta), 0) FROM pgbench_history) AND "
                            "(SELECT count(*) FROM pgbench_history) = "
                            "(SELECT count(*) FROM ticks)"),
            "t");
  EXPECT_EQ(restored->Value("SELECT pg_is_in_recovery()"), "f");
  std::cout << "backup under load: " << restored->Value("SELECT count(*) FROM ticks")
            << " of " << *during << " transactions in the point (" << replayed
            << " replayed from the backup's WAL window " << start_lsn << " .. " << end_lsn
            << ")\n";
}

TEST_F(PgPitrTest, PitrToTime) {
  auto primary = ArchivingPrimary("primary");
  ASSERT_TRUE(primary);
  ASSERT_TRUE(primary->Sql("CREATE TABLE t(side text, n int)"));
  std::string point = Backup();
  ASSERT_EQ(point.size(), 64u);
  ASSERT_TRUE(primary->Sql("INSERT INTO t SELECT 'A', g FROM generate_series(1, 100) g"));
  std::this_thread::sleep_for(milliseconds(1100));
  // A whole second after A's commit; B commits more than a second after it.
  time_t noted = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::this_thread::sleep_until(std::chrono::system_clock::from_time_t(noted) + milliseconds(2200));
  ASSERT_TRUE(primary->Sql("INSERT INTO t SELECT 'B', g FROM generate_series(1, 50) g"));
  ASSERT_FALSE(SwitchAndWaitArchived(*primary).empty());

  RunResult r;
  auto restored = RestoreAndStart("latest", Dir("restored"), {"--to-time", Rfc3339(noted)}, &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(restored->Value("SELECT count(*) FROM t WHERE side = 'A'"), "100");
  EXPECT_EQ(restored->Value("SELECT count(*) FROM t WHERE side = 'B'"), "0");
  EXPECT_EQ(restored->Value("SELECT pg_is_in_recovery()"), "f");
}

TEST_F(PgPitrTest, RpoWithWalStream) {
  auto primary = PgServer::Create(base_ + "/pg", "primary");  // no archive_command
  ASSERT_TRUE(primary);
  PointPlanAt(*primary);
  ASSERT_TRUE(primary->Sql("CREATE TABLE seq(id bigint PRIMARY KEY)"));
  Background stream({bin_, "--plan", plan_, "wal-stream", "--push-interval-ms", "500",
                     "--spool", base_ + "/spool"},
                    base_ + "/wal-stream.log");
  ASSERT_TRUE(stream.started());
  bool streaming = false;
  for (int i = 0; i < 400 && !streaming; ++i) {
    streaming = primary->Sql("SELECT count(*) FROM pg_stat_replication").value_or("0") != "0";
    if (!streaming) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(streaming) << stream.Log();
  std::string point = Backup();
  ASSERT_EQ(point.size(), 64u);

  auto t0 = Steady::now();
  Writer writer(primary->conninfo());
  std::this_thread::sleep_for(seconds(3));
  primary->Kill();
  double secs = std::chrono::duration<double>(Steady::now() - t0).count();
  writer.Join();
  const int64_t acked = writer.acked();
  ASSERT_GT(acked, 0) << writer.error();
  // What the stream had received is archived once it notices the server is gone.
  std::this_thread::sleep_for(milliseconds(1000));
  EXPECT_EQ(stream.Stop(SIGTERM), 0) << stream.Log();

  RunResult r;
  auto restored = RestoreAndStart("latest", Dir("restored"), {"--to-end"}, &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << stream.Log();
  auto max_id = restored->Sql("SELECT coalesce(max(id), 0) || ' ' || count(*) FROM seq");
  ASSERT_TRUE(max_id);
  int64_t restored_max = std::stoll(*max_id);
  EXPECT_EQ(*max_id, std::to_string(restored_max) + " " + std::to_string(restored_max))
      << "the restored ids have holes";
  const int64_t lost = acked - restored_max;
  const double rate = static_cast<double>(acked) / secs;
  std::cout << "RPO wal-stream (push interval 500 ms): " << lost << " of " << acked
            << " acknowledged transactions lost (" << static_cast<int64_t>(rate) << " tx/s)\n";
  // The one INSERT in flight when the server died may have been committed and streamed
  // without its acknowledgement reaching the writer: one more than acknowledged is honest,
  // two or more would mean ids the writer never sent.
  EXPECT_GE(lost, -1) << "restored more than was acknowledged plus the one in flight";
  EXPECT_LE(static_cast<double>(lost), 2.0 * rate) << "more than ~2 s of transactions lost";
}

TEST_F(PgPitrTest, RpoWithArchiveCommand) {
  auto primary = ArchivingPrimary("primary", {"archive_timeout = 60"});
  ASSERT_TRUE(primary);
  ASSERT_TRUE(primary->Sql("CREATE TABLE seq(id bigint PRIMARY KEY)"));
  std::string point = Backup();
  ASSERT_EQ(point.size(), 64u);

  Writer writer(primary->conninfo());
  std::this_thread::sleep_for(milliseconds(1000));
  // Every id acknowledged before the switch is in a segment that gets archived.
  const int64_t before_switch = writer.acked();
  ASSERT_FALSE(SwitchAndWaitArchived(*primary).empty());
  std::this_thread::sleep_for(milliseconds(300));
  primary->Kill();
  writer.Join();
  const int64_t acked = writer.acked();
  ASSERT_GT(before_switch, 0) << writer.error();

  RunResult r;
  auto restored = RestoreAndStart("latest", Dir("restored"), {"--to-end"}, &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto max_id = restored->Sql("SELECT coalesce(max(id), 0) || ' ' || count(*) FROM seq");
  ASSERT_TRUE(max_id);
  int64_t restored_max = std::stoll(*max_id);
  EXPECT_EQ(*max_id, std::to_string(restored_max) + " " + std::to_string(restored_max));
  const int64_t lost = acked - restored_max;
  std::cout << "RPO archive_command (archive_timeout 60 s, killed ~0.3 s after an archived "
               "switch): " << lost << " of " << acked << " acknowledged transactions lost; "
            << acked - before_switch << " were acknowledged after the switch began\n";
  EXPECT_GE(restored_max, before_switch) << "lost transactions of an archived segment";
  EXPECT_LE(lost, acked - before_switch);
}

TEST_F(PgPitrTest, TimelineAfterPromotion) {
  auto primary = ArchivingPrimary("primary");
  ASSERT_TRUE(primary);
  ASSERT_TRUE(primary->Sql("CREATE TABLE t(side text, n int);"
                           "INSERT INTO t SELECT 'base', g FROM generate_series(1, 100) g"));
  std::string first = Backup();
  ASSERT_EQ(first.size(), 64u);
  // The replica copies postgresql.conf: it archives into the same place once promoted.
  auto replica = PgServer::CreateReplica(*primary, "replica");
  ASSERT_TRUE(replica);
  ASSERT_TRUE(primary->Sql("INSERT INTO t SELECT 'tl1', g FROM generate_series(1, 50) g"));
  ASSERT_FALSE(SwitchAndWaitArchived(*primary).empty());
  std::string lsn = primary->Sql("SELECT pg_current_wal_lsn()").value_or("");
  bool caught_up = false;
  for (int i = 0; i < 400 && !caught_up; ++i) {
    caught_up = replica->Sql("SELECT pg_last_wal_replay_lsn() >= '" + lsn + "'") == "t";
    if (!caught_up) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(caught_up);
  primary->Stop();  // a clean failover: the old primary writes no more
  ASSERT_TRUE(replica->Promote());
  ASSERT_EQ(replica->Sql("SELECT pg_is_in_recovery()"), "f");
  ASSERT_TRUE(replica->Sql("INSERT INTO t SELECT 'tl2', g FROM generate_series(1, 50) g"));
  ASSERT_FALSE(SwitchAndWaitArchived(*replica).empty());

  // A backup of the new primary, then more rows after it.
  PointPlanAt(*replica);
  std::string second = Backup();
  ASSERT_EQ(second.size(), 64u);
  ASSERT_TRUE(replica->Sql("INSERT INTO t SELECT 'after', g FROM generate_series(1, 30) g"));
  ASSERT_FALSE(SwitchAndWaitArchived(*replica).empty());
  const std::string want = "after:30,base:100,tl1:50,tl2:50";
  const std::string counts =
      "SELECT string_agg(side || ':' || c, ',' ORDER BY side) FROM "
      "(SELECT side, count(*) c FROM t GROUP BY side) s";
  ASSERT_EQ(replica->Sql(counts), want);

  // From the timeline 1 backup, across the promotion.
  RunResult r;
  auto from_first = RestoreAndStart(first, Dir("from-first"), {"--to-end"}, &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(from_first->Value(counts), want);
  EXPECT_GE(std::stoi(from_first->Value("SELECT timeline_id FROM pg_control_checkpoint()")), 2);
  from_first->Stop();

  // From the new primary's backup.
  auto from_second = RestoreAndStart(second, Dir("from-second"), {"--to-end"}, &r);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(from_second->Value(counts), want);
  EXPECT_GE(std::stoi(from_second->Value("SELECT timeline_id FROM pg_control_checkpoint()")), 2);
}

// A primary with a backup followed by three archived segments; returns their names.
class PgPitrDamageTest : public PgPitrTest {
 protected:
  std::vector<std::string> BackupThenSegments(PgServer& s) {
    EXPECT_TRUE(s.Sql("CREATE TABLE t(n int)"));
    EXPECT_EQ(Backup().size(), 64u);
    std::vector<std::string> segs;
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(s.Sql("INSERT INTO t SELECT g FROM generate_series(1, 1000) g"));
      segs.push_back(SwitchAndWaitArchived(s));
    }
    return segs;
  }
  std::string Record(const std::string& name) const { return repo_ + "/wal/db/" + name; }

  // The restore fails naming `segment`, and leaves nothing a server could start from.
  void ExpectRefused(const RunResult& r, const std::string& dir, const std::string& segment,
                     bool before_writing) {
    EXPECT_NE(r.exit_code, 0) << r.out;
    const bool written = fs::exists(dir + "/global/pg_control");
    std::cout << "refused (data directory " << (written ? "written" : "not written") << "): "
              << r.err.substr(0, r.err.find('\n')) << "\n";
    EXPECT_NE(r.err.find(segment), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir + "/postmaster.pid")) << "a server was started";
    if (before_writing)
      EXPECT_FALSE(fs::exists(dir + "/global/pg_control"))
          << "the data directory was written although the WAL was known to be incomplete";
  }
};

TEST_F(PgPitrDamageTest, MissingWalSegmentRefused) {
  auto primary = ArchivingPrimary("primary");
  ASSERT_TRUE(primary);
  auto segs = BackupThenSegments(*primary);
  ASSERT_EQ(segs.size(), 3u);
  ASSERT_TRUE(fs::exists(Record(segs[1]))) << Record(segs[1]);
  fs::remove(Record(segs[1]));
  std::string dir = Dir("restored");
  auto r = Restore("latest", dir, {"--to-end", "--start", "--port", std::to_string(FreePort()),
                                   "--no-archive"});
  ExpectRefused(r, dir, segs[1], /*before_writing=*/true);
  Restored guard(dir, 0);
  // status reports the gap too.
  auto st = Reprise({"--json", "status"});
  EXPECT_NE(st.out.find(segs[1]), std::string::npos) << st.out << st.err;
}

TEST_F(PgPitrDamageTest, CorruptWalSegmentRefused) {
  auto primary = ArchivingPrimary("primary");
  ASSERT_TRUE(primary);
  auto segs = BackupThenSegments(*primary);
  ASSERT_EQ(segs.size(), 3u);
  primary->Stop();
  // Where the second segment's first blob lies in its pack (the record says).
  Id pack;
  uint64_t offset = 0;
  {
    auto repo = Repository::Open(std::make_unique<LocalStorage>(repo_), kPassphrase);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    SystemClock clock;
    WalStore wal(**repo, "db", clock);
    auto rec = wal.Load(segs[1]);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    ASSERT_FALSE(rec->at.empty());
    pack = rec->at[0].pack;
    offset = rec->at[0].offset + rec->at[0].length / 2;
  }
  auto flip = [](const std::string& path, uint64_t at) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << path;
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    ASSERT_TRUE(f.good()) << path << " has no byte " << at;
    c = static_cast<char>(c ^ 0x20);
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
  };
  const std::string pack_path = repo_ + "/" + PackKey(pack);
  const std::string pack_copy = base_ + "/pack.orig";
  fs::copy_file(pack_path, pack_copy);

  // A damaged blob in the pack.
  flip(pack_path, offset);
  std::string dir = Dir("restored-pack");
  auto r = Restore("latest", dir, {"--to-end", "--start", "--port", std::to_string(FreePort()),
                                   "--no-archive"});
  Restored guard1(dir, 0);
  ExpectRefused(r, dir, segs[1], /*before_writing=*/true);
  fs::copy_file(pack_copy, pack_path, fs::copy_options::overwrite_existing);

  // A damaged record.
  flip(Record(segs[2]), fs::file_size(Record(segs[2])) / 2);
  dir = Dir("restored-record");
  r = Restore("latest", dir, {"--to-end", "--start", "--port", std::to_string(FreePort()),
                              "--no-archive"});
  Restored guard2(dir, 0);
  ExpectRefused(r, dir, segs[2], /*before_writing=*/true);
}

// The archive holds the backup's first segments but not the one its end lies in: no target
// can be reached (the server refuses to end recovery before the backup's end), so --to-end
// must be refused before anything is written, and status must not call the point healthy.
TEST_F(PgPitrDamageTest, WalEndingBeforeTheBackupsEndRefused) {
  // WAL is pushed by hand below; archiving on (failing) keeps the backup history file.
  PgServerOptions o;
  o.conf = {"archive_mode = on", "archive_command = '/bin/false'"};
  auto primary = PgServer::Create(base_ + "/pg", "primary", o);
  ASSERT_TRUE(primary);
  PointPlanAt(*primary);
  ASSERT_TRUE(primary->Sql("CREATE TABLE big(n int, pad text)"));
  // WAL written during the backup, so that its end lies segments after its start.
  std::string start_wal, stop_wal;
  for (int attempt = 0; attempt < 3 && start_wal == stop_wal; ++attempt) {
    WriteFile(base_ + "/insert.sql", "INSERT INTO big SELECT g, repeat('x', 500) FROM "
                                     "generate_series(1, 2000) g;\n");
    Background insert({PgServer::Bin("pgbench"), "-n", "-h", "127.0.0.1", "-p",
                       std::to_string(primary->port()), "-U", "postgres", "-c", "1", "-T", "60",
                       "-f", base_ + "/insert.sql", "postgres"},
                      base_ + "/insert.log");
    std::this_thread::sleep_for(milliseconds(300));
    // The archive never gets the WAL here: do not wait for it (the backup says so, exit 3).
    ASSERT_EQ(Backup({"--wal-wait", "0"}, 3).size(), 64u);
    insert.Stop(SIGINT);
    // The backup history file PostgreSQL wrote names both segments.
    for (const auto& e : fs::directory_iterator(primary->data_dir() + "/pg_wal")) {
      std::string name = e.path().filename().string();
      if (name.size() != 40 || name.substr(33) != ".backup") continue;
      std::string text = ReadText(e.path().string());
      std::smatch m;
      static const std::regex kStart(R"(START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\))");
      static const std::regex kStop(R"(STOP WAL LOCATION: \S+ \(file ([0-9A-F]{24})\))");
      if (std::regex_search(text, m, kStart) && m[1].str() >= start_wal) {
        start_wal = m[1];
        if (std::regex_search(text, m, kStop)) stop_wal = m[1];
      }
    }
  }
  ASSERT_FALSE(start_wal.empty());
  ASSERT_LT(start_wal, stop_wal) << "could not make a backup span segments";
  // Archive every segment of the backup but its last.
  int pushed = 0;
  for (const auto& e : fs::directory_iterator(primary->data_dir() + "/pg_wal")) {
    std::string name = e.path().filename().string();
    if (name.size() != 24 || name < start_wal || name >= stop_wal) continue;
    auto r = Reprise({"wal-push", e.path().string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ++pushed;
  }
  ASSERT_GT(pushed, 0);

  auto st = Reprise({"--json", "status"});
  EXPECT_NE(st.out.find(stop_wal), std::string::npos)
      << "status does not report that the point's last segment is missing: " << st.out;
  std::string dir = Dir("restored");
  auto r = Restore("latest", dir, {"--to-end", "--start", "--port", std::to_string(FreePort()),
                                   "--no-archive"});
  Restored guard(dir, 0);
  ExpectRefused(r, dir, stop_wal, /*before_writing=*/true);
}

// "delta restore: N bytes written, M bytes already in place" -> {N, M}.
std::pair<uint64_t, uint64_t> DeltaBytes(const std::string& err) {
  std::smatch m;
  static const std::regex kRe(R"(delta restore: ([0-9]+) bytes written, ([0-9]+) bytes already)");
  if (!std::regex_search(err, m, kRe)) return {UINT64_MAX, 0};
  return {std::stoull(m[1]), std::stoull(m[2])};
}

TEST_F(PgPitrTest, DeltaRestore) {
  auto primary = ArchivingPrimary("primary");
  ASSERT_TRUE(primary);
  ASSERT_EQ(primary->Pgbench({"-i", "-s", "2"}), 0);
  auto q = [&](const std::string& sql) { return primary->Sql(sql); };
  const std::string p1_digest = Digest(q, "pgbench_accounts");
  std::string p1 = Backup();
  ASSERT_EQ(p1.size(), 64u);
  ArchiveAll(*primary);

  std::string dir = Dir("restored");
  auto r = Restore(p1, dir, {});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The same point again: almost everything is already in place.
  r = Restore(p1, dir, {"--delta"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto [written, in_place] = DeltaBytes(r.err);
  std::cout << "delta restore of the same point: " << written << " bytes written, " << in_place
            << " in place\n";
  EXPECT_GT(in_place, 20u << 20) << r.err;
  EXPECT_LT(written, in_place / 100) << r.err;

  // Start it (it diverges: new timeline, hint bits, checkpoints), check, stop.
  {
    int port = FreePort();
    r = Restore(p1, dir, {"--delta", "--start", "--port", std::to_string(port), "--no-archive"});
    Restored s(dir, port);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(Digest([&](const std::string& sql) { return s.Sql(sql); }, "pgbench_accounts"),
              p1_digest);
    ASSERT_TRUE(s.Sql("UPDATE pgbench_accounts SET abalance = -1 WHERE aid % 7 = 0"));
    s.Stop();
  }

  // A later point into the same directory.
  ASSERT_EQ(primary->Pgbench({"-n", "-t", "300", "-c", "2"}), 0);
  ASSERT_TRUE(primary->Sql("CREATE TABLE extra AS SELECT g AS n FROM generate_series(1, 5000) g"));
  std::string p2 = Backup();
  ASSERT_EQ(p2.size(), 64u);
  ArchiveAll(*primary);
  std::map<std::string, std::string> want;
  for (const char* t : {"pgbench_accounts", "pgbench_history", "pgbench_tellers", "extra"})
    want[t] = Digest(q, t);
  ASSERT_NE(want["pgbench_accounts"], p1_digest);

  RunResult r2;
  auto s2 = RestoreAndStart(p2, dir, {"--delta"}, &r2);
  ASSERT_EQ(r2.exit_code, 0) << r2.out << r2.err << s2->Log();
  auto [written2, in_place2] = DeltaBytes(r2.err);
  std::cout << "delta restore of a later point: " << written2 << " bytes written, " << in_place2
            << " in place\n";
  EXPECT_GT(in_place2, 0u) << r2.err;
  for (const auto& [table, digest] : want)
    EXPECT_EQ(Digest([&](const std::string& sql) { return s2->Sql(sql); }, table), digest)
        << table;
}

TEST_F(PgPitrTest, WalPushIsIdempotentAndRefusesOtherContent) {
  const std::string seg = base_ + "/000000010000000000000010";
  WriteNoise(seg, 16u << 20, 7);
  auto push = [&] { return Reprise({"--json", "wal-push", seg}); };
  auto r1 = push();
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  auto j1 = Json(r1);
  EXPECT_EQ(j1.value("stored", false), true);
  auto r2 = push();
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(Json(r2).value("stored", true), false) << "pushed twice: the second is a no-op";
  std::cout << "wal-push of a 16 MiB segment: " << j1.value("milliseconds", -1.0)
            << " ms, again: " << Json(r2).value("milliseconds", -1.0) << " ms\n";
  EXPECT_LT(j1.value("milliseconds", 1e9), 10000.0);

  // It comes back byte for byte.
  const std::string back = base_ + "/fetched";
  auto f = Reprise({"wal-fetch", "000000010000000000000010", back});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_TRUE(ReadText(back) == ReadText(seg));

  // Other bytes under the same name are refused.
  {
    std::fstream file(seg, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(12345);
    file.put('x');
  }
  auto r3 = push();
  EXPECT_NE(r3.exit_code, 0);
  EXPECT_NE(r3.err.find("different content"), std::string::npos) << r3.err;
  f = Reprise({"wal-fetch", "000000010000000000000010", back});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_FALSE(ReadText(back) == ReadText(seg)) << "the archived copy was replaced";
}

}  // namespace
}  // namespace reprise::testing
