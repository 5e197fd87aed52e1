#include "repo/retention.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "common/duration.h"

namespace reprise {
namespace {

namespace chr = std::chrono;

// Floor division, so times before 1970 fall in the right day.
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

struct Civil {
  int year;
  unsigned month;
  unsigned day;
  int64_t hour;
  chr::sys_days days;
};

Civil ToCivil(int64_t unix) {
  int64_t day_number = FloorDiv(unix, 86400);
  chr::sys_days days{chr::days(day_number)};
  chr::year_month_day ymd{days};
  return Civil{static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
               static_cast<unsigned>(ymd.day()), (unix - day_number * 86400) / 3600, days};
}

std::string HourBucket(const Civil& c) {
  return fmt::format("{:04}-{:02}-{:02}T{:02}", c.year, c.month, c.day, c.hour);
}
std::string DayBucket(const Civil& c) {
  return fmt::format("{:04}-{:02}-{:02}", c.year, c.month, c.day);
}
// ISO 8601: weeks start on Monday; week 1 is the week holding the year's first Thursday, so
// the week's year is the year of its Thursday.
std::string WeekBucket(const Civil& c) {
  chr::weekday wd{c.days};
  unsigned since_monday = wd.iso_encoding() - 1;  // Monday = 0 ... Sunday = 6
  chr::sys_days thursday = c.days - chr::days(since_monday) + chr::days(3);
  chr::year_month_day thu{thursday};
  chr::sys_days jan1{thu.year() / chr::January / 1};
  int64_t week = (thursday - jan1).count() / 7 + 1;
  return fmt::format("{:04}-W{:02}", static_cast<int>(thu.year()), week);
}
std::string MonthBucket(const Civil& c) { return fmt::format("{:04}-{:02}", c.year, c.month); }
std::string YearBucket(const Civil& c) { return fmt::format("{:04}", c.year); }

struct BucketRule {
  std::string_view label;  // reason prefix
  int remaining;
  std::function<std::string(const Civil&)> bucket;
  std::optional<std::string> last;
};

}  // namespace

bool RetentionPolicy::empty() const {
  return keep_last <= 0 && keep_hourly <= 0 && keep_daily <= 0 && keep_weekly <= 0 &&
         keep_monthly <= 0 && keep_yearly <= 0 && keep_within_seconds <= 0;
}

std::string RetentionPolicy::ToString() const {
  std::vector<std::string> parts;
  auto add = [&](std::string_view name, int n) {
    if (n > 0) parts.push_back(fmt::format("{} {}", name, n));
  };
  add("keep_last", keep_last);
  add("keep_hourly", keep_hourly);
  add("keep_daily", keep_daily);
  add("keep_weekly", keep_weekly);
  add("keep_monthly", keep_monthly);
  add("keep_yearly", keep_yearly);
  if (keep_within_seconds > 0) {
    parts.push_back("keep_within " + FormatDuration(chr::seconds(keep_within_seconds)));
  }
  if (parts.empty()) return "empty";
  return fmt::format("{}", fmt::join(parts, ", "));
}

RetentionDecision ApplyRetention(std::vector<PointSummary> points, const RetentionPolicy& policy,
                                 int64_t now_unix) {
  std::sort(points.begin(), points.end(), [](const PointSummary& a, const PointSummary& b) {
    if (a.time_unix != b.time_unix) return a.time_unix > b.time_unix;
    if (a.subsec_ns != b.subsec_ns) return a.subsec_ns > b.subsec_ns;
    return a.id > b.id;
  });

  RetentionDecision decision;
  if (policy.empty()) {
    for (auto& p : points) decision.keep.push_back({std::move(p), {"no policy"}});
    return decision;
  }

  std::vector<BucketRule> rules;
  rules.push_back({"hourly", policy.keep_hourly, HourBucket, std::nullopt});
  rules.push_back({"daily", policy.keep_daily, DayBucket, std::nullopt});
  rules.push_back({"weekly", policy.keep_weekly, WeekBucket, std::nullopt});
  rules.push_back({"monthly", policy.keep_monthly, MonthBucket, std::nullopt});
  rules.push_back({"yearly", policy.keep_yearly, YearBucket, std::nullopt});

  int last_remaining = policy.keep_last;
  const std::string within_reason =
      "within " + FormatDuration(chr::seconds(policy.keep_within_seconds));
  // Saturating now - keep_within: a policy of "keep_within 300y" must not overflow.
  const int64_t within_cutoff =
      now_unix < std::numeric_limits<int64_t>::min() + policy.keep_within_seconds
          ? std::numeric_limits<int64_t>::min()
          : now_unix - policy.keep_within_seconds;
  for (auto& p : points) {
    std::vector<std::string> reasons;
    if (last_remaining > 0) {
      reasons.push_back("last");
      --last_remaining;
    }
    Civil civil = ToCivil(p.time_unix);
    for (auto& rule : rules) {
      if (rule.remaining <= 0) continue;
      std::string bucket = rule.bucket(civil);
      // Newest first: the first point seen in a bucket is that bucket's newest.
      if (rule.last == bucket) continue;
      reasons.push_back(fmt::format("{} {}", rule.label, bucket));
      rule.last = std::move(bucket);
      --rule.remaining;
    }
    if (policy.keep_within_seconds > 0 && p.time_unix >= within_cutoff) {
      reasons.push_back(within_reason);
    }
    if (reasons.empty()) {
      decision.remove.push_back(std::move(p));
    } else {
      decision.keep.push_back({std::move(p), std::move(reasons)});
    }
  }
  return decision;
}

}  // namespace reprise
