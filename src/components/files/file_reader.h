// Reads one open regular file into content streams of a BackupSink. A file whose apparent
// size exceeds its allocated blocks is probed with SEEK_DATA/SEEK_HOLE: its data regions
// become extents, one content each, and holes are never read.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <vector>

#include "components/component.h"
#include "components/files/metadata.h"

namespace reprise::files {

struct FileData {
  uint64_t size = 0;  // apparent size to restore
  bool sparse = false;
  std::vector<Extent> extents;          // when sparse
  std::vector<ContentFuture> contents;  // one, or one per extent when sparse
};

// `st` is fstat() of `fd`; `path` names the file in warnings; `buffer` is the read buffer
// (its size is the read size). Returns nullopt when the file could not be read: that was
// reported with sink.Warn and the file is to be skipped. An error means the sink failed and
// the backup cannot go on. A file that changes while read is saved as read, with a warning.
Result<std::optional<FileData>> ReadFileData(int fd, const struct stat& st, const std::string& path,
                                             BackupSink& sink, Bytes& buffer);

}  // namespace reprise::files
