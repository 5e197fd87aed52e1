// A repository in a temp dir with the engine's sink and source around it, for testing one
// component at a time without the CLI: Backup() runs a component (or any function writing to
// a sink) and keeps the finished manifest as `component`, which Source()/Restore() read back.
// Backup(..., incremental=true) hands the previous backup's manifest to the sink, as
// RunBackup does for the newest earlier point.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/thread_pool.h"
#include "components/component.h"
#include "repo/content.h"
#include "repo/point.h"
#include "repo/repository.h"

namespace reprise::testing {

class ComponentRepo {
 public:
  // `name`: the component name recorded in `component`.
  explicit ComponentRepo(const std::string& dir, std::string name = "component");
  Repository* repo() { return repo_.get(); }
  const Clock& clock() const { return clock_; }

  Result<nlohmann::json> Backup(const std::function<Result<nlohmann::json>(BackupSink&)>& backup,
                                const std::string& kind, bool incremental = false);
  Result<nlohmann::json> Backup(Component& c, bool incremental = false);
  std::unique_ptr<RepoRestoreSource> Source();
  Status Restore(Component& c, const RestoreOptions& options);
  // The manifest entries as the repository holds them.
  std::vector<nlohmann::json> Entries();
  // The bytes of one content list of an entry.
  std::string Read(const nlohmann::json& content);

  PointComponent component;
  std::vector<std::string> warnings;

 private:
  std::string name_;
  SystemClock clock_;
  std::unique_ptr<Repository> repo_;
  // Declared after the repository, so destroyed before it: jobs a failed backup left queued
  // still run against a live repository.
  ThreadPool pool_{2, 8};
};

}  // namespace reprise::testing
