#include "component_repo.h"

#include <gtest/gtest.h>

#include "storage/local/local_storage.h"

namespace reprise::testing {

ComponentRepo::ComponentRepo(const std::string& dir, std::string name) : name_(std::move(name)) {
  InitOptions options;
  options.kdf = ScryptParams{.n = 1024, .r = 8, .p = 1};
  auto repo = Repository::Init(std::make_unique<LocalStorage>(dir), "pw", options, clock_);
  EXPECT_TRUE(repo.ok()) << repo.status().ToString();
  if (repo.ok()) repo_ = std::move(*repo);
}

Result<nlohmann::json> ComponentRepo::Backup(
    const std::function<Result<nlohmann::json>(BackupSink&)>& backup, const std::string& kind,
    bool incremental) {
  RepoBackupSink sink(*repo_, pool_);
  if (incremental && !component.manifest.empty()) sink.SetPrevious(component.manifest);
  Result<nlohmann::json> info = backup(sink);
  if (!info.ok()) return info;
  auto manifest = sink.Finish();
  if (!manifest.ok()) return manifest.status();
  RETURN_IF_ERROR(repo_->Flush());
  component.name = name_;
  component.kind = kind;
  component.manifest = *manifest;
  component.entries = sink.entries();
  component.info = *info;
  warnings = sink.warnings();
  return info;
}

Result<nlohmann::json> ComponentRepo::Backup(Component& c, bool incremental) {
  return Backup([&](BackupSink& sink) { return c.Backup(sink); }, c.kind(), incremental);
}

std::unique_ptr<RepoRestoreSource> ComponentRepo::Source() {
  return std::make_unique<RepoRestoreSource>(*repo_, component, pool_);
}

Status ComponentRepo::Restore(Component& c, const RestoreOptions& options) {
  RepoRestoreSource source(*repo_, component, pool_);
  return c.Restore(component.info, source, options);
}

std::vector<nlohmann::json> ComponentRepo::Entries() {
  std::vector<nlohmann::json> out;
  RepoRestoreSource source(*repo_, component, pool_);
  Status st = source.ForEachEntry([&](const nlohmann::json& e) {
    out.push_back(e);
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

std::string ComponentRepo::Read(const nlohmann::json& content) {
  RepoRestoreSource source(*repo_, component, pool_);
  std::string data;
  Status st = source.ReadContent(content, [&](ByteView b) {
    data.append(AsString(b));
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return data;
}

}  // namespace reprise::testing
