// The Route 53 DNS provider against the contract server built from Route 53's API
// description (route53_contract.h), and the contract server's own validator.
#include <httplib.h>

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <string>

#include "common/bytes.h"
#include "dns/route53.h"
#include "route53_contract.h"
#include "storage/s3/sigv4.h"
#include "storage/s3/xml.h"

namespace reprise {
namespace {

using dns::DnsProvider;
using dns::Route53Options;
using testing::Route53Contract;

constexpr char kAccessKey[] = "AKIDREPRISE0TEST0001";
constexpr char kSecret[] = "rePRISE/Test+Secret0Key0For0Route53000000";
constexpr char kZoneId[] = "Z0REPRISE0TEST1";
constexpr char kOrigin[] = "example.test.";
constexpr char kNamespace[] = "https://route53.amazonaws.com/doc/2013-04-01/";

class Route53Test : public ::testing::Test {
 protected:
  void SetUp() override { MakeServer(2); }

  void MakeServer(int polls_until_insync) {
    server_ = std::make_unique<Route53Contract>(Route53Contract::Options{
        .access_key_id = kAccessKey,
        .secret_access_key = kSecret,
        .polls_until_insync = polls_until_insync});
    ASSERT_TRUE(server_->running());
    server_->AddZone(kZoneId, kOrigin);
  }

  Route53Options Options(const std::string& secret = kSecret) const {
    Route53Options o;
    o.hosted_zone_id = std::string("/hostedzone/") + kZoneId;
    o.endpoint = server_->endpoint();
    o.credentials = {.access_key_id = kAccessKey, .secret_access_key = secret};
    o.max_attempts = 4;
    o.backoff = std::chrono::milliseconds(10);
    o.poll_interval = std::chrono::milliseconds(10);
    o.request_timeout_ms = 5000;
    return o;
  }

  static DnsSpec Spec(const std::string& record = "api.example.test.",
                      const std::string& type = "A") {
    DnsSpec spec;
    spec.record = record;
    spec.type = type;
    spec.ttl = 60;
    spec.zone = kOrigin;
    spec.propagation_timeout = std::chrono::seconds(10);
    return spec;
  }

  std::unique_ptr<DnsProvider> Provider(const Route53Options& o, const DnsSpec& spec) {
    auto p = dns::MakeRoute53Provider(o, spec);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(*p) : nullptr;
  }

  std::string LogText() const {
    std::string all;
    for (const auto& l : server_->Log()) all += l + "\n";
    return all;
  }

  // A request signed as a client must sign it, sent by hand (no reprise code on the path
  // except the signer): for testing the contract server's validator.
  httplib::Result SendSigned(const std::string& method, const std::string& path,
                             const std::string& body,
                             const std::vector<std::pair<std::string, std::string>>& query = {}) {
    std::string host = "127.0.0.1:" + server_->endpoint().substr(server_->endpoint().rfind(':') +
                                                                  1);
    std::string amz_date = s3::AmzDate(static_cast<int64_t>(std::time(nullptr)));
    s3::SigV4Request req{.method = method,
                         .path = path,
                         .query = query,
                         .headers = {{"host", host}, {"x-amz-date", amz_date}},
                         .payload_hash = s3::PayloadHash(AsBytes(body))};
    s3::SigV4Signature sig = s3::ComputeSignature(
        req, {.access_key_id = kAccessKey, .secret_access_key = kSecret}, "us-east-1",
        "route53", amz_date);
    httplib::Client cli(server_->endpoint());
    httplib::Headers headers = {
        {"Host", host}, {"X-Amz-Date", amz_date}, {"Authorization", sig.authorization}};
    std::string target = s3::EncodePath(path);
    if (!query.empty()) target += "?" + s3::CanonicalQuery(query);
    if (method == "POST") return cli.Post(target.c_str(), headers, body, "application/xml");
    return cli.Get(target.c_str(), headers);
  }

  static std::string ChangeBody(const std::string& inner,
                                const std::string& ns = kNamespace) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ChangeResourceRecordSetsRequest xmlns=\"" +
           ns + "\"><ChangeBatch><Changes><Change>" + inner +
           "</Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>";
  }

  std::unique_ptr<Route53Contract> server_;
};

TEST_F(Route53Test, ReplaceUpsertsTheRecordAndPollsUntilInsync) {
  auto p = Provider(Options(), Spec());
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->Replace("10.0.0.1").ok());
  Status st = p->Replace("10.0.0.2");
  ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << LogText();

  auto set = server_->Find(kZoneId, "api.example.test.", "A");
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->values, std::vector<std::string>{"10.0.0.2"});
  EXPECT_EQ(set->ttl, 60);
  // Nothing else was added: the zone's SOA and NS, and the one A record.
  EXPECT_EQ(server_->Records(kZoneId).size(), 3u);

  Route53Contract::Counters c = server_->counters();
  EXPECT_EQ(c.changes_applied, 2);
  // Each change: PENDING twice, then INSYNC once, and no poll after INSYNC.
  EXPECT_EQ(c.insync_answers, 2);
  EXPECT_EQ(c.get_change, 6);
  for (const auto& line : server_->Log()) EXPECT_NE(line.find("-> 200"), std::string::npos) << line;
  EXPECT_EQ(p->Describe(), "route53 Z0REPRISE0TEST1 api.example.test.");
}

TEST_F(Route53Test, QueryReturnsWhatTheZoneHolds) {
  auto p = Provider(Options(), Spec());
  ASSERT_NE(p, nullptr);
  auto before = p->Query("ignored:53");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_TRUE(before->empty());

  ASSERT_TRUE(p->Replace("192.0.2.44").ok());
  auto after = p->Query("ignored:53");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, std::vector<std::string>{"192.0.2.44"});

  // A name that sorts right before ours (the list then starts at ours), and the apex (whose
  // NS and SOA sort after A), give no A record: only an exact match counts.
  auto other = Provider(Options(), Spec("aph.example.test."));
  ASSERT_NE(other, nullptr);
  auto none = other->Query("");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  auto apex = Provider(Options(), Spec("example.test."));
  ASSERT_NE(apex, nullptr);
  auto apex_a = apex->Query("");
  ASSERT_TRUE(apex_a.ok()) << apex_a.status().ToString();
  EXPECT_TRUE(apex_a->empty());
}

TEST_F(Route53Test, CnameTargetsAreAbsolute) {
  auto p = Provider(Options(), Spec("www.example.test.", "CNAME"));
  ASSERT_NE(p, nullptr);
  Status st = p->Replace("standby.example.org");
  ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << LogText();
  auto set = server_->Find(kZoneId, "www.example.test.", "CNAME");
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->values, std::vector<std::string>{"standby.example.org."});
  auto got = p->Query("");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, std::vector<std::string>{"standby.example.org."});
}

TEST_F(Route53Test, WrongSecretIsUnauthenticatedNamesTheZoneAndChangesNothing) {
  const std::string wrong = "Wrong0Secret0Value0Nobody0Should0See000000";
  auto p = Provider(Options(wrong), Spec());
  ASSERT_NE(p, nullptr);
  Status st = p->Replace("10.0.0.9");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kUnauthenticated) << st.ToString();
  EXPECT_NE(st.message().find("Z0REPRISE0TEST1"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("SignatureDoesNotMatch"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("HINT"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find(wrong), std::string::npos);
  EXPECT_EQ(st.message().find(kSecret), std::string::npos);
  EXPECT_FALSE(server_->Find(kZoneId, "api.example.test.", "A").has_value());
  EXPECT_EQ(server_->counters().changes_applied, 0);
  // Not retried: a wrong key does not get better.
  std::vector<std::string> log = server_->Log();
  ASSERT_EQ(log.size(), 1u) << LogText();
  EXPECT_NE(log[0].find("-> 403 SignatureDoesNotMatch"), std::string::npos) << log[0];
}

TEST_F(Route53Test, UnknownZoneIsNotFound) {
  Route53Options o = Options();
  o.hosted_zone_id = "ZNOSUCHZONE42";
  auto p = Provider(o, Spec());
  ASSERT_NE(p, nullptr);
  Status st = p->Replace("10.0.0.3");
  EXPECT_EQ(st.code(), Code::kNotFound) << st.ToString();
  EXPECT_NE(st.message().find("ZNOSUCHZONE42"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("NoSuchHostedZone"), std::string::npos) << st.message();
  auto q = p->Query("");
  EXPECT_EQ(q.status().code(), Code::kNotFound) << q.status().ToString();
}

TEST_F(Route53Test, ThrottlingIsRetriedUntilItPasses) {
  server_->FailNext(2, 400, "Throttling", "Rate exceeded");
  auto p = Provider(Options(), Spec());
  ASSERT_NE(p, nullptr);
  Status st = p->Replace("10.0.0.4");
  ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << LogText();
  EXPECT_EQ(server_->counters().change_requests, 3);
  EXPECT_EQ(server_->counters().changes_applied, 1);
  auto set = server_->Find(kZoneId, "api.example.test.", "A");
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->values, std::vector<std::string>{"10.0.0.4"});
}

TEST_F(Route53Test, EndlessThrottlingGivesUpAsUnavailable) {
  server_->FailNext(100, 400, "Throttling", "Rate exceeded");
  Route53Options o = Options();
  o.max_attempts = 3;
  auto p = Provider(o, Spec());
  ASSERT_NE(p, nullptr);
  Status st = p->Replace("10.0.0.5");
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("Throttling"), std::string::npos) << st.message();
  EXPECT_EQ(server_->counters().change_requests, 3);
  EXPECT_EQ(server_->counters().changes_applied, 0);
}

TEST_F(Route53Test, ServerErrorsAndPriorRequestNotCompleteAreRetried) {
  server_->FailNext(1, 503, "ServiceUnavailable", "try later");
  auto p = Provider(Options(), Spec());
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->Replace("10.0.0.6").ok()) << LogText();
  server_->FailNext(1, 400, "PriorRequestNotComplete", "The request was rejected because "
                                                        "Route 53 was still processing a prior "
                                                        "request.");
  ASSERT_TRUE(p->Replace("10.0.0.7").ok()) << LogText();
  EXPECT_EQ(server_->counters().change_requests, 4);
  EXPECT_EQ(server_->Find(kZoneId, "api.example.test.", "A")->values,
            std::vector<std::string>{"10.0.0.7"});
}

TEST_F(Route53Test, AccessDeniedIsPermissionDenied) {
  server_->FailNext(1, 403, "AccessDenied", "User is not authorized to perform "
                                            "route53:ChangeResourceRecordSets");
  auto p = Provider(Options(), Spec());
  ASSERT_NE(p, nullptr);
  Status st = p->Replace("10.0.0.8");
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("IAM"), std::string::npos) << st.message();
}

TEST_F(Route53Test, ARecordOutsideTheZoneIsAnInvalidChangeBatch) {
  auto p = Provider(Options(), Spec("api.elsewhere.test."));
  ASSERT_NE(p, nullptr);
  Status st = p->Replace("10.0.0.10");
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("InvalidChangeBatch"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("not permitted in zone"), std::string::npos) << st.message();
  EXPECT_EQ(server_->counters().changes_applied, 0);
}

TEST_F(Route53Test, AClockFarOffIsAFailedPrecondition) {
  Route53Options o = Options();
  o.clock = [] { return static_cast<int64_t>(std::time(nullptr)) - 3600; };
  auto p = Provider(o, Spec());
  ASSERT_NE(p, nullptr);
  Status st = p->Replace("10.0.0.11");
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("clock"), std::string::npos) << st.message();
  EXPECT_EQ(server_->counters().changes_applied, 0);
}

TEST_F(Route53Test, AChangeStillPendingAtTheDeadlineIsUnavailable) {
  MakeServer(1000000);
  DnsSpec spec = Spec();
  spec.propagation_timeout = std::chrono::seconds(1);
  auto p = Provider(Options(), spec);
  ASSERT_NE(p, nullptr);
  auto start = std::chrono::steady_clock::now();
  Status st = p->Replace("10.0.0.12");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("PENDING"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("/change/C"), std::string::npos) << st.message();
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_GT(server_->counters().get_change, 1);
  // Accepted all the same: Route 53 applies it.
  EXPECT_TRUE(server_->Find(kZoneId, "api.example.test.", "A").has_value());
}

// ---- The contract server's validator, with hand-made requests. ----

TEST_F(Route53Test, ContractAcceptsAWellFormedHandMadeChange) {
  std::string path = std::string("/2013-04-01/hostedzone/") + kZoneId + "/rrset/";
  auto res = SendSigned("POST", path,
                        ChangeBody("<Action>CREATE</Action><ResourceRecordSet><Name>db.example."
                                   "test</Name><Type>AAAA</Type><TTL>300</TTL><ResourceRecords>"
                                   "<ResourceRecord><Value>2001:db8::7</Value></ResourceRecord>"
                                   "</ResourceRecords></ResourceRecordSet>"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_NE(res->body.find("<Status>PENDING</Status>"), std::string::npos) << res->body;
  auto set = server_->Find(kZoneId, "db.example.test.", "AAAA");
  ASSERT_TRUE(set.has_value());
  EXPECT_EQ(set->values, std::vector<std::string>{"2001:db8::7"});
  // CREATE again: the documented InvalidChangeBatch.
  auto again = SendSigned("POST", path,
                          ChangeBody("<Action>CREATE</Action><ResourceRecordSet><Name>db.example."
                                     "test</Name><Type>AAAA</Type><TTL>300</TTL><ResourceRecords>"
                                     "<ResourceRecord><Value>2001:db8::7</Value></ResourceRecord>"
                                     "</ResourceRecords></ResourceRecordSet>"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 400);
  EXPECT_NE(again->body.find("<Code>InvalidChangeBatch</Code>"), std::string::npos);
  EXPECT_NE(again->body.find("already exists"), std::string::npos) << again->body;
}

TEST_F(Route53Test, ContractRejectsMalformedRequestsWithInvalidInput) {
  std::string path = std::string("/2013-04-01/hostedzone/") + kZoneId + "/rrset/";
  const std::string good_set =
      "<ResourceRecordSet><Name>x.example.test</Name><Type>A</Type><TTL>60</TTL>"
      "<ResourceRecords><ResourceRecord><Value>10.1.1.1</Value></ResourceRecord>"
      "</ResourceRecords></ResourceRecordSet>";
  struct Case {
    std::string what;
    std::string body;
    std::string expect;  // in the Message
  };
  std::vector<Case> cases = {
      {"not well-formed", ChangeBody("<Action>UPSERT</Action>" + good_set).substr(0, 200),
       "Invalid XML"},
      {"mismatched tags",
       ChangeBody("<Action>UPSERT</Acton>" + good_set), "closes"},
      {"wrong namespace",
       ChangeBody("<Action>UPSERT</Action>" + good_set,
                  "https://route53.amazonaws.com/doc/2012-12-12/"),
       "namespace"},
      {"action not in the enum", ChangeBody("<Action>REPLACE</Action>" + good_set),
       "enum value set: [CREATE, DELETE, UPSERT]"},
      {"type not in the enum",
       ChangeBody("<Action>UPSERT</Action><ResourceRecordSet><Name>x.example.test</Name>"
                  "<Type>AXFR</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>1"
                  "</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"),
       "enum value set"},
      {"unknown element",
       ChangeBody("<Action>UPSERT</Action><ResourceRecordSet><Name>x.example.test</Name>"
                  "<Type>A</Type><Ttl>60</Ttl></ResourceRecordSet>"),
       "unexpected element 'Ttl'"},
      {"members out of order",
       ChangeBody("<Action>UPSERT</Action><ResourceRecordSet><Type>A</Type>"
                  "<Name>x.example.test</Name><TTL>60</TTL><ResourceRecords><ResourceRecord>"
                  "<Value>10.1.1.1</Value></ResourceRecord></ResourceRecords>"
                  "</ResourceRecordSet>"),
       "out of order"},
      {"missing Action", ChangeBody(good_set), "required element 'Action'"},
      {"missing TTL",
       ChangeBody("<Action>UPSERT</Action><ResourceRecordSet><Name>x.example.test</Name>"
                  "<Type>A</Type><ResourceRecords><ResourceRecord><Value>10.1.1.1</Value>"
                  "</ResourceRecord></ResourceRecords></ResourceRecordSet>"),
       "Expected exactly one of"},
      {"TTL above 2147483647",
       ChangeBody("<Action>UPSERT</Action><ResourceRecordSet><Name>x.example.test</Name>"
                  "<Type>A</Type><TTL>2147483648</TTL><ResourceRecords><ResourceRecord>"
                  "<Value>10.1.1.1</Value></ResourceRecord></ResourceRecords>"
                  "</ResourceRecordSet>"),
       "2147483647"},
      {"no Changes", 
       "<ChangeResourceRecordSetsRequest xmlns=\"" + std::string(kNamespace) +
           "\"><ChangeBatch><Changes/></ChangeBatch></ChangeResourceRecordSetsRequest>",
       "greater than or equal to 1"},
      {"name longer than 1024",
       ChangeBody("<Action>UPSERT</Action><ResourceRecordSet><Name>" + std::string(1020, 'a') +
                  ".example.test</Name><Type>A</Type><TTL>60</TTL><ResourceRecords>"
                  "<ResourceRecord><Value>10.1.1.1</Value></ResourceRecord></ResourceRecords>"
                  "</ResourceRecordSet>"),
       "1024"},
      {"a DTD",
       "<!DOCTYPE x [<!ENTITY e \"y\">]>" + ChangeBody("<Action>UPSERT</Action>" + good_set),
       "DTD"},
  };
  for (const Case& c : cases) {
    auto res = SendSigned("POST", path, c.body);
    ASSERT_TRUE(res) << c.what;
    EXPECT_EQ(res->status, 400) << c.what << ": " << res->body;
    EXPECT_NE(res->body.find("<Code>InvalidInput</Code>"), std::string::npos)
        << c.what << ": " << res->body;
    std::string message = s3::XmlText(res->body, "Message").value_or("");
    EXPECT_NE(message.find(c.expect), std::string::npos) << c.what << ": " << res->body;
  }
  // A value that is not an address passes the schema and fails the batch.
  auto bad_value = SendSigned(
      "POST", path,
      ChangeBody("<Action>UPSERT</Action><ResourceRecordSet><Name>x.example.test</Name>"
                 "<Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>not-an-ip"
                 "</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"));
  ASSERT_TRUE(bad_value);
  EXPECT_EQ(bad_value->status, 400);
  EXPECT_NE(bad_value->body.find("<Code>InvalidChangeBatch</Code>"), std::string::npos)
      << bad_value->body;
  EXPECT_EQ(server_->counters().changes_applied, 0);
  EXPECT_EQ(server_->Records(kZoneId).size(), 2u);  // SOA and NS only
}

TEST_F(Route53Test, ContractRejectsUnsignedAndTamperedRequests) {
  std::string path = std::string("/2013-04-01/hostedzone/") + kZoneId + "/rrset";
  httplib::Client cli(server_->endpoint());
  auto unsigned_res = cli.Get(path.c_str());
  ASSERT_TRUE(unsigned_res);
  EXPECT_EQ(unsigned_res->status, 403);
  EXPECT_NE(unsigned_res->body.find("MissingAuthenticationToken"), std::string::npos);

  auto signed_res = SendSigned("GET", path, "");
  ASSERT_TRUE(signed_res);
  EXPECT_EQ(signed_res->status, 200) << signed_res->body;
  EXPECT_NE(signed_res->body.find("<IsTruncated>false</IsTruncated>"), std::string::npos);

  // The same signature on another path does not verify.
  std::string host = server_->endpoint().substr(7);
  std::string amz_date = s3::AmzDate(static_cast<int64_t>(std::time(nullptr)));
  s3::SigV4Request req{.method = "GET",
                       .path = path,
                       .query = {},
                       .headers = {{"host", host}, {"x-amz-date", amz_date}},
                       .payload_hash = s3::PayloadHash({})};
  auto sig = s3::ComputeSignature(req, {.access_key_id = kAccessKey, .secret_access_key = kSecret},
                                  "us-east-1", "route53", amz_date);
  httplib::Headers headers = {{"X-Amz-Date", amz_date}, {"Authorization", sig.authorization}};
  auto tampered = cli.Get((path + "?maxitems=1").c_str(), headers);
  ASSERT_TRUE(tampered);
  EXPECT_EQ(tampered->status, 403);
  EXPECT_NE(tampered->body.find("SignatureDoesNotMatch"), std::string::npos) << tampered->body;
  // Signed for S3 instead of route53.
  auto s3sig = s3::ComputeSignature(
      req, {.access_key_id = kAccessKey, .secret_access_key = kSecret}, "us-east-1", "s3",
      amz_date);
  httplib::Headers s3headers = {{"X-Amz-Date", amz_date}, {"Authorization", s3sig.authorization}};
  auto wrong_service = cli.Get(path.c_str(), s3headers);
  ASSERT_TRUE(wrong_service);
  EXPECT_EQ(wrong_service->status, 403);
  EXPECT_NE(wrong_service->body.find("correct service"), std::string::npos) << wrong_service->body;
}

TEST_F(Route53Test, ContractListsInTheDocumentedOrder) {
  auto a = Provider(Options(), Spec("b.example.test."));
  auto b = Provider(Options(), Spec("a.b.example.test."));
  auto c = Provider(Options(), Spec("c.example.test."));
  ASSERT_TRUE(a && b && c);
  ASSERT_TRUE(a->Replace("10.2.0.1").ok());
  ASSERT_TRUE(b->Replace("10.2.0.2").ok());
  ASSERT_TRUE(c->Replace("10.2.0.3").ok());
  std::vector<std::string> names;
  for (const auto& s : server_->Records(kZoneId)) names.push_back(s.name + " " + s.type);
  // Labels reversed: test.example < test.example.b < test.example.b.a < test.example.c;
  // then by type.
  EXPECT_EQ(names, (std::vector<std::string>{"example.test. NS", "example.test. SOA",
                                             "b.example.test. A", "a.b.example.test. A",
                                             "c.example.test. A"}));
  // Type given without name is InvalidInput, as documented.
  std::string path = std::string("/2013-04-01/hostedzone/") + kZoneId + "/rrset";
  auto res = SendSigned("GET", path, "", {{"type", "A"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_NE(res->body.find("<Code>InvalidInput</Code>"), std::string::npos) << res->body;
  // A page of two from b.example.test. on: truncated, naming the next set.
  auto page = SendSigned("GET", path, "", {{"name", "b.example.test."}, {"maxitems", "2"}});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200) << page->body;
  EXPECT_NE(page->body.find("<IsTruncated>true</IsTruncated><NextRecordName>c.example.test."
                            "</NextRecordName><NextRecordType>A</NextRecordType><MaxItems>2"
                            "</MaxItems>"),
            std::string::npos)
      << page->body;
  auto sets = dns::ParseRecordSets(page->body);
  ASSERT_TRUE(sets.ok()) << sets.status().ToString();
  ASSERT_EQ(sets->size(), 2u);
  EXPECT_EQ((*sets)[0].name, "b.example.test.");
  EXPECT_EQ((*sets)[1].name, "a.b.example.test.");
}

TEST(Route53OptionsTest, ZoneIdsAndEndpointsAreChecked) {
  DnsSpec spec;
  spec.record = "api.example.test.";
  Route53Options o;
  o.credentials = {.access_key_id = "AKID", .secret_access_key = "s"};
  o.hosted_zone_id = "/hostedzone/Z123";
  EXPECT_TRUE(dns::MakeRoute53Provider(o, spec).ok());
  o.hosted_zone_id = "/change/Z123";
  EXPECT_EQ(dns::MakeRoute53Provider(o, spec).status().code(), Code::kInvalidArgument);
  o.hosted_zone_id = "Z12/3";
  EXPECT_EQ(dns::MakeRoute53Provider(o, spec).status().code(), Code::kInvalidArgument);
  o.hosted_zone_id = std::string(33, 'Z');
  EXPECT_EQ(dns::MakeRoute53Provider(o, spec).status().code(), Code::kInvalidArgument);
  o.hosted_zone_id = "Z123";
  o.endpoint = "ftp://route53.amazonaws.com";
  EXPECT_EQ(dns::MakeRoute53Provider(o, spec).status().code(), Code::kInvalidArgument);
  o.endpoint = dns::kRoute53Endpoint;
  o.credentials = {};
  EXPECT_EQ(dns::MakeRoute53Provider(o, spec).status().code(), Code::kInvalidArgument);
  o.credentials = {.access_key_id = "AKID", .secret_access_key = "s"};
  spec.type = "TXT";
  EXPECT_EQ(dns::MakeRoute53Provider(o, spec).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace reprise
