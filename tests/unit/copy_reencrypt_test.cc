// The re-encrypting `copy` (repositories with different master keys), through the repo API:
// block map chains (full map, delta map, reused map) survive with new ids and stay chains,
// content-defined contents and entries without contents too; the copy records `copied_from`,
// a second run copies nothing; WAL records are re-sealed with recomputed digests; a damaged
// source blob stops the copy before any point is written.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/clock.h"
#include "common/thread_pool.h"
#include "repo/block_map.h"
#include "repo/check.h"
#include "repo/content.h"
#include "repo/copy.h"
#include "repo/format.h"
#include "repo/wal_store.h"
#include "storage/local/local_storage.h"
#include "test_repo.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

class CopyReencryptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testing_support::FreshTestDir("reprise-recrypt-test");
    from_ = Init("a", "first secret");
    to_ = Init("b", "second secret");
    ASSERT_TRUE(from_ && to_);
    ASSERT_FALSE(SameMasterKey(*from_, *to_));
  }
  void TearDown() override {
    from_.reset();
    to_.reset();
    fs::remove_all(base_);
  }

  std::unique_ptr<Repository> Init(const std::string& name, const std::string& pass) {
    InitOptions options = testing_support::FastInitOptions();
    options.pack_size = 256 * 1024;
    options.chunker = ChunkerParams{.min_size = 4096, .avg_size = 16384, .max_size = 65536};
    auto repo = Repository::Init(std::make_unique<LocalStorage>(base_ / name), pass, options,
                                 clock_);
    EXPECT_TRUE(repo.ok()) << repo.status().message();
    return repo.ok() ? std::move(*repo) : nullptr;
  }

  // A point of `repo` with three entries: a relation file (fixed blocks; a delta against
  // `previous` when given), a plain file (content-defined chunks) and a directory (none).
  Point BackupOnce(Repository& repo, const Bytes& rel, const Bytes& plain,
                   const nlohmann::json& previous, int64_t t) {
    ThreadPool pool(2, 8);
    RepoBackupSink sink(repo, pool);
    EXPECT_TRUE(sink.AddEntry({{"path", "dir"}, {"type", "dir"}}, {}).ok());
    auto w = sink.NewContent(ContentOptions{.fixed_block = 8192, .previous = previous});
    EXPECT_TRUE(w->Write(rel).ok());
    EXPECT_TRUE(sink.AddEntry({{"path", "dir/rel"}, {"type", "file"}}, {w->Close()}).ok());
    auto c = sink.NewContent();
    EXPECT_TRUE(c->Write(plain).ok());
    EXPECT_TRUE(sink.AddEntry({{"path", "dir/plain"}, {"type", "file"}}, {c->Close()}).ok());
    auto manifest = sink.Finish();
    EXPECT_TRUE(manifest.ok()) << manifest.status().message();
    EXPECT_TRUE(repo.Flush().ok());
    Point p;
    p.time_ns = t;
    p.host = "db1";
    p.tags = {"nightly"};
    PointComponent pc;
    pc.name = "db";
    pc.kind = "postgres";
    pc.manifest = *manifest;
    pc.entries = sink.entries();
    pc.info = {{"mode", "physical"}};
    p.components.push_back(pc);
    auto id = repo.SavePoint(p);
    EXPECT_TRUE(id.ok());
    p.id = *id;
    return p;
  }

  std::vector<nlohmann::json> Entries(Repository& repo, const Point& p) {
    std::vector<nlohmann::json> out;
    ThreadPool pool(2, 8);
    RepoRestoreSource src(repo, p.components.at(0), pool);
    Status st = src.ForEachEntry([&](const nlohmann::json& e) {
      out.push_back(e);
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.message();
    return out;
  }

  Bytes Read(Repository& repo, const Point& p, const nlohmann::json& content) {
    Bytes out;
    ThreadPool pool(2, 8);
    RepoRestoreSource src(repo, p.components.at(0), pool);
    Status st = src.ReadContent(content, [&](ByteView b) {
      out.insert(out.end(), b.begin(), b.end());
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.message();
    return out;
  }

  BlockMap MapOf(Repository& repo, const nlohmann::json& content) {
    auto id = Id::FromHex(content.at("map").get<std::string>());
    EXPECT_TRUE(id.ok());
    auto bytes = repo.ReadBlob(*id);
    EXPECT_TRUE(bytes.ok()) << bytes.status().message();
    auto map = DecodeBlockMap(bytes.ok() ? ByteView(*bytes) : ByteView());
    EXPECT_TRUE(map.ok()) << map.status().message();
    return map.ok() ? *map : BlockMap{};
  }

  // The copies of `to_`, by the id of the source point they were copied from.
  std::map<std::string, Point> CopiesByOrigin() {
    std::map<std::string, Point> out;
    auto points = to_->ListPoints();
    EXPECT_TRUE(points.ok());
    if (points.ok())
      for (auto& p : *points) out[p.copied_from] = p;
    return out;
  }

  fs::path base_;
  FakeClock clock_{1700000000LL * 1000000000LL};
  std::unique_ptr<Repository> from_, to_;
};

TEST_F(CopyReencryptTest, BlockMapChainsSurviveWithNewIds) {
  const size_t pages = 256;  // 2 MiB
  Bytes rel = RandomBytes(pages * 8192 + 1000), plain = RandomBytes(300 * 1024);
  Bytes rel1 = rel, plain1 = plain;
  Point p1 = BackupOnce(*from_, rel, plain, nullptr, 1);
  auto c1 = Entries(*from_, p1).at(1)["contents"][0];
  ASSERT_TRUE(c1.is_object()) << c1.dump();
  for (size_t i = 0; i < 8; ++i) rel[(i * 31 + 5) % pages * 8192 + 7] ^= 0x5a;
  Bytes rel2 = rel;
  Point p2 = BackupOnce(*from_, rel, plain, c1, 2);
  auto c2 = Entries(*from_, p2).at(1)["contents"][0];
  ASSERT_TRUE(MapOf(*from_, c2).base) << "the second point must hold a delta map";
  Point p3 = BackupOnce(*from_, rel, plain, c2, 3);  // unchanged: the map is reused
  ASSERT_EQ(Entries(*from_, p3).at(1)["contents"][0], c2);

  auto report = CopyPoints(*from_, *to_, CopyOptions{}, nullptr);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_TRUE(report->reencrypted);
  EXPECT_EQ(report->points_copied, 3u);
  EXPECT_GT(report->blobs_copied, 0u);
  EXPECT_GT(report->packs_written, 0u);
  ASSERT_EQ(report->copied_from.size(), 3u);
  EXPECT_EQ(report->copied_from[0], p1.id);
  EXPECT_EQ(report->copied_from[2], p3.id);

  auto copies = CopiesByOrigin();
  ASSERT_EQ(copies.size(), 3u);
  const Point& q1 = copies[p1.id.Hex()];
  const Point& q2 = copies[p2.id.Hex()];
  const Point& q3 = copies[p3.id.Hex()];
  EXPECT_NE(q1.id, p1.id);
  EXPECT_EQ(q2.time_ns, 2);
  EXPECT_EQ(q2.host, "db1");
  EXPECT_EQ(q2.tags, std::vector<std::string>{"nightly"});
  EXPECT_EQ(q2.components.at(0).info, p2.components.at(0).info);

  // Same entries (but for the ids), same bytes.
  auto e1 = Entries(*to_, q1), e2 = Entries(*to_, q2), e3 = Entries(*to_, q3);
  ASSERT_EQ(e2.size(), 3u);
  EXPECT_EQ(e2[0], Entries(*from_, p2)[0]);  // the directory, untouched
  auto d1 = e1.at(1)["contents"][0], d2 = e2[1]["contents"][0], d3 = e3.at(1)["contents"][0];
  ASSERT_TRUE(d2.is_object()) << d2.dump();
  EXPECT_NE(d2["map"], c2["map"]);
  EXPECT_EQ(d2["size"], c2["size"]);
  EXPECT_EQ(Read(*to_, q1, d1), rel1);
  EXPECT_EQ(Read(*to_, q2, d2), rel2);
  EXPECT_EQ(Read(*to_, q3, d3), rel2);
  EXPECT_EQ(Read(*to_, q1, e1.at(2)["contents"][0]), plain1);
  EXPECT_EQ(Read(*to_, q3, e3.at(2)["contents"][0]), plain);
  // Still a chain: the delta map names the copy of the full map; the reused map is shared.
  BlockMap m2 = MapOf(*to_, d2);
  ASSERT_TRUE(m2.base);
  EXPECT_EQ(m2.base->Hex(), d1["map"].get<std::string>());
  EXPECT_EQ(m2.depth, 1u);
  EXPECT_EQ(m2.entries.size(), MapOf(*from_, c2).entries.size());
  EXPECT_EQ(d3, d2);

  // Nothing of the target is named by a source id.
  for (const Point& q : {q1, q2, q3}) {
    size_t visited = 0;
    ASSERT_TRUE(VisitPointBlobs(*to_, q.components[0], [&](const Id& id, BlobType) {
                  EXPECT_FALSE(from_->index().Has(id)) << id.Hex();
                  ++visited;
                }).ok());
    EXPECT_GT(visited, 3u);
  }
  auto check = CheckRepository(*to_, CheckOptions{.read_data = true}, clock_, nullptr);
  ASSERT_TRUE(check.ok()) << check.status().message();
  EXPECT_TRUE(check->ok()) << (check->errors.empty() ? "" : check->errors[0]);
  EXPECT_EQ(check->points, 3u);

  // Idempotent: nothing to do the second time.
  auto again = CopyPoints(*from_, *to_, CopyOptions{}, nullptr);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->points_copied, 0u);
  EXPECT_EQ(again->points_skipped, 3u);
  EXPECT_EQ(again->blobs_copied, 0u);
  EXPECT_EQ(CopiesByOrigin().size(), 3u);

  // And back: the source's points are where the copies came from, so nothing returns.
  auto back = CopyPoints(*to_, *from_, CopyOptions{}, nullptr);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->points_copied, 0u);
  EXPECT_EQ(back->points_skipped, 3u);
}

TEST_F(CopyReencryptTest, WalRecordsAreResealedUnderTheTargetKey) {
  WalStore src(*from_, "db", clock_);
  Bytes seg1 = RandomBytes(200 * 1024), seg2 = RandomBytes(150 * 1024);
  Bytes part = RandomBytes(50 * 1024);
  ASSERT_TRUE(src.Push("000000010000000000000001", seg1).ok());
  ASSERT_TRUE(src.Push("000000010000000000000002", seg2).ok());
  ASSERT_TRUE(src.Push("000000010000000000000003.partial", part, true).ok());

  auto report = CopyPoints(*from_, *to_, CopyOptions{}, nullptr);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->wal_files_copied, 3u);
  WalStore dst(*to_, "db", clock_);
  auto f1 = dst.Fetch("000000010000000000000001");
  ASSERT_TRUE(f1.ok()) << f1.status().message();
  EXPECT_EQ(*f1, seg1);
  auto r2 = dst.Load("000000010000000000000002");
  ASSERT_TRUE(r2.ok()) << r2.status().message();  // the digest is checked on load
  auto s2 = src.Load("000000010000000000000002");
  ASSERT_TRUE(s2.ok());
  EXPECT_NE(r2->digest, s2->digest);
  EXPECT_EQ(r2->time_ns, s2->time_ns);
  EXPECT_EQ(r2->at.size(), r2->chunks.size());  // locations recomputed in the target
  EXPECT_EQ(*dst.Fetch("000000010000000000000002"), seg2);
  EXPECT_EQ(*dst.Fetch("000000010000000000000003.partial"), part);

  // Again: nothing (the partial record is recognised though its bytes differ).
  auto again = CopyPoints(*from_, *to_, CopyOptions{}, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->wal_files_copied, 0u);
  // The partial segment grows: its new record replaces the copy.
  clock_.Advance(5000000000LL);
  Bytes grown = part;
  Bytes more = RandomBytes(30 * 1024);
  grown.insert(grown.end(), more.begin(), more.end());
  ASSERT_TRUE(src.Push("000000010000000000000003.partial", grown, true).ok());
  auto third = CopyPoints(*from_, *to_, CopyOptions{}, nullptr);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->wal_files_copied, 1u);
  EXPECT_EQ(*dst.Fetch("000000010000000000000003.partial"), grown);
  auto check = CheckRepository(*to_, CheckOptions{.read_data = true}, clock_, nullptr);
  ASSERT_TRUE(check.ok()) << check.status().message();
  EXPECT_TRUE(check->ok()) << (check->errors.empty() ? "" : check->errors[0]);
}

TEST_F(CopyReencryptTest, DamagedSourceBlobStopsTheCopy) {
  Bytes rel = RandomBytes(64 * 8192), plain = RandomBytes(200 * 1024);
  Point p = BackupOnce(*from_, rel, plain, nullptr, 1);
  // Flip a byte inside the first blob of every data pack of the source.
  size_t damaged = 0;
  for (const auto& e : fs::recursive_directory_iterator(base_ / "a" / "data")) {
    if (!e.is_regular_file() || e.file_size() < 4096) continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    char c = 0;
    f.read(&c, 1);
    c ^= 0x5a;
    f.seekp(100);
    f.write(&c, 1);
    ++damaged;
  }
  ASSERT_GT(damaged, 0u);
  auto report = CopyPoints(*from_, *to_, CopyOptions{}, nullptr);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kCorruption);
  EXPECT_NE(report.status().message().find(p.id.Short()), std::string::npos)
      << report.status().message();
  EXPECT_NE(report.status().message().find("HINT"), std::string::npos);
  auto points = to_->ListPoints();
  ASSERT_TRUE(points.ok());
  EXPECT_TRUE(points->empty());
}

}  // namespace
}  // namespace reprise
