// The S3 backend against a scripted in-process HTTP server on loopback: what it sends (signed
// headers, payload hashes, multipart steps, aborts) and how it maps what comes back (error
// bodies, 5xx, resets, stalls). Also the XML extractor and the error table on canned bodies.
// Cases a real server cannot be made to produce on demand live here; the happy paths run
// against Ceph RGW in tests/integration/s3_storage_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "storage/retry_storage.h"
#include "storage/s3/errors.h"
#include "storage/s3/s3_storage.h"
#include "storage/s3/sigv4.h"
#include "storage/s3/xml.h"

namespace reprise {
namespace {

using s3::XmlElements;
using s3::XmlText;

// ---- XML ----

TEST(S3XmlTest, ElementsByExactName) {
  std::string doc =
      "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3\"><KeyCount>2</KeyCount>"
      "<Contents><Key>a&amp;b</Key><Size>3</Size></Contents>"
      "<Contents ><Key>c&lt;d&#x41;&#66;&quot;</Key><Size>0</Size></Contents>"
      "<Prefix/><IsTruncated>false</IsTruncated></ListBucketResult>";
  auto contents = XmlElements(doc, "Contents");
  ASSERT_EQ(contents.size(), 2u);
  EXPECT_EQ(XmlText(contents[0], "Key"), "a&b");
  EXPECT_EQ(XmlText(contents[1], "Key"), "c<dAB\"");
  EXPECT_EQ(XmlText(doc, "KeyCount"), "2");
  EXPECT_EQ(XmlText(doc, "Key"), "a&b");  // not <KeyCount>
  EXPECT_EQ(XmlText(doc, "Prefix"), "");
  EXPECT_EQ(XmlText(doc, "NextContinuationToken"), std::nullopt);
  EXPECT_EQ(s3::XmlUnescape("&bogus; & &#xZZ; &#233;"), "&bogus; & &#xZZ; \xc3\xa9");
  EXPECT_EQ(s3::XmlEscape("\"a\"<&>'"), "&quot;a&quot;&lt;&amp;&gt;&apos;");
}

// ---- Error table on canned AWS bodies ----

s3::HttpResponse Response(long status, std::string body,
                          std::map<std::string, std::string> headers = {}) {
  s3::HttpResponse r;
  r.status = status;
  r.body = ToBytes(body);
  r.headers = std::move(headers);
  return r;
}

std::string ErrorBody(std::string code, std::string message, std::string extra = "") {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" +
         message + "</Message>" + extra + "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
}

const s3::ErrorContext kCtx{.method = "GET",
                            .bucket = "dr-backups",
                            .key = "rag/data/ab/abcd",
                            .endpoint = "https://s3.us-east-1.amazonaws.com",
                            .region = "us-east-1"};

TEST(S3ErrorsTest, Table) {
  struct Case {
    s3::HttpResponse response;
    Code code;
    std::vector<std::string> needles;
  };
  std::vector<Case> cases = {
      {Response(503, ErrorBody("SlowDown", "Please reduce your request rate.")),
       Code::kUnavailable,
       {"SlowDown", "Please reduce"}},
      {Response(500, ErrorBody("InternalError", "We encountered an internal error.")),
       Code::kUnavailable,
       {"InternalError"}},
      {Response(502, "<html>bad gateway</html>"), Code::kUnavailable, {"HTTP 502"}},
      {Response(429, ""), Code::kUnavailable, {"HTTP 429"}},
      {Response(400, ErrorBody("RequestTimeout", "Your socket connection timed out")),
       Code::kUnavailable,
       {"RequestTimeout"}},
      {Response(403, ErrorBody("AccessDenied", "Access Denied")),
       Code::kPermissionDenied,
       {"access denied to 's3://dr-backups/rag/data/ab/abcd'", "AccessDenied: Access Denied"}},
      {Response(403, ""),
       Code::kPermissionDenied,
       {"'s3://dr-backups/rag/data/ab/abcd'", "HTTP 403"}},
      {Response(403, ErrorBody("SignatureDoesNotMatch",
                               "The request signature we calculated "
                               "does not match")),
       Code::kUnauthenticated,
       {"SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY", "'s3://dr-backups/rag/data/ab/abcd'"}},
      {Response(403, ErrorBody("InvalidAccessKeyId",
                               "The AWS Access Key Id you provided "
                               "does not exist in our records.")),
       Code::kUnauthenticated,
       {"InvalidAccessKeyId", "HINT:"}},
      {Response(403, ErrorBody("RequestTimeTooSkewed",
                               "The difference between the request "
                               "time and the current time is too large.",
                               "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>")),
       Code::kFailedPrecondition,
       {"the clock of this host is off by more than 15 minutes from the server", "HINT:"}},
      {Response(404, ErrorBody("NoSuchBucket", "The specified bucket does not exist",
                               "<BucketName>dr-backups</BucketName>")),
       Code::kNotFound,
       {"bucket 'dr-backups' does not exist at https://s3.us-east-1.amazonaws.com"}},
      {Response(404, ErrorBody("NoSuchKey", "The specified key does not exist.")),
       Code::kNotFound,
       {"object 's3://dr-backups/rag/data/ab/abcd' does not exist"}},
      {Response(404, ""), Code::kNotFound, {"does not exist"}},
      {Response(400, ErrorBody("AuthorizationHeaderMalformed",
                               "The authorization header is malformed; the region 'us-east-1' "
                               "is wrong; expecting 'eu-central-1'",
                               "<Region>eu-central-1</Region>")),
       Code::kInvalidArgument,
       {"bucket 'dr-backups' is in region 'eu-central-1', not 'us-east-1'",
        "HINT: add region=eu-central-1"}},
      {Response(301,
                ErrorBody("PermanentRedirect",
                          "The bucket you are attempting to access "
                          "must be addressed using the specified endpoint.",
                          "<Endpoint>dr-backups.s3.eu-west-2.amazonaws.com</Endpoint>"),
                {{"x-amz-bucket-region", "eu-west-2"}}),
       Code::kInvalidArgument,
       {"region 'eu-west-2'", "region=eu-west-2"}},
      {Response(416, ErrorBody("InvalidRange", "The requested range is not satisfiable")),
       Code::kInvalidArgument,
       {"past its end"}},
      {Response(400, ErrorBody("InvalidArgument", "Invalid Argument")),
       Code::kInvalidArgument,
       {"InvalidArgument"}},
      {Response(409, ErrorBody("BucketNotEmpty",
                               "The bucket you tried to delete is not "
                               "empty")),
       Code::kFailedPrecondition,
       {"BucketNotEmpty"}},
  };
  for (const Case& c : cases) {
    Status st = s3::StatusFromResponse(c.response, kCtx);
    SCOPED_TRACE(std::to_string(c.response.status) + " " + std::string(AsString(c.response.body)));
    EXPECT_EQ(st.code(), c.code) << st.ToString();
    for (const std::string& n : c.needles)
      EXPECT_NE(st.message().find(n), std::string::npos)
          << "want '" << n << "' in: " << st.message();
  }
}

// Append-only credentials (docs/storage-s3.md): a refused DELETE says what to do about it;
// other refused requests do not talk about deleting.
TEST(S3ErrorsTest, RefusedDeleteHintsAtAppendOnlyCredentials) {
  s3::ErrorContext del = kCtx;
  del.method = "DELETE";
  del.key = "rag/points/0123abcd";
  Status st = s3::StatusFromResponse(Response(403, ErrorBody("AccessDenied", "")), del);
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_NE(st.message().find("access denied to delete 's3://dr-backups/rag/points/0123abcd'"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("HTTP 403 AccessDenied"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("HINT: these credentials may not delete objects (an append-only"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(st.message().find('\n'), std::string::npos) << st.message();

  // Bad credentials on a DELETE are still about the credentials.
  st = s3::StatusFromResponse(Response(403, ErrorBody("SignatureDoesNotMatch", "")), del);
  EXPECT_EQ(st.code(), Code::kUnauthenticated) << st.ToString();
  // A refused GET does not mention deleting.
  st = s3::StatusFromResponse(Response(403, ErrorBody("AccessDenied", "")), kCtx);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_EQ(st.message().find("delete"), std::string::npos) << st.message();
  // Deleting a bucket is not an append-only matter.
  del.key = "";
  st = s3::StatusFromResponse(Response(403, ErrorBody("AccessDenied", "")), del);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_EQ(st.message().find("append-only"), std::string::npos) << st.message();
}

// ---- A scripted HTTP server ----

struct Seen {
  std::string method, target;
  std::map<std::string, std::string> headers;  // lowercased names
  std::string body;
};

struct Reply {
  std::string raw;   // the whole response; empty: close without answering
  int delay_ms = 0;  // before answering (a stalled server)
};

class FakeS3 {
 public:
  using Handler = std::function<Reply(const Seen&)>;

  explicit FakeS3(Handler handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeS3() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    acceptor_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : conns_) t.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.emplace_back([this, c] { Serve(c); });
    }
  }

  // Reads until `n` bytes are buffered; false when the peer closed or we are stopping.
  bool Fill(int c, std::string& buf, size_t n) {
    char tmp[65536];
    while (buf.size() < n) {
      pollfd p{c, POLLIN, 0};
      int r = ::poll(&p, 1, 50);
      if (stop_) return false;
      if (r <= 0) continue;
      ssize_t got = ::recv(c, tmp, sizeof tmp, 0);
      if (got <= 0) return false;
      buf.append(tmp, static_cast<size_t>(got));
    }
    return true;
  }

  void Serve(int c) {
    std::string buf;
    while (!stop_) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos)
        if (!Fill(c, buf, buf.size() + 1)) return (void)::close(c);
      Seen s;
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      size_t line_end = head.find("\r\n");
      std::string request_line = head.substr(0, line_end);
      size_t sp1 = request_line.find(' '), sp2 = request_line.rfind(' ');
      s.method = request_line.substr(0, sp1);
      s.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
      size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
      while (pos < head.size()) {
        size_t e = head.find("\r\n", pos);
        if (e == std::string::npos) e = head.size();
        std::string line = head.substr(pos, e - pos);
        size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          for (char& ch : name) ch = static_cast<char>(std::tolower(ch));
          size_t v = line.find_first_not_of(' ', colon + 1);
          s.headers[name] = v == std::string::npos ? "" : line.substr(v);
        }
        pos = e + 2;
      }
      size_t body_len =
          s.headers.count("content-length") ? std::stoul(s.headers["content-length"]) : 0;
      if (!Fill(c, buf, body_len)) return (void)::close(c);
      s.body = buf.substr(0, body_len);
      buf.erase(0, body_len);
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.push_back(s);
      }
      Reply r = handler_(s);
      for (int waited = 0; waited < r.delay_ms && !stop_; waited += 10)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (r.raw.empty() || stop_) return (void)::close(c);
      ::send(c, r.raw.data(), r.raw.size(), MSG_NOSIGNAL);
    }
    ::close(c);
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::vector<Seen> seen_;
};

std::string Http(int status, const std::string& body = "",
                 const std::vector<std::string>& headers = {}) {
  std::string r = "HTTP/1.1 " + std::to_string(status) +
                  " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  return r + "\r\n" + body;
}

S3Options Options(const FakeS3& server) {
  return S3Options{
      .bucket = "bkt",
      .prefix = "repo",
      .endpoint = server.endpoint(),
      .region = "us-east-1",
      .path_style = true,
      .credentials = {.access_key_id = "AKIDFAKE", .secret_access_key = "fake-secret-never-sent"},
      .low_speed_bytes = 1,
      .low_speed_seconds = 1};
}

std::unique_ptr<S3Storage> Open(S3Options o) {
  auto s = S3Storage::Create(std::move(o));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(S3WireTest, PutSignsThePayloadAndNeverSendsTheSecret) {
  FakeS3 server([](const Seen&) { return Reply{Http(200)}; });
  FakeClock clock(1369353600LL * 1000000000LL);
  S3Options o = Options(server);
  o.clock = &clock;
  auto s = Open(o);
  ASSERT_TRUE(s->Put("data/ab/x y", ToBytes("payload")).ok());
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  const Seen& put = seen[0];
  EXPECT_EQ(put.method, "PUT");
  EXPECT_EQ(put.target, "/bkt/repo/data/ab/x%20y");
  EXPECT_EQ(put.body, "payload");
  EXPECT_EQ(put.headers.at("x-amz-content-sha256"), s3::PayloadHash(AsBytes("payload")));
  EXPECT_EQ(put.headers.at("x-amz-date"), "20130524T000000Z");
  EXPECT_EQ(put.headers.at("host"), server.endpoint().substr(7));
  EXPECT_EQ(put.headers.at("authorization")
                .rfind("AWS4-HMAC-SHA256 Credential=AKIDFAKE/20130524/us-east-1/s3/aws4_request,"
                       "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=",
                       0),
            0u)
      << put.headers.at("authorization");
  EXPECT_EQ(put.headers.count("expect"), 0u);
  for (const auto& [name, value] : put.headers)
    EXPECT_EQ(value.find("fake-secret-never-sent"), std::string::npos) << name;

  // The signature is the one SigV4 gives for exactly what was sent.
  s3::SigV4Request again{.method = "PUT",
                         .path = "/bkt/repo/data/ab/x y",
                         .headers = {{"Host", put.headers.at("host")}},
                         .payload_hash = s3::PayloadHash(AsBytes("payload"))};
  auto sig = s3::SignRequest(again, o.credentials, "us-east-1", 1369353600);
  EXPECT_EQ(put.headers.at("authorization"), sig.authorization);
}

// connections=N: no more than N requests in flight, however many threads call.
TEST(S3WireTest, ConnectionsBoundRequestsInFlight) {
  for (int limit : {2, 8}) {
    SCOPED_TRACE("connections=" + std::to_string(limit));
    std::mutex mu;
    std::condition_variable cv;
    int in_flight = 0, most = 0;
    // Each request waits (up to 1 s) until `limit` are in flight, so the most seen is the
    // limit itself, not whatever the scheduler happened to overlap.
    FakeS3 server([&](const Seen&) {
      std::unique_lock<std::mutex> lock(mu);
      most = std::max(most, ++in_flight);
      cv.notify_all();
      cv.wait_for(lock, std::chrono::seconds(1), [&] { return in_flight >= limit; });
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      lock.lock();
      --in_flight;
      return Reply{Http(200, "x")};
    });
    S3Options o = Options(server);
    o.connections = limit;
    auto s = Open(o);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        if (!s->Get("data/" + std::to_string(t)).ok()) ++failures;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(server.seen().size(), 8u);
    EXPECT_EQ(most, limit);
  }
  S3Options bad;
  bad.bucket = "bkt";
  bad.endpoint = "http://127.0.0.1:1";
  bad.connections = 0;
  EXPECT_EQ(S3Storage::Create(bad).status().code(), Code::kInvalidArgument);
}

TEST(S3WireTest, VirtualHostStylePutsTheBucketInTheHost) {
  FakeS3 server([](const Seen&) { return Reply{Http(200, "abc")}; });
  S3Options o = Options(server);
  o.path_style = false;
  o.endpoint = "http://localhost:" + server.endpoint().substr(server.endpoint().rfind(':') + 1);
  auto s = Open(o);
  // "bkt.localhost" resolves to loopback on glibc; the request line carries no bucket.
  auto got = s->Get("config");
  if (!got.ok() && got.status().code() == Code::kUnavailable)
    GTEST_SKIP() << "this resolver does not map *.localhost to loopback: "
                 << got.status().ToString();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/repo/config");
  EXPECT_EQ(seen[0].headers.at("host").rfind("bkt.localhost:", 0), 0u);
}

TEST(S3WireTest, ListFollowsContinuationTokensAndStripsThePrefix) {
  FakeS3 server([](const Seen& s) {
    if (s.target.find("continuation-token=") == std::string::npos) {
      return Reply{Http(200,
                        "<ListBucketResult><IsTruncated>true</IsTruncated>"
                        "<NextContinuationToken>tok/+=1</NextContinuationToken>"
                        "<Contents><Key>repo/data/a</Key><Size>5</Size></Contents>"
                        "<Contents><Key>repo/data/</Key><Size>0</Size></Contents>"
                        "</ListBucketResult>")};
    }
    return Reply{Http(200,
                      "<ListBucketResult><IsTruncated>false</IsTruncated>"
                      "<Contents><Key>repo/data/b&amp;c</Key><Size>7</Size></Contents>"
                      "</ListBucketResult>")};
  });
  S3Options o = Options(server);
  o.max_keys = 2;
  auto s = Open(o);
  auto list = s->List("data/");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);  // the "repo/data/" folder marker is not an object
  EXPECT_EQ((*list)[0].key, "data/a");
  EXPECT_EQ((*list)[0].size, 5u);
  EXPECT_EQ((*list)[1].key, "data/b&c");
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target, "/bkt?list-type=2&max-keys=2&prefix=repo%2Fdata%2F");
  EXPECT_EQ(seen[1].target,
            "/bkt?continuation-token=tok%2F%2B%3D1&list-type=2&max-keys=2&prefix=repo%2Fdata%2F");
}

TEST(S3WireTest, MultipartUploadInPartsThenComplete) {
  FakeS3 server([](const Seen& s) {
    if (s.method == "POST" && s.target.ends_with("?uploads="))
      return Reply{Http(200,
                        "<InitiateMultipartUploadResult><UploadId>up/1</UploadId>"
                        "</InitiateMultipartUploadResult>")};
    if (s.method == "PUT") {
      std::string n = s.target.substr(s.target.find("partNumber=") + 11, 1);
      return Reply{Http(200, "", {"ETag: \"etag-" + n + "\""})};
    }
    if (s.method == "POST") return Reply{Http(200, "<CompleteMultipartUploadResult/>")};
    return Reply{Http(500)};
  });
  S3Options o = Options(server);
  o.multipart_threshold = 6 << 20;
  o.part_size = 5 << 20;
  auto s = Open(o);
  Bytes data(12 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(s->Put("data/big", data).ok());
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[0].target, "/bkt/repo/data/big?uploads=");
  EXPECT_EQ(seen[1].target, "/bkt/repo/data/big?partNumber=1&uploadId=up%2F1");
  EXPECT_EQ(seen[3].target, "/bkt/repo/data/big?partNumber=3&uploadId=up%2F1");
  EXPECT_EQ(seen[1].body.size(), 5u << 20);
  EXPECT_EQ(seen[3].body.size(), 2u << 20);
  std::string joined = seen[1].body + seen[2].body + seen[3].body;
  EXPECT_EQ(joined, std::string(AsString(data)));
  EXPECT_EQ(seen[2].headers.at("x-amz-content-sha256"), s3::PayloadHash(AsBytes(seen[2].body)));
  EXPECT_EQ(seen[4].method, "POST");
  EXPECT_EQ(seen[4].target, "/bkt/repo/data/big?uploadId=up%2F1");
  EXPECT_NE(seen[4].body.find("<Part><PartNumber>3</PartNumber><ETag>&quot;etag-3&quot;</ETag>"),
            std::string::npos)
      << seen[4].body;
}

TEST(S3WireTest, FailedMultipartUploadIsAborted) {
  FakeS3 server([](const Seen& s) {
    if (s.method == "POST")
      return Reply{Http(200,
                        "<InitiateMultipartUploadResult><UploadId>U9</UploadId>"
                        "</InitiateMultipartUploadResult>")};
    if (s.method == "PUT" && s.target.find("partNumber=2") != std::string::npos)
      return Reply{Http(403, ErrorBody("AccessDenied", "no more"))};
    if (s.method == "PUT") return Reply{Http(200, "", {"ETag: \"e\""})};
    return Reply{Http(204)};
  });
  S3Options o = Options(server);
  o.multipart_threshold = 1;
  o.part_size = 5 << 20;
  auto s = Open(o);
  Status st = s->Put("data/big", Bytes(11 << 20, 1));
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[3].method, "DELETE");
  EXPECT_EQ(seen[3].target, "/bkt/repo/data/big?uploadId=U9");
}

TEST(S3WireTest, CompleteErrorInsideA200IsAFailure) {
  FakeS3 server([](const Seen& s) {
    if (s.method == "POST" && s.target.ends_with("?uploads="))
      return Reply{Http(200,
                        "<InitiateMultipartUploadResult><UploadId>U</UploadId>"
                        "</InitiateMultipartUploadResult>")};
    if (s.method == "PUT") return Reply{Http(200, "", {"ETag: \"e\""})};
    if (s.method == "POST")
      return Reply{Http(200, ErrorBody("InternalError", "We encountered an internal error."))};
    return Reply{Http(204)};
  });
  S3Options o = Options(server);
  o.multipart_threshold = 1;
  auto s = Open(o);
  Status st = s->Put("data/x", ToBytes("small but multipart"));
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_EQ(server.seen().back().method, "DELETE");
}

TEST(S3WireTest, RangeRequestsAndTheirEdges) {
  FakeS3 server([](const Seen& s) {
    std::string range = s.headers.count("range") ? s.headers.at("range") : "";
    if (range == "bytes=2-4") return Reply{Http(206, "cde", {"Content-Range: bytes 2-4/10"})};
    if (range == "bytes=8-11") return Reply{Http(206, "ij", {"Content-Range: bytes 8-9/10"})};
    if (range == "bytes=10-10")
      return Reply{
          Http(416, ErrorBody("InvalidRange", "not satisfiable"), {"Content-Range: bytes */10"})};
    return Reply{Http(500)};
  });
  auto s = Open(Options(server));
  EXPECT_EQ(AsString(*s->GetRange("p", 2, 3)), "cde");
  auto past = s->GetRange("p", 8, 4);
  EXPECT_EQ(past.status().code(), Code::kInvalidArgument);
  EXPECT_NE(past.status().message().find("(10 bytes)"), std::string::npos)
      << past.status().ToString();
  EXPECT_EQ(s->GetRange("p", 10, 1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s->GetRange("p", UINT64_MAX, 2).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(server.seen().size(), 3u);  // the overflow never reached the server
}

TEST(S3WireTest, TransportFailuresAreUnavailable) {
  // A server that hangs up without answering.
  {
    FakeS3 server([](const Seen&) { return Reply{""}; });
    auto s = Open(Options(server));
    auto r = s->Get("config");
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
    EXPECT_NE(r.status().message().find("/bkt/repo/config"), std::string::npos);
  }
  // A server that stalls past the low-speed limit (1 byte/s for 1 s here).
  {
    FakeS3 server([](const Seen&) { return Reply{Http(200, "late"), 5000}; });
    auto s = Open(Options(server));
    auto t0 = std::chrono::steady_clock::now();
    auto r = s->Get("config");
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
    EXPECT_LT(took, std::chrono::seconds(4));
  }
  // Nobody listening.
  {
    int port;
    {
      FakeS3 gone([](const Seen&) { return Reply{Http(200)}; });
      port = std::stoi(gone.endpoint().substr(gone.endpoint().rfind(':') + 1));
    }
    S3Options o{.bucket = "bkt",
                .endpoint = "http://127.0.0.1:" + std::to_string(port),
                .path_style = true,
                .credentials = {.access_key_id = "A", .secret_access_key = "S"}};
    auto s = Open(o);
    EXPECT_EQ(s->Stat("config").status().code(), Code::kUnavailable);
  }
}

TEST(S3WireTest, RetryWrapperRidesOutSlowDown) {
  std::atomic<int> n{0};
  FakeS3 server([&](const Seen&) {
    if (n++ < 2) return Reply{Http(503, ErrorBody("SlowDown", "Please reduce your request rate."))};
    return Reply{Http(200, "finally")};
  });
  std::vector<std::chrono::milliseconds> sleeps;
  RetryStorage retry(
      Open(Options(server)),
      {.jitter = 0.0, .sleep = [&](std::chrono::milliseconds d) { sleeps.push_back(d); }});
  auto got = retry.Get("config");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(AsString(*got), "finally");
  EXPECT_EQ(sleeps.size(), 2u);
  EXPECT_EQ(server.seen().size(), 3u);
}

TEST(S3WireTest, DeleteOfMissingObjectIsOkButMissingBucketIsNot) {
  FakeS3 server([](const Seen& s) {
    if (s.target.ends_with("/gone"))
      return Reply{Http(404, ErrorBody("NoSuchKey", "The specified key does not exist."))};
    if (s.target.ends_with("/nobucket"))
      return Reply{Http(404, ErrorBody("NoSuchBucket", "The specified bucket does not exist"))};
    return Reply{Http(204)};
  });
  auto s = Open(Options(server));
  EXPECT_TRUE(s->Delete("there").ok());
  EXPECT_TRUE(s->Delete("gone").ok());
  Status st = s->Delete("nobucket");
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.message().find("bucket 'bkt' does not exist at http://127.0.0.1:"),
            std::string::npos)
      << st.ToString();
}

}  // namespace
}  // namespace reprise
