#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "components/files/previous.h"

namespace reprise::files {
namespace {

// A cursor over a fixed list of entries.
class ListCursor final : public ManifestCursor {
 public:
  explicit ListCursor(std::vector<nlohmann::json> entries) : entries_(std::move(entries)) {}
  Result<const nlohmann::json*> Next() override {
    if (i_ == entries_.size()) return static_cast<const nlohmann::json*>(nullptr);
    return &entries_[i_++];
  }

 private:
  std::vector<nlohmann::json> entries_;
  size_t i_ = 0;
};

TEST(WalkOrder, ComparesComponentByComponent) {
  EXPECT_TRUE(WalkOrderLess("a/b", "a-b"));  // plain string order says the opposite
  EXPECT_FALSE(WalkOrderLess("a-b", "a/b"));
  EXPECT_TRUE(WalkOrderLess("a", "a/b"));
  EXPECT_TRUE(WalkOrderLess("a/b/c", "a/bc"));
  EXPECT_FALSE(WalkOrderLess("a/b", "a/b"));
  EXPECT_TRUE(WalkOrderLess("a/\x01", "a/\xff"));
  std::vector<std::string> walk = {"r", "r/a", "r/a/x", "r/a-b", "r/a-b/y", "r/b"};
  EXPECT_TRUE(std::is_sorted(walk.begin(), walk.end(), WalkOrderLess));
}

TEST(PreviousManifest, FindsEntriesInWalkOrderAndSkipsMissingOnes) {
  std::vector<nlohmann::json> entries = {{{"path", "r"}},     {{"path", "r/a"}},
                                         {{"path", "r/a/x"}}, {{"path", "r/a-b"}},
                                         {{"path", "r/c"}}};
  PreviousManifest prev(std::make_unique<ListCursor>(entries));
  ASSERT_NE(prev.Find("r"), nullptr);
  EXPECT_EQ(prev.Find("r/0"), nullptr);  // new file: not found, cursor stays
  ASSERT_NE(prev.Find("r/a"), nullptr);
  ASSERT_NE(prev.Find("r/a-b"), nullptr);  // r/a/x skipped over
  EXPECT_EQ((*prev.Find("r/a-b"))["path"], "r/a-b");
  EXPECT_EQ(prev.Find("r/b"), nullptr);
  ASSERT_NE(prev.Find("r/c"), nullptr);
  EXPECT_EQ(prev.Find("r/d"), nullptr);
}

TEST(PreviousManifest, NoCursorFindsNothing) {
  PreviousManifest prev(nullptr);
  EXPECT_EQ(prev.Find("anything"), nullptr);
}

}  // namespace
}  // namespace reprise::files
