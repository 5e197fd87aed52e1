// The repository engine on a local directory: tamper detection in every sealed object,
// passphrases and keys, locks, the blob writer's dedup and durability order.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/sysinfo.h"
#include "repo/check.h"
#include "repo/content.h"
#include "repo/format.h"
#include "repo/lock.h"
#include "repo/pack.h"
#include "repo/prune.h"
#include "repo/repository.h"
#include "storage/local/local_storage.h"
#include "test_repo.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

class RepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_support::FreshTestDir("reprise-repo-test");
    InitOptions options = testing_support::FastInitOptions();
    options.pack_size = 64 * 1024;
    options.chunker = ChunkerParams{.min_size = 4096, .avg_size = 16384, .max_size = 65536};
    auto repo = Repository::Init(std::make_unique<LocalStorage>(dir_), "secret", options, clock_);
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    repo_ = std::move(*repo);
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(dir_);
  }

  Result<std::unique_ptr<Repository>> Reopen(const std::string& pass = "secret") {
    return Repository::Open(std::make_unique<LocalStorage>(dir_), pass);
  }

  // Saves `n` random blobs of `size` bytes and flushes; returns their ids.
  std::vector<Id> SaveRandomBlobs(int n, size_t size) {
    std::vector<Id> ids;
    for (int i = 0; i < n; ++i) {
      Bytes b = RandomBytes(size);
      Id id = BlobIdOf(repo_->key().id, b);
      EXPECT_TRUE(repo_->SaveBlob(BlobType::kData, id, b).ok());
      ids.push_back(id);
    }
    EXPECT_TRUE(repo_->Flush().ok());
    return ids;
  }

  // Saves a point with one component whose manifest references `blobs` as one content.
  Id SavePointWith(const std::vector<Id>& blobs, int64_t time_ns) {
    ThreadPool pool(2, 4);
    RepoBackupSink sink(*repo_, pool);
    Content c;
    for (const auto& id : blobs) {
      auto loc = repo_->index().Find(id);
      EXPECT_TRUE(loc.ok());
      c.chunks.push_back(ChunkRef{.id = id, .length = loc->raw_length});
      c.size += loc->raw_length;
    }
    std::promise<Result<Content>> p;
    p.set_value(c);
    EXPECT_TRUE(sink.AddEntry({{"path", "x"}}, {p.get_future().share()}).ok());
    auto manifest = sink.Finish();
    EXPECT_TRUE(manifest.ok());
    EXPECT_TRUE(repo_->Flush().ok());
    Point point;
    point.time_ns = time_ns;
    PointComponent pc;
    pc.name = "test";
    pc.kind = "files";
    pc.manifest = *manifest;
    point.components.push_back(pc);
    auto id = repo_->SavePoint(point);
    EXPECT_TRUE(id.ok());
    return *id;
  }

  static void FlipByte(const fs::path& file, uint64_t offset) {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x01));
  }

  std::vector<fs::path> Files(const std::string& sub) {
    std::vector<fs::path> out;
    for (auto& e : fs::recursive_directory_iterator(dir_ / sub))
      if (e.is_regular_file()) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }

  SystemClock clock_;
  fs::path dir_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(RepoTest, WrongPassphraseIsRejectedClearly) {
  auto r = Reopen("not the secret");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
  EXPECT_NE(r.status().message().find("wrong passphrase"), std::string::npos);
  EXPECT_TRUE(Reopen("secret").ok());
}

TEST_F(RepoTest, InitRefusesAnExistingRepository) {
  auto again = Repository::Init(std::make_unique<LocalStorage>(dir_), "x", InitOptions{}, clock_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
}

TEST_F(RepoTest, SecondKeyOpensTheSameMasterKey) {
  auto id = AddKeyFile(repo_->storage(), repo_->key(), "other", ScryptParams{.n = 1024}, clock_);
  ASSERT_TRUE(id.ok());
  auto other = Reopen("other");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((*other)->key().encryption, repo_->key().encryption);
  EXPECT_EQ((*other)->key_id(), *id);
  auto keys = ListKeyFiles(repo_->storage());
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 2u);
}

TEST_F(RepoTest, BlobsRoundTripAndDeduplicate) {
  auto ids = SaveRandomBlobs(20, 10000);
  EXPECT_EQ(repo_->write_stats().new_blobs, 20u);
  // Saving the same blobs again stores nothing.
  auto reopened = Reopen();
  ASSERT_TRUE(reopened.ok());
  ASSERT_TRUE((*reopened)->LoadIndex().ok());
  for (const auto& id : ids) {
    auto data = (*reopened)->ReadBlob(id);
    ASSERT_TRUE(data.ok()) << data.status().message();
    EXPECT_EQ(BlobIdOf((*reopened)->key().id, *data), id);
    auto again = (*reopened)->SaveBlob(BlobType::kData, id, *data);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(*again);
  }
  ASSERT_TRUE((*reopened)->Flush().ok());
  EXPECT_EQ((*reopened)->write_stats().new_blobs, 0u);
}

TEST_F(RepoTest, FlippedBitInABlobIsDetected) {
  auto ids = SaveRandomBlobs(4, 3000);
  auto loc = repo_->index().Find(ids[1]);
  ASSERT_TRUE(loc.ok());
  FlipByte(dir_ / PackKey(loc->pack), loc->offset + loc->length / 2);
  auto data = repo_->ReadBlob(ids[1]);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), Code::kCorruption);
  EXPECT_NE(data.status().message().find(loc->pack.Hex()), std::string::npos);
  EXPECT_TRUE(repo_->ReadBlob(ids[0]).ok());
}

TEST_F(RepoTest, FlippedBitInAPackHeaderIsDetected) {
  auto ids = SaveRandomBlobs(3, 2000);
  Id point = SavePointWith(ids, clock_.NowUnixNanos());
  auto loc = repo_->index().Find(ids[0]);
  ASSERT_TRUE(loc.ok());
  fs::path pack = dir_ / PackKey(loc->pack);
  FlipByte(pack, fs::file_size(pack) - 10);  // inside the sealed header
  auto report = CheckRepository(*repo_, CheckOptions{.read_data = true}, clock_, nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  ASSERT_EQ(report->damaged_packs.size(), 1u);
  EXPECT_EQ(report->damaged_packs[0], loc->pack);
  ASSERT_EQ(report->affected_points.size(), 1u);
  EXPECT_EQ(report->affected_points[0].id, point);
}

TEST_F(RepoTest, FlippedBitInAnIndexIsDetected) {
  SaveRandomBlobs(3, 2000);
  auto index_files = Files("index");
  ASSERT_EQ(index_files.size(), 1u);
  FlipByte(index_files[0], 20);
  auto reopened = Reopen();
  ASSERT_TRUE(reopened.ok());
  Status st = (*reopened)->LoadIndex();
  EXPECT_EQ(st.code(), Code::kCorruption);
  auto report = CheckRepository(**reopened, CheckOptions{}, clock_, nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
}

TEST_F(RepoTest, FlippedBitInAPointOrConfigIsDetected) {
  auto ids = SaveRandomBlobs(2, 2000);
  SavePointWith(ids, clock_.NowUnixNanos());
  auto points = Files("points");
  ASSERT_EQ(points.size(), 1u);
  FlipByte(points[0], 30);
  std::vector<std::string> damaged;
  auto listed = repo_->ListPoints(&damaged);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  EXPECT_EQ(damaged.size(), 1u);
  FlipByte(dir_ / "config", 20);
  auto reopened = Reopen();
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), Code::kCorruption);
}

TEST_F(RepoTest, CheckReadDataPassesOnAGoodRepository) {
  auto ids = SaveRandomBlobs(30, 5000);
  SavePointWith(ids, clock_.NowUnixNanos());
  auto report = CheckRepository(*repo_, CheckOptions{.read_data = true}, clock_, nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << (report->errors.empty() ? "" : report->errors[0]);
  EXPECT_EQ(report->packs_read, report->packs);
  EXPECT_GT(report->packs, 1u);
}

TEST_F(RepoTest, PruneKeepsWhatPointsNeedAndDropsTheRest) {
  auto kept = SaveRandomBlobs(10, 5000);
  auto dropped = SaveRandomBlobs(10, 5000);
  Id keep_point = SavePointWith(kept, clock_.NowUnixNanos());
  Id drop_point = SavePointWith(dropped, clock_.NowUnixNanos());
  ASSERT_TRUE(repo_->storage().Delete(PointKey(drop_point)).ok());
  auto report = PruneRepository(*repo_, PruneOptions{}, nullptr);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_GT(report->packs_deleted + report->packs_repacked, 0u);
  auto reopened = Reopen();
  ASSERT_TRUE(reopened.ok());
  ASSERT_TRUE((*reopened)->LoadIndex().ok());
  for (const auto& id : kept) EXPECT_TRUE((*reopened)->ReadBlob(id).ok());
  for (const auto& id : dropped) EXPECT_FALSE((*reopened)->index().Has(id));
  auto check = CheckRepository(**reopened, CheckOptions{.read_data = true}, clock_, nullptr);
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok());
  auto points = (*reopened)->ListPoints();
  ASSERT_TRUE(points.ok());
  ASSERT_EQ(points->size(), 1u);
  EXPECT_EQ(points->front().id, keep_point);
}

TEST_F(RepoTest, PruneRefusesWhenAPointsBlobIsMissing) {
  auto ids = SaveRandomBlobs(3, 2000);
  SavePointWith(ids, clock_.NowUnixNanos());
  for (const auto& f : Files("index")) fs::remove(f);
  auto reopened = Reopen();
  ASSERT_TRUE(reopened.ok());
  auto report = PruneRepository(**reopened, PruneOptions{}, nullptr);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kFailedPrecondition);
  EXPECT_FALSE(Files("data").empty()) << "prune deleted packs on incomplete knowledge";
}

TEST_F(RepoTest, ExclusiveLockConflictsWithALiveLock) {
  std::vector<std::string> warnings;
  auto warn = [&](std::string m) { warnings.push_back(m); };
  auto shared = RepoLock::Acquire(*repo_, false, "backup", clock_, warn);
  ASSERT_TRUE(shared.ok());
  auto shared2 = RepoLock::Acquire(*repo_, false, "check", clock_, warn);
  EXPECT_TRUE(shared2.ok());
  auto exclusive = RepoLock::Acquire(*repo_, true, "prune", clock_, warn);
  ASSERT_FALSE(exclusive.ok());
  EXPECT_EQ(exclusive.status().code(), Code::kLocked);
  EXPECT_NE(exclusive.status().message().find("is locked: shared lock"), std::string::npos)
      << exclusive.status().message();
  shared->reset();
  shared2->reset();
  EXPECT_TRUE(RepoLock::Acquire(*repo_, true, "prune", clock_, warn).ok());
}

TEST_F(RepoTest, StaleLocksAreReportedAndDoNotBlock) {
  // A lock of a process that is gone: write one by hand with a dead pid.
  nlohmann::json j = {{"exclusive", true},  {"host", HostName()}, {"user", "x"},
                      {"command", "prune"}, {"pid", 999999999},   {"pid_start", 1},
                      {"created", FormatRfc3339(clock_.NowUnixNanos())},
                      {"refreshed", FormatRfc3339(clock_.NowUnixNanos())}};
  ASSERT_TRUE(repo_->SaveJsonFile(kLocksDir, kAadLock, j).ok());
  // Another host's lock not refreshed for an hour is stale too; a fresh one is not.
  FakeClock later(clock_.NowUnixNanos() + int64_t{3600} * 1000000000);
  j["host"] = "elsewhere";
  ASSERT_TRUE(repo_->SaveJsonFile(kLocksDir, kAadLock, j).ok());
  std::vector<std::string> warnings;
  auto lock = RepoLock::Acquire(*repo_, true, "prune", later,
                                [&](std::string m) { warnings.push_back(m); });
  ASSERT_TRUE(lock.ok()) << lock.status().message();
  EXPECT_EQ(warnings.size(), 2u);
  // With the real clock the other host's lock is live and blocks.
  lock->reset();
  EXPECT_EQ(RepoLock::Acquire(*repo_, false, "backup", clock_, [](std::string) {}).status().code(),
            Code::kLocked);
  auto removed = RemoveLocks(*repo_, false, clock_);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->size(), 1u);  // only the dead process's lock
  auto forced = RemoveLocks(*repo_, true, clock_);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->size(), 1u);
}

TEST_F(RepoTest, PackHeaderRoundTrip) {
  PackBuilder b;
  Key256 key = MasterKey::Generate().encryption;
  std::vector<Id> ids;
  for (int i = 0; i < 5; ++i) {
    Bytes plain = RandomBytes(100 + i);
    Id id = Sha256(plain);
    b.Add(BlobType::kData, id, SealBlob(key, id, plain, 1), static_cast<uint32_t>(plain.size()));
    ids.push_back(id);
  }
  auto entries = b.entries();
  Bytes pack = b.Finish(key);
  EXPECT_EQ(pack.size(), ExpectedPackSize(entries));
  auto header = ReadPackHeader(key, pack);
  ASSERT_TRUE(header.ok());
  ASSERT_EQ(header->size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ((*header)[i].id, ids[i]);
  pack.pop_back();
  EXPECT_FALSE(ReadPackHeader(key, pack).ok());
}

}  // namespace
}  // namespace reprise
