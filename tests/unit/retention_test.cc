#include "repo/retention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>

namespace reprise {
namespace {

// Test-side calendar through libc (timegm/gmtime_r/strftime), independent of the std::chrono
// arithmetic in retention.cc.
int64_t At(const std::string& iso) {  // "2026-11-20T12:00:00" or "2026-11-20"
  std::tm tm{};
  tm.tm_hour = 12;
  int n = std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
  EXPECT_TRUE(n == 3 || n == 6) << iso;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm));
}

std::string Strf(int64_t t, const char* format) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

PointSummary P(const std::string& id, int64_t t) { return PointSummary{id, t, "host", {}}; }

std::set<std::string> KeptIds(const RetentionDecision& d) {
  std::set<std::string> ids;
  for (const auto& [p, reasons] : d.keep) ids.insert(p.id);
  return ids;
}

std::vector<std::string> ReasonsOf(const RetentionDecision& d, const std::string& id) {
  for (const auto& [p, reasons] : d.keep) {
    if (p.id == id) return reasons;
  }
  return {};
}

// One point per day at noon, ids are the dates.
std::vector<PointSummary> Daily(const std::string& first, int count) {
  std::vector<PointSummary> points;
  int64_t t = At(first);
  for (int i = 0; i < count; ++i, t += 86400) points.push_back(P(Strf(t, "%Y-%m-%d"), t));
  return points;
}

TEST(RetentionTest, NinetyDailyPointsDailyWeeklyMonthly) {
  // 2026-08-23 .. 2026-11-20 (a Friday), one point a day.
  std::vector<PointSummary> points = Daily("2026-08-23", 90);
  ASSERT_EQ(points.back().id, "2026-11-20");
  RetentionPolicy policy{.keep_daily = 7, .keep_weekly = 4, .keep_monthly = 3};
  RetentionDecision d = ApplyRetention(points, policy, At("2026-11-21T00:00:00"));

  // Worked out on a calendar:
  //   daily 7:   Nov 14..20
  //   weekly 4:  newest of ISO weeks 47 (Nov 16-22) -> Nov 20; 46 -> Sun Nov 15;
  //              45 -> Sun Nov 8; 44 -> Sun Nov 1
  //   monthly 3: Nov -> Nov 20; Oct -> Oct 31; Sep -> Sep 30
  std::set<std::string> expected = {"2026-11-14", "2026-11-15", "2026-11-16", "2026-11-17",
                                    "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-08",
                                    "2026-11-01", "2026-10-31", "2026-09-30"};
  EXPECT_EQ(KeptIds(d), expected);
  EXPECT_EQ(d.keep.size() + d.remove.size(), 90u);
  EXPECT_EQ(d.remove.size(), 90u - expected.size());

  EXPECT_EQ(ReasonsOf(d, "2026-11-20"),
            (std::vector<std::string>{"daily 2026-11-20", "weekly 2026-W47", "monthly 2026-11"}));
  EXPECT_EQ(ReasonsOf(d, "2026-11-15"),
            (std::vector<std::string>{"daily 2026-11-15", "weekly 2026-W46"}));
  EXPECT_EQ(ReasonsOf(d, "2026-11-01"), (std::vector<std::string>{"weekly 2026-W44"}));
  EXPECT_EQ(ReasonsOf(d, "2026-10-31"), (std::vector<std::string>{"monthly 2026-10"}));
}

TEST(RetentionTest, OutputIsNewestFirst) {
  std::vector<PointSummary> points = Daily("2026-01-01", 30);
  std::shuffle(points.begin(), points.end(), std::mt19937(7));
  RetentionDecision d = ApplyRetention(points, RetentionPolicy{.keep_daily = 10}, 0);
  ASSERT_EQ(d.keep.size(), 10u);
  ASSERT_EQ(d.remove.size(), 20u);
  for (size_t i = 1; i < d.keep.size(); ++i) {
    EXPECT_GT(d.keep[i - 1].first.time_unix, d.keep[i].first.time_unix);
  }
  for (size_t i = 1; i < d.remove.size(); ++i) {
    EXPECT_GT(d.remove[i - 1].time_unix, d.remove[i].time_unix);
  }
  EXPECT_EQ(d.keep.front().first.id, "2026-01-30");
  EXPECT_EQ(d.remove.front().id, "2026-01-20");
}

TEST(RetentionTest, EmptyPolicyKeepsEverything) {
  std::vector<PointSummary> points = Daily("2026-01-01", 5);
  RetentionPolicy policy;
  EXPECT_TRUE(policy.empty());
  RetentionDecision d = ApplyRetention(points, policy, At("2030-01-01"));
  EXPECT_EQ(d.keep.size(), 5u);
  EXPECT_TRUE(d.remove.empty());
  for (const auto& [p, reasons] : d.keep) {
    EXPECT_EQ(reasons, std::vector<std::string>{"no policy"});
  }
  EXPECT_FALSE(RetentionPolicy{.keep_last = 1}.empty());
  EXPECT_FALSE(RetentionPolicy{.keep_within_seconds = 1}.empty());
}

TEST(RetentionTest, KeepLast) {
  std::vector<PointSummary> points = {P("c", 300), P("a", 100), P("e", 500), P("b", 200),
                                      P("d", 400)};
  RetentionDecision d = ApplyRetention(points, RetentionPolicy{.keep_last = 3}, 1000);
  EXPECT_EQ(KeptIds(d), (std::set<std::string>{"c", "d", "e"}));
  EXPECT_EQ(ReasonsOf(d, "e"), std::vector<std::string>{"last"});
  ASSERT_EQ(d.remove.size(), 2u);
  EXPECT_EQ(d.remove[0].id, "b");
  EXPECT_EQ(d.remove[1].id, "a");
}

TEST(RetentionTest, FewerPointsThanCountKeepsAll) {
  std::vector<PointSummary> points = Daily("2026-03-01", 3);
  RetentionDecision d =
      ApplyRetention(points, RetentionPolicy{.keep_last = 10, .keep_daily = 10}, 0);
  EXPECT_EQ(d.keep.size(), 3u);
  EXPECT_TRUE(d.remove.empty());
}

TEST(RetentionTest, KeepWithinIsInclusiveAndRelativeToNow) {
  int64_t now = At("2026-06-15T12:00:00");
  std::vector<PointSummary> points = {P("exactly-7d", now - 7 * 86400),
                                      P("older", now - 7 * 86400 - 1), P("recent", now - 60),
                                      P("future", now + 3600)};
  RetentionDecision d =
      ApplyRetention(points, RetentionPolicy{.keep_within_seconds = 7 * 86400}, now);
  EXPECT_EQ(KeptIds(d), (std::set<std::string>{"exactly-7d", "recent", "future"}));
  EXPECT_EQ(ReasonsOf(d, "recent"), std::vector<std::string>{"within 1w"});
  // Relative to now, not to the newest point: old points all go.
  RetentionDecision stale =
      ApplyRetention(points, RetentionPolicy{.keep_within_seconds = 60}, now + 86400 * 365);
  EXPECT_TRUE(stale.keep.empty());
  EXPECT_EQ(stale.remove.size(), 4u);
}

TEST(RetentionTest, HugeKeepWithinDoesNotOverflow) {
  std::vector<PointSummary> points = {P("old", std::numeric_limits<int64_t>::min() / 2),
                                      P("new", 0)};
  RetentionPolicy policy{.keep_within_seconds = std::numeric_limits<int64_t>::max()};
  RetentionDecision d = ApplyRetention(points, policy, -1000);
  EXPECT_EQ(d.keep.size(), 2u);
}

TEST(RetentionTest, Hourly) {
  // Every 20 minutes from 09:00 to 12:40: hours 09, 10, 11, 12.
  std::vector<PointSummary> points;
  for (int64_t t = At("2026-02-03T09:00:00"); t <= At("2026-02-03T12:40:00"); t += 1200) {
    points.push_back(P(Strf(t, "%H:%M"), t));
  }
  RetentionDecision d = ApplyRetention(points, RetentionPolicy{.keep_hourly = 3}, 0);
  EXPECT_EQ(KeptIds(d), (std::set<std::string>{"12:40", "11:40", "10:40"}));
  EXPECT_EQ(ReasonsOf(d, "11:40"), std::vector<std::string>{"hourly 2026-02-03T11"});
}

TEST(RetentionTest, IsoWeeksCrossYearBoundary) {
  // 2026-12-28 (Mon) .. 2027-01-03 (Sun) is ISO week 2026-W53; 2027-01-04 starts 2027-W01.
  std::vector<PointSummary> points = Daily("2026-12-27", 9);  // Sun Dec 27 .. Mon Jan 4
  RetentionDecision d = ApplyRetention(points, RetentionPolicy{.keep_weekly = 3}, 0);
  EXPECT_EQ(KeptIds(d), (std::set<std::string>{"2027-01-04", "2027-01-03", "2026-12-27"}));
  EXPECT_EQ(ReasonsOf(d, "2027-01-04"), std::vector<std::string>{"weekly 2027-W01"});
  EXPECT_EQ(ReasonsOf(d, "2027-01-03"), std::vector<std::string>{"weekly 2026-W53"});
  EXPECT_EQ(ReasonsOf(d, "2026-12-27"), std::vector<std::string>{"weekly 2026-W52"});
}

TEST(RetentionTest, YearlyAndMonthly) {
  std::vector<PointSummary> points = {P("a", At("2024-12-31T23:59:59")),
                                      P("b", At("2025-01-01T00:00:00")), P("c", At("2025-06-01")),
                                      P("d", At("2026-02-01")), P("e", At("2026-02-15"))};
  RetentionDecision yearly = ApplyRetention(points, RetentionPolicy{.keep_yearly = 2}, 0);
  EXPECT_EQ(KeptIds(yearly), (std::set<std::string>{"e", "c"}));
  EXPECT_EQ(ReasonsOf(yearly, "c"), std::vector<std::string>{"yearly 2025"});
  RetentionDecision monthly = ApplyRetention(points, RetentionPolicy{.keep_monthly = 3}, 0);
  EXPECT_EQ(KeptIds(monthly), (std::set<std::string>{"e", "c", "b"}));
}

TEST(RetentionTest, BeforeEpochUsesUtcDays) {
  std::vector<PointSummary> points = {P("before", -1), P("epoch", 0)};
  RetentionDecision one = ApplyRetention(points, RetentionPolicy{.keep_daily = 1}, 0);
  EXPECT_EQ(KeptIds(one), std::set<std::string>{"epoch"});
  RetentionDecision two = ApplyRetention(points, RetentionPolicy{.keep_daily = 2}, 0);
  EXPECT_EQ(ReasonsOf(two, "before"), std::vector<std::string>{"daily 1969-12-31"});
}

TEST(RetentionTest, TiesBrokenByIdDescending) {
  std::vector<PointSummary> points = {P("aaa", 100), P("bbb", 100)};
  RetentionDecision d = ApplyRetention(points, RetentionPolicy{.keep_last = 1}, 0);
  EXPECT_EQ(KeptIds(d), std::set<std::string>{"bbb"});
}

TEST(RetentionTest, PolicyToString) {
  EXPECT_EQ(RetentionPolicy{}.ToString(), "empty");
  RetentionPolicy p{.keep_daily = 7, .keep_weekly = 4, .keep_within_seconds = 2 * 86400};
  EXPECT_EQ(p.ToString(), "keep_daily 7, keep_weekly 4, keep_within 2d");
}

// A second, differently built implementation: group points into buckets with strftime, take the
// N buckets with the newest points, keep the newest point of each.
std::set<std::string> Reference(std::vector<PointSummary> points, const RetentionPolicy& policy,
                                int64_t now) {
  std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) {
    return a.time_unix != b.time_unix ? a.time_unix > b.time_unix : a.id > b.id;
  });
  std::set<std::string> keep;
  for (int i = 0; i < policy.keep_last && i < static_cast<int>(points.size()); ++i) {
    keep.insert(points[i].id);
  }
  auto by_bucket = [&](int count, const char* format) {
    std::map<std::string, const PointSummary*> newest;  // bucket -> newest point
    for (const auto& p : points) newest.emplace(Strf(p.time_unix, format), &p);
    std::vector<const PointSummary*> heads;
    for (const auto& [bucket, p] : newest) heads.push_back(p);
    std::sort(heads.begin(), heads.end(), [](const auto* a, const auto* b) {
      return a->time_unix != b->time_unix ? a->time_unix > b->time_unix : a->id > b->id;
    });
    for (int i = 0; i < count && i < static_cast<int>(heads.size()); ++i) {
      keep.insert(heads[i]->id);
    }
  };
  by_bucket(policy.keep_hourly, "%Y-%m-%dT%H");
  by_bucket(policy.keep_daily, "%Y-%m-%d");
  by_bucket(policy.keep_weekly, "%G-W%V");
  by_bucket(policy.keep_monthly, "%Y-%m");
  by_bucket(policy.keep_yearly, "%Y");
  if (policy.keep_within_seconds > 0) {
    for (const auto& p : points) {
      if (p.time_unix >= now - policy.keep_within_seconds) keep.insert(p.id);
    }
  }
  return keep;
}

TEST(RetentionTest, AgreesWithReferenceOnRandomHistories) {
  std::mt19937_64 rng(20261120);
  const int64_t start = At("2023-01-01T00:00:00");
  const int64_t span = 3 * 365 * 86400LL;
  for (int round = 0; round < 200; ++round) {
    std::vector<PointSummary> points;
    int n = std::uniform_int_distribution<int>(0, 300)(rng);
    // Dense rounds (hours apart) exercise hourly buckets; sparse ones weeks and years.
    int64_t window = (round % 3 == 0) ? 10 * 86400 : span;
    for (int i = 0; i < n; ++i) {
      int64_t t = start + std::uniform_int_distribution<int64_t>(0, window)(rng);
      if (i > 0 && i % 17 == 0) t = points[i - 1].time_unix;  // some exact ties
      points.push_back(P("p" + std::to_string(i), t));
    }
    auto count = [&]() { return std::uniform_int_distribution<int>(0, 12)(rng); };
    RetentionPolicy policy{
        .keep_last = count(),
        .keep_hourly = count(),
        .keep_daily = count(),
        .keep_weekly = count(),
        .keep_monthly = count(),
        .keep_yearly = count(),
        .keep_within_seconds = std::uniform_int_distribution<int64_t>(0, 30 * 86400)(rng)};
    int64_t now = start + window + std::uniform_int_distribution<int64_t>(0, 20 * 86400)(rng);
    RetentionDecision d = ApplyRetention(points, policy, now);
    std::set<std::string> expected;
    if (policy.empty()) {
      for (const auto& p : points) expected.insert(p.id);
    } else {
      expected = Reference(points, policy, now);
    }
    ASSERT_EQ(KeptIds(d), expected) << "round " << round << " policy " << policy.ToString();
    ASSERT_EQ(d.keep.size() + d.remove.size(), points.size());
    for (const auto& [p, reasons] : d.keep) ASSERT_FALSE(reasons.empty());
  }
}

}  // namespace
}  // namespace reprise

namespace reprise {
namespace {

TEST(RetentionSubsecond, PointsWithinOneSecondKeepTheirOrder) {
  // Backups seconds apart are common in scripts; the id must not decide which is newest.
  PointSummary older{"ffff", 1000, "h", {}, 100};
  PointSummary newer{"0000", 1000, "h", {}, 900};
  RetentionPolicy keep_one;
  keep_one.keep_last = 1;
  auto d = ApplyRetention({older, newer}, keep_one, 2000);
  ASSERT_EQ(d.keep.size(), 1u);
  EXPECT_EQ(d.keep[0].first.id, "0000");
}

}  // namespace
}  // namespace reprise
