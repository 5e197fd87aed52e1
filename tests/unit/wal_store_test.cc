// The WAL archive: push is durable and idempotent, different bytes under one name are
// refused, fetch authenticates and checks the SHA-256, partial segments are replaceable,
// and prune keeps every blob a WAL record needs (even though no point names them).
#include "repo/wal_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "repo/check.h"
#include "repo/format.h"
#include "repo/prune.h"
#include "storage/local/local_storage.h"
#include "test_repo.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

class WalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_support::FreshTestDir("reprise-wal-test");
    InitOptions options = testing_support::FastInitOptions();
    options.pack_size = 256 * 1024;
    auto repo = Repository::Init(std::make_unique<LocalStorage>(dir_), "secret", options, clock_);
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    repo_ = std::move(*repo);
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(dir_);
  }
  std::unique_ptr<Repository> Reopen() {
    auto r = Repository::Open(std::make_unique<LocalStorage>(dir_), "secret");
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  fs::path dir_;
  FakeClock clock_{1700000000LL * 1000000000LL};
  std::unique_ptr<Repository> repo_;
};

TEST_F(WalStoreTest, PushFetchIdempotentAndConflicting) {
  const std::string seg = "000000010000000000000003";
  Bytes data = RandomBytes(3 << 20);
  ThreadPool pool(2, 4);
  {
    WalStore wal(*repo_, "db", clock_);
    auto r = wal.Push(seg, data, false, &pool);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(*r, PushOutcome::kStored);
  }
  // A fresh process (no index loaded) fetches through the record's locations.
  auto repo2 = Reopen();
  WalStore wal2(*repo2, "db", clock_);
  auto got = wal2.Fetch(seg);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, data);
  // Same bytes again: nothing stored. Other bytes: refused, the archive keeps the first.
  auto again = wal2.Push(seg, data);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, PushOutcome::kAlreadyStored);
  Bytes other = data;
  other[100] ^= 1;
  auto conflict = wal2.Push(seg, other);
  ASSERT_FALSE(conflict.ok());
  EXPECT_NE(conflict.status().message().find("different content"), std::string::npos);
  EXPECT_EQ(*wal2.Fetch(seg), data);
  EXPECT_EQ(wal2.Fetch("000000010000000000000004").status().code(), Code::kNotFound);
  auto names = wal2.List();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{seg});
}

TEST_F(WalStoreTest, PartialIsReplacedAndDamageIsCaught) {
  WalStore wal(*repo_, "db", clock_);
  const std::string partial = "000000010000000000000005.partial";
  ASSERT_TRUE(wal.Push(partial, RandomBytes(1000), true).ok());
  Bytes longer = RandomBytes(5000);
  ASSERT_TRUE(wal.Push(partial, longer, true).ok());
  EXPECT_EQ(*wal.Fetch(partial), longer);
  // Flip a byte of the pack: fetch fails, naming the file, and never returns wrong bytes.
  auto packs = repo_->storage().List(std::string(kDataDir));
  ASSERT_TRUE(packs.ok());
  for (const auto& p : *packs) {
    fs::path f = dir_ / p.key;
    std::string bytes;
    {
      std::ifstream in(f, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    bytes[bytes.size() / 2] ^= 0x40;
    fs::permissions(f, fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(f, std::ios::binary | std::ios::trunc) << bytes;
  }
  auto repo2 = Reopen();
  WalStore wal2(*repo2, "db", clock_);
  auto got = wal2.Fetch(partial);
  EXPECT_FALSE(got.ok());
}

TEST_F(WalStoreTest, PruneKeepsWalBlobs) {
  {
    WalStore wal(*repo_, "db", clock_);
    ASSERT_TRUE(wal.Push("000000010000000000000001", RandomBytes(600000)).ok());
    ASSERT_TRUE(wal.Push("00000002.history", AsBytes(std::string("1\t0/3000000\tno recovery target\n"))).ok());
  }
  auto repo2 = Reopen();
  auto report = PruneRepository(*repo2, PruneOptions{}, nullptr);
  ASSERT_TRUE(report.ok()) << report.status().message();
  auto repo3 = Reopen();
  ASSERT_TRUE(repo3->LoadIndex().ok());
  WalStore wal3(*repo3, "db", clock_);
  EXPECT_TRUE(wal3.Fetch("000000010000000000000001").ok());
  EXPECT_TRUE(wal3.Fetch("00000002.history").ok());
  auto check = CheckRepository(*repo3, CheckOptions{.read_data = true}, clock_, nullptr);
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << (check->errors.empty() ? "" : check->errors.front());
  EXPECT_EQ(check->wal_files, 2u);
}

// wal-stream pushes for hours from one process, and prune may run between two pushes: a chunk
// this process stored earlier (a zero-filled MiB, common at the end of a switched segment) may
// be in a pack prune has since deleted (its segment expired). Reusing it would leave the new
// record pointing at nothing; the push must store the chunk again.
TEST_F(WalStoreTest, ALongLivedPusherNeverReusesAChunkWhosePackIsGone) {
  Bytes zeros(1 << 20, 0);
  Bytes first = RandomBytes(1 << 20);
  first.insert(first.end(), zeros.begin(), zeros.end());
  Bytes second = RandomBytes(1 << 20);
  second.insert(second.end(), zeros.begin(), zeros.end());
  ThreadPool pool(2, 4);
  WalStore wal(*repo_, "db", clock_);
  ASSERT_TRUE(wal.Push("000000010000000000000001", first, false, &pool).ok());
  // As prune after expiring segment 1: its record and every pack go.
  ASSERT_TRUE(wal.Remove("000000010000000000000001").ok());
  auto packs = repo_->storage().List(std::string(kDataDir));
  ASSERT_TRUE(packs.ok());
  ASSERT_FALSE(packs->empty());
  for (const auto& o : *packs) ASSERT_TRUE(repo_->storage().Delete(o.key).ok());

  ASSERT_TRUE(wal.Push("000000010000000000000002", second, false, &pool).ok());
  auto repo2 = Reopen();
  ASSERT_TRUE(repo2->LoadIndex().ok());
  WalStore wal2(*repo2, "db", clock_);
  auto back = wal2.Fetch("000000010000000000000002");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == second);
}

TEST_F(WalStoreTest, ExpireKeepsWhatKeptPointsNeed) {
  WalStore wal(*repo_, "db", clock_);
  for (int i = 1; i <= 5; ++i)
    ASSERT_TRUE(wal.Push("00000001000000000000000" + std::to_string(i), RandomBytes(100)).ok());
  ASSERT_TRUE(wal.Push("00000002.history", RandomBytes(10)).ok());
  ASSERT_TRUE(wal.Push("000000010000000000000002.00000028.backup", RandomBytes(10)).ok());
  WalStore other(*repo_, "other", clock_);
  ASSERT_TRUE(other.Push("000000010000000000000001", RandomBytes(100)).ok());
  Point p;
  PointComponent c;
  c.name = "db";
  c.kind = "postgres";
  c.info = {{"start_wal", "000000010000000000000003"}};
  p.components.push_back(c);
  auto dry = ExpireWal(*repo_, {p}, true);
  ASSERT_TRUE(dry.ok()) << dry.status().message();
  EXPECT_EQ(dry->size(), 3u);  // segments 1 and 2 and the .backup file of 2
  EXPECT_EQ(wal.List()->size(), 7u);
  ASSERT_TRUE(ExpireWal(*repo_, {p}, false).ok());
  std::vector<std::string> want = {"000000010000000000000003", "000000010000000000000004",
                                   "000000010000000000000005", "00000002.history"};
  EXPECT_EQ(*wal.List(), want);
  EXPECT_EQ(other.List()->size(), 1u) << "a component no kept point holds keeps its WAL";
}

}  // namespace
}  // namespace reprise
