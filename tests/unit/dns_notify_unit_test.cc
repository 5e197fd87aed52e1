#include <gtest/gtest.h>

#include "dns/dns_provider.h"
#include "dns/rfc2136.h"
#include "notify/notifier.h"
#include "notify/smtp.h"

namespace reprise {
namespace {

constexpr char kSecret[] = "c2VjcmV0LWtleS1mb3ItdGVzdHMtMzItYnl0ZXMtISE=";

TEST(DnsParseTsigKey, NameAndSecretDefaultToHmacSha256) {
  auto k = dns::ParseTsigKey(std::string("ddns-key:") + kSecret);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->algorithm, "hmac-sha256");
  EXPECT_EQ(k->name, "ddns-key");
  EXPECT_EQ(k->secret_base64, kSecret);
}

TEST(DnsParseTsigKey, AlgorithmIsNormalized) {
  auto k = dns::ParseTsigKey(std::string("HMAC-SHA512.:key.example.:") + kSecret + "\n");
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->algorithm, "hmac-sha512");
  EXPECT_EQ(k->name, "key.example.");
  EXPECT_EQ(k->secret_base64, kSecret);  // trailing newline of a secret file dropped
  auto md5 = dns::ParseTsigKey(std::string("hmac-md5.sig-alg.reg.int:k:") + kSecret);
  ASSERT_TRUE(md5.ok()) << md5.status().ToString();
  EXPECT_EQ(md5->algorithm, "hmac-md5");
}

TEST(DnsParseTsigKey, RejectsBadInputWithoutEchoingTheSecret) {
  for (const std::string& bad :
       {std::string(kSecret), std::string("a:b:c:") + kSecret, std::string("k:not base64!"),
        std::string("k:abc"), std::string(":") + kSecret, std::string("hmac-foo:k:") + kSecret,
        std::string("hmac-sha384:k:") + kSecret, std::string("k:")}) {
    auto k = dns::ParseTsigKey(bad);
    EXPECT_FALSE(k.ok()) << bad;
    EXPECT_EQ(k.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(k.status().message().find(kSecret), std::string::npos) << k.status().message();
  }
}

TEST(DnsParseServer, Forms) {
  auto a = dns::ParseDnsServer("192.0.2.1:5353");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "192.0.2.1");
  EXPECT_EQ(a->port, 5353);
  auto b = dns::ParseDnsServer("ns1.example.");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, 53);
  auto c = dns::ParseDnsServer("[2001:db8::1]:54");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "2001:db8::1");
  EXPECT_EQ(c->port, 54);
  EXPECT_EQ(c->ToString(), "[2001:db8::1]:54");
  auto d = dns::ParseDnsServer("2001:db8::1");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 53);
  for (const char* bad : {"", "host:", "host:0", "host:70000", "host:5x", "[::1", ":53"}) {
    EXPECT_FALSE(dns::ParseDnsServer(bad).ok()) << bad;
  }
}

TEST(DnsSameValue, ComparesByType) {
  EXPECT_TRUE(dns::SameValue("A", "10.0.0.1", "10.0.0.1"));
  EXPECT_FALSE(dns::SameValue("A", "10.0.0.1", "10.0.0.10"));
  EXPECT_TRUE(dns::SameValue("AAAA", "2001:DB8:0::1", "2001:db8::1"));
  EXPECT_TRUE(dns::SameValue("CNAME", "Api.Example.", "api.example"));
  EXPECT_FALSE(dns::SameValue("CNAME", "api.example.", "web.example."));
}

TEST(DnsMakeProvider, ChecksTheSpecAndSecrets) {
  DnsSpec spec;
  spec.server = "127.0.0.1:5353";
  spec.zone = "example.";
  spec.record = "api.example.";
  spec.tsig_secret = "k";
  auto none = [](const std::string& n) -> Result<std::string> {
    return NotFound("secret '" + n + "' not found");
  };
  auto r = dns::MakeDnsProvider(spec, none);
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  auto bad_key = [](const std::string&) -> Result<std::string> {
    return std::string("not a key");
  };
  r = dns::MakeDnsProvider(spec, bad_key);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("secret 'k'"), std::string::npos) << r.status().message();
  spec.tsig_secret.clear();
  r = dns::MakeDnsProvider(spec, none);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->Describe(), "rfc2136 127.0.0.1:5353 api.example.");
  spec.server = "127.0.0.1:port";
  EXPECT_EQ(dns::MakeDnsProvider(spec, none).status().code(), Code::kInvalidArgument);

  DnsSpec hook;
  hook.provider = DnsSpec::Provider::kWebhook;
  hook.record = "api.example.";
  EXPECT_EQ(dns::MakeDnsProvider(hook, none).status().code(), Code::kInvalidArgument);
  hook.url = "https://dns.example/hook?token=abc";
  r = dns::MakeDnsProvider(hook, none);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->Describe(), "webhook https://dns.example/hook api.example.");
}

TEST(DnsReplace, RejectsValuesOfTheWrongShape) {
  DnsSpec spec;
  spec.server = "127.0.0.1:9";  // never contacted: the value is checked first
  spec.zone = "example.";
  spec.record = "api.example.";
  auto p = dns::MakeRfc2136Provider(spec, std::nullopt);
  EXPECT_EQ(p->Replace("10.0.0.300").code(), Code::kInvalidArgument);
  EXPECT_EQ(p->Replace("10.0.0.1 10.0.0.2").code(), Code::kInvalidArgument);
  spec.type = "AAAA";
  p = dns::MakeRfc2136Provider(spec, std::nullopt);
  EXPECT_EQ(p->Replace("10.0.0.1").code(), Code::kInvalidArgument);
}

TEST(NotifyEventMatches, Patterns) {
  EXPECT_TRUE(notify::EventMatches("*", "failover.completed"));
  EXPECT_TRUE(notify::EventMatches("failover.*", "failover.completed"));
  EXPECT_TRUE(notify::EventMatches("failover.*", "failover.refused"));
  EXPECT_FALSE(notify::EventMatches("failover.*", "failover"));
  EXPECT_FALSE(notify::EventMatches("failover.*", "backup.failed"));
  EXPECT_FALSE(notify::EventMatches("failover.*", "xfailover.completed"));
  EXPECT_TRUE(notify::EventMatches("backup.failed", "backup.failed"));
  EXPECT_FALSE(notify::EventMatches("backup.failed", "backup.failed.twice"));
  EXPECT_FALSE(notify::EventMatches("backup.failed", "backup.fail"));
  EXPECT_TRUE(notify::EventMatches("*.failed", "restore.failed"));
  EXPECT_FALSE(notify::EventMatches("*.failed", "restore.completed"));
  EXPECT_TRUE(notify::EventMatches("a*b*c", "axxbyybc"));
  EXPECT_FALSE(notify::EventMatches("a*b*c", "axxbyyb"));
  EXPECT_FALSE(notify::EventMatches("", "x"));
  EXPECT_TRUE(notify::EventMatches("", ""));
}

TEST(NotifyMail, MessageHeadersAndBody) {
  notify::Event e;
  e.type = "failover.completed";
  e.title = "failover to 'dr'\r\nBcc: evil@example.com";  // no header injection
  e.text = "line one\nline two";
  e.data = {{"seconds", 4.2}};
  std::string m = notify::BuildMailMessage(e, "reprise <dr@example.com>",
                                           {"a@example.com", "B <b@example.com>"}, 0);
  EXPECT_NE(m.find("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("From: reprise <dr@example.com>\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("To: a@example.com, B <b@example.com>\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("Subject: [reprise] failover to 'dr'  Bcc: evil@example.com\r\n"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("\r\nBcc:"), std::string::npos) << m;
  EXPECT_NE(m.find("@example.com>\r\nMIME-Version: 1.0\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\r\n\r\nline one\r\nline two\r\n\r\n{\r\n  \"seconds\": 4.2\r\n}\r\n"),
            std::string::npos)
      << m;
  // Every line ends in CRLF.
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\n') ASSERT_TRUE(i > 0 && m[i - 1] == '\r') << "bare LF at " << i;
  }
  EXPECT_EQ(notify::MailAddress("Boss <boss@example.com>"), "boss@example.com");
  EXPECT_EQ(notify::MailAddress(" a@example.com "), "a@example.com");
}

TEST(NotifyMail, NonAsciiSubjectIsEncoded) {
  notify::Event e;
  e.title = "bascule vers « dr » terminée";
  std::string m = notify::BuildMailMessage(e, "dr@example.com", {"a@example.com"}, 0);
  EXPECT_NE(m.find("Subject: =?UTF-8?B?"), std::string::npos) << m;
  EXPECT_NE(m.find("Content-Transfer-Encoding: 8bit"), std::string::npos) << m;
}

TEST(NotifyMakeChannel, ChecksUrlsAndSecrets) {
  auto secrets = [](const std::string& n) -> Result<std::string> {
    if (n == "login") return std::string("nocolon");
    return NotFound("secret '" + n + "' not found");
  };
  NotifyChannel c;
  c.name = "x";
  c.kind = NotifyChannel::Kind::kSlack;
  EXPECT_EQ(notify::MakeChannel(c, secrets).status().code(), Code::kInvalidArgument);
  c.url = "ftp://example.com/";
  EXPECT_EQ(notify::MakeChannel(c, secrets).status().code(), Code::kInvalidArgument);
  c.url.clear();
  c.url_secret = "missing";
  auto r = notify::MakeChannel(c, secrets);
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("slack channel 'x'"), std::string::npos);
  c.kind = NotifyChannel::Kind::kSmtp;
  c.url_secret.clear();
  c.url = "smtp://127.0.0.1:25";
  c.credentials = "login";
  EXPECT_EQ(notify::MakeChannel(c, secrets).status().code(), Code::kInvalidArgument);
  c.credentials.clear();
  r = notify::MakeChannel(c, secrets);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->name(), "x");
}

TEST(NotifyDispatch, UnknownRouteTargetIsReported) {
  NotificationsSpec spec;
  spec.routes = {NotifyRoute{{"*"}, {"ghost"}}};
  auto report = notify::Dispatch(spec, nullptr, notify::Event{.type = "backup.failed"});
  EXPECT_TRUE(report.sent.empty());
  ASSERT_EQ(report.failed.size(), 1u);
  EXPECT_NE(report.failed[0].find("'ghost'"), std::string::npos);
}

}  // namespace
}  // namespace reprise
