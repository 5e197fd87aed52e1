// The failover journal: one JSON file per failover under the plan's failover.state_dir,
// rewritten atomically (temp file, fsync, rename, fsync of the directory) after every step,
// so a failover killed half-way is resumed from the first step not done, and every step of
// every failover stays on record. `active` in the same directory names the site that is
// primary after the last completed failover.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace reprise::failover {

struct StepRecord {
  std::string name;    // "check-target", "fence", "catch-up", "promote", ...
  std::string status;  // "done" | "skipped" | "failed"
  double at = 0;       // seconds since the failover started
  std::string detail;  // one line for people
  nlohmann::json facts = nlohmann::json::object();
};

struct Journal {
  std::string id;      // "20261124T223001Z-dr"
  std::string kind;    // "failover" | "failback"
  std::string from, to, reason;
  std::string state;   // "running" | "completed" | "refused" | "failed"
  int64_t started_unix_ms = 0;
  std::vector<StepRecord> steps;
  nlohmann::json figures = nlohmann::json::object();  // rto_seconds, rpo_wal_bytes ...

  const StepRecord* Find(const std::string& step) const;
  bool Done(const std::string& step) const;  // done or skipped
  nlohmann::json ToJson() const;
  static Result<Journal> FromJson(const nlohmann::json& j);
};

class JournalStore {
 public:
  explicit JournalStore(std::string dir) : dir_(std::move(dir)) {}

  // Creates the directory (0700) when missing.
  Status Save(const Journal& journal);
  // The newest journal whose state is "running", if any.
  Result<std::optional<Journal>> Running();
  Result<Journal> Load(const std::string& id);
  // Every journal, oldest first.
  Result<std::vector<Journal>> List();
  // The site recorded as primary by the last completed failover, or "" when none.
  Result<std::string> ActiveSite();
  Status SetActiveSite(const std::string& site);
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// Writes `data` to `path` atomically and durably.
Status WriteFileAtomic(const std::string& path, const std::string& data);

}  // namespace reprise::failover
