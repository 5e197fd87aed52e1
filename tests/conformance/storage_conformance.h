// The contract of storage/storage.h (tests/unit instantiates it for LocalStorage,
// tests/integration/s3_storage_test.cc for S3 on a real Ceph RGW). Include it in exactly one
// file of a test binary, then INSTANTIATE_TEST_SUITE_P(Name, StorageConformance, ...).
#pragma once
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/local/local_storage.h"
#include "storage/storage.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

// One fresh, empty storage for one test.
struct StorageUnderTest {
  std::unique_ptr<Storage> storage;
  // Leaves behind what a Put killed mid-write would, next to `key`; null when the backend
  // cannot have such leftovers (its Put is atomic on the server).
  std::function<void(const std::string& key)> plant_temp_file;
  std::function<void()> cleanup;
};

struct StorageBackend {
  std::string name;
  std::function<StorageUnderTest()> make;
};

// gtest names parameterized tests after their parameter; print the backend's name, not bytes.
inline void PrintTo(const StorageBackend& backend, std::ostream* os) { *os << backend.name; }

std::string MakeTempDir() {
  std::string tmpl = (fs::temp_directory_path() / "reprise-storage-XXXXXX").string();
  char* dir = ::mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

StorageUnderTest MakeLocal() {
  fs::path root = fs::path(MakeTempDir()) / "repo";  // does not exist yet, like `init`
  StorageUnderTest t;
  t.storage = std::make_unique<LocalStorage>(root);
  t.plant_temp_file = [root](const std::string& key) {
    fs::path p = root / (key + ".tmp-0123456789abcdef");
    fs::create_directories(p.parent_path());
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "partial", 7), 7);
    ::close(fd);
  };
  t.cleanup = [root] {
    std::error_code ec;
    fs::remove_all(root.parent_path(), ec);
  };
  return t;
}

Bytes Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

std::vector<std::string> Keys(const std::vector<ObjectInfo>& infos) {
  std::vector<std::string> keys;
  for (const auto& i : infos) keys.push_back(i.key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

class StorageConformance : public ::testing::TestWithParam<StorageBackend> {
 protected:
  void SetUp() override {
    t_ = GetParam().make();
    s_ = t_.storage.get();
    ASSERT_NE(s_, nullptr);
  }
  void TearDown() override {
    t_.storage.reset();
    if (t_.cleanup) t_.cleanup();
  }

  StorageUnderTest t_;
  Storage* s_ = nullptr;
};

TEST_P(StorageConformance, PutGetRoundTrip) {
  EXPECT_FALSE(s_->Location().empty());
  Bytes data = Pattern(100000, 1);
  ASSERT_TRUE(s_->Put("data/ab/abcdef", data).ok());
  auto got = s_->Get("data/ab/abcdef");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, data);
  auto info = s_->Stat("data/ab/abcdef");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->key, "data/ab/abcdef");
  EXPECT_EQ(info->size, data.size());
}

TEST_P(StorageConformance, PutReplacesWhole) {
  ASSERT_TRUE(s_->Put("config", Pattern(5000, 2)).ok());
  Bytes shorter = ToBytes("short");
  ASSERT_TRUE(s_->Put("config", shorter).ok());
  EXPECT_EQ(*s_->Get("config"), shorter);
  EXPECT_EQ(s_->Stat("config")->size, shorter.size());
  Bytes longer = Pattern(9000, 3);
  ASSERT_TRUE(s_->Put("config", longer).ok());
  EXPECT_EQ(*s_->Get("config"), longer);
}

TEST_P(StorageConformance, EmptyAndLargeObjects) {
  ASSERT_TRUE(s_->Put("locks/empty", {}).ok());
  auto e = s_->Get("locks/empty");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(e->empty());
  EXPECT_EQ(s_->Stat("locks/empty")->size, 0u);
  EXPECT_TRUE(s_->GetRange("locks/empty", 0, 0).ok());

  Bytes big = Pattern(9 << 20, 4);
  ASSERT_TRUE(s_->Put("data/00/big", big).ok());
  EXPECT_EQ(*s_->Get("data/00/big"), big);
}


// A WAL pack is written piece by piece as its blobs are sealed: the object is the pieces in
// order (odd sizes, more than the local writer's 1 MiB flush and its 4 KiB alignment), it is
// not visible before Commit, and a writer dropped without Commit leaves nothing at all.
TEST_P(StorageConformance, ObjectWriterAppendsInPlaceAndCommits) {
  Bytes expected;
  {
    auto w = s_->OpenWriter("data/ef/streamed");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (uint32_t i = 0; i < 40; ++i) {
      Bytes piece = Pattern(1 + (i * 104729) % 200000, 100 + i);
      uint8_t* room = (*w)->Reserve(piece.size() + 7);
      ASSERT_NE(room, nullptr);
      std::memcpy(room, piece.data(), piece.size());
      ASSERT_TRUE((*w)->Append(piece.size()).ok());
      expected.insert(expected.end(), piece.begin(), piece.end());
      if (i == 20) EXPECT_EQ(s_->Stat("data/ef/streamed").status().code(), Code::kNotFound);
    }
    EXPECT_FALSE((*w)->Append(1).ok()) << "appending more than reserved must fail";
    ASSERT_TRUE((*w)->Commit().ok());
  }
  auto got = s_->Get("data/ef/streamed");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->size(), expected.size());
  EXPECT_TRUE(*got == expected);

  {
    auto w = s_->OpenWriter("data/ef/abandoned");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    Bytes piece = Pattern(3 << 20, 7);
    std::memcpy((*w)->Reserve(piece.size()), piece.data(), piece.size());
    ASSERT_TRUE((*w)->Append(piece.size()).ok());
  }
  EXPECT_EQ(s_->Stat("data/ef/abandoned").status().code(), Code::kNotFound);
  auto listed = s_->List("data/ef/");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, "data/ef/streamed");
  EXPECT_FALSE(s_->OpenWriter("../escape").ok());
}

TEST_P(StorageConformance, GetRange) {
  Bytes data = Pattern(4096, 5);
  ASSERT_TRUE(s_->Put("data/cd/pack", data).ok());
  auto mid = s_->GetRange("data/cd/pack", 100, 200);
  ASSERT_TRUE(mid.ok()) << mid.status().ToString();
  EXPECT_EQ(*mid, Bytes(data.begin() + 100, data.begin() + 300));
  EXPECT_EQ(*s_->GetRange("data/cd/pack", 0, 4096), data);
  EXPECT_EQ(*s_->GetRange("data/cd/pack", 4095, 1), Bytes{data.back()});
  EXPECT_TRUE(s_->GetRange("data/cd/pack", 4096, 0)->empty());

  EXPECT_EQ(s_->GetRange("data/cd/pack", 4000, 97).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s_->GetRange("data/cd/pack", 4097, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s_->GetRange("data/cd/pack", 1, UINT64_MAX).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(s_->GetRange("data/cd/pack", UINT64_MAX, 2).status().code(),
            Code::kInvalidArgument);
}

TEST_P(StorageConformance, RangedReadsSeeReplacementsAndDeletions) {
  // Backends may keep objects open for ranged reads; a Put or Delete must still show.
  ASSERT_TRUE(s_->Put("data/ef/pack", Pattern(4096, 6)).ok());
  ASSERT_TRUE(s_->GetRange("data/ef/pack", 0, 10).ok());
  Bytes replaced = Pattern(2048, 7);
  ASSERT_TRUE(s_->Put("data/ef/pack", replaced).ok());
  EXPECT_EQ(*s_->GetRange("data/ef/pack", 0, 10), Bytes(replaced.begin(), replaced.begin() + 10));
  EXPECT_EQ(s_->GetRange("data/ef/pack", 3000, 10).status().code(), Code::kInvalidArgument);
  ASSERT_TRUE(s_->Delete("data/ef/pack").ok());
  EXPECT_EQ(s_->GetRange("data/ef/pack", 0, 10).status().code(), Code::kNotFound);
}

TEST_P(StorageConformance, MissingIsNotFound) {
  EXPECT_EQ(s_->Get("index/nothing").status().code(), Code::kNotFound);
  EXPECT_EQ(s_->GetRange("index/nothing", 0, 1).status().code(), Code::kNotFound);
  EXPECT_EQ(s_->Stat("index/nothing").status().code(), Code::kNotFound);
  ASSERT_TRUE(s_->Put("index/something", ToBytes("x")).ok());
  EXPECT_EQ(s_->Get("index/nothing").status().code(), Code::kNotFound);
  // A "directory" is not an object, and an object is not a directory.
  EXPECT_EQ(s_->Get("index").status().code(), Code::kNotFound);
  EXPECT_EQ(s_->Stat("index").status().code(), Code::kNotFound);
  EXPECT_EQ(s_->Get("index/something/below").status().code(), Code::kNotFound);
}

TEST_P(StorageConformance, DeleteIsIdempotent) {
  ASSERT_TRUE(s_->Put("points/p1", ToBytes("point")).ok());
  EXPECT_TRUE(s_->Delete("points/p1").ok());
  EXPECT_EQ(s_->Get("points/p1").status().code(), Code::kNotFound);
  EXPECT_TRUE(s_->Delete("points/p1").ok());
  EXPECT_TRUE(s_->Delete("points/never").ok());
  EXPECT_TRUE(s_->Delete("nowhere/at/all").ok());
  auto list = s_->List("points/");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_P(StorageConformance, ListWithPrefixes) {
  std::map<std::string, size_t> objects = {
      {"config", 10},       {"keys/k1", 11},     {"data/ab/ab01", 12}, {"data/ab/ab02", 13},
      {"data/cd/cd01", 14}, {"data2/zz", 15},    {"index/i1", 16},     {"index/i2", 0},
  };
  for (const auto& [key, size] : objects) ASSERT_TRUE(s_->Put(key, Pattern(size, 6)).ok());

  auto all = s_->List("");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), objects.size());
  for (const auto& info : *all) {
    ASSERT_TRUE(objects.count(info.key)) << info.key;
    EXPECT_EQ(info.size, objects[info.key]) << info.key;
  }

  using V = std::vector<std::string>;
  EXPECT_EQ(Keys(*s_->List("data/")), (V{"data/ab/ab01", "data/ab/ab02", "data/cd/cd01"}));
  EXPECT_EQ(Keys(*s_->List("data/ab/")), (V{"data/ab/ab01", "data/ab/ab02"}));
  EXPECT_EQ(Keys(*s_->List("data/a")), (V{"data/ab/ab01", "data/ab/ab02"}));
  EXPECT_EQ(Keys(*s_->List("data")),
            (V{"data/ab/ab01", "data/ab/ab02", "data/cd/cd01", "data2/zz"}));
  EXPECT_EQ(Keys(*s_->List("index/")), (V{"index/i1", "index/i2"}));
  EXPECT_EQ(Keys(*s_->List("index/i1")), (V{"index/i1"}));
  EXPECT_EQ(Keys(*s_->List("conf")), (V{"config"}));
  EXPECT_TRUE(s_->List("locks/")->empty());
  EXPECT_TRUE(s_->List("nothing/here/")->empty());
  EXPECT_TRUE(s_->List("config/")->empty());
}

TEST_P(StorageConformance, ListOnFreshStorageIsEmpty) {
  auto all = s_->List("");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_TRUE(all->empty());
}

TEST_P(StorageConformance, UnfinishedPutsAreNotListed) {
  if (!t_.plant_temp_file) GTEST_SKIP() << "backend has no temp files";
  ASSERT_TRUE(s_->Put("data/ab/ab01", ToBytes("whole")).ok());
  t_.plant_temp_file("data/ab/ab02");
  t_.plant_temp_file("data/ab/ab01");
  t_.plant_temp_file("config");
  EXPECT_EQ(Keys(*s_->List("")), std::vector<std::string>{"data/ab/ab01"});
  EXPECT_EQ(Keys(*s_->List("data/")), std::vector<std::string>{"data/ab/ab01"});
  EXPECT_EQ(s_->Get("data/ab/ab02").status().code(), Code::kNotFound);
  EXPECT_EQ(AsString(*s_->Get("data/ab/ab01")), "whole");
}

TEST_P(StorageConformance, ConcurrentPuts) {
  constexpr int kThreads = 8, kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Distinct keys, in directories created concurrently by several threads.
        std::string key = "data/" + std::to_string(i % 5) + "/t" + std::to_string(t) + "-" +
                          std::to_string(i);
        if (!s_->Put(key, Pattern(1000 + static_cast<size_t>(i), t * 1000 + i)).ok())
          ++failures;
        // And one key everybody overwrites.
        if (!s_->Put("shared", Pattern(3000, static_cast<uint32_t>(t))).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::string key = "data/" + std::to_string(i % 5) + "/t" + std::to_string(t) + "-" +
                        std::to_string(i);
      auto got = s_->Get(key);
      ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
      EXPECT_EQ(*got, Pattern(1000 + static_cast<size_t>(i), t * 1000 + i)) << key;
    }
  }
  // The shared key holds exactly one writer's whole value.
  Bytes shared = *s_->Get("shared");
  bool matches_one = false;
  for (int t = 0; t < kThreads; ++t) matches_one |= shared == Pattern(3000, t);
  EXPECT_TRUE(matches_one);
  auto all = s_->List("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), static_cast<size_t>(kThreads * kPerThread + 1));
}

TEST_P(StorageConformance, BadKeysAreRejected) {
  const std::vector<std::string> bad_keys = {
      "",    "/abs", "/",     "a//b", "a/",   "../x", "a/../b", "..", ".", "./a",
      "a/./b", "a/..", "x.tmp-0123456789abcdef", std::string("a\0b", 3)};
  for (const std::string& key : bad_keys) {
    SCOPED_TRACE("key '" + key + "'");
    EXPECT_EQ(s_->Put(key, ToBytes("x")).code(), Code::kInvalidArgument);
    EXPECT_EQ(s_->Get(key).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(s_->GetRange(key, 0, 0).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(s_->Stat(key).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(s_->Delete(key).code(), Code::kInvalidArgument);
  }
  for (std::string prefix : {"/", "/data/", "../", "a//", "../../etc/", "data/../../"}) {
    SCOPED_TRACE("prefix '" + prefix + "'");
    EXPECT_EQ(s_->List(prefix).status().code(), Code::kInvalidArgument);
  }
  auto all = s_->List("");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

}  // namespace
}  // namespace reprise
