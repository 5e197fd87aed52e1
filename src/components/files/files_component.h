// The `files` component: directory trees, kept exactly. See docs/repository-format.md
// ("files manifest") for the entry format.
//
// Kept: type (file, dir, symlink, fifo, char/block device), permission bits incl. setuid/
// setgid/sticky, uid/gid (and user/group names), mtime in nanoseconds, symlink targets,
// hard links (second and later names point at the first), empty dirs and files, sparse files
// (holes found with SEEK_DATA/SEEK_HOLE are not read and are recreated as holes), any name
// bytes (spaces, newlines, non-UTF-8: stored base64 when not UTF-8).
//
// Paths in the manifest are the absolute source path without the leading '/'; restore writes
// them under the target directory (as restic does).
#pragma once

#include <string>
#include <vector>

#include "components/component.h"

namespace reprise {

struct FilesOptions {
  std::vector<std::string> paths;     // roots to save
  std::vector<std::string> excludes;  // glob patterns (fnmatch) on the full path
  bool one_file_system = false;
};

class FilesComponent final : public Component {
 public:
  explicit FilesComponent(FilesOptions options);
  std::string kind() const override { return "files"; }
  Result<nlohmann::json> Backup(BackupSink& sink) override;
  Status Restore(const nlohmann::json& info, RestoreSource& source,
                 const RestoreOptions& options) override;

 private:
  FilesOptions options_;
};

}  // namespace reprise
