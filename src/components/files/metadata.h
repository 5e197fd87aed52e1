// The `files` manifest entry codec: one filesystem object <-> one JSON object. The format is
// described at the top of files_component.cc. Internal to the files component.
#pragma once

#include <sys/stat.h>
#include <time.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace reprise::files {

enum class FileType { kFile, kDir, kSymlink, kFifo, kCharDev, kBlockDev, kHardlink };

std::string_view TypeName(FileType type);
// The manifest type of an lstat() mode; nullopt for sockets and unknown kinds.
std::optional<FileType> TypeOfMode(mode_t mode);

// A data region of a sparse file.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// What one entry says about one object ("contents" excepted: the engine owns it).
struct EntryMeta {
  std::string path;  // absolute source path without the leading '/', raw bytes
  FileType type = FileType::kFile;
  uint32_t mode = 0;  // permission bits incl. setuid/setgid/sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string user;   // empty when the uid has no name
  std::string group;  // empty when the gid has no name
  int64_t mtime_ns = 0;
  uint64_t size = 0;    // kFile: apparent size in bytes
  uint64_t nlink = 1;   // kFile: link count at backup time, written when > 1
  int64_t ctime_ns = 0;  // kFile: inode change time; with ino, tells an unchanged file
  uint64_t ino = 0;      // kFile: inode number at backup time
  std::string target;   // kSymlink: raw target bytes
  uint64_t rdev = 0;    // kCharDev, kBlockDev
  std::string link;     // kHardlink: path of the first name of the inode
  bool sparse = false;  // kFile: "extents" present, one content per extent
  std::vector<Extent> extents;
};

// Everything but "contents". Hard link entries carry only path, type and link.
nlohmann::json EntryToJson(const EntryMeta& meta);
// kCorruption naming the field when the entry is malformed.
Result<EntryMeta> EntryFromJson(const nlohmann::json& entry);

// Stores raw name bytes as `key` when valid UTF-8, else base64 under `key`_b64.
void PutName(nlohmann::json& entry, const std::string& key, std::string_view bytes);
// Reads what PutName wrote; kCorruption when both or neither are present or bad.
Result<std::string> GetName(const nlohmann::json& entry, const std::string& key);

int64_t TimespecToNs(const struct timespec& ts);
struct timespec NsToTimespec(int64_t ns);

}  // namespace reprise::files
