// PostgreSQL logical mode (src/components/postgres/logical.h) against real PostgreSQL 15
// servers and a real repository: dump a server with pgbench data, arrays, odd names and an
// extra role, restore it into a new server with pg_restore -j 2 and compare the data.
// Skips when PostgreSQL 15 is not installed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/thread_pool.h"
#include "components/postgres/logical.h"
#include "component_repo.h"
#include "harness.h"
#include "pg_env.h"
#include "repo/content.h"
#include "repo/repository.h"
#include "storage/local/local_storage.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A repository in a temp dir, with the engine's sink and source around it.
class TestRepo : public ComponentRepo {
 public:
  explicit TestRepo(const std::string& dir) : ComponentRepo(dir, "db") {}
  Result<json> Backup(const std::function<Result<json>(BackupSink&)>& backup) {
    return ComponentRepo::Backup(backup, "postgres");
  }
};

// Row count and a digest of every row of `table`, in a stable order.
std::string TableDigest(const PgServer& s, const std::string& db, const std::string& table) {
  std::string err;
  auto out = s.Sql(
      "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY "
      "t::text)), '-') FROM " +
          table + " t",
      db, &err);
  return out ? *out : "error: " + err;
}

LogicalOptions OptionsFor(const PgServer& s) {
  LogicalOptions o;
  o.conninfo = s.conninfo();
  o.bin_dir = PgServer::Bin("pg_dump").substr(0, PgServer::Bin("pg_dump").rfind('/'));
  o.jobs = 2;
  if (geteuid() == 0) o.run_as = "postgres";  // as in production: the tools run as postgres
  return o;
}

class PgLogicalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason;
  }
  TempDir dir_;
};

TEST_F(PgLogicalTest, RoundTripIntoANewServer) {
  auto source = PgServer::Create(dir_.path() + "/pg", "source");
  ASSERT_NE(source, nullptr);
  std::string err;
  ASSERT_TRUE(source->Sql("CREATE ROLE app_owner LOGIN", "postgres", &err)) << err;
  ASSERT_TRUE(source->Sql("CREATE DATABASE app OWNER app_owner", "postgres", &err)) << err;
  ASSERT_TRUE(source->Sql("CREATE DATABASE \"sales data\"", "postgres", &err)) << err;
  ASSERT_EQ(source->Pgbench({"-i", "-s", "1"}, "app"), 0);
  ASSERT_TRUE(source->Sql(
      "CREATE TABLE vectors (id serial PRIMARY KEY, embedding float4[], body text);"
      "INSERT INTO vectors (embedding, body) SELECT ARRAY[i * 0.5, -i / 3.0, 1e-7 * i]::float4[],"
      " repeat('ünïcode ''quoted'' ' || i, (i % 7) + 1) FROM generate_series(1, 5000) i;"
      "INSERT INTO vectors (embedding, body) VALUES (NULL, NULL), ('{}', '');"
      "ALTER TABLE vectors OWNER TO app_owner;",
      "app", &err))
      << err;
  ASSERT_TRUE(
      source->Sql("CREATE TABLE orders (id int, note text);"
                  "INSERT INTO orders SELECT i, 'order ' || i FROM generate_series(1, 300) i;",
                  "sales data", &err))
      << err;

  TestRepo repo(dir_.path() + "/repo");
  ASSERT_NE(repo.repo(), nullptr);
  auto info =
      repo.Backup([&](BackupSink& sink) { return LogicalBackup(OptionsFor(*source), sink); });
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ((*info)["mode"], "logical");
  EXPECT_EQ((*info)["server_version"].get<std::string>().substr(0, 3), "15.");
  EXPECT_EQ((*info)["databases"], json({"app", "postgres", "sales data"}));
  EXPECT_EQ(repo.component.entries, 4u);  // globals + three databases

  // Every entry names its database and carries its dump.
  {
    auto src = repo.Source();
    std::vector<json> entries;
    ASSERT_TRUE(src->ForEachEntry([&](const json& e) {
                     entries.push_back(e);
                     return Status::Ok();
                   })
                    .ok());
    ASSERT_EQ(entries.size(), 4u);
    EXPECT_EQ(entries[0]["type"], "globals");
    EXPECT_EQ(entries[1]["type"], "pg_dump");
    EXPECT_EQ(entries[1]["database"], "app");
    EXPECT_EQ(entries[1]["format"], "custom");
    std::string head;
    ASSERT_TRUE(src->ReadContent(entries[1]["contents"][0],
                                 [&](ByteView b) {
                                   if (head.size() < 5)
                                     head += std::string(AsString(b).substr(0, 5));
                                   return Status::Ok();
                                 })
                    .ok());
    EXPECT_EQ(head.substr(0, 5), "PGDMP");  // custom-format archive
  }

  const std::vector<std::pair<std::string, std::string>> tables = {
      {"app", "pgbench_accounts"}, {"app", "pgbench_branches"}, {"app", "pgbench_tellers"},
      {"app", "pgbench_history"},  {"app", "vectors"},          {"sales data", "orders"}};
  std::map<std::string, std::string> want;
  for (const auto& [db, table] : tables) {
    want[db + "." + table] = TableDigest(*source, db, table);
    ASSERT_EQ(want[db + "." + table].find("error"), std::string::npos);
  }
  EXPECT_EQ(want["app.pgbench_accounts"].substr(0, 7), "100000:");
  source.reset();  // the source is gone: only the repository is left

  auto target = PgServer::Create(dir_.path() + "/pg", "target");
  ASSERT_NE(target, nullptr);
  std::vector<std::string> warnings;
  RestoreOptions ro;
  ro.warn = [&](const std::string& w) { warnings.push_back(w); };
  {
    auto src = repo.Source();
    Status st = LogicalRestore(*info, *src, OptionsFor(*target), ro);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  for (const auto& [db, table] : tables) {
    EXPECT_EQ(TableDigest(*target, db, table), want[db + "." + table]) << db << "." << table;
  }
  // Owners came along with the roles.
  EXPECT_EQ(target->Sql("SELECT tableowner FROM pg_tables WHERE tablename = 'vectors'", "app"),
            "app_owner");
  EXPECT_EQ(target->Sql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"),
            "app_owner");
  // The target's own "postgres" role already existed: reported, not fatal.
  bool role_warning = false;
  for (const auto& w : warnings) role_warning |= w.find("already exists") != std::string::npos;
  EXPECT_TRUE(role_warning) << ::testing::PrintToString(warnings);

  // Again: the databases now hold tables, so without overwrite nothing is touched.
  {
    auto src = repo.Source();
    Status st = LogicalRestore(*info, *src, OptionsFor(*target), ro);
    EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
    EXPECT_NE(st.message().find("'app'"), std::string::npos) << st.message();
  }
  // With overwrite, only the included database, after local damage.
  ASSERT_TRUE(target->Sql("DELETE FROM orders WHERE id > 10", "sales data", &err)) << err;
  ASSERT_TRUE(target->Sql("DELETE FROM vectors WHERE id > 10", "app", &err)) << err;
  {
    RestoreOptions only = ro;
    only.overwrite = true;
    only.include = {"sales data"};
    auto src = repo.Source();
    Status st = LogicalRestore(*info, *src, OptionsFor(*target), only);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_EQ(TableDigest(*target, "sales data", "orders"), want["sales data.orders"]);
  EXPECT_NE(TableDigest(*target, "app", "vectors"), want["app.vectors"]);  // not included

  {
    RestoreOptions missing = ro;
    missing.include = {"no such db"};
    auto src = repo.Source();
    Status st = LogicalRestore(*info, *src, OptionsFor(*target), missing);
    EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
  }
}

TEST_F(PgLogicalTest, UnreachableServerIsAClearErrorWithoutThePassword) {
  TestRepo repo(dir_.path() + "/repo");
  ASSERT_NE(repo.repo(), nullptr);
  LogicalOptions o;
  o.conninfo = "host=127.0.0.1 port=" + std::to_string(FreePort()) +
               " user=postgres password=topsecret-pw connect_timeout=5";
  o.bin_dir = PgServer::Bin("pg_dump").substr(0, PgServer::Bin("pg_dump").rfind('/'));
  auto info = repo.Backup([&](BackupSink& sink) { return LogicalBackup(o, sink); });
  ASSERT_FALSE(info.ok());
  const std::string msg = info.status().ToString();
  EXPECT_NE(msg.find("psql"), std::string::npos) << msg;
  EXPECT_NE(msg.find("127.0.0.1"), std::string::npos) << msg;  // libpq's own words
  EXPECT_EQ(msg.find("topsecret-pw"), std::string::npos) << msg;
}

// Stand-ins for the tools record their argv and environment: the password must only be in
// the environment, every setting must arrive, and the dump bytes must reach the repository.
TEST_F(PgLogicalTest, PasswordTravelsInTheEnvironmentOnly) {
  std::string bin = dir_.path() + "/fakebin";
  fs::create_directories(bin);
  std::string log = dir_.path() + "/calls.log";
  const std::string script =
      "#!/bin/sh\n"
      "tool=$(basename \"$0\")\n"
      "echo \"$tool ARGV $*\" >> '" +
      log +
      "'\n"
      "echo \"$tool ENV host=$PGHOST port=$PGPORT user=$PGUSER pw=$PGPASSWORD "
      "ssl=$PGSSLMODE\" >> '" +
      log +
      "'\n"
      "case \"$tool\" in\n"
      "  psql) printf '150018 15.18 (Fake)\\000' ;;\n"
      "  pg_dump) if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 15.18';"
      " else printf 'PGDMP-fake-dump'; fi ;;\n"
      "  pg_dumpall) echo 'CREATE ROLE x;' ;;\n"
      "esac\n";
  for (const char* tool : {"psql", "pg_dump", "pg_dumpall", "pg_restore"}) {
    std::string path = bin + "/" + tool;
    WriteFile(path, script);
    chmod(path.c_str(), 0755);
  }
  TestRepo repo(dir_.path() + "/repo");
  ASSERT_NE(repo.repo(), nullptr);
  LogicalOptions o;
  o.conninfo = "postgresql://dumper:s3cret%20pw@db.example:6543/maint?keepalives=1";
  o.databases = {"app"};
  o.bin_dir = bin;
  o.env = {{"PGSSLMODE", "require"}};
  auto info = repo.Backup([&](BackupSink& sink) { return LogicalBackup(o, sink); });
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ((*info)["server_version"], "15.18");
  EXPECT_EQ((*info)["server_version_num"], 150018);
  EXPECT_EQ((*info)["pg_dump_version"], "15.18");

  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string calls = ss.str();
  std::istringstream lines(calls);
  int argv_lines = 0, env_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find(" ARGV ") != std::string::npos) {
      ++argv_lines;
      EXPECT_EQ(line.find("s3cret"), std::string::npos) << line;
    } else {
      ++env_lines;
      EXPECT_NE(line.find("host=db.example port=6543 user=dumper pw=s3cret pw ssl=require"),
                std::string::npos)
          << line;
    }
  }
  EXPECT_EQ(argv_lines, 4);  // psql (version), pg_dump --version, pg_dumpall, pg_dump
  EXPECT_EQ(env_lines, 4);
  EXPECT_NE(calls.find("pg_dump ARGV -Fc --dbname=dbname='app' keepalives='1'"), std::string::npos)
      << calls;
  EXPECT_NE(calls.find("pg_dumpall ARGV --globals-only --dbname=dbname='maint' keepalives='1' "
                       "-l maint"),
            std::string::npos)
      << calls;

  // The dump's bytes are what the tool wrote.
  auto src = repo.Source();
  std::string dump;
  ASSERT_TRUE(src->ForEachEntry([&](const json& e) -> Status {
                   if (e["type"] != "pg_dump") return Status::Ok();
                   EXPECT_EQ(e["database"], "app");
                   return src->ReadContent(e["contents"][0], [&](ByteView b) {
                     dump += AsString(b);
                     return Status::Ok();
                   });
                 })
                  .ok());
  EXPECT_EQ(dump, "PGDMP-fake-dump");
}

}  // namespace
}  // namespace reprise::testing
