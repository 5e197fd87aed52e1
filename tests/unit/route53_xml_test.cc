// The Route 53 wire format: the request body reprise builds and the answers it reads
// (shapes from botocore's route53 2013-04-01 service-2.json; the ChangeInfo example is the
// one its examples-1.json documents).
#include <gtest/gtest.h>

#include <string>

#include "dns/route53.h"

namespace reprise::dns {
namespace {

size_t Pos(const std::string& s, const std::string& what) {
  size_t at = s.find(what);
  EXPECT_NE(at, std::string::npos) << "'" << what << "' not in " << s;
  return at;
}

TEST(Route53XmlTest, ChangeRequestHasTheModelsElementsInOrder) {
  std::string x = ChangeRequestXml({.action = "UPSERT",
                                    .name = "api.example.com.",
                                    .type = "A",
                                    .ttl = 300,
                                    .values = {"192.0.2.44", "192.0.2.45"},
                                    .comment = "fail <over> & back"});
  EXPECT_EQ(x.rfind("<?xml", 0), 0u);
  EXPECT_NE(x.find("<ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws.com/doc/"
                   "2013-04-01/\">"),
            std::string::npos)
      << x;
  size_t batch = Pos(x, "<ChangeBatch>");
  size_t comment = Pos(x, "<Comment>fail &lt;over&gt; &amp; back</Comment>");
  size_t changes = Pos(x, "<Changes><Change><Action>UPSERT</Action>");
  size_t name = Pos(x, "<ResourceRecordSet><Name>api.example.com.</Name>");
  size_t type = Pos(x, "<Type>A</Type>");
  size_t ttl = Pos(x, "<TTL>300</TTL>");
  size_t records = Pos(x, "<ResourceRecords><ResourceRecord><Value>192.0.2.44</Value>"
                          "</ResourceRecord><ResourceRecord><Value>192.0.2.45</Value>"
                          "</ResourceRecord></ResourceRecords>");
  EXPECT_LT(batch, comment);
  EXPECT_LT(comment, changes);
  EXPECT_LT(changes, name);
  EXPECT_LT(name, type);
  EXPECT_LT(type, ttl);
  EXPECT_LT(ttl, records);
  EXPECT_NE(x.find("</ChangeBatch></ChangeResourceRecordSetsRequest>"), std::string::npos);

  std::string no_comment = ChangeRequestXml({.name = "a.", .type = "A", .values = {"10.0.0.1"}});
  EXPECT_EQ(no_comment.find("<Comment>"), std::string::npos);
}

TEST(Route53XmlTest, ParsesTheDocumentedChangeInfo) {
  auto info = ParseChangeInfo(
      "<?xml version=\"1.0\"?><ChangeResourceRecordSetsResponse xmlns=\"https://route53."
      "amazonaws.com/doc/2013-04-01/\"><ChangeInfo><Id>/change/C2682N5HXP0BZ4</Id><Status>"
      "PENDING</Status><SubmittedAt>2017-02-10T01:36:41.958Z</SubmittedAt><Comment>Web server "
      "for example.com</Comment></ChangeInfo></ChangeResourceRecordSetsResponse>");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->id, "/change/C2682N5HXP0BZ4");
  EXPECT_EQ(info->status, "PENDING");

  auto insync = ParseChangeInfo("<GetChangeResponse><ChangeInfo><Id>/change/C1</Id><Status>"
                                "INSYNC</Status></ChangeInfo></GetChangeResponse>");
  ASSERT_TRUE(insync.ok());
  EXPECT_EQ(insync->status, "INSYNC");

  EXPECT_FALSE(ParseChangeInfo("<GetChangeResponse/>").ok());
  EXPECT_FALSE(ParseChangeInfo("<ChangeInfo><Id>/change/C1</Id><Status>DONE</Status>"
                               "</ChangeInfo>")
                   .ok());
  EXPECT_FALSE(ParseChangeInfo("<ChangeInfo><Status>INSYNC</Status></ChangeInfo>").ok());
}

TEST(Route53XmlTest, ParsesBothErrorForms) {
  auto e = ParseRoute53Error(
      "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/"
      "2013-04-01/\"><Error><Type>Sender</Type><Code>NoSuchHostedZone</Code><Message>No hosted "
      "zone found with ID: Z1</Message></Error><RequestId>r-1</RequestId></ErrorResponse>");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type, "Sender");
  EXPECT_EQ(e->code, "NoSuchHostedZone");
  EXPECT_EQ(e->message, "No hosted zone found with ID: Z1");

  auto batch = ParseRoute53Error(
      "<InvalidChangeBatch xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Messages>"
      "<Message>Tried to create resource record set [name='a.', type='A'] but it already "
      "exists</Message><Message>second &amp; last</Message></Messages><RequestId>r</RequestId>"
      "</InvalidChangeBatch>");
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->code, "InvalidChangeBatch");
  EXPECT_EQ(batch->message,
            "Tried to create resource record set [name='a.', type='A'] but it already exists; "
            "second & last");

  EXPECT_FALSE(ParseRoute53Error("<html>bad gateway</html>").has_value());
  EXPECT_FALSE(ParseRoute53Error("").has_value());
}

TEST(Route53XmlTest, ParsesRecordSets) {
  auto sets = ParseRecordSets(
      "<ListResourceRecordSetsResponse><ResourceRecordSets>"
      "<ResourceRecordSet><Name>\\052.example.com.</Name><Type>A</Type><TTL>60</TTL>"
      "<ResourceRecords><ResourceRecord><Value>10.0.0.1</Value></ResourceRecord>"
      "<ResourceRecord><Value>10.0.0.2</Value></ResourceRecord></ResourceRecords>"
      "</ResourceRecordSet>"
      "<ResourceRecordSet><Name>api.example.com.</Name><Type>A</Type><AliasTarget>"
      "<HostedZoneId>Z2FDTNDATAQYW2</HostedZoneId><DNSName>d1.cloudfront.net.</DNSName>"
      "<EvaluateTargetHealth>false</EvaluateTargetHealth></AliasTarget></ResourceRecordSet>"
      "<ResourceRecordSet><Name>w.example.com.</Name><Type>A</Type><SetIdentifier>east"
      "</SetIdentifier><Weight>10</Weight><TTL>30</TTL><ResourceRecords><ResourceRecord>"
      "<Value>10.0.0.3</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"
      "</ResourceRecordSets><IsTruncated>true</IsTruncated><NextRecordName>x.example.com."
      "</NextRecordName><NextRecordType>A</NextRecordType><MaxItems>3</MaxItems>"
      "</ListResourceRecordSetsResponse>");
  ASSERT_TRUE(sets.ok()) << sets.status().ToString();
  ASSERT_EQ(sets->size(), 3u);
  EXPECT_EQ((*sets)[0].name, "*.example.com.");
  EXPECT_EQ((*sets)[0].ttl, 60);
  EXPECT_EQ((*sets)[0].values, (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
  EXPECT_FALSE((*sets)[0].alias);
  EXPECT_EQ((*sets)[1].name, "api.example.com.");  // not the alias's DNSName
  EXPECT_TRUE((*sets)[1].alias);
  EXPECT_FALSE((*sets)[1].ttl.has_value());
  EXPECT_TRUE((*sets)[1].values.empty());
  EXPECT_EQ((*sets)[2].set_identifier, "east");

  auto empty = ParseRecordSets("<ListResourceRecordSetsResponse><ResourceRecordSets/>"
                               "<IsTruncated>false</IsTruncated></ListResourceRecordSetsResponse>");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(ParseRecordSets("<ListResourceRecordSetsResponse/>").ok());
  EXPECT_FALSE(ParseRecordSets("<ResourceRecordSets><ResourceRecordSet><Name>a.</Name><Type>A"
                               "</Type><TTL>6x</TTL></ResourceRecordSet></ResourceRecordSets>")
                   .ok());
}

TEST(Route53XmlTest, DecodesOctalEscapesOnly) {
  EXPECT_EQ(DecodeRoute53Name("\\052.example.com."), "*.example.com.");
  EXPECT_EQ(DecodeRoute53Name("a\\100b."), "a@b.");
  EXPECT_EQ(DecodeRoute53Name("a\\9b."), "a\\9b.");    // not three digits
  EXPECT_EQ(DecodeRoute53Name("a\\089."), "a\\089.");  // not octal
  EXPECT_EQ(DecodeRoute53Name("tail\\05"), "tail\\05");
}

TEST(Route53XmlTest, CredentialsFromASecret) {
  auto c = ParseRoute53Credentials("  AKIDEXAMPLE:wJalr/K7MDENG+bPxRfiCY  \n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(c->secret_access_key, "wJalr/K7MDENG+bPxRfiCY");
  EXPECT_TRUE(c->session_token.empty());

  auto t = ParseRoute53Credentials("AKID:SECRET:TOKEN/with+base64==");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->session_token, "TOKEN/with+base64==");

  for (const std::string bad : {"onlyonefield", "a:b:c:d", ":secret", "akid:", "ak id:s"}) {
    auto r = ParseRoute53Credentials(bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
  // The secret is never echoed.
  auto r = ParseRoute53Credentials("AKID:TopSecretValue:tok:extra");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("TopSecretValue"), std::string::npos);
}

TEST(Route53XmlTest, OptionsTakeCredentialsFromTheNamedSecret) {
  SecretLookup secrets = [](const std::string& name) -> Result<std::string> {
    if (name == "r53") return std::string("AKIDEXAMPLE:secretvalue");
    return NotFound("secret '" + name + "' not found");
  };
  auto o = Route53OptionsFor("Z1", "", "r53", secrets);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->endpoint, kRoute53Endpoint);
  EXPECT_EQ(o->region, "us-east-1");
  EXPECT_EQ(o->credentials.access_key_id, "AKIDEXAMPLE");
  auto missing = Route53OptionsFor("Z1", "", "nope", secrets);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("'nope'"), std::string::npos);
  auto custom = Route53OptionsFor("Z1", "http://127.0.0.1:9", "r53", secrets);
  ASSERT_TRUE(custom.ok());
  EXPECT_EQ(custom->endpoint, "http://127.0.0.1:9");
}

}  // namespace
}  // namespace reprise::dns
