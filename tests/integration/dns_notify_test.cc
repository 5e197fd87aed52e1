// DNS switching against a real Knot server, DNS webhooks and notification channels against an
// in-process HTTP receiver, and mail against an aiosmtpd sink.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dns/dns_provider.h"
#include "dns/rfc2136.h"
#include "harness.h"
#include "knot_env.h"
#include "notify/notifier.h"
#include "pg_env.h"
#include "smtp_env.h"

namespace reprise {
namespace {

using testing::FreePort;
using testing::KnotServer;
using testing::SmtpSink;
using testing::TempDir;
using Clock = std::chrono::steady_clock;

dns::SecretLookup Secrets(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> Result<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return NotFound("secret '" + name + "' not found");
    return it->second;
  };
}

DnsSpec KnotSpec(const KnotServer& knot, const std::string& tsig_secret = "dns_key") {
  DnsSpec spec;
  spec.provider = DnsSpec::Provider::kRfc2136;
  spec.server = knot.server();
  spec.zone = KnotServer::kZone;
  spec.record = KnotServer::kRecord;
  spec.type = "A";
  spec.ttl = 30;
  spec.tsig_secret = tsig_secret;
  spec.propagation_timeout = std::chrono::seconds(10);
  return spec;
}

class DnsRfc2136Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::KnotAvailable()) GTEST_SKIP() << testing::kKnotSkipReason;
    knot_ = KnotServer::Start(tmp_.path() + "/knot");
    ASSERT_TRUE(knot_) << "knotd did not start";
  }

  Result<std::unique_ptr<dns::DnsProvider>> Provider(const std::string& key_text) {
    DnsSpec spec = KnotSpec(*knot_, key_text.empty() ? "" : "dns_key");
    return dns::MakeDnsProvider(spec, Secrets({{"dns_key", key_text}}));
  }

  std::vector<std::string> Current() {
    auto got = dns::QueryRecord(knot_->server(), KnotServer::kRecord, "A");
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : std::vector<std::string>{"<error>"};
  }

  TempDir tmp_;
  std::unique_ptr<KnotServer> knot_;
};

TEST_F(DnsRfc2136Test, ReplaceThenQueryAndAwaitPropagation) {
  auto provider = Provider(knot_->tsig_key_text());
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  EXPECT_EQ((*provider)->Describe(), "rfc2136 " + knot_->server() + " api.test.reprise.");

  auto before = (*provider)->Query(knot_->server());
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(*before, std::vector<std::string>{"10.0.0.1"});

  Status st = (*provider)->Replace("10.0.0.2");
  ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << knot_->log();
  auto after = (*provider)->Query(knot_->server());
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, std::vector<std::string>{"10.0.0.2"});  // replaced, not added

  DnsSpec spec = KnotSpec(*knot_);
  EXPECT_TRUE(dns::AwaitPropagation(**provider, spec, "10.0.0.2").ok());

  // A value nobody serves: the wait ends at the timeout and says what the resolver answers.
  spec.propagation_timeout = std::chrono::seconds(1);
  auto t0 = Clock::now();
  Status waited = dns::AwaitPropagation(**provider, spec, "10.0.0.9");
  auto elapsed = Clock::now() - t0;
  EXPECT_EQ(waited.code(), Code::kUnavailable) << waited.ToString();
  EXPECT_NE(waited.message().find("10.0.0.2"), std::string::npos) << waited.message();
  EXPECT_NE(waited.message().find(knot_->server()), std::string::npos) << waited.message();
  EXPECT_GE(elapsed, std::chrono::milliseconds(900));
  EXPECT_LT(elapsed, std::chrono::seconds(4));
}

TEST_F(DnsRfc2136Test, AwaitPropagationSeesALaterChange) {
  auto provider = Provider(knot_->tsig_key_text());
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  DnsSpec spec = KnotSpec(*knot_);
  spec.resolvers = {knot_->server()};
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_TRUE((*provider)->Replace("10.0.0.5").ok());
  });
  Status st = dns::AwaitPropagation(**provider, spec, "10.0.0.5");
  later.join();
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Current(), std::vector<std::string>{"10.0.0.5"});
}

TEST_F(DnsRfc2136Test, CnameValuesAreAbsoluteNames) {
  DnsSpec spec = KnotSpec(*knot_);
  spec.record = "www.test.reprise.";
  spec.type = "CNAME";
  auto provider = dns::MakeDnsProvider(spec, Secrets({{"dns_key", knot_->tsig_key_text()}}));
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  auto none = (*provider)->Query(knot_->server());
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  Status st = (*provider)->Replace("api.test.reprise");
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto got = (*provider)->Query(knot_->server());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, std::vector<std::string>{"api.test.reprise."});
  EXPECT_TRUE(dns::AwaitPropagation(**provider, spec, "API.test.reprise.").ok());
}

TEST_F(DnsRfc2136Test, WrongSecretIsRefusedAndRecordUnchanged) {
  auto provider =
      Provider("hmac-sha256:" + knot_->key_name() + ":" + testing::RandomTsigSecret());
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  Status st = (*provider)->Replace("10.0.0.66");
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("BADSIG"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'" + knot_->key_name() + "'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("HINT"), std::string::npos) << st.message();
  EXPECT_EQ(Current(), std::vector<std::string>{"10.0.0.1"});
}

TEST_F(DnsRfc2136Test, UnknownKeyNameIsRefused) {
  auto provider = Provider("hmac-sha256:someone-else:" + knot_->secret());
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  Status st = (*provider)->Replace("10.0.0.66");
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("BADKEY"), std::string::npos) << st.message();
  EXPECT_EQ(Current(), std::vector<std::string>{"10.0.0.1"});
}

TEST_F(DnsRfc2136Test, UnsignedUpdateIsRefused) {
  auto provider = Provider("");
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  Status st = (*provider)->Replace("10.0.0.66");
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("tsig_secret"), std::string::npos) << st.message();
  EXPECT_EQ(Current(), std::vector<std::string>{"10.0.0.1"});
}

TEST_F(DnsRfc2136Test, RecordOutsideTheZoneIsRejected) {
  DnsSpec spec = KnotSpec(*knot_);
  spec.record = "api.elsewhere.example.";
  auto provider = dns::MakeDnsProvider(spec, Secrets({{"dns_key", knot_->tsig_key_text()}}));
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  Status st = (*provider)->Replace("10.0.0.66");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("NOTZONE"), std::string::npos) << st.ToString();
  EXPECT_EQ(Current(), std::vector<std::string>{"10.0.0.1"});
}

TEST(DnsUnreachable, ClosedPortIsUnavailable) {
  DnsSpec spec;
  spec.server = "127.0.0.1:" + std::to_string(FreePort());  // nobody listens there
  spec.zone = "test.reprise.";
  spec.record = "api.test.reprise.";
  auto provider = dns::MakeDnsProvider(spec, Secrets({}));
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  auto t0 = Clock::now();
  Status st = (*provider)->Replace("10.0.0.2");
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find(spec.server), std::string::npos) << st.message();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(6));
}

// A server that takes TCP connections (listen backlog) and UDP datagrams but never answers.
class SilentServer {
 public:
  SilentServer() : port_(FreePort()) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    tcp_ = socket(AF_INET, SOCK_STREAM, 0);
    udp_ = socket(AF_INET, SOCK_DGRAM, 0);
    ok_ = bind(tcp_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          listen(tcp_, 8) == 0 &&
          bind(udp_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~SilentServer() {
    close(tcp_);
    close(udp_);
  }
  bool ok() const { return ok_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_, tcp_ = -1, udp_ = -1;
  bool ok_ = false;
};

TEST(DnsUnreachable, SilentServerTimesOutAsUnavailable) {
  SilentServer silent;
  ASSERT_TRUE(silent.ok());
  DnsSpec spec;
  spec.server = silent.server();
  spec.zone = "test.reprise.";
  spec.record = "api.test.reprise.";
  for (bool tcp : {true, false}) {
    auto provider =
        dns::MakeRfc2136Provider(spec, std::nullopt,
                                 dns::DnsTransport{.timeout = std::chrono::milliseconds(500),
                                                   .tcp = tcp});
    auto t0 = Clock::now();
    Status st = provider->Replace("10.0.0.2");
    auto elapsed = Clock::now() - t0;
    EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
    EXPECT_GE(elapsed, std::chrono::milliseconds(400)) << (tcp ? "tcp" : "udp");
    EXPECT_LT(elapsed, std::chrono::seconds(3)) << (tcp ? "tcp" : "udp");
    auto q = provider->Query(silent.server());
    EXPECT_EQ(q.status().code(), Code::kUnavailable);
  }
}

// A UDP "server" that answers the first query with a bare NOERROR header of the same id and
// no TSIG record: what an attacker on the path could send.
TEST(DnsUnsignedAnswer, IsNotTakenForSuccess) {
  int port = FreePort();
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::thread fake([fd] {
    uint8_t buf[4096];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 12) return;
    uint8_t reply[12] = {buf[0], buf[1], static_cast<uint8_t>(0x80 | (buf[2] & 0x78)), 0};
    sendto(fd, reply, sizeof reply, 0, reinterpret_cast<sockaddr*>(&from), len);
  });
  DnsSpec spec;
  spec.server = "127.0.0.1:" + std::to_string(port);
  spec.zone = "test.reprise.";
  spec.record = "api.test.reprise.";
  auto key = dns::ParseTsigKey("k:" + testing::RandomTsigSecret());
  ASSERT_TRUE(key.ok());
  auto provider = dns::MakeRfc2136Provider(
      spec, *key, dns::DnsTransport{.timeout = std::chrono::milliseconds(3000), .tcp = false});
  Status st = provider->Replace("10.0.0.2");
  fake.join();
  close(fd);
  EXPECT_EQ(st.code(), Code::kUnauthenticated) << st.ToString();
  EXPECT_NE(st.message().find("not signed"), std::string::npos) << st.message();
}

// An HTTP receiver for webhooks: records every request; paths starting with /fail get 500.
class Receiver {
 public:
  struct Request {
    std::string path, query, body, content_type;
  };

  Receiver() : port_(FreePort()) {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        std::string query;
        for (const auto& [k, v] : req.params) query += k + "=" + v + "&";
        requests_.push_back({req.path, query, req.body, req.get_header_value("Content-Type")});
      }
      if (req.path.starts_with("/fail")) {
        res.status = 500;
        res.set_content("receiver broke", "text/plain");
      } else {
        res.status = 200;
        res.set_content("ok", "text/plain");
      }
    };
    server_.Post(R"(/.*)", handler);
    bound_ = server_.bind_to_port("127.0.0.1", port_);
    if (bound_) thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return bound_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  std::vector<Request> To(const std::string& path) {
    std::vector<Request> out;
    for (const auto& r : requests()) {
      if (r.path == path) out.push_back(r);
    }
    return out;
  }

 private:
  int port_;
  bool bound_ = false;
  httplib::Server server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Request> requests_;
};

TEST(DnsWebhook, PostsTheRecordAndHidesASecretUrl) {
  Receiver rx;
  ASSERT_TRUE(rx.ok());
  DnsSpec spec;
  spec.provider = DnsSpec::Provider::kWebhook;
  spec.record = "api.test.reprise.";
  spec.type = "A";
  spec.ttl = 45;
  spec.url_secret = "dns_hook";
  std::string url = rx.url("/dns/update?token=tok-9f8e7d");
  auto provider = dns::MakeDnsProvider(spec, Secrets({{"dns_hook", url + "\n"}}));
  ASSERT_TRUE(provider.ok()) << provider.status().ToString();
  EXPECT_EQ((*provider)->Describe().find("tok-9f8e7d"), std::string::npos);
  EXPECT_NE((*provider)->Describe().find("dns_hook"), std::string::npos);

  Status st = (*provider)->Replace("10.0.0.7");
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto got = rx.To("/dns/update");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].query, "token=tok-9f8e7d&");
  EXPECT_EQ(got[0].content_type, "application/json");
  auto body = nlohmann::json::parse(got[0].body);
  EXPECT_EQ(body, nlohmann::json({{"record", "api.test.reprise."},
                                  {"type", "A"},
                                  {"value", "10.0.0.7"},
                                  {"ttl", 45}}));

  // The receiver failing: a retryable error without the URL.
  auto failing = dns::MakeDnsProvider(spec, Secrets({{"dns_hook", rx.url("/fail?token=tok-1")}}));
  ASSERT_TRUE(failing.ok());
  st = (*failing)->Replace("10.0.0.7");
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("HTTP 500"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("tok-1"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("/fail"), std::string::npos) << st.message();

  // Nobody listening: kUnavailable, still without the URL.
  auto gone = dns::MakeDnsProvider(
      spec, Secrets({{"dns_hook", "http://127.0.0.1:" + std::to_string(FreePort()) +
                                      "/x?token=tok-2"}}));
  ASSERT_TRUE(gone.ok());
  st = (*gone)->Replace("10.0.0.7");
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_EQ(st.message().find("tok-2"), std::string::npos) << st.message();
}

TEST(DnsWebhook, QueriesDnsForTheValue) {
  if (!testing::KnotAvailable()) GTEST_SKIP() << testing::kKnotSkipReason;
  TempDir tmp;
  auto knot = KnotServer::Start(tmp.path() + "/knot");
  ASSERT_TRUE(knot);
  DnsSpec spec;
  spec.provider = DnsSpec::Provider::kWebhook;
  spec.record = "api.test.reprise.";
  spec.url = "http://127.0.0.1:1/unused";
  spec.resolvers = {knot->server()};
  spec.propagation_timeout = std::chrono::seconds(2);
  auto provider = dns::MakeDnsProvider(spec, Secrets({}));
  ASSERT_TRUE(provider.ok());
  auto got = (*provider)->Query(knot->server());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, std::vector<std::string>{"10.0.0.1"});
  EXPECT_TRUE(dns::AwaitPropagation(**provider, spec, "10.0.0.1").ok());
}

notify::Event FailoverEvent() {
  notify::Event e;
  e.type = "failover.completed";
  e.title = "failover to 'dr' completed in 4.2 s";
  e.text = "site 'dr' is primary now.\nrecord api.test.reprise. -> 10.0.0.2";
  e.data = {{"site", "dr"}, {"duration_seconds", 4.2}, {"lag_bytes", 12345}};
  return e;
}

NotifyChannel HttpChannelSpec(const std::string& name, NotifyChannel::Kind kind,
                              const std::string& url_secret) {
  NotifyChannel c;
  c.name = name;
  c.kind = kind;
  c.url_secret = url_secret;
  return c;
}

TEST(Notify, SlackAndWebhookBodies) {
  Receiver rx;
  ASSERT_TRUE(rx.ok());
  NotificationsSpec spec;
  spec.channels = {HttpChannelSpec("ops-slack", NotifyChannel::Kind::kSlack, "slack_url"),
                   HttpChannelSpec("audit", NotifyChannel::Kind::kWebhook, "audit_url")};
  auto secrets = Secrets({{"slack_url", rx.url("/services/T0/B0/slacksecret")},
                          {"audit_url", rx.url("/audit")}});
  notify::DispatchReport report = notify::Dispatch(spec, secrets, FailoverEvent());
  EXPECT_TRUE(report.failed.empty()) << report.failed.front();
  std::sort(report.sent.begin(), report.sent.end());
  EXPECT_EQ(report.sent, (std::vector<std::string>{"audit", "ops-slack"}));

  auto slack = rx.To("/services/T0/B0/slacksecret");
  ASSERT_EQ(slack.size(), 1u);
  auto sbody = nlohmann::json::parse(slack[0].body);
  ASSERT_EQ(sbody.size(), 1u) << sbody.dump();
  EXPECT_EQ(sbody["text"], FailoverEvent().title + "\n" + FailoverEvent().text);

  auto audit = rx.To("/audit");
  ASSERT_EQ(audit.size(), 1u);
  auto abody = nlohmann::json::parse(audit[0].body);
  EXPECT_EQ(abody["type"], "failover.completed");
  EXPECT_EQ(abody["title"], FailoverEvent().title);
  EXPECT_EQ(abody["text"], FailoverEvent().text);
  EXPECT_EQ(abody["data"]["duration_seconds"], 4.2);
  EXPECT_EQ(abody["data"]["lag_bytes"], 12345);
}

TEST(Notify, FailedReceiverIsReportedWithoutTheUrl) {
  Receiver rx;
  ASSERT_TRUE(rx.ok());
  NotificationsSpec spec;
  spec.channels = {HttpChannelSpec("broken-slack", NotifyChannel::Kind::kSlack, "slack_url"),
                   HttpChannelSpec("fine", NotifyChannel::Kind::kWebhook, "fine_url"),
                   HttpChannelSpec("nobody", NotifyChannel::Kind::kWebhook, "nobody_url"),
                   HttpChannelSpec("no-secret", NotifyChannel::Kind::kWebhook, "missing")};
  std::string dead = "http://127.0.0.1:" + std::to_string(FreePort()) + "/hook/tok-dead";
  auto secrets = Secrets({{"slack_url", rx.url("/fail/T0/B0/tok-slack")},
                          {"fine_url", rx.url("/fine")},
                          {"nobody_url", dead}});
  notify::DispatchReport report = notify::Dispatch(spec, secrets, FailoverEvent());
  EXPECT_EQ(report.sent, std::vector<std::string>{"fine"});
  ASSERT_EQ(report.failed.size(), 3u);
  std::string all;
  for (const auto& f : report.failed) all += f + "\n";
  EXPECT_NE(all.find("slack channel 'broken-slack': HTTP 500"), std::string::npos) << all;
  EXPECT_NE(all.find("webhook channel 'nobody'"), std::string::npos) << all;
  EXPECT_NE(all.find("secret 'missing'"), std::string::npos) << all;
  for (const char* secret_part : {"tok-slack", "tok-dead", "/fail", "/hook"}) {
    EXPECT_EQ(all.find(secret_part), std::string::npos) << secret_part << " in:\n" << all;
  }
  EXPECT_EQ(rx.To("/fine").size(), 1u);
}

TEST(Notify, RoutesPickTheChannels) {
  Receiver rx;
  ASSERT_TRUE(rx.ok());
  NotificationsSpec spec;
  spec.channels = {HttpChannelSpec("ops-slack", NotifyChannel::Kind::kSlack, "s1"),
                   HttpChannelSpec("audit", NotifyChannel::Kind::kWebhook, "s2"),
                   HttpChannelSpec("backup-hook", NotifyChannel::Kind::kWebhook, "s3")};
  spec.routes = {NotifyRoute{{"failover.*"}, {"ops-slack", "audit"}},
                 NotifyRoute{{"backup.failed", "failover.refused"}, {"backup-hook", "audit"}}};
  auto secrets =
      Secrets({{"s1", rx.url("/slack")}, {"s2", rx.url("/audit")}, {"s3", rx.url("/backup")}});

  auto report = notify::Dispatch(spec, secrets, FailoverEvent());
  EXPECT_EQ(report.sent, (std::vector<std::string>{"ops-slack", "audit"}));
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(rx.To("/slack").size(), 1u);
  EXPECT_EQ(rx.To("/audit").size(), 1u);
  EXPECT_EQ(rx.To("/backup").size(), 0u);

  notify::Event refused = FailoverEvent();
  refused.type = "failover.refused";  // both routes match: audit gets it once
  report = notify::Dispatch(spec, secrets, refused);
  EXPECT_EQ(report.sent, (std::vector<std::string>{"ops-slack", "audit", "backup-hook"}));
  EXPECT_EQ(rx.To("/audit").size(), 2u);
  EXPECT_EQ(rx.To("/backup").size(), 1u);

  notify::Event other = FailoverEvent();
  other.type = "restore.completed";
  report = notify::Dispatch(spec, secrets, other);
  EXPECT_TRUE(report.sent.empty());
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(rx.requests().size(), 5u);
}

class NotifySmtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::SmtpSinkAvailable()) GTEST_SKIP() << testing::kSmtpSkipReason;
    sink_ = SmtpSink::Start(tmp_.path() + "/smtp");
    ASSERT_TRUE(sink_) << "aiosmtpd did not start";
  }
  NotifyChannel MailChannel() const {
    NotifyChannel c;
    c.name = "ops-mail";
    c.kind = NotifyChannel::Kind::kSmtp;
    c.url = sink_->url();
    c.from = "reprise <dr@test.reprise>";
    c.to = {"oncall@test.reprise", "Boss <boss@test.reprise>"};
    return c;
  }
  TempDir tmp_;
  std::unique_ptr<SmtpSink> sink_;
};

TEST_F(NotifySmtpTest, MailArrivesWithSubjectAndFigures) {
  NotificationsSpec spec;
  spec.channels = {MailChannel()};
  auto report = notify::Dispatch(spec, Secrets({}), FailoverEvent());
  ASSERT_TRUE(report.failed.empty()) << report.failed.front() << "\n" << sink_->log();
  EXPECT_EQ(report.sent, std::vector<std::string>{"ops-mail"});
  auto mails = sink_->WaitForMessages(1, std::chrono::seconds(10));
  ASSERT_EQ(mails.size(), 1u) << sink_->log();
  const std::string& m = mails[0];
  EXPECT_NE(m.find("Subject: [reprise] failover to 'dr' completed in 4.2 s"), std::string::npos)
      << m;
  EXPECT_NE(m.find("From: reprise <dr@test.reprise>"), std::string::npos) << m;
  EXPECT_NE(m.find("Content-Type: text/plain; charset=utf-8"), std::string::npos) << m;
  EXPECT_NE(m.find("Message-ID: <"), std::string::npos) << m;
  EXPECT_NE(m.find("Date: "), std::string::npos) << m;
  EXPECT_NE(m.find("X-MailFrom: dr@test.reprise"), std::string::npos) << m;
  EXPECT_NE(m.find("oncall@test.reprise"), std::string::npos) << m;
  EXPECT_NE(m.find("boss@test.reprise"), std::string::npos) << m;
  EXPECT_NE(m.find("site 'dr' is primary now."), std::string::npos) << m;
  EXPECT_NE(m.find("\"duration_seconds\": 4.2"), std::string::npos) << m;
  EXPECT_NE(m.find("\"lag_bytes\": 12345"), std::string::npos) << m;
}

TEST_F(NotifySmtpTest, CredentialsAreNeverSentWithoutTls) {
  NotifyChannel c = MailChannel();
  c.credentials = "mail_login";
  auto channel = notify::MakeChannel(c, Secrets({{"mail_login", "reprise:hunter2"}}));
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  Status st = (*channel)->Send(FailoverEvent());
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("STARTTLS"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("hunter2"), std::string::npos) << st.message();
  EXPECT_TRUE(sink_->Messages().empty());
}

TEST(NotifySmtp, UnreachableServerIsUnavailableWithoutTheUrl) {
  NotifyChannel c;
  c.name = "ops-mail";
  c.kind = NotifyChannel::Kind::kSmtp;
  c.url_secret = "smtp_url";
  c.from = "dr@test.reprise";
  c.to = {"oncall@test.reprise"};
  int port = FreePort();
  auto channel = notify::MakeChannel(
      c, Secrets({{"smtp_url", "smtp://127.0.0.1:" + std::to_string(port)}}));
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  auto t0 = Clock::now();
  Status st = (*channel)->Send(FailoverEvent());
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("mail channel 'ops-mail'"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find(std::to_string(port)), std::string::npos) << st.message();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(11));
}

}  // namespace
}  // namespace reprise
