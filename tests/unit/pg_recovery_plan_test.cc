// Which WAL files a recovery fetches (PlanRecoveryWal): with append-only credentials,
// wal-stream cannot delete a segment's `.partial` once the complete segment is archived, so
// leftovers sit beside complete segments. They must never be chosen over the complete ones,
// and only the newest segment may come from a .partial.
#include "orchestrate/pg_recovery.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "repo/wal_store.h"
#include "storage/local/local_storage.h"
#include "test_repo.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

class PgRecoveryPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing_support::FreshTestDir("reprise-recovery-plan");
    InitOptions options = testing_support::FastInitOptions();
    auto repo = Repository::Init(std::make_unique<LocalStorage>(dir_), "secret", options, clock_);
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    repo_ = std::move(*repo);
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(dir_);
  }
  void Push(WalStore& wal, const std::string& name) {
    bool partial = name.ends_with(".partial");
    auto r = wal.Push(name, RandomBytes(1000), partial);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().message();
  }
  nlohmann::json Info() const {
    return {{"start_wal", "000000010000000000000003"},
            {"end_wal", "000000010000000000000003"},
            {"wal_segment_size", 16 << 20},
            {"component", "db"}};
  }

  fs::path dir_;
  FakeClock clock_{1700000000LL * 1000000000LL};
  std::unique_ptr<Repository> repo_;
};

TEST_F(PgRecoveryPlanTest, LeftoverPartialsBesideCompleteSegmentsAreIgnored) {
  WalStore wal(*repo_, "db", clock_);
  for (const char* name :
       {"000000010000000000000003", "000000010000000000000004.partial",
        "000000010000000000000004", "000000010000000000000005.partial",
        "000000010000000000000005", "000000010000000000000006.partial"}) {
    Push(wal, name);
  }
  RecoveryTarget to_end{.kind = RecoveryTarget::Kind::kEnd};
  auto needs = PlanRecoveryWal(wal, Info(), to_end);
  ASSERT_TRUE(needs.ok()) << needs.status().message();
  EXPECT_EQ(needs->files,
            (std::vector<std::string>{"000000010000000000000003", "000000010000000000000004",
                                      "000000010000000000000005",
                                      "000000010000000000000006.partial"}));
  // Immediate: up to the point's end only, no partial at all.
  auto immediate = PlanRecoveryWal(wal, Info(), RecoveryTarget{});
  ASSERT_TRUE(immediate.ok()) << immediate.status().message();
  EXPECT_EQ(immediate->files, (std::vector<std::string>{"000000010000000000000003"}));
}

TEST_F(PgRecoveryPlanTest, APartialInTheMiddleIsAGapNotASegment) {
  WalStore wal(*repo_, "db", clock_);
  for (const char* name : {"000000010000000000000003", "000000010000000000000004.partial",
                           "000000010000000000000005"}) {
    Push(wal, name);
  }
  auto needs = PlanRecoveryWal(wal, Info(), RecoveryTarget{.kind = RecoveryTarget::Kind::kEnd});
  ASSERT_FALSE(needs.ok());
  EXPECT_EQ(needs.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(needs.status().message().find("'000000010000000000000004' is missing"),
            std::string::npos)
      << needs.status().message();
}

}  // namespace
}  // namespace reprise
