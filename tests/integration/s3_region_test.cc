// `reprise` on an s3:// repository signed for the wrong region, through the real binary.
//
// Ceph RGW cannot be used for this: it accepts a signature of any region, even with the
// zonegroup's api_name set (tested with RGW 16; only CreateBucket checks its location
// constraint, and a bucket of another zonegroup needs a multi-site setup). So a small HTTP
// server on loopback answers as AWS S3 does for a bucket in eu-central-1 asked with another
// region: 400 AuthorizationHeaderMalformed naming the region in the body, and the
// x-amz-bucket-region header (a HEAD has no body).
#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "pg_env.h"

namespace reprise {
namespace {

using reprise::testing::FreePort;

class WrongRegionS3 {
 public:
  WrongRegionS3() : port_(FreePort()) {
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        authorizations_.push_back(req.get_header_value("Authorization"));
      }
      res.status = 400;
      res.set_header("x-amz-bucket-region", "eu-central-1");
      if (req.method != "HEAD") {
        res.set_content(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationHeaderMalformed"
            "</Code><Message>The authorization header is malformed; the region "
            "'wrong-region-1' is wrong; expecting 'eu-central-1'</Message>"
            "<Region>eu-central-1</Region><RequestId>8X1T4Q</RequestId><HostId>h0</HostId>"
            "</Error>",
            "application/xml");
      }
      return httplib::Server::HandlerResponse::Handled;
    });
    bound_ = server_.bind_to_port("127.0.0.1", port_);
    if (bound_) thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~WrongRegionS3() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return bound_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> authorizations() {
    std::lock_guard<std::mutex> lock(mu_);
    return authorizations_;
  }

 private:
  int port_;
  bool bound_ = false;
  httplib::Server server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> authorizations_;
};

TEST(S3RegionTest, WrongRegionIsOneLineNamingTheRightOne) {
  WrongRegionS3 s3;
  ASSERT_TRUE(s3.ok());
  reprise::testing::TempDir tmp;
  std::string pw = tmp.path() + "/pw";
  reprise::testing::WriteFile(pw, "region test passphrase\n");
  std::string repo =
      "s3://dr-backups/rag?endpoint=" + s3.endpoint() + "&region=wrong-region-1&path_style=1";
  std::vector<std::string> env = {"REPRISE_PASSWORD_FILE=" + pw,
                                  "AWS_ACCESS_KEY_ID=AKIDEXAMPLE00000000",
                                  "AWS_SECRET_ACCESS_KEY=region-test-secret-0000000000000000000"};
  for (std::vector<std::string> command :
       {std::vector<std::string>{"init"}, std::vector<std::string>{"check"}}) {
    SCOPED_TRACE(command[0]);
    std::vector<std::string> argv = {REPRISE_BINARY, "-r", repo};
    argv.insert(argv.end(), command.begin(), command.end());
    auto r = reprise::testing::RunCommand(argv, env);
    EXPECT_NE(r.exit_code, 0) << r.out << r.err;
    std::vector<std::string> lines = reprise::testing::NonEmptyLines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("reprise: error: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find("bucket 'dr-backups' is in region 'eu-central-1', not "
                            "'wrong-region-1'"),
              std::string::npos)
        << lines[0];
    EXPECT_NE(lines[0].find("HINT: add region=eu-central-1 to the repository url"),
              std::string::npos)
        << lines[0];
    EXPECT_EQ(lines[0].find("region-test-secret"), std::string::npos) << lines[0];
  }
  // It was signed for the region of the url, and not retried (a wrong region is no accident).
  std::vector<std::string> auths = s3.authorizations();
  ASSERT_FALSE(auths.empty());
  for (const auto& a : auths)
    EXPECT_NE(a.find("/wrong-region-1/s3/aws4_request"), std::string::npos) << a;
  EXPECT_LE(auths.size(), 4u) << "a wrong region was retried";
}

}  // namespace
}  // namespace reprise
