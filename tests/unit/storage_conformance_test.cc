// The storage contract for LocalStorage, and what only LocalStorage and OpenStorage promise.
#include <cstring>

#include "../conformance/storage_conformance.h"

namespace reprise {
namespace {

INSTANTIATE_TEST_SUITE_P(Backends, StorageConformance,
                         ::testing::Values(StorageBackend{"local", MakeLocal}),
                         [](const ::testing::TestParamInfo<StorageBackend>& info) {
                           return info.param.name;
                         });

// ---- LocalStorage specifics ----

TEST(LocalStorageTest, CleanupRemovesOnlyOldTempFiles) {
  StorageUnderTest t = MakeLocal();
  auto* local = static_cast<LocalStorage*>(t.storage.get());
  ASSERT_TRUE(local->Put("data/ab/ab01", ToBytes("whole")).ok());
  t.plant_temp_file("data/ab/ab02");
  t.plant_temp_file("config");
  fs::path root = local->Location();
  EXPECT_TRUE(fs::exists(root / "config.tmp-0123456789abcdef"));

  ASSERT_TRUE(local->Cleanup(3600).ok());  // too young: kept
  EXPECT_TRUE(fs::exists(root / "config.tmp-0123456789abcdef"));
  ASSERT_TRUE(local->Cleanup(0).ok());
  EXPECT_FALSE(fs::exists(root / "config.tmp-0123456789abcdef"));
  EXPECT_FALSE(fs::exists(root / "data/ab/ab02.tmp-0123456789abcdef"));
  EXPECT_EQ(AsString(*local->Get("data/ab/ab01")), "whole");
  t.cleanup();
}

TEST(LocalStorageTest, PutLeavesNoTempFilesAndCreatesRoot) {
  StorageUnderTest t = MakeLocal();
  fs::path root = t.storage->Location();
  EXPECT_FALSE(fs::exists(root));
  ASSERT_TRUE(t.storage->Put("a/b/c/d", ToBytes("deep")).ok());
  ASSERT_TRUE(t.storage->Put("a/b/c/d", ToBytes("deeper")).ok());
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) {
      ++files;
      EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
    }
  }
  EXPECT_EQ(files, 1u);
  EXPECT_EQ(AsString(*t.storage->Get("a/b/c/d")), "deeper");
  t.cleanup();
}

// A writer streams into a temp file; dropped without Commit (an error, a refused push), the
// temp file goes too, and a committed one leaves only the object.
TEST(LocalStorageTest, WritersLeaveNoTempFiles) {
  StorageUnderTest t = MakeLocal();
  fs::path root = t.storage->Location();
  {
    auto w = t.storage->OpenWriter("data/aa/dropped");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    Bytes piece(3 << 20, 0x5a);
    std::memcpy((*w)->Reserve(piece.size()), piece.data(), piece.size());
    ASSERT_TRUE((*w)->Append(piece.size()).ok());
    size_t temps = 0;
    for (const auto& e : fs::recursive_directory_iterator(root))
      temps += e.path().filename().string().find(".tmp-") != std::string::npos;
    EXPECT_EQ(temps, 1u) << "the bytes go to a temp file as they come";
  }
  {
    auto w = t.storage->OpenWriter("data/aa/kept");
    ASSERT_TRUE(w.ok());
    std::memcpy((*w)->Reserve(5), "bytes", 5);
    ASSERT_TRUE((*w)->Append(5).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files.push_back(e.path().filename().string());
  EXPECT_EQ(files, std::vector<std::string>{"kept"});
  t.cleanup();
}

TEST(LocalStorageTest, PutIntoUnwritableDirFails) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  StorageUnderTest t = MakeLocal();
  ASSERT_TRUE(t.storage->Put("index/i1", ToBytes("x")).ok());
  fs::path dir = fs::path(t.storage->Location()) / "index";
  ::chmod(dir.c_str(), 0500);
  Status st = t.storage->Put("index/i2", ToBytes("y"));
  ::chmod(dir.c_str(), 0700);
  EXPECT_EQ(st.code(), Code::kPermissionDenied) << st.ToString();
  t.cleanup();
}

TEST(LocalStorageTest, LocationIsNormalized) {
  EXPECT_EQ(LocalStorage("/backups/rag/").Location(), "/backups/rag");
  EXPECT_EQ(LocalStorage("/backups//rag").Location(), "/backups/rag");
  EXPECT_EQ(LocalStorage("/").Location(), "/");
}

TEST(OpenStorageTest, Urls) {
  auto a = OpenStorage("file:///backups/rag");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->Location(), "/backups/rag");

  auto b = OpenStorage("/backups/rag");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->Location(), "/backups/rag");

  auto c = OpenStorage("some/relative/repo");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)->Location(), (fs::current_path() / "some/relative/repo").string());

  // Rejected before any credentials are looked up, so this needs no environment.
  auto s3 = OpenStorage("s3://bucket/prefix?colour=blue");
  EXPECT_EQ(s3.status().code(), Code::kInvalidArgument);
  EXPECT_NE(s3.status().message().find("unknown option 'colour'"), std::string::npos);

  for (std::string url : {"http://example.com/repo", "gs://bucket", "file://relative/path",
                          "file://", ""}) {
    auto r = OpenStorage(url);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << url;
    if (!url.empty()) {
      EXPECT_NE(r.status().message().find("'" + url + "'"), std::string::npos);
    }
  }
  EXPECT_NE(OpenStorage("gs://bucket").status().message().find("file://"), std::string::npos);
}

TEST(OpenStorageTest, OpenedStorageWorks) {
  std::string dir = MakeTempDir();
  auto s = OpenStorage("file://" + dir + "/repo");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Put("config", ToBytes("cfg")).ok());
  EXPECT_TRUE(fs::exists(fs::path(dir) / "repo" / "config"));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace reprise
