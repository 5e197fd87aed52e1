// SigV4 against the worked examples AWS publishes ("Signature Calculations for the
// Authorization Header: Transferring Payload in a Single Chunk", and "Examples of how to
// derive a signing key for Signature Version 4"): known answers, not our own outputs.
#include "storage/s3/sigv4.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace reprise::s3 {
namespace {

constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kDocDate[] = "20130524T000000Z";
constexpr char kDocHost[] = "examplebucket.s3.amazonaws.com";

Credentials DocCredentials() {
  return {.access_key_id = "AKIAIOSFODNN7EXAMPLE",
          .secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
}

std::string LastLine(const std::string& s) { return s.substr(s.rfind('\n') + 1); }

TEST(SigV4Test, DerivesTheDocumentedSigningKey) {
  auto key =
      DeriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
  EXPECT_EQ(HexEncode(ByteView(key.data(), key.size())),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
  // The first step alone (kDate), with the 44-byte key "AWS4" + secret.
  auto k_date =
      HmacSha256Any(AsBytes("AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), AsBytes("20120215"));
  EXPECT_EQ(HexEncode(ByteView(k_date.data(), k_date.size())),
            "969fbb94feb542b71ede6f87fe4d5fa29c789342b0f407474670f0c2489e0a0d");
  // Every input matters.
  auto other =
      DeriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "s3");
  EXPECT_NE(other, key);
}

TEST(SigV4Test, GetObjectExample) {
  SigV4Request req{.method = "GET",
                   .path = "/test.txt",
                   .headers = {{"Host", kDocHost},
                               {"Range", "bytes=0-9"},
                               {"x-amz-content-sha256", kEmptySha},
                               {"x-amz-date", kDocDate}},
                   .payload_hash = kEmptySha};
  SigV4Signature sig = ComputeSignature(req, DocCredentials(), "us-east-1", "s3", kDocDate);
  EXPECT_EQ(sig.canonical_request,
            "GET\n/test.txt\n\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "range:bytes=0-9\n"
            "x-amz-content-sha256:" +
                std::string(kEmptySha) +
                "\n"
                "x-amz-date:20130524T000000Z\n\n"
                "host;range;x-amz-content-sha256;x-amz-date\n" +
                kEmptySha);
  EXPECT_EQ(sig.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(sig.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(sig.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
            "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, PutObjectExampleEncodesThePath) {
  std::string body = "Welcome to Amazon S3.";
  std::string hash = PayloadHash(AsBytes(body));
  EXPECT_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SigV4Request req{.method = "PUT",
                   .path = "/test$file.text",
                   .headers = {{"Host", kDocHost},
                               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                   .payload_hash = hash};
  SigV4Signature sig = SignRequest(req, DocCredentials(), "us-east-1", 1369353600);
  EXPECT_NE(sig.canonical_request.find("\n/test%24file.text\n"), std::string::npos)
      << sig.canonical_request;
  EXPECT_EQ(sig.signed_headers, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  EXPECT_EQ(LastLine(sig.string_to_sign),
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(sig.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  // SignRequest added what it signed.
  std::map<std::string, std::string> h(req.headers.begin(), req.headers.end());
  EXPECT_EQ(h["x-amz-date"], kDocDate);
  EXPECT_EQ(h["x-amz-content-sha256"], hash);
  EXPECT_EQ(h["Authorization"], sig.authorization);
  EXPECT_EQ(h.count("x-amz-security-token"), 0u);
}

TEST(SigV4Test, GetBucketLifecycleExampleHasAValuelessQuery) {
  SigV4Request req{.method = "GET",
                   .path = "/",
                   .query = {{"lifecycle", ""}},
                   .headers = {{"Host", kDocHost}},
                   .payload_hash = kEmptySha};
  SigV4Signature sig = SignRequest(req, DocCredentials(), "us-east-1", 1369353600);
  EXPECT_EQ(sig.canonical_request.substr(0, 17), "GET\n/\nlifecycle=\n");
  EXPECT_EQ(sig.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Test, ListObjectsExampleSortsTheQuery) {
  SigV4Request req{.method = "GET",
                   .path = "/",
                   .query = {{"prefix", "J"}, {"max-keys", "2"}},
                   .headers = {{"Host", kDocHost}},
                   .payload_hash = kEmptySha};
  SigV4Signature sig = SignRequest(req, DocCredentials(), "us-east-1", 1369353600);
  EXPECT_NE(sig.canonical_request.find("\nmax-keys=2&prefix=J\n"), std::string::npos);
  EXPECT_EQ(sig.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  // The region is part of the signature.
  SigV4Request again{.method = "GET",
                     .path = "/",
                     .query = {{"prefix", "J"}, {"max-keys", "2"}},
                     .headers = {{"Host", kDocHost}},
                     .payload_hash = kEmptySha};
  EXPECT_NE(SignRequest(again, DocCredentials(), "eu-west-1", 1369353600).signature, sig.signature);
}

TEST(SigV4Test, SessionTokenIsSentAndSigned) {
  Credentials c = DocCredentials();
  c.session_token = "FQoGZXIvYXdzEXAMPLE//token==";
  SigV4Request req{.method = "GET",
                   .path = "/x",
                   .headers = {{"host", "h"}},
                   .payload_hash = std::string(kUnsignedPayload)};
  SigV4Signature sig = SignRequest(req, c, "us-east-1", 1369353600);
  EXPECT_EQ(sig.signed_headers, "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
  EXPECT_NE(sig.canonical_request.find("x-amz-security-token:" + c.session_token + "\n"),
            std::string::npos);
  EXPECT_EQ(LastLine(sig.canonical_request), "UNSIGNED-PAYLOAD");
  // The secret never shows in anything a caller might print.
  for (const std::string* s : {&sig.canonical_request, &sig.string_to_sign, &sig.authorization})
    EXPECT_EQ(s->find(c.secret_access_key), std::string::npos);
}

TEST(SigV4Test, HeaderValuesAreTrimmedAndNamesLowercased) {
  SigV4Request req{.method = "GET",
                   .path = "/",
                   .headers = {{"Host", "h"}, {"X-Amz-Meta-A", "  two   spaces  here "}},
                   .payload_hash = kEmptySha};
  SigV4Signature sig = ComputeSignature(req, DocCredentials(), "us-east-1", "s3", kDocDate);
  EXPECT_NE(sig.canonical_request.find("\nx-amz-meta-a:two spaces here\n"), std::string::npos)
      << sig.canonical_request;
}

TEST(SigV4Test, UriEncoding) {
  EXPECT_EQ(UriEncode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(UriEncode("a b+c=d&e*f!'()", false), "a%20b%2Bc%3Dd%26e%2Af%21%27%28%29");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(UriEncode("a/b", true), "a/b");
  EXPECT_EQ(UriEncode("caf\xc3\xa9", false), "caf%C3%A9");
  EXPECT_EQ(UriEncode(std::string("\x00\xff", 2), false), "%00%FF");
  EXPECT_EQ(EncodePath("/bucket/data/ab/x y%z"), "/bucket/data/ab/x%20y%25z");
  EXPECT_EQ(EncodePath(""), "/");
}

TEST(SigV4Test, CanonicalQuery) {
  EXPECT_EQ(CanonicalQuery({}), "");
  EXPECT_EQ(CanonicalQuery({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(CanonicalQuery({{"uploadId", "a/b+c=="}, {"partNumber", "2"}}),
            "partNumber=2&uploadId=a%2Fb%2Bc%3D%3D");
  EXPECT_EQ(
      CanonicalQuery({{"prefix", "data/ab"}, {"list-type", "2"}, {"continuation-token", "1 x"}}),
      "continuation-token=1%20x&list-type=2&prefix=data%2Fab");
}

TEST(SigV4Test, AmzDate) {
  EXPECT_EQ(AmzDate(0), "19700101T000000Z");
  EXPECT_EQ(AmzDate(1369353600), "20130524T000000Z");
  EXPECT_EQ(AmzDate(951782400 + 86399), "20000229T235959Z");
}

}  // namespace
}  // namespace reprise::s3
