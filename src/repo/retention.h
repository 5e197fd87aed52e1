// Retention: which restore points a prune keeps. A pure function of the points, the policy
// and the current time (injected), with the semantics of restic's `forget`:
//
// Points are considered newest first (by time_unix, then subsec_ns; ties broken by id,
// descending). Each rule keeps points
// independently; a point is kept when at least one rule keeps it, and records every reason.
//   keep_last N     the N newest points.
//   keep_hourly N   the newest point of each of the N most recent hours that have points;
//   keep_daily N    ... days; keep_weekly N ... ISO 8601 weeks (Monday first);
//   keep_monthly N  ... calendar months; keep_yearly N ... calendar years. All buckets in UTC.
//   keep_within D   every point whose time is >= now - D (points "in the future" too).
// A count <= 0 disables its rule. Hosts and tags are not looked at: callers group points
// (e.g. per plan) and call this once per group.
//
// An empty policy keeps everything with the reason "no policy": deleting all points because a
// policy was left out is never what anybody meant. Callers should refuse empty policies.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace reprise {

struct PointSummary {
  std::string id;
  int64_t time_unix = 0;  // seconds since the epoch, UTC
  std::string host;
  std::vector<std::string> tags;
  int64_t subsec_ns = 0;  // the nanoseconds within that second: orders points of one second
};

struct RetentionPolicy {
  int keep_last = 0;
  int keep_hourly = 0;
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;
  int keep_yearly = 0;
  int64_t keep_within_seconds = 0;

  // True when no rule is active: ApplyRetention would keep everything.
  bool empty() const;
  // "keep_daily 7, keep_weekly 4, keep_within 2d"; "empty" for an empty policy.
  std::string ToString() const;
  bool operator==(const RetentionPolicy&) const = default;
};

struct RetentionDecision {
  // Newest first. Reasons in rule order: "last", "hourly 2026-11-20T14", "daily 2026-11-20",
  // "weekly 2026-W47", "monthly 2026-11", "yearly 2026", "within 7d", or "no policy".
  std::vector<std::pair<PointSummary, std::vector<std::string>>> keep;
  std::vector<PointSummary> remove;  // newest first
};

RetentionDecision ApplyRetention(std::vector<PointSummary> points, const RetentionPolicy& policy,
                                 int64_t now_unix);

}  // namespace reprise
