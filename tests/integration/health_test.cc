// Health checks (src/health/health.h) and the Redis client (src/redis/client.h) against real
// servers on 127.0.0.1: PostgreSQL 15 and Redis 7 primaries with streaming replicas, an
// in-process HTTP server, a listening socket, shell commands. Skips a test when its server is
// not installed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "harness.h"
#include "health/health.h"
#include "pg_env.h"
#include "redis/client.h"
#include "redis_env.h"

namespace reprise::testing {
namespace {

using health::HealthResult;
using health::RunCheck;
using health::RunChecks;
using health::SecretLookup;
using Kind = HealthCheckSpec::Kind;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

#define SKIP_WITHOUT_REDIS() \
  if (!RedisAvailable()) GTEST_SKIP() << kRedisSkipReason
#define SKIP_WITHOUT_PG() \
  if (!PgAvailable()) GTEST_SKIP() << kPgSkipReason

HealthCheckSpec Spec(Kind kind, const std::string& target) {
  HealthCheckSpec s;
  s.kind = kind;
  s.target = target;
  s.name = std::string(HealthCheckKindName(kind)) + " " + target;
  s.timeout = milliseconds(5000);
  return s;
}

// Secrets from a map; a missing name fails like Context::SecretValue would.
SecretLookup Secrets(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> Result<std::string> {
    auto it = values.find(name);
    if (it == values.end()) {
      return NotFound("secret '" + name + "' is not defined: HINT: add it under secrets:");
    }
    return it->second;
  };
}

const SecretLookup kNoSecrets = Secrets({});

// Everything a person or a log could see of a result.
std::string Visible(const HealthResult& r) { return r.ToJson().dump(); }

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::unique_ptr<redis::Client> Connect(const RedisServer& s, const std::string& password = "",
                                       milliseconds timeout = milliseconds(5000)) {
  auto address = redis::ParseAddress(s.url());
  EXPECT_TRUE(address.ok()) << address.status().ToString();
  if (!address.ok()) return nullptr;
  auto c = redis::Client::Connect(*address, password, timeout);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

// ---------------------------------------------------------------- redis client

TEST(RedisClient, CommandsAndReplies) {
  SKIP_WITHOUT_REDIS();
  TempDir dir;
  auto server = RedisServer::Create(dir.path(), "r1");
  ASSERT_TRUE(server);
  auto c = Connect(*server);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->Describe(), "127.0.0.1:" + std::to_string(server->port()));

  auto set = c->Command({"SET", "greeting", "hello"});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->type, redis::Reply::Type::kStatus);
  EXPECT_EQ(set->str, "OK");

  // Binary-safe arguments and replies.
  std::string binary("a\0b\r\nc", 6);
  ASSERT_TRUE(c->Command({"SET", "bin", binary}).ok());
  auto get = c->Command({"GET", "bin"});
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(get->type, redis::Reply::Type::kString);
  EXPECT_EQ(get->str, binary);

  auto missing = c->Command({"GET", "no-such-key"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->type, redis::Reply::Type::kNil);

  auto incr = c->Command({"INCRBY", "counter", "41"});
  ASSERT_TRUE(incr.ok());
  EXPECT_EQ(incr->type, redis::Reply::Type::kInteger);
  EXPECT_EQ(incr->integer, 41);

  auto mget = c->Command({"MGET", "greeting", "no-such-key", "counter"});
  ASSERT_TRUE(mget.ok());
  ASSERT_EQ(mget->type, redis::Reply::Type::kArray);
  ASSERT_EQ(mget->elements.size(), 3u);
  EXPECT_EQ(mget->elements[0].str, "hello");
  EXPECT_EQ(mget->elements[1].type, redis::Reply::Type::kNil);
  EXPECT_EQ(mget->elements[2].str, "41");

  // What the server says, through redis-cli, matches what the client wrote.
  EXPECT_EQ(server->Cli({"GET", "greeting"}).value_or("<none>"), "hello");
}

TEST(RedisClient, ErrorRepliesAreFailedPrecondition) {
  SKIP_WITHOUT_REDIS();
  TempDir dir;
  auto server = RedisServer::Create(dir.path(), "r1");
  ASSERT_TRUE(server);
  auto c = Connect(*server);
  ASSERT_TRUE(c);
  auto unknown = c->Command({"NOSUCHCOMMAND", "secret-argument"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Code::kFailedPrecondition) << unknown.status().ToString();
  EXPECT_TRUE(Contains(unknown.status().message(), "unknown command"))
      << unknown.status().message();

  ASSERT_TRUE(c->Command({"SET", "s", "v"}).ok());
  auto wrongtype = c->Command({"LPUSH", "s", "x"});
  ASSERT_FALSE(wrongtype.ok());
  EXPECT_EQ(wrongtype.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(wrongtype.status().message(), "WRONGTYPE"));
  // The client still works after an error reply.
  auto ping = c->Command({"PING"});
  ASSERT_TRUE(ping.ok()) << ping.status().ToString();
  EXPECT_EQ(ping->str, "PONG");
}

TEST(RedisClient, AuthAgainstRequirepass) {
  SKIP_WITHOUT_REDIS();
  TempDir dir;
  RedisServerOptions options;
  options.password = "correct-horse-battery";
  auto server = RedisServer::Create(dir.path(), "r1", options);
  ASSERT_TRUE(server);
  auto address = redis::ParseAddress(server->url());
  ASSERT_TRUE(address.ok());

  auto wrong = redis::Client::Connect(*address, "wrong-password-value", milliseconds(3000));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kUnauthenticated) << wrong.status().ToString();
  EXPECT_FALSE(Contains(wrong.status().message(), "wrong-password-value"));

  // Without AUTH the connection opens, but commands are refused.
  auto anonymous = redis::Client::Connect(*address, "", milliseconds(3000));
  ASSERT_TRUE(anonymous.ok()) << anonymous.status().ToString();
  auto refused = (*anonymous)->Command({"GET", "x"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kUnauthenticated) << refused.status().ToString();

  auto right = Connect(*server, "correct-horse-battery");
  ASSERT_TRUE(right);
  auto ping = right->Command({"PING"});
  ASSERT_TRUE(ping.ok()) << ping.status().ToString();
  EXPECT_EQ(ping->str, "PONG");
}

TEST(RedisClient, SelectsTheDatabaseOfTheUrl) {
  SKIP_WITHOUT_REDIS();
  TempDir dir;
  auto server = RedisServer::Create(dir.path(), "r1");
  ASSERT_TRUE(server);
  auto address = redis::ParseAddress(server->url() + "/2");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->db, 2);
  auto c = redis::Client::Connect(*address, "", milliseconds(3000));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE((*c)->Command({"SET", "in-db-2", "yes"}).ok());
  EXPECT_EQ(server->Cli({"-n", "2", "GET", "in-db-2"}).value_or("<none>"), "yes");
  EXPECT_EQ(server->Cli({"-n", "0", "EXISTS", "in-db-2"}).value_or("<none>"), "0");
}

TEST(RedisClient, RefusedAndTimedOutAreUnavailable) {
  SKIP_WITHOUT_REDIS();
  int closed = FreePort();
  redis::Address nowhere{"127.0.0.1", closed, 0};
  auto refused = redis::Client::Connect(nowhere, "", milliseconds(2000));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(refused.status().message(), "127.0.0.1:" + std::to_string(closed)))
      << refused.status().message();

  TempDir dir;
  auto server = RedisServer::Create(dir.path(), "r1");
  ASSERT_TRUE(server);
  auto c = Connect(*server, "", milliseconds(300));
  ASSERT_TRUE(c);
  // BLPOP holds the answer for 3 s, longer than the client's 300 ms.
  Clock::time_point start = Clock::now();
  auto blocked = c->Command({"BLPOP", "empty-list", "3"});
  double took = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), Code::kUnavailable) << blocked.status().ToString();
  EXPECT_LT(took, 2.5);
  // The connection is unusable after a timeout, and says so.
  auto after = c->Command({"PING"});
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), Code::kUnavailable);
}

TEST(RedisClient, ServerGoneIsUnavailable) {
  SKIP_WITHOUT_REDIS();
  TempDir dir;
  auto server = RedisServer::Create(dir.path(), "r1");
  ASSERT_TRUE(server);
  auto c = Connect(*server);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Command({"PING"}).ok());
  server->Kill();
  // Written to a closed socket: an error, not a SIGPIPE that ends the test binary.
  for (int i = 0; i < 3; ++i) {
    auto r = c->Command({"SET", "k", std::string(1 << 16, 'x')});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  }
}

TEST(RedisClient, ReplicationState) {
  SKIP_WITHOUT_REDIS();
  TempDir dir;
  auto primary = RedisServer::Create(dir.path(), "primary");
  ASSERT_TRUE(primary);
  auto replica = RedisServer::CreateReplica(*primary, "replica");
  ASSERT_TRUE(replica);
  auto p = Connect(*primary);
  auto r = Connect(*replica);
  ASSERT_TRUE(p && r);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(p->Command({"SET", "k" + std::to_string(i), std::string(100, 'x')}).ok());
  }
  ASSERT_TRUE(p->Command({"WAIT", "1", "5000"}).ok());

  auto ps = redis::GetReplicationState(*p);
  ASSERT_TRUE(ps.ok()) << ps.status().ToString();
  EXPECT_TRUE(ps->primary);
  EXPECT_GT(ps->offset, 5000u);  // 50 SETs of 100 bytes went through the stream
  ASSERT_EQ(ps->replica_offsets.size(), 1u);

  auto rs = redis::GetReplicationState(*r);
  ASSERT_TRUE(rs.ok()) << rs.status().ToString();
  EXPECT_FALSE(rs->primary);
  EXPECT_TRUE(rs->link_up);
  EXPECT_EQ(rs->primary_host, "127.0.0.1");
  EXPECT_EQ(rs->primary_port, primary->port());
  EXPECT_GT(rs->offset, 5000u);
  EXPECT_LE(rs->offset, ps->offset);

  auto info = redis::Info(*r, "server");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ((*info)["tcp_port"], std::to_string(replica->port()));
}

// ---------------------------------------------------------------- redis checks

TEST(HealthRedis, PrimaryAndReplicaRoles) {
  SKIP_WITHOUT_REDIS();
  TempDir dir;
  auto primary = RedisServer::Create(dir.path(), "primary");
  ASSERT_TRUE(primary);
  auto replica = RedisServer::CreateReplica(*primary, "replica");
  ASSERT_TRUE(replica);
  ASSERT_TRUE(primary->Cli({"SET", "a", "1"}));
  // Replication is asynchronous: wait until the replica has applied the write.
  for (int i = 0; i < 200 && replica->Cli({"GET", "a"}) != "1"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(replica->Cli({"GET", "a"}), "1");

  HealthCheckSpec p = Spec(Kind::kRedis, primary->url());
  p.expect_primary = true;
  HealthResult ok = RunCheck(p, kNoSecrets);
  EXPECT_TRUE(ok.ok) << Visible(ok);
  EXPECT_EQ(ok.facts.value("role", ""), "primary") << Visible(ok);
  EXPECT_TRUE(ok.facts.contains("offset"));
  EXPECT_EQ(ok.facts.value("replicas", -1), 1) << Visible(ok);

  p.expect_primary = false;
  HealthResult wrong = RunCheck(p, kNoSecrets);
  EXPECT_FALSE(wrong.ok) << Visible(wrong);
  EXPECT_TRUE(Contains(wrong.detail, "expected a replica")) << wrong.detail;

  HealthCheckSpec r = Spec(Kind::kRedis, replica->url());
  r.expect_primary = false;
  r.max_lag_bytes = 1 << 20;
  HealthResult rep = RunCheck(r, kNoSecrets);
  EXPECT_TRUE(rep.ok) << Visible(rep);
  EXPECT_EQ(rep.facts.value("role", ""), "replica");
  EXPECT_TRUE(rep.facts.value("link_up", false)) << Visible(rep);
  EXPECT_GT(rep.facts.value("offset", uint64_t{0}), 0u) << Visible(rep);
  ASSERT_TRUE(rep.facts.contains("lag_bytes")) << Visible(rep);
  EXPECT_LE(rep.facts["lag_bytes"].get<uint64_t>(), uint64_t{1} << 20);

  r.expect_primary = true;
  HealthResult rep_wrong = RunCheck(r, kNoSecrets);
  EXPECT_FALSE(rep_wrong.ok);
  EXPECT_TRUE(Contains(rep_wrong.detail, "expected a primary")) << rep_wrong.detail;

  // Without its primary the replica answers, but its link is down: not healthy.
  primary->Kill();
  ASSERT_TRUE(replica->WaitForInfo("master_link_status:down"));
  r.expect_primary.reset();
  HealthResult orphan = RunCheck(r, kNoSecrets);
  EXPECT_FALSE(orphan.ok) << Visible(orphan);
  EXPECT_TRUE(Contains(orphan.detail, "link to primary")) << orphan.detail;
  EXPECT_FALSE(orphan.facts.value("link_up", true));

  HealthResult gone = RunCheck(p, kNoSecrets);
  EXPECT_FALSE(gone.ok);
  EXPECT_TRUE(Contains(gone.detail, "Connection refused") || Contains(gone.detail, "refused"))
      << gone.detail;
}

TEST(HealthRedis, PasswordComesFromTheSecret) {
  SKIP_WITHOUT_REDIS();
  TempDir dir;
  RedisServerOptions options;
  options.password = "redis-secret-value-1";
  auto server = RedisServer::Create(dir.path(), "r1", options);
  ASSERT_TRUE(server);
  HealthCheckSpec spec = Spec(Kind::kRedis, server->url());
  spec.password = "redis-password";

  HealthResult ok = RunCheck(spec, Secrets({{"redis-password", "redis-secret-value-1\n"}}));
  EXPECT_TRUE(ok.ok) << Visible(ok);

  HealthResult wrong = RunCheck(spec, Secrets({{"redis-password", "not-the-value-42"}}));
  EXPECT_FALSE(wrong.ok);
  EXPECT_TRUE(Contains(wrong.detail, "WRONGPASS") || Contains(wrong.detail, "password"))
      << wrong.detail;
  EXPECT_FALSE(Contains(Visible(wrong), "not-the-value-42")) << Visible(wrong);

  HealthResult missing = RunCheck(spec, kNoSecrets);
  EXPECT_FALSE(missing.ok);
  EXPECT_TRUE(Contains(missing.detail, "secret 'redis-password' is not defined"))
      << missing.detail;

  HealthCheckSpec none = Spec(Kind::kRedis, server->url());
  HealthResult noauth = RunCheck(none, kNoSecrets);
  EXPECT_FALSE(noauth.ok);
  EXPECT_TRUE(Contains(noauth.detail, "NOAUTH")) << noauth.detail;
}

TEST(HealthRedis, PasswordInTheUrlIsRefusedAndNotShown) {
  HealthCheckSpec spec;
  spec.kind = Kind::kRedis;
  spec.target = "redis://admin:url-secret-value@127.0.0.1:" + std::to_string(FreePort());
  HealthResult r = RunCheck(spec, kNoSecrets);  // no name: the default one is built
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(Contains(r.detail, "put the password in a secret")) << r.detail;
  EXPECT_TRUE(r.name.starts_with("redis redis://admin:***@127.0.0.1:")) << r.name;
  EXPECT_FALSE(Contains(Visible(r), "url-secret-value")) << Visible(r);
}

// ---------------------------------------------------------------- postgres checks

TEST(HealthPostgres, PrimaryAndReplica) {
  SKIP_WITHOUT_PG();
  TempDir dir;
  auto primary = PgServer::Create(dir.path(), "primary");
  ASSERT_TRUE(primary);
  auto replica = PgServer::CreateReplica(*primary, "replica");
  ASSERT_TRUE(replica);
  ASSERT_TRUE(primary->Sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i"));

  HealthCheckSpec p = Spec(Kind::kPostgres, primary->conninfo());
  p.expect_primary = true;
  HealthResult ok = RunCheck(p, kNoSecrets);
  ASSERT_TRUE(ok.ok) << Visible(ok);
  EXPECT_EQ(ok.facts.value("role", ""), "primary");
  EXPECT_GT(ok.facts.value("lsn", uint64_t{0}), 0u);
  EXPECT_EQ(ok.facts.value("timeline", 0), 1);
  EXPECT_FALSE(ok.facts.value("read_only", true));
  // The LSN fact is the server's own position, as an integer.
  auto lsn_text = primary->Sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint");
  ASSERT_TRUE(lsn_text);
  EXPECT_LE(ok.facts["lsn"].get<uint64_t>(), std::stoull(*lsn_text));

  p.expect_primary = false;
  HealthResult not_replica = RunCheck(p, kNoSecrets);
  EXPECT_FALSE(not_replica.ok);
  EXPECT_TRUE(Contains(not_replica.detail, "expected a replica")) << not_replica.detail;

  // The replica, once it replayed the table.
  for (int i = 0; i < 200; ++i) {
    auto n = replica->Sql("SELECT count(*) FROM t");
    if (n && *n == "1000") break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  HealthCheckSpec r = Spec(Kind::kPostgres, replica->conninfo());
  r.expect_primary = false;
  r.max_lag_bytes = 64 << 20;
  HealthResult rep = RunCheck(r, kNoSecrets);
  ASSERT_TRUE(rep.ok) << Visible(rep);
  EXPECT_EQ(rep.facts.value("role", ""), "replica");
  uint64_t replay = rep.facts.value("lsn", uint64_t{0});
  EXPECT_GT(replay, 0u);
  EXPECT_GE(rep.facts.value("receive_lsn", uint64_t{0}), replay);
  EXPECT_LE(replay, ok.facts["lsn"].get<uint64_t>() + (16u << 20));
  EXPECT_EQ(rep.facts.value("timeline", 0), 1);

  auto state = health::ProbePostgres(replica->conninfo(), "", milliseconds(5000));
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_TRUE(state->in_recovery);
  ASSERT_TRUE(state->replay_delay_seconds.has_value());  // it replayed the CREATE TABLE
  EXPECT_GE(*state->replay_delay_seconds, 0.0);

  r.expect_primary = true;
  HealthResult rep_wrong = RunCheck(r, kNoSecrets);
  EXPECT_FALSE(rep_wrong.ok);
  EXPECT_TRUE(Contains(rep_wrong.detail, "expected a primary")) << rep_wrong.detail;

  // A fenced primary (read-only by default) is no primary to send writes to.
  ASSERT_TRUE(primary->Sql("ALTER SYSTEM SET default_transaction_read_only = on"));
  ASSERT_TRUE(primary->Sql("SELECT pg_reload_conf()"));
  p.expect_primary = true;
  HealthResult fenced;
  for (int i = 0; i < 100; ++i) {
    fenced = RunCheck(p, kNoSecrets);
    if (!fenced.ok) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_FALSE(fenced.ok);
  EXPECT_TRUE(Contains(fenced.detail, "read-only")) << fenced.detail;
  EXPECT_TRUE(fenced.facts.value("read_only", false));

  // Promoted, the replica is a primary on a new timeline.
  ASSERT_TRUE(replica->Promote());
  ASSERT_TRUE(replica->Sql("CHECKPOINT"));
  HealthResult promoted = RunCheck(r, kNoSecrets);
  EXPECT_TRUE(promoted.ok) << Visible(promoted);
  EXPECT_EQ(promoted.facts.value("role", ""), "primary");
  EXPECT_EQ(promoted.facts.value("timeline", 0), 2);
}

TEST(HealthPostgres, SecretsAndUnreachableServers) {
  SKIP_WITHOUT_PG();
  TempDir dir;
  auto server = PgServer::Create(dir.path(), "pg");
  ASSERT_TRUE(server);
  ASSERT_TRUE(server->Sql("CREATE ROLE checker LOGIN PASSWORD 'pg-secret-value-7'"));
  // The tests' clusters trust everyone; this user must give a password (first match wins).
  std::string hba = server->data_dir() + "/pg_hba.conf";
  std::string old;
  {
    std::ifstream in(hba);
    std::stringstream ss;
    ss << in.rdbuf();
    old = ss.str();
  }
  {
    std::ofstream out(hba, std::ios::trunc);
    out << "host all checker 127.0.0.1/32 scram-sha-256\n" << old;
  }
  ASSERT_TRUE(server->Sql("SELECT pg_reload_conf()"));

  HealthCheckSpec spec = Spec(
      Kind::kPostgres,
      "host=127.0.0.1 port=" + std::to_string(server->port()) + " user=checker dbname=postgres");
  spec.password = "pg-password";

  HealthResult ok;
  for (int i = 0; i < 100; ++i) {  // until the reload took effect either way
    ok = RunCheck(spec, Secrets({{"pg-password", "pg-secret-value-7"}}));
    if (ok.ok) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(ok.ok) << Visible(ok);
  EXPECT_EQ(ok.facts.value("role", ""), "primary");

  HealthResult wrong = RunCheck(spec, Secrets({{"pg-password", "wrong-secret-value-9"}}));
  EXPECT_FALSE(wrong.ok);
  EXPECT_TRUE(Contains(wrong.detail, "password authentication failed")) << wrong.detail;
  EXPECT_FALSE(Contains(Visible(wrong), "wrong-secret-value-9")) << Visible(wrong);

  HealthResult no_secret = RunCheck(spec, kNoSecrets);
  EXPECT_FALSE(no_secret.ok);
  EXPECT_TRUE(Contains(no_secret.detail, "secret 'pg-password'")) << no_secret.detail;

  HealthCheckSpec closed = spec;
  int port = FreePort();
  closed.target = "host=127.0.0.1 port=" + std::to_string(port) + " user=checker";
  closed.name.clear();  // the default name must not carry a password either
  closed.timeout = milliseconds(2000);
  Clock::time_point start = Clock::now();
  HealthResult refused = RunCheck(closed, Secrets({{"pg-password", "pg-secret-value-7"}}));
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 5.0);
  EXPECT_FALSE(refused.ok);
  EXPECT_TRUE(Contains(refused.detail, "refused")) << refused.detail;
  EXPECT_TRUE(Contains(refused.name, std::to_string(port))) << refused.name;
  EXPECT_FALSE(Contains(Visible(refused), "pg-secret-value-7")) << Visible(refused);
}

// ---------------------------------------------------------------- tcp, http, command

TEST(HealthTcp, OpenAndClosedPorts) {
  int port = FreePort();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 4), 0);

  HealthResult open = RunCheck(Spec(Kind::kTcp, "127.0.0.1:" + std::to_string(port)),
                               kNoSecrets);
  EXPECT_TRUE(open.ok) << Visible(open);
  EXPECT_TRUE(Contains(open.detail, "connected in")) << open.detail;
  close(fd);

  HealthResult closed_port = RunCheck(Spec(Kind::kTcp, "127.0.0.1:" + std::to_string(FreePort())),
                                      kNoSecrets);
  EXPECT_FALSE(closed_port.ok);
  EXPECT_EQ(closed_port.detail, "connection refused");

  HealthResult bad = RunCheck(Spec(Kind::kTcp, "127.0.0.1"), kNoSecrets);
  EXPECT_FALSE(bad.ok);
  EXPECT_TRUE(Contains(bad.detail, "not host:port")) << bad.detail;
}

// An HTTP server on a free loopback port, run on its own thread.
class HttpServer {
 public:
  HttpServer() {
    server_.Get("/ok", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("all ok here", "text/plain");
    });
    server_.Get("/down", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("maintenance", "text/plain");
    });
    server_.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      // Answers after 3 s, or as soon as the test ends.
      for (int i = 0; i < 300 && !stopping_; ++i) std::this_thread::sleep_for(milliseconds(10));
      res.set_content("ok, eventually", "text/plain");
    });
    port_ = FreePort();
    bound_ = server_.bind_to_port("127.0.0.1", port_);
    if (bound_) thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HttpServer() {
    stopping_ = true;
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  bool bound() const { return bound_; }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  int port_ = 0;
  bool bound_ = false;
};

TEST(HealthHttp, StatusBodyAndTimeout) {
  HttpServer server;
  ASSERT_TRUE(server.bound());

  HealthCheckSpec ok_spec = Spec(Kind::kHttp, server.Url("/ok"));
  ok_spec.expect_body = "ok";
  HealthResult ok = RunCheck(ok_spec, kNoSecrets);
  EXPECT_TRUE(ok.ok) << Visible(ok);
  EXPECT_TRUE(ok.detail.starts_with("200 in ")) << ok.detail;

  HealthCheckSpec body = ok_spec;
  body.expect_body = "healthy";
  HealthResult mismatch = RunCheck(body, kNoSecrets);
  EXPECT_FALSE(mismatch.ok);
  EXPECT_EQ(mismatch.detail, "body does not contain 'healthy'");

  HealthResult down = RunCheck(Spec(Kind::kHttp, server.Url("/down")), kNoSecrets);
  EXPECT_FALSE(down.ok);
  EXPECT_EQ(down.detail, "got 503, expected 200");

  HealthCheckSpec maintenance = Spec(Kind::kHttp, server.Url("/down"));
  maintenance.expect_status = 503;
  maintenance.expect_body = "maintenance";
  HealthResult expected_503 = RunCheck(maintenance, kNoSecrets);
  EXPECT_TRUE(expected_503.ok) << Visible(expected_503);

  HealthCheckSpec slow = Spec(Kind::kHttp, server.Url("/slow"));
  slow.timeout = milliseconds(300);
  Clock::time_point start = Clock::now();
  HealthResult timed_out = RunCheck(slow, kNoSecrets);
  double took = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_FALSE(timed_out.ok);
  EXPECT_TRUE(Contains(timed_out.detail, "timed out")) << timed_out.detail;
  EXPECT_LT(took, 2.0);
  EXPECT_GE(timed_out.seconds, 0.25);

  HealthResult refused =
      RunCheck(Spec(Kind::kHttp, "http://127.0.0.1:" + std::to_string(FreePort()) + "/"),
               kNoSecrets);
  EXPECT_FALSE(refused.ok);
  EXPECT_FALSE(refused.detail.empty());
}

TEST(HealthCommand, ExitStatusAndOutput) {
  HealthResult ok = RunCheck(Spec(Kind::kCommand, "test -d /"), kNoSecrets);
  EXPECT_TRUE(ok.ok) << Visible(ok);

  HealthResult err = RunCheck(
      Spec(Kind::kCommand, "echo checking; echo 'first problem' >&2; echo '  disk full  ' >&2; "
                           "exit 3"),
      kNoSecrets);
  EXPECT_FALSE(err.ok);
  EXPECT_EQ(err.detail, "exited with status 3: disk full");
  EXPECT_EQ(err.facts.value("exit_code", -1), 3);

  HealthResult out = RunCheck(Spec(Kind::kCommand, "echo 'replica lagging'; echo; exit 1"),
                              kNoSecrets);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.detail, "exited with status 1: replica lagging");

  HealthResult long_line = RunCheck(
      Spec(Kind::kCommand, "printf '%0500d\\n' 0; exit 2"), kNoSecrets);
  EXPECT_FALSE(long_line.ok);
  EXPECT_LE(long_line.detail.size(), std::string("exited with status 2: ").size() + 200);

  HealthCheckSpec slow = Spec(Kind::kCommand, "sleep 10");
  slow.timeout = milliseconds(300);
  Clock::time_point start = Clock::now();
  HealthResult timed_out = RunCheck(slow, kNoSecrets);
  EXPECT_FALSE(timed_out.ok);
  EXPECT_TRUE(Contains(timed_out.detail, "timed out")) << timed_out.detail;
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 5.0);
}

TEST(HealthRunChecks, ConcurrentInOrderAndJson) {
  std::vector<HealthCheckSpec> specs;
  for (int code : {0, 4, 0, 5}) {
    specs.push_back(Spec(Kind::kCommand, "sleep 0.6; exit " + std::to_string(code)));
  }
  specs[1].name = "second";
  Clock::time_point start = Clock::now();
  std::vector<HealthResult> results = RunChecks(specs, kNoSecrets);
  double took = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_EQ(results.size(), 4u);
  EXPECT_LT(took, 2.0);  // one after the other would take 2.4 s
  EXPECT_TRUE(results[0].ok);
  EXPECT_FALSE(results[1].ok);
  EXPECT_EQ(results[1].name, "second");
  EXPECT_TRUE(results[2].ok);
  EXPECT_FALSE(results[3].ok);
  EXPECT_TRUE(Contains(results[3].detail, "status 5")) << results[3].detail;

  nlohmann::json j = results[1].ToJson();
  EXPECT_EQ(j["name"], "second");
  EXPECT_EQ(j["kind"], "command");
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["detail"], results[1].detail);
  EXPECT_GE(j["seconds"].get<double>(), 0.5);
  EXPECT_EQ(j["facts"]["exit_code"], 4);
}

}  // namespace
}  // namespace reprise::testing
