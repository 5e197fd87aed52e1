// The replication protocol client (src/pg/replication.h) against real PostgreSQL 15 servers:
// IDENTIFY_SYSTEM, BASE_BACKUP (restored and started), WAL streaming from a slot, timeline
// history after a promotion. Skips when PostgreSQL 15 is not installed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "harness.h"
#include "pg/backup_manifest.h"
#include "pg/connection.h"
#include "pg/replication.h"
#include "pg_env.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;
using pg::Lsn;

std::string ReadAllFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A directory the server user may write into.
void MakeServerDir(const std::string& path) {
  fs::create_directories(path);
  if (geteuid() == 0) RunCommand({"/bin/chown", "postgres:postgres", path});
}

std::unique_ptr<pg::Connection> Connect(const PgServer& s, bool replication) {
  auto c = pg::Connection::Open(s.conninfo(), replication);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

// Writes the backup into a data directory (tablespaces into their own directories, with the
// pg_tblspc links pointing at them) and keeps the manifest.
class DirReceiver : public pg::BaseBackupReceiver {
 public:
  DirReceiver(std::string data_dir, std::string tablespace_root)
      : data_dir_(std::move(data_dir)), ts_root_(std::move(tablespace_root)) {}

  Status OnArchive(const std::string& name, const std::string& tablespace_path,
                   std::optional<uint32_t> oid) override {
    archives.push_back(name);
    if (tablespace_path.empty()) {
      root_ = data_dir_;
    } else {
      if (!oid) return Internal("tablespace archive '" + name + "' without an oid");
      root_ = ts_root_ + "/" + std::to_string(*oid);
      relocated_[std::to_string(*oid)] = root_;
    }
    fs::create_directories(root_);
    chmod(root_.c_str(), 0700);
    return Status::Ok();
  }

  Status OnMember(const pg::TarMember& m,
                  const std::function<Result<size_t>(uint8_t*, size_t)>& read) override {
    std::string path = root_ + "/" + m.path;
    fs::create_directories(fs::path(path).parent_path());
    if (m.type == pg::TarMember::Type::kDirectory) {
      fs::create_directories(path);
      chmod(path.c_str(), m.mode);
    } else if (m.type == pg::TarMember::Type::kSymlink) {
      std::string target = m.link_target;
      std::string oid = fs::path(m.path).filename().string();
      if (m.path.starts_with("pg_tblspc/") && relocated_.count(oid)) target = relocated_[oid];
      fs::create_symlink(target, path);
    } else {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      uint8_t buf[65536];
      uint64_t total = 0;
      for (;;) {
        ASSIGN_OR_RETURN(size_t n, read(buf, sizeof buf));
        if (n == 0) break;
        out.write(reinterpret_cast<const char*>(buf), static_cast<std::streamsize>(n));
        total += n;
      }
      if (total != m.size) return Internal("member '" + m.path + "' size mismatch");
      out.close();
      chmod(path.c_str(), m.mode);
      ++files;
    }
    return Status::Ok();
  }

  Status OnManifestData(ByteView data) override {
    manifest.append(AsString(data));
    return Status::Ok();
  }
  void OnProgress(uint64_t bytes_done) override {
    ++progress_messages;
    last_progress = bytes_done;
  }

  std::vector<std::string> archives;
  std::string manifest;
  int files = 0;
  int progress_messages = 0;
  uint64_t last_progress = 0;

 private:
  std::string data_dir_, ts_root_, root_;
  std::map<std::string, std::string> relocated_;
};

// Every file of the manifest is in `dir` with its size and checksum; returns the manifest.
pg::BackupManifest CheckAgainstManifest(const std::string& dir, const DirReceiver& r,
                                        const std::string& algorithm) {
  auto m = pg::ParseBackupManifest(r.manifest);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return {};
  EXPECT_EQ(static_cast<int>(m->files.size()), r.files);
  int checked = 0;
  for (const auto& [path, f] : m->files) {
    SCOPED_TRACE(path);
    EXPECT_EQ(f.checksum_algorithm, algorithm);
    std::string data = ReadAllFile(dir + "/" + path);
    EXPECT_EQ(data.size(), f.size);
    auto c = pg::ManifestChecksummer::Make(f.checksum_algorithm);
    EXPECT_TRUE(c.ok());
    if (!c.ok()) continue;
    // In two pieces, as the backup streams them.
    c->Update(AsBytes(data).first(data.size() / 3));
    c->Update(AsBytes(data).subspan(data.size() / 3));
    EXPECT_EQ(c->HexDigest(), f.checksum);
    ++checked;
  }
  EXPECT_GT(checked, 500);  // a fresh cluster has ~1000 files
  return *m;
}

// The first "<lsn>" a psql query prints, parsed.
Lsn SqlLsn(const PgServer& s, const std::string& sql) {
  auto out = s.Sql(sql);
  EXPECT_TRUE(out.has_value()) << sql;
  auto lsn = pg::ParseLsn(out.value_or(""));
  EXPECT_TRUE(lsn.ok()) << *out;
  return lsn.ok() ? *lsn : 0;
}

class PgProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason;
  }
  TempDir tmp_;
};

TEST_F(PgProtocolTest, IdentifySystem) {
  auto s = PgServer::Create(tmp_.path() + "/pg", "primary");
  ASSERT_NE(s, nullptr);
  auto conn = Connect(*s, true);
  ASSERT_NE(conn, nullptr);
  EXPECT_GE(conn->server_version(), 150000);
  auto info = pg::IdentifySystem(*conn);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->system_id, s->Sql("SELECT system_identifier FROM pg_control_system()"));
  EXPECT_EQ(info->timeline, 1u);
  EXPECT_GT(info->xlogpos, 0u);
  EXPECT_LE(info->xlogpos, SqlLsn(*s, "SELECT pg_current_wal_flush_lsn()"));
  // SQL is refused on a physical replication connection, with the server's words.
  auto sql = conn->Query("SELECT 1");
  EXPECT_FALSE(sql.ok());
  // A server that is not there is a retryable error that does not leak the password.
  auto gone = pg::Connection::Open(
      "host=127.0.0.1 port=" + std::to_string(FreePort()) + " password=hush connect_timeout=2",
      false);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), Code::kUnavailable);
  EXPECT_EQ(gone.status().message().find("hush"), std::string::npos);
}

TEST_F(PgProtocolTest, BaseBackupRestoresAndStarts) {
  std::string archive = tmp_.path() + "/archive";
  MakeServerDir(archive);
  auto s = PgServer::Create(tmp_.path() + "/pg", "primary",
                            {.conf = {"archive_mode = on",
                                      "archive_command = 'cp %p " + archive + "/%f'"}});
  ASSERT_NE(s, nullptr);
  std::string ts_dir = tmp_.path() + "/pg/ts1";
  MakeServerDir(ts_dir);
  std::string err;
  ASSERT_TRUE(s->Sql("CREATE TABLESPACE ts1 LOCATION '" + ts_dir + "'", "postgres", &err)) << err;
  ASSERT_TRUE(s->Sql("CREATE TABLE t AS SELECT g AS i FROM generate_series(1, 1000) g;"
                     "CREATE TABLE tt TABLESPACE ts1 AS "
                     "SELECT g AS i FROM generate_series(1, 500) g",
                     "postgres", &err))
      << err;

  auto conn = Connect(*s, true);
  ASSERT_NE(conn, nullptr);
  std::string dest = tmp_.path() + "/restore/data";
  DirReceiver receiver(dest, tmp_.path() + "/restore/tablespaces");
  auto result = pg::BaseBackup(*conn, {.label = "reprise test"}, receiver);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->start_tli, 1u);
  EXPECT_EQ(result->end_tli, 1u);
  EXPECT_GT(result->start_lsn, 0u);
  EXPECT_GT(result->end_lsn, result->start_lsn);
  // The tablespace comes first, the main directory last.
  ASSERT_EQ(receiver.archives.size(), 2u);
  EXPECT_EQ(receiver.archives.back(), "base.tar");
  EXPECT_TRUE(receiver.archives.front().ends_with(".tar"));
  EXPECT_GT(receiver.progress_messages, 0);
  EXPECT_GT(receiver.last_progress, 0u);
  EXPECT_EQ(ReadAllFile(dest + "/PG_VERSION"), ReadAllFile(s->data_dir() + "/PG_VERSION"));
  EXPECT_NE(ReadAllFile(dest + "/backup_label").find("LABEL: reprise test"), std::string::npos);

  // The real server's manifest: its own SHA-256 and every file's CRC-32C as we compute them.
  auto manifest = CheckAgainstManifest(dest, receiver, "CRC32C");
  ASSERT_EQ(manifest.wal_ranges.size(), 1u);
  EXPECT_EQ(manifest.wal_ranges[0].start, result->start_lsn);
  EXPECT_EQ(manifest.wal_ranges[0].end, result->end_lsn);
  bool tablespace_file = false;
  for (const auto& [path, f] : manifest.files) tablespace_file |= path.starts_with("pg_tblspc/");
  EXPECT_TRUE(tablespace_file);
  // A tampered manifest is refused.
  std::string tampered = receiver.manifest;
  tampered[tampered.find("\"Size\": ") + 8] ^= 1;
  auto bad = pg::ParseBackupManifest(tampered);
  EXPECT_EQ(bad.status().code(), Code::kCorruption);
  // PostgreSQL's own verifier agrees with what we wrote.
  WriteFile(dest + "/backup_manifest", receiver.manifest);
  RunResult verify = RunCommand({PgServer::Bin("pg_verifybackup"), "-n", dest});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  // Restore: WAL comes from the archive the server fills.
  std::string end_segment = pg::SegmentName(result->end_tli, result->end_lsn);
  for (int i = 0; i < 600 && !fs::exists(archive + "/" + end_segment); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(fs::exists(archive + "/" + end_segment)) << end_segment;
  fs::remove(dest + "/backup_manifest");
  WriteFile(dest + "/recovery.signal", "");
  {
    std::ofstream conf(dest + "/postgresql.auto.conf", std::ios::app);
    conf << "restore_command = 'cp " << archive << "/%f %p'\narchive_mode = off\n";
  }
  auto restored = PgServer::Adopt(dest, "restored");
  ASSERT_NE(restored, nullptr);
  ASSERT_TRUE(restored->Start()) << ReadAllFile(restored->log_file());
  for (int i = 0; i < 300; ++i) {
    if (restored->Sql("SELECT pg_is_in_recovery()") == "f") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(restored->Sql("SELECT count(*) FROM t"), "1000");
  EXPECT_EQ(restored->Sql("SELECT count(*) FROM tt"), "500");
  EXPECT_EQ(restored->Sql("SELECT spcname FROM pg_tablespace t JOIN pg_class c "
                          "ON c.reltablespace = t.oid WHERE c.relname = 'tt'"),
            "ts1");
}

TEST_F(PgProtocolTest, BaseBackupFromStandbyWithSha256) {
  auto primary = PgServer::Create(tmp_.path() + "/pg", "primary");
  ASSERT_NE(primary, nullptr);
  ASSERT_TRUE(primary->Sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g"));
  auto standby = PgServer::CreateReplica(*primary, "standby");
  ASSERT_NE(standby, nullptr);
  EXPECT_EQ(standby->Sql("SELECT pg_is_in_recovery()"), "t");
  auto conn = Connect(*standby, true);
  ASSERT_NE(conn, nullptr);
  std::string dest = tmp_.path() + "/copy";
  DirReceiver receiver(dest, tmp_.path() + "/copy_ts");
  auto result =
      pg::BaseBackup(*conn, {.label = "from standby", .manifest_checksums = "SHA256"}, receiver);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(receiver.archives, std::vector<std::string>{"base.tar"});
  EXPECT_GE(result->end_lsn, result->start_lsn);
  EXPECT_NE(ReadAllFile(dest + "/backup_label").find("FROM: standby"), std::string::npos);
  CheckAgainstManifest(dest, receiver, "SHA256");

  // A backup the server refuses is an error, and the connection stays usable.
  auto refused = pg::BaseBackup(*conn, {.manifest_checksums = "MD5"}, receiver);
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(pg::IdentifySystem(*conn).ok());
}

// Collects streamed WAL per segment.
class Collector : public pg::WalStreamHandler {
 public:
  explicit Collector(Lsn stop_at) : stop_at_(stop_at) {}
  Status OnWalData(Lsn lsn, ByteView data) override {
    if (lsn != end) return Internal("gap");
    while (!data.empty()) {
      uint64_t segno = end / pg::kDefaultSegmentSize;
      size_t room = pg::kDefaultSegmentSize - end % pg::kDefaultSegmentSize;
      size_t n = std::min(room, data.size());
      auto& seg = segments[segno];
      seg.insert(seg.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
      data = data.subspan(n);
      end += n;
    }
    return Status::Ok();
  }
  Lsn Flushed() override {
    ++flushed_calls;
    return end;
  }
  bool KeepGoing() override { return stop_at_ == 0 || end < stop_at_; }

  Lsn end = 0;
  int flushed_calls = 0;
  std::map<uint64_t, Bytes> segments;

 private:
  Lsn stop_at_;
};

TEST_F(PgProtocolTest, StreamWalFromSlot) {
  auto s = PgServer::Create(tmp_.path() + "/pg", "primary");
  ASSERT_NE(s, nullptr);
  auto repl = Connect(*s, true);
  auto sql = Connect(*s, false);
  ASSERT_TRUE(repl && sql);
  ASSERT_TRUE(pg::CreatePhysicalSlot(*repl, "reprise_test").ok());
  EXPECT_EQ(pg::CreatePhysicalSlot(*repl, "reprise_test").code(), Code::kAlreadyExists);
  EXPECT_EQ(pg::CreatePhysicalSlot(*repl, "Bad-Name").code(), Code::kInvalidArgument);
  auto restart = pg::SlotRestartLsn(*repl, "reprise_test");
  ASSERT_TRUE(restart.ok()) << restart.status().ToString();
  ASSERT_TRUE(restart->has_value());
  auto restart_sql = pg::SlotRestartLsn(*sql, "reprise_test");
  ASSERT_TRUE(restart_sql.ok()) << restart_sql.status().ToString();
  EXPECT_EQ(*restart_sql, *restart);

  ASSERT_EQ(s->Pgbench({"-i", "-s", "1"}), 0);
  ASSERT_TRUE(s->Sql("SELECT pg_switch_wal()"));
  Lsn target = SqlLsn(*s, "SELECT pg_current_wal_flush_lsn()");
  Lsn start = **restart - **restart % pg::kDefaultSegmentSize;
  ASSERT_GT(target, start + pg::kDefaultSegmentSize);  // at least one whole segment

  Collector c(target);
  c.end = start;
  auto id = pg::IdentifySystem(*repl);
  ASSERT_TRUE(id.ok());
  auto end = pg::StreamWal(
      *repl, {.slot = "reprise_test", .start_lsn = start, .timeline = id->timeline,
              .status_interval_ms = 100},
      c);
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_FALSE(end->next_timeline.has_value());
  EXPECT_GE(c.end, target);
  EXPECT_GT(c.flushed_calls, 0);

  // Every complete segment is byte for byte the server's file.
  int compared = 0;
  for (const auto& [segno, bytes] : c.segments) {
    if (bytes.size() != pg::kDefaultSegmentSize) continue;
    std::string name = pg::SegmentNameOf({1, segno});
    std::string file = ReadAllFile(s->data_dir() + "/pg_wal/" + name);
    ASSERT_EQ(file.size(), pg::kDefaultSegmentSize) << name;
    EXPECT_TRUE(AsString(bytes) == file) << "segment " << name << " differs";
    ++compared;
  }
  EXPECT_GE(compared, 1);

  // The flush position we reported moved the slot forward.
  auto after = pg::SlotRestartLsn(*sql, "reprise_test");
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_GT(**after, **restart);
  EXPECT_LE(**after, c.end);

  // The connection is usable after a clean stop.
  ASSERT_TRUE(pg::DropSlot(*repl, "reprise_test").ok());
  EXPECT_EQ(pg::SlotRestartLsn(*repl, "reprise_test").status().code(), Code::kNotFound);
  EXPECT_EQ(pg::SlotRestartLsn(*sql, "reprise_test").status().code(), Code::kNotFound);
  EXPECT_EQ(pg::DropSlot(*repl, "reprise_test").code(), Code::kNotFound);
  // The same over a normal connection.
  ASSERT_TRUE(pg::CreatePhysicalSlot(*sql, "reprise_sql").ok());
  EXPECT_EQ(pg::CreatePhysicalSlot(*sql, "reprise_sql").code(), Code::kAlreadyExists);
  auto reserved = pg::SlotRestartLsn(*repl, "reprise_sql");
  ASSERT_TRUE(reserved.ok()) << reserved.status().ToString();
  EXPECT_TRUE(reserved->has_value());
  EXPECT_TRUE(pg::DropSlot(*sql, "reprise_sql").ok());
  EXPECT_EQ(pg::DropSlot(*sql, "reprise_sql").code(), Code::kNotFound);
}

TEST_F(PgProtocolTest, TimelineHistoryAfterPromotion) {
  auto primary = PgServer::Create(tmp_.path() + "/pg", "primary");
  ASSERT_NE(primary, nullptr);
  auto standby = PgServer::CreateReplica(*primary, "standby");
  ASSERT_NE(standby, nullptr);
  ASSERT_TRUE(primary->Sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g"));
  Lsn written = SqlLsn(*primary, "SELECT pg_current_wal_flush_lsn()");
  for (int i = 0; i < 200; ++i) {
    if (SqlLsn(*standby, "SELECT pg_last_wal_replay_lsn()") >= written) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(standby->Promote());

  auto conn = Connect(*standby, true);
  ASSERT_NE(conn, nullptr);
  auto id = pg::IdentifySystem(*conn);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->timeline, 2u);
  auto history = pg::TimelineHistory(*conn, 2);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  EXPECT_EQ(history->first, "00000002.history");
  EXPECT_EQ(history->second, ReadAllFile(standby->data_dir() + "/pg_wal/00000002.history"));
  auto switches = pg::ParseHistory(history->second);
  ASSERT_TRUE(switches.ok()) << switches.status().ToString();
  ASSERT_EQ(switches->size(), 1u);
  EXPECT_EQ((*switches)[0].parent_tli, 1u);
  EXPECT_GE((*switches)[0].switch_lsn, written);
  EXPECT_FALSE(pg::TimelineHistory(*conn, 3).ok());

  // Streaming the old timeline ends at the switch with the next timeline and where it starts.
  Lsn switch_lsn = (*switches)[0].switch_lsn;
  Lsn start = switch_lsn - switch_lsn % pg::kDefaultSegmentSize;
  Collector c(0);
  c.end = start;
  auto end = pg::StreamWal(*conn, {.start_lsn = start, .timeline = 1}, c);
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  ASSERT_TRUE(end->next_timeline.has_value());
  EXPECT_EQ(*end->next_timeline, 2u);
  EXPECT_EQ(end->next_start, switch_lsn);
  EXPECT_EQ(c.end, switch_lsn);
  EXPECT_TRUE(pg::IdentifySystem(*conn).ok());
}

// The test environment itself: a killed server leaves no process behind and recovers.
TEST_F(PgProtocolTest, KilledServerRestarts) {
  auto s = PgServer::Create(tmp_.path() + "/pg", "primary");
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->Sql("CREATE TABLE t AS SELECT 1 AS i"));
  auto conn = Connect(*s, false);
  ASSERT_NE(conn, nullptr);
  s->Kill();
  EXPECT_FALSE(s->running());
  EXPECT_FALSE(conn->Query("SELECT 1").ok());
  ASSERT_TRUE(s->Start()) << ReadAllFile(s->log_file());
  EXPECT_EQ(s->Sql("SELECT count(*) FROM t"), "1");
}

}  // namespace
}  // namespace reprise::testing
