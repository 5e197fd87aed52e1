// The redis component (src/components/redis/redis_component.h) against real redis-server 7
// and a real repository: fill a server with thousands of keys of every type (and a 1 MB
// value), take its RDB over replication (diskless and disk-based) or by BGSAVE, kill the
// server, wipe its dir, restore through controller commands that start it again, and compare
// every key. Also: passwords, an AOF target, a corrupted stream, an RDB newer than the target,
// and the post-restore checks. Skips when redis-server is not installed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>

#include "common/clock.h"
#include "common/thread_pool.h"
#include "components/redis/rdb_stream.h"
#include "components/redis/redis_component.h"
#include "component_repo.h"
#include "harness.h"
#include "redis/client.h"
#include "redis_env.h"
#include "repo/content.h"
#include "repo/repository.h"
#include "storage/local/local_storage.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using redis::Reply;

// A repository in a temp dir, with the engine's sink and source around it.
class TestRepo : public ComponentRepo {
 public:
  explicit TestRepo(const std::string& dir) : ComponentRepo(dir, "cache") {}
};

// A source whose manifest entries are edited on the way (to forge what a point says).
class EditedSource final : public RestoreSource {
 public:
  EditedSource(RestoreSource& inner, std::function<void(json&)> edit)
      : inner_(inner), edit_(std::move(edit)) {}
  Status ForEachEntry(const std::function<Status(const json&)>& fn) override {
    return inner_.ForEachEntry([&](const json& e) {
      json copy = e;
      edit_(copy);
      return fn(copy);
    });
  }
  Status ReadContent(const json& content, const std::function<Status(ByteView)>& sink) override {
    return inner_.ReadContent(content, sink);
  }

 private:
  RestoreSource& inner_;
  std::function<void(json&)> edit_;
};

std::unique_ptr<redis::Client> Connect(const RedisServer& s, const std::string& password = "") {
  auto a = redis::ParseAddress(s.url());
  EXPECT_TRUE(a.ok());
  auto c = redis::Client::Connect(*a, password, std::chrono::seconds(10));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

void Must(redis::Client& c, const std::vector<std::string>& argv) {
  auto r = c.Command(argv);
  ASSERT_TRUE(r.ok()) << argv[0] << ": " << r.status().ToString();
}

std::string Bin(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& ch : s) ch = static_cast<char>(rng());
  return s;
}

// Thousands of keys of every type in db 0, some in db 3, a 1 MB value, a stream, TTLs.
void Fill(redis::Client& c, int scale = 1) {
  std::mt19937 rng(42);
  for (int i = 0; i < 2000 * scale; ++i) {
    std::string v = i % 7 == 0 ? Bin(rng, 1 + i % 300) : "value-" + std::to_string(i * 31);
    Must(c, {"SET", "str:" + std::to_string(i), v});
  }
  for (int i = 0; i < 300 * scale; ++i) {
    std::vector<std::string> argv = {"HSET", "hash:" + std::to_string(i)};
    int fields = i == 0 ? 800 : 5;  // one large enough for a real hash table
    for (int f = 0; f < fields; ++f) {
      argv.push_back("field" + std::to_string(f));
      argv.push_back(std::to_string(i * f));
    }
    Must(c, argv);
  }
  for (int i = 0; i < 200 * scale; ++i) {
    std::vector<std::string> argv = {"RPUSH", "list:" + std::to_string(i)};
    int n = i == 0 ? 2000 : 10;
    for (int k = 0; k < n; ++k) argv.push_back("item" + std::to_string(k));
    Must(c, argv);
  }
  for (int i = 0; i < 200 * scale; ++i) {
    std::vector<std::string> argv = {"SADD", "set:" + std::to_string(i)};
    int n = i == 0 ? 1000 : 8;
    for (int k = 0; k < n; ++k) argv.push_back(i % 2 ? std::to_string(k * 7) : "m" + std::to_string(k));
    Must(c, argv);
  }
  for (int i = 0; i < 200 * scale; ++i) {
    std::vector<std::string> argv = {"ZADD", "zset:" + std::to_string(i)};
    int n = i == 0 ? 600 : 6;
    for (int k = 0; k < n; ++k) {
      argv.push_back(std::to_string(k * 1.5 - 3));
      argv.push_back("member" + std::to_string(k));
    }
    Must(c, argv);
  }
  Must(c, {"SET", "big", Bin(rng, 1 << 20)});
  for (int i = 0; i < 20; ++i) Must(c, {"XADD", "stream:1", "*", "n", std::to_string(i)});
  Must(c, {"SET", std::string("bin\xff\x00key", 8), "binary name"});
  Must(c, {"SET", "ttl:1", "x", "EX", "3600"});
  Must(c, {"SELECT", "3"});
  for (int i = 0; i < 50; ++i) Must(c, {"SET", "db3:" + std::to_string(i), std::to_string(i)});
  Must(c, {"SELECT", "0"});
}

std::string Canon(const Reply& r) {
  switch (r.type) {
    case Reply::Type::kNil:
      return "nil";
    case Reply::Type::kInteger:
      return std::to_string(r.integer);
    case Reply::Type::kString:
    case Reply::Type::kStatus:
      return std::to_string(r.str.size()) + ":" + r.str;
    case Reply::Type::kArray: {
      std::string s = "[";
      for (const auto& e : r.elements) s += Canon(e) + ",";
      return s + "]";
    }
  }
  return "?";
}

// Every key of dbs 0..15 -> its type and value in a canonical form (sets and hashes sorted).
std::map<std::string, std::string> Contents(redis::Client& c) {
  std::map<std::string, std::string> out;
  for (int db = 0; db < 16; ++db) {
    EXPECT_TRUE(c.Command({"SELECT", std::to_string(db)}).ok());
    std::string cursor = "0";
    do {
      auto r = c.Command({"SCAN", cursor, "COUNT", "1000"});
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return out;
      cursor = r->elements[0].str;
      for (const auto& k : r->elements[1].elements) {
        std::string type = c.Command({"TYPE", k.str})->str;
        std::string value;
        if (type == "string") {
          value = Canon(*c.Command({"GET", k.str}));
        } else if (type == "hash") {
          auto all = c.Command({"HGETALL", k.str});
          std::vector<std::string> pairs;
          for (size_t i = 0; i + 1 < all->elements.size(); i += 2)
            pairs.push_back(all->elements[i].str + "=" + all->elements[i + 1].str);
          std::sort(pairs.begin(), pairs.end());
          for (const auto& p : pairs) value += p + ";";
        } else if (type == "list") {
          value = Canon(*c.Command({"LRANGE", k.str, "0", "-1"}));
        } else if (type == "set") {
          auto all = c.Command({"SMEMBERS", k.str});
          std::vector<std::string> m;
          for (const auto& e : all->elements) m.push_back(e.str);
          std::sort(m.begin(), m.end());
          for (const auto& e : m) value += e + ";";
        } else if (type == "zset") {
          value = Canon(*c.Command({"ZRANGE", k.str, "0", "-1", "WITHSCORES"}));
        } else if (type == "stream") {
          value = Canon(*c.Command({"XRANGE", k.str, "-", "+"}));
        }
        bool ttl = c.Command({"PTTL", k.str})->integer > 0;
        out[std::to_string(db) + "/" + k.str] = type + (ttl ? " ttl " : " ") + value;
      }
    } while (cursor != "0");
  }
  EXPECT_TRUE(c.Command({"SELECT", "0"}).ok());
  return out;
}

RedisComponentOptions OptionsFor(const RedisServer& s, const std::string& password = "") {
  RedisComponentOptions o;
  o.url = s.url();
  o.password = password;
  o.controller_stop = s.StopCommand();
  o.controller_start = s.StartCommand();
  o.timeout = std::chrono::seconds(10);
  o.load_timeout = std::chrono::seconds(60);
  o.controller_timeout = std::chrono::seconds(30);
  return o;
}

void Wipe(RedisServer& s) {
  s.Kill();
  fs::remove_all(s.dir());
  fs::create_directories(s.dir());
}

class RedisComponentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisAvailable()) GTEST_SKIP() << kRedisSkipReason;
  }
  TempDir dir_;
};

class RedisSyncModeTest : public RedisComponentTest,
                          public ::testing::WithParamInterface<bool> {};

TEST_P(RedisSyncModeTest, RoundTripThroughTheRepository) {
  const bool diskless = GetParam();
  auto server = RedisServer::Create(dir_.path(), "src",
                                    {.args = {"--repl-diskless-sync", diskless ? "yes" : "no"}});
  ASSERT_NE(server, nullptr);
  auto client = Connect(*server);
  ASSERT_NE(client, nullptr);
  Fill(*client);
  auto want = Contents(*client);
  ASSERT_GT(want.size(), 2900u);  // 2954 keys in dbs 0 and 3
  auto dbsize = client->Command({"DBSIZE"});
  ASSERT_TRUE(dbsize.ok());
  std::string redis_version = server->Cli({"INFO", "server"}).value_or("");
  client.reset();

  TestRepo repo(dir_.path() + "/repo");
  ASSERT_NE(repo.repo(), nullptr);
  RedisComponent component(OptionsFor(*server));
  auto info = repo.Backup(component);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ((*info)["method"], "replication");
  EXPECT_EQ((*info)["diskless"], diskless);
  EXPECT_EQ((*info)["checksummed"], true);
  std::string version = (*info)["redis_version"];
  EXPECT_NE(redis_version.find("redis_version:" + version), std::string::npos);
  EXPECT_EQ((*info)["rdb_version"], MaxRdbVersion(version));
  EXPECT_EQ((*info)["keys"]["db0"], dbsize->integer);
  EXPECT_EQ((*info)["keys"]["db3"], 50);
  EXPECT_TRUE(repo.warnings.empty()) << ::testing::PrintToString(repo.warnings);

  auto entries = repo.Entries();
  ASSERT_EQ(entries.size(), 1u);
  const json& e = entries[0];
  EXPECT_EQ(e["type"], "rdb");
  EXPECT_EQ(e["rdb_version"], (*info)["rdb_version"]);
  EXPECT_EQ(e["expires"]["db0"], 1);
  EXPECT_GE(e["sample"].size(), 8u) << e["sample"].dump();
  EXPECT_GT(e["bytes"].get<uint64_t>(), uint64_t{1} << 20);
  for (const auto& s : e["sample"]) EXPECT_NE(s["key"], "ttl:1");  // no TTL keys sampled

  // The server and its data are gone; restore brings it back through the controller.
  Wipe(*server);
  ASSERT_FALSE(fs::exists(server->dir() + "/dump.rdb"));
  std::vector<std::string> warnings;
  RestoreOptions ro;
  ro.target = server->dir();
  ro.warn = [&](const std::string& w) { warnings.push_back(w); };
  {
    auto src = repo.Source();
    Status st = component.Restore(*info, *src, ro);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << server->Cli({"PING"}).value_or("(down)");
  }
  EXPECT_TRUE(warnings.empty()) << ::testing::PrintToString(warnings);
  struct stat st {};
  ASSERT_EQ(stat((server->dir() + "/dump.rdb").c_str(), &st), 0);
  EXPECT_FALSE(fs::exists(server->dir() + "/dump.rdb.reprise-tmp"));
  client = Connect(*server);
  ASSERT_NE(client, nullptr);
  auto got = Contents(*client);
  EXPECT_EQ(got.size(), want.size());
  size_t differ = 0;
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end() || it->second != v) {
      if (++differ < 5) ADD_FAILURE() << "key '" << k << "' differs after restore";
    }
  }
  EXPECT_EQ(differ, 0u);

  // Restoring again over the running server: stopped, replaced, started, checked.
  ASSERT_TRUE(client->Command({"FLUSHALL"}).ok());
  client.reset();
  {
    auto src = repo.Source();
    Status st2 = component.Restore(*info, *src, ro);
    ASSERT_TRUE(st2.ok()) << st2.ToString();
  }
  client = Connect(*server);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Command({"DBSIZE"})->integer, dbsize->integer);
}

INSTANTIATE_TEST_SUITE_P(DisklessAndDisk, RedisSyncModeTest, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "Diskless" : "DiskBased"; });

TEST_F(RedisComponentTest, PasswordProtectedServer) {
  const std::string pw = "s3cret 'pw'";
  auto server = RedisServer::Create(dir_.path(), "auth", {.password = pw});
  ASSERT_NE(server, nullptr);
  auto client = Connect(*server, pw);
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 100; ++i) Must(*client, {"HSET", "h" + std::to_string(i), "f", "v"});
  client.reset();
  TestRepo repo(dir_.path() + "/repo");

  for (const std::string& bad : {std::string("wrong"), std::string()}) {
    auto o = OptionsFor(*server, bad);
    RedisComponent c(o);
    auto info = repo.Backup(c);
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.status().code(), Code::kUnauthenticated) << info.status().ToString();
    EXPECT_NE(info.status().message().find("HINT"), std::string::npos);
    EXPECT_EQ(info.status().message().find(pw), std::string::npos);
  }
  // The stream itself (not only the INFO connection) refuses a wrong password.
  {
    redis::RdbStreamOptions so;
    so.address = *redis::ParseAddress(server->url());
    so.password = "wrong";
    auto r = redis::StreamRdb(so, [](ByteView) { return Status::Ok(); });
    EXPECT_EQ(r.status().code(), Code::kUnauthenticated) << r.status().ToString();
  }

  RedisComponent c(OptionsFor(*server, pw));
  auto info = repo.Backup(c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ((*info)["keys"]["db0"], 100);
  Wipe(*server);
  RestoreOptions ro;
  ro.target = server->dir();
  auto src = repo.Source();
  Status st = c.Restore(*info, *src, ro);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(server->Cli({"HGET", "h42", "f"}), "v");
}

TEST_F(RedisComponentTest, BgsaveMethodIntoAnotherServer) {
  auto server = RedisServer::Create(dir_.path(), "bg");
  ASSERT_NE(server, nullptr);
  auto client = Connect(*server);
  ASSERT_NE(client, nullptr);
  Fill(*client);
  auto want = Contents(*client);
  TestRepo repo(dir_.path() + "/repo");
  auto o = OptionsFor(*server);
  o.method = RedisComponentOptions::kBgsave;  // rdb_path from CONFIG GET dir + dbfilename
  RedisComponent c(o);
  auto info = repo.Backup(c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ((*info)["method"], "bgsave");
  EXPECT_EQ((*info)["rdb_path"], server->dir() + "/dump.rdb");
  // A second save within the same second still waits for its own BGSAVE.
  Must(*client, {"SET", "after-first", "1"});
  auto info2 = repo.Backup(c);
  ASSERT_TRUE(info2.ok()) << info2.status().ToString();
  EXPECT_EQ((*info2)["keys"]["db0"].get<int64_t>(), (*info)["keys"]["db0"].get<int64_t>() + 1);
  client.reset();

  // Into a fresh server elsewhere, given by restore_rdb_path.
  auto other = RedisServer::Create(dir_.path(), "other");
  ASSERT_NE(other, nullptr);
  auto ro_opts = OptionsFor(*other);
  ro_opts.restore_rdb_path = other->dir() + "/dump.rdb";
  other->Kill();
  RedisComponent target(ro_opts);
  auto src = repo.Source();
  Status st = target.Restore(*info2, *src, RestoreOptions{});
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto oc = Connect(*other);
  ASSERT_NE(oc, nullptr);
  want["0/after-first"] = "string 1:1";
  EXPECT_TRUE(Contents(*oc) == want);
}

TEST_F(RedisComponentTest, CorruptedStreamFailsTheBackup) {
  auto server = RedisServer::Create(dir_.path(), "bad");
  ASSERT_NE(server, nullptr);
  auto client = Connect(*server);
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 500; ++i) Must(*client, {"SET", "k" + std::to_string(i), "v"});
  TestRepo repo(dir_.path() + "/repo");
  for (auto method : {RedisComponentOptions::kReplication, RedisComponentOptions::kBgsave}) {
    auto o = OptionsFor(*server);
    o.method = method;
    o.test_tamper = [](uint64_t offset, std::span<uint8_t> data) {
      if (offset <= 200 && 200 < offset + data.size()) data[200 - offset] ^= 0x20;
    };
    RedisComponent c(o);
    auto info = repo.Backup(c);
    ASSERT_FALSE(info.ok()) << "method " << method;
    EXPECT_EQ(info.status().code(), Code::kCorruption) << info.status().ToString();
    EXPECT_NE(info.status().message().find("CRC64"), std::string::npos)
        << info.status().message();
  }
  // Untampered, the same server backs up fine.
  RedisComponent c(OptionsFor(*server));
  EXPECT_TRUE(repo.Backup(c).ok());
}

TEST_F(RedisComponentTest, RefusesAnAofTarget) {
  auto source = RedisServer::Create(dir_.path(), "src");
  ASSERT_NE(source, nullptr);
  ASSERT_TRUE(source->Cli({"SET", "a", "1"}));
  TestRepo repo(dir_.path() + "/repo");
  RedisComponent c(OptionsFor(*source));
  auto info = repo.Backup(c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();

  auto aof = RedisServer::Create(dir_.path(), "aof", {.persistence = true});
  ASSERT_NE(aof, nullptr);
  ASSERT_TRUE(aof->Cli({"SET", "mine", "1"}));
  RedisComponent target(OptionsFor(*aof));
  RestoreOptions ro;
  ro.target = aof->dir();
  auto src = repo.Source();
  Status st = target.Restore(*info, *src, ro);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("appendonly"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("HINT"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(aof->dir() + "/dump.rdb"));
  EXPECT_EQ(aof->Cli({"GET", "mine"}), "1");  // untouched, still running
}

TEST_F(RedisComponentTest, RefusesANewerRdbUnlessForced) {
  auto server = RedisServer::Create(dir_.path(), "v");
  ASSERT_NE(server, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(server->Cli({"SET", "k" + std::to_string(i), "x"}));
  TestRepo repo(dir_.path() + "/repo");
  RedisComponent c(OptionsFor(*server));
  auto info = repo.Backup(c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_TRUE(server->Cli({"SET", "later", "1"}));

  RestoreOptions ro;
  ro.target = server->dir();
  auto inner = repo.Source();
  EditedSource newer(*inner, [](json& e) {
    e["rdb_version"] = 99;
    e["redis_version"] = "99.0.0";
  });
  Status st = c.Restore(*info, newer, ro);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("RDB version 99"), std::string::npos) << st.message();
  EXPECT_EQ(server->Cli({"GET", "later"}), "1");  // not stopped, not replaced

  ro.params["force"] = true;  // the stored RDB is really one 7.0 reads: it goes through
  st = c.Restore(*info, newer, ro);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(server->Cli({"EXISTS", "later"}), "0");
  EXPECT_EQ(server->Cli({"DBSIZE"}), "10");
}

TEST_F(RedisComponentTest, ChecksAfterRestoreReportMismatches) {
  auto server = RedisServer::Create(dir_.path(), "chk");
  ASSERT_NE(server, nullptr);
  auto client = Connect(*server);
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 40; ++i) Must(*client, {"RPUSH", "l" + std::to_string(i), "a"});
  client.reset();
  TestRepo repo(dir_.path() + "/repo");
  RedisComponent c(OptionsFor(*server));
  auto info = repo.Backup(c);
  ASSERT_TRUE(info.ok()) << info.status().ToString();

  RestoreOptions ro;
  ro.target = server->dir();
  auto inner = repo.Source();
  EditedSource forged(*inner, [](json& e) {
    e["keys"]["db0"] = 45;
    e["sample"][0]["type"] = "zset";
  });
  Status st = c.Restore(*info, forged, ro);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("db0 holds 40 keys, the point 45"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("is a list, the point has a zset"), std::string::npos)
      << st.message();

  // Without a stop command, a running server is not touched.
  auto o = OptionsFor(*server);
  o.controller_stop.clear();
  RedisComponent nostop(o);
  st = nostop.Restore(*info, *inner, ro);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("stop_command"), std::string::npos) << st.message();
}

// The same through the CLI and a plan: backup, destroy, `reprise restore` with the plan's
// restore settings (no --target), every key back.
TEST_F(RedisComponentTest, PlanBackupAndRestoreThroughTheCli) {
  auto server = RedisServer::Create(dir_.path(), "cli");
  ASSERT_TRUE(server);
  auto c = Connect(*server);
  Fill(*c);
  std::map<std::string, std::string> before = Contents(*c);
  c.reset();
  std::string base = dir_.path();
  WriteFile(base + "/pw", "cli passphrase\n");
  chmod((base + "/pw").c_str(), 0600);
  // The controller commands go into scripts: they hold quotes of their own.
  WriteFile(base + "/stop.sh", server->StopCommand() + "\n");
  WriteFile(base + "/start.sh", server->StartCommand() + "\n");
  std::string plan = base + "/plan.yaml";
  WriteFile(plan, "version: 1\nname: r\nsites:\n  main: {repository: " + base + "/repo}\n"
                  "components:\n  cache:\n    kind: redis\n    class: transactional\n"
                  "    connection: " + server->url() + "\n"
                  "    restore:\n      rdb_path: " + server->dir() + "/dump.rdb\n"
                  "      stop_command: sh " + base + "/stop.sh\n"
                  "      start_command: sh " + base + "/start.sh\n");
  std::vector<std::string> env = {"REPRISE_PASSWORD_FILE=" + base + "/pw"};
  RunResult i = RunCommand({REPRISE_BINARY, "--plan", plan, "init"}, env);
  ASSERT_EQ(i.exit_code, 0) << i.out << i.err;
  RunResult b = RunCommand({REPRISE_BINARY, "--plan", plan, "backup"}, env);
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  Wipe(*server);
  RunResult r = RunCommand({REPRISE_BINARY, "--plan", plan, "restore", "latest"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto after = Connect(*server);
  ASSERT_TRUE(after);
  EXPECT_EQ(Contents(*after), before);
}

}  // namespace
}  // namespace reprise::testing
