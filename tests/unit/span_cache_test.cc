// SpanCache: a whole restore's blobs come from a few large pack reads instead of one read per
// run of blobs, from many threads at once, and damage is still found and named.
#include "repo/span_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/sysinfo.h"
#include "repo/format.h"
#include "repo/repository.h"
#include "storage/local/local_storage.h"
#include "test_repo.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

// Counts the ranged reads that reach the storage, the rest passes through.
class CountingStorage final : public Storage {
 public:
  CountingStorage(std::unique_ptr<Storage> inner, std::atomic<int>* ranges)
      : inner_(std::move(inner)), ranges_(ranges) {}
  std::string Location() const override { return inner_->Location(); }
  Result<Bytes> Get(const std::string& key) override { return inner_->Get(key); }
  Result<Bytes> GetRange(const std::string& key, uint64_t offset, uint64_t length) override {
    if (key.rfind("data/", 0) == 0) ++*ranges_;
    return inner_->GetRange(key, offset, length);
  }
  Status Put(const std::string& key, ByteView data) override { return inner_->Put(key, data); }
  Status Delete(const std::string& key) override { return inner_->Delete(key); }
  Result<ObjectInfo> Stat(const std::string& key) override { return inner_->Stat(key); }
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    return inner_->List(prefix);
  }

 private:
  std::unique_ptr<Storage> inner_;
  std::atomic<int>* ranges_;
};

class SpanCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_support::FreshTestDir("reprise-span-test");
    InitOptions options = testing_support::FastInitOptions();
    options.pack_size = 256 * 1024;
    auto repo = Repository::Init(std::make_unique<LocalStorage>(dir_), "secret", options, clock_);
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    for (int i = 0; i < 120; ++i) {
      Bytes b = RandomBytes(10000 + static_cast<size_t>(i) * 37);
      Id id = BlobIdOf((*repo)->key().id, b);
      ASSERT_TRUE((*repo)->SaveBlob(BlobType::kData, id, b).ok());
      ids_.push_back(id);
      plain_.push_back(std::move(b));
    }
    ASSERT_TRUE((*repo)->Flush().ok());
    repo->reset();
    // Reopened through the counter, so that only the reads under test are counted.
    auto opened = Repository::Open(
        std::make_unique<CountingStorage>(std::make_unique<LocalStorage>(dir_), &ranges_),
        "secret");
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    repo_ = std::move(*opened);
    ASSERT_TRUE(repo_->LoadIndex().ok());
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(dir_);
  }

  // A plan over `order` (indexes into ids_).
  std::unique_ptr<SpanCache> PlanFor(const std::vector<size_t>& order) {
    auto cache = SpanCache::Plan(*repo_, [&](const std::function<void(const Id&)>& need) {
      for (size_t i : order) need(ids_[i]);
      return Status::Ok();
    });
    EXPECT_TRUE(cache.ok()) << cache.status().message();
    return cache.ok() ? std::move(*cache) : nullptr;
  }

  size_t PacksHolding(const std::vector<size_t>& which) {
    std::set<std::string> packs;
    for (size_t i : which) packs.insert(repo_->index().Find(ids_[i])->pack.Hex());
    return packs.size();
  }

  SystemClock clock_;
  fs::path dir_;
  std::unique_ptr<Repository> repo_;
  std::vector<Id> ids_;
  std::vector<Bytes> plain_;
  std::atomic<int> ranges_{0};
};

TEST_F(SpanCacheTest, EveryBlobComesBackFromFewReadsOnManyThreads) {
  std::vector<size_t> order;
  for (size_t i = 0; i < ids_.size(); ++i) order.push_back(i);
  order.push_back(3);  // a blob read twice (a chunk two files share)
  auto cache = PlanFor(order);
  ASSERT_NE(cache, nullptr);
  EXPECT_GT(cache->whole_spans(), 0u);
  ranges_ = 0;

  // Four threads, each reading every fourth run of three blobs, as the restore's readers do.
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t first = t * 3; first < order.size(); first += 12) {
        std::vector<Id> ask;
        std::vector<size_t> which;
        for (size_t k = first; k < std::min(order.size(), first + 3); ++k) {
          ask.push_back(ids_[order[k]]);
          which.push_back(order[k]);
        }
        std::vector<Bytes> out;
        if (!cache->ReadBlobs(ask, &out).ok() || out.size() != ask.size()) {
          ++failed;
          continue;
        }
        for (size_t k = 0; k < out.size(); ++k)
          if (out[k] != plain_[which[k]]) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(wrong, 0);
  // One read per planned span (4 MiB at most each: one per pack here), plus at most the
  // re-reads of a span evicted before a late reader came: far fewer than the 40 runs read.
  const size_t packs = PacksHolding(order);
  EXPECT_GE(cache->fetches(), packs);
  EXPECT_LE(static_cast<size_t>(ranges_.load()), packs + 2) << "packs: " << packs;
  EXPECT_LT(static_cast<size_t>(ranges_.load()), order.size() / 3);
}

TEST_F(SpanCacheTest, APackMostlyNotNeededIsReadAsBefore) {
  // Every tenth blob: most of each pack's span is not needed, so no span is read whole.
  std::vector<size_t> order;
  for (size_t i = 0; i < ids_.size(); i += 10) order.push_back(i);
  auto cache = PlanFor(order);
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->whole_spans(), 0u);
  for (size_t i : order) {
    std::vector<Bytes> out;
    ASSERT_TRUE(cache->ReadBlobs({ids_[i]}, &out).ok());
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], plain_[i]);
  }
  EXPECT_EQ(cache->fetches(), 0u);
}

TEST_F(SpanCacheTest, BlobsOutsideThePlanAreReadFromTheRepository) {
  auto cache = PlanFor({0, 1, 2, 3});
  ASSERT_NE(cache, nullptr);
  std::vector<Bytes> out;
  ASSERT_TRUE(cache->ReadBlobs({ids_[2], ids_[90], ids_[3]}, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], plain_[2]);
  EXPECT_EQ(out[1], plain_[90]);
  EXPECT_EQ(out[2], plain_[3]);
  // An unknown blob is reported as the repository reports it.
  Bytes other = RandomBytes(100);
  Id unknown = BlobIdOf(repo_->key().id, other);
  out.clear();
  Status s = cache->ReadBlobs({unknown}, &out);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.message();
}

TEST_F(SpanCacheTest, TooManyBlobsMeanNoPlan) {
  std::vector<size_t> order;
  for (size_t i = 0; i < 50; ++i) order.push_back(i);
  auto cache = SpanCache::Plan(
      *repo_,
      [&](const std::function<void(const Id&)>& need) {
        for (size_t i : order) need(ids_[i]);
        return Status::Ok();
      },
      /*max_blobs=*/49);
  ASSERT_TRUE(cache.ok()) << cache.status().message();
  EXPECT_EQ(*cache, nullptr);
  auto fits = SpanCache::Plan(
      *repo_,
      [&](const std::function<void(const Id&)>& need) {
        for (size_t i : order) need(ids_[i]);
        return Status::Ok();
      },
      /*max_blobs=*/50);
  ASSERT_TRUE(fits.ok());
  EXPECT_NE(*fits, nullptr);
}

// With room for one span only, readers on four threads keep evicting each other's spans:
// what is still wanted from an evicted span is read blob by blob, never by fetching the span
// again, so the reads stay below one per blob and every blob still comes back right.
TEST_F(SpanCacheTest, OutgrowingTheLimitNeverRefetchesSpans) {
  std::vector<size_t> order;
  for (size_t i = 0; i < ids_.size(); ++i) order.push_back(i);
  auto cache = SpanCache::Plan(
      *repo_,
      [&](const std::function<void(const Id&)>& need) {
        for (size_t i : order) need(ids_[i]);
        return Status::Ok();
      },
      SpanCache::kMaxPlannedBlobs, /*max_spans=*/1);
  ASSERT_TRUE(cache.ok());
  ASSERT_NE(*cache, nullptr);
  ranges_ = 0;
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    // Each thread reads a quarter of the blobs, interleaved with the others, one at a time.
    threads.emplace_back([&, t] {
      for (size_t i = t; i < order.size(); i += 4) {
        std::vector<Bytes> out;
        if (!(*cache)->ReadBlobs({ids_[i]}, &out).ok() || out.size() != 1) {
          ++failed;
          continue;
        }
        if (out[0] != plain_[i]) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(wrong, 0);
  EXPECT_LE((*cache)->fetches(), PacksHolding(order)) << "a span was fetched twice";
  EXPECT_LE(static_cast<size_t>(ranges_.load()), PacksHolding(order) + order.size());
}

TEST_F(SpanCacheTest, DamageInASpanIsNamedAndNeverServed) {
  std::vector<size_t> order;
  for (size_t i = 0; i < 20; ++i) order.push_back(i);
  auto loc = repo_->index().Find(ids_[5]);
  ASSERT_TRUE(loc.ok());
  {
    std::fstream f(dir_ / PackKey(loc->pack), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(loc->offset + loc->length / 2));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(loc->offset + loc->length / 2));
    f.put(static_cast<char>(c ^ 0x01));
  }
  auto cache = PlanFor(order);
  ASSERT_NE(cache, nullptr);
  ASSERT_GT(cache->whole_spans(), 0u);
  std::vector<Bytes> out;
  ASSERT_TRUE(cache->ReadBlobs({ids_[4]}, &out).ok());
  EXPECT_EQ(out[0], plain_[4]);
  out.clear();
  Status s = cache->ReadBlobs({ids_[5]}, &out);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find(loc->pack.Hex()), std::string::npos) << s.message();
  EXPECT_TRUE(out.empty());
}

TEST_F(SpanCacheTest, AMissingPackIsAnErrorForTheReaderThatNeedsIt) {
  std::vector<size_t> order;
  for (size_t i = 0; i < 20; ++i) order.push_back(i);
  auto cache = PlanFor(order);
  ASSERT_NE(cache, nullptr);
  auto loc = repo_->index().Find(ids_[0]);
  ASSERT_TRUE(loc.ok());
  fs::remove(dir_ / PackKey(loc->pack));
  std::vector<Bytes> out;
  Status s = cache->ReadBlobs({ids_[0]}, &out);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(loc->pack.Hex()), std::string::npos) << s.message();
}

}  // namespace
}  // namespace reprise
