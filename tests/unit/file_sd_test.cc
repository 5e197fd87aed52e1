#include "failover/file_sd.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace reprise::failover {
namespace {

namespace fs = std::filesystem;

class FileSdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reprise-filesd-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (dir_.empty()) return;
    chmod(dir_.c_str(), 0700);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Names in the directory other than `keep`: leftover temp files.
  std::vector<std::string> Others(const std::string& keep) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename() != keep) out.push_back(e.path().filename().string());
    }
    return out;
  }

  std::string dir_;
};

TEST_F(FileSdTest, RoundTrip) {
  std::string path = dir_ + "/targets.json";
  std::vector<std::string> first = {"db1.site-a:9187", "db2.site-a:9187"};
  ASSERT_TRUE(WriteFileSd(path, first, {{"site", "a"}}).ok());
  auto got = ReadFileSdTargets(path);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, first);

  std::vector<std::string> second = {"db1.site-b:9187"};
  ASSERT_TRUE(WriteFileSd(path, second, {{"site", "b"}, {"role", "primary"}}).ok());
  got = ReadFileSdTargets(path);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, second);

  ASSERT_TRUE(WriteFileSd(path, {}, {}).ok());
  got = ReadFileSdTargets(path);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
  EXPECT_TRUE(Others("targets.json").empty());
}

TEST_F(FileSdTest, JsonShape) {
  std::string path = dir_ + "/sd.json";
  ASSERT_TRUE(WriteFileSd(path, {"10.0.0.1:9121", "10.0.0.2:9121"},
                          {{"site", "b"}, {"job_role", "redis \"primary\""}})
                  .ok());
  auto doc = nlohmann::json::parse(Read(path));  // throws (fails the test) when not JSON
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 1u);
  const auto& group = doc[0];
  ASSERT_TRUE(group.is_object());
  EXPECT_EQ(group.size(), 2u) << group.dump();
  EXPECT_EQ(group["targets"], nlohmann::json::array({"10.0.0.1:9121", "10.0.0.2:9121"}));
  ASSERT_TRUE(group["labels"].is_object());
  EXPECT_EQ(group["labels"].size(), 2u);
  EXPECT_EQ(group["labels"]["site"], "b");
  EXPECT_EQ(group["labels"]["job_role"], "redis \"primary\"");

  // No labels: still an object, as Prometheus expects.
  ASSERT_TRUE(WriteFileSd(path, {"h:1"}, {}).ok());
  doc = nlohmann::json::parse(Read(path));
  EXPECT_TRUE(doc[0]["labels"].is_object());
  EXPECT_TRUE(doc[0]["labels"].empty());

  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);  // readable by a Prometheus running as another user
}

TEST_F(FileSdTest, InvalidLabelNameWritesNothing) {
  std::string path = dir_ + "/sd.json";
  Status st = WriteFileSd(path, {"h:1"}, {{"1site", "a"}});
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  st = WriteFileSd(path, {"h:1"}, {{"site-name", "a"}});
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(Others("").empty());
}

TEST_F(FileSdTest, ReadErrors) {
  EXPECT_EQ(ReadFileSdTargets(dir_ + "/missing.json").status().code(), Code::kNotFound);
  std::string path = dir_ + "/bad.json";
  for (const char* text : {"not json", "{\"targets\":[\"a:1\"]}", "[{\"labels\":{}}]",
                           "[{\"targets\":[1]}]", "[{\"targets\":[\"a:1\"]},3]"}) {
    std::ofstream(path, std::ios::trunc) << text;
    auto r = ReadFileSdTargets(path);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << text;
  }
  // Several groups (as a person may write by hand): all targets, in order.
  std::ofstream(path, std::ios::trunc)
      << R"([{"targets":["a:1"],"labels":{"x":"1"}},{"targets":["b:2","c:3"]}])";
  auto r = ReadFileSdTargets(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, (std::vector<std::string>{"a:1", "b:2", "c:3"}));
}

TEST_F(FileSdTest, FailedWriteKeepsOldFile) {
  std::string path = dir_ + "/sd.json";
  ASSERT_TRUE(WriteFileSd(path, {"old:1"}, {{"site", "a"}}).ok());
  const std::string before = Read(path);

  // The rename fails (a directory stands where the file goes): the temp file is removed.
  std::string blocked = dir_ + "/blocked.json";
  fs::create_directories(blocked + "/child");
  Status st = WriteFileSd(blocked, {"new:1"}, {});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("blocked.json"), std::string::npos) << st.ToString();
  fs::remove_all(blocked);
  EXPECT_TRUE(Others("sd.json").empty()) << "temp file left behind";

  if (geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories; rest skipped";
  // The directory is not writable: no temp file can be made, the old file stays.
  ASSERT_EQ(chmod(dir_.c_str(), 0555), 0);
  st = WriteFileSd(path, {"new:1"}, {{"site", "b"}});
  chmod(dir_.c_str(), 0700);
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  EXPECT_EQ(Read(path), before);
  auto got = ReadFileSdTargets(path);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, std::vector<std::string>{"old:1"});
}

}  // namespace
}  // namespace reprise::failover
