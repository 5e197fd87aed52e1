// The backup side of the files component: walks directory trees and emits one manifest entry
// per object, parents before children, directory entries sorted by raw name bytes.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/thread_pool.h"
#include "components/component.h"
#include "components/files/files_component.h"
#include "components/files/metadata.h"
#include "components/files/owners.h"
#include "components/files/previous.h"

namespace reprise::files {

// Counters; files are read on reader threads, hence atomics.
struct WalkCounts {
  std::atomic<uint64_t> files{0};  // regular files saved (hard link names not counted)
  std::atomic<uint64_t> dirs{0};
  std::atomic<uint64_t> symlinks{0};
  std::atomic<uint64_t> hardlinks{0};  // second and later names of an inode
  std::atomic<uint64_t> special{0};    // fifos and devices
  std::atomic<uint64_t> bytes{0};      // data bytes read from files
  std::atomic<uint64_t> skipped{0};    // objects not saved (each one warned about)
  std::atomic<uint64_t> unchanged{0};  // files whose content was reused from the previous backup
};

// The roots to save: absolute, without "." or "..", the parent resolved with realpath (the last
// component is kept as named, so a root that is a symlink is saved as a symlink), sorted, and
// without roots that lie inside another root. kNotFound when a root does not exist.
Result<std::vector<std::string>> NormalizeRoots(const std::vector<std::string>& paths);

class TreeWalker {
 public:
  TreeWalker(const FilesOptions& options, BackupSink& sink);
  ~TreeWalker();

  // Saves the directories above `root` (once per walker), then `root` and all below it.
  // `root` comes from NormalizeRoots.
  Status SaveRoot(const std::string& root);
  // Waits until every file handed to the readers has been read. Call before counts().
  void Finish();
  const WalkCounts& counts() const { return counts_; }

 private:
  Status SaveAncestors(const std::string& root);
  // lstat() `path` and save it; a vanished or unreadable object is warned about and skipped.
  Status Visit(const std::string& path, dev_t root_dev);
  Status SaveObject(const std::string& path, const struct stat& st, dev_t root_dev);
  Status SaveDir(const std::string& path, const struct stat& st, dev_t root_dev);
  Status SaveFile(const std::string& path, const struct stat& st);
  // On a reader thread: opens and reads one regular file; `meta` was made from lstat().
  Result<DeferredEntry> ReadFile(const std::string& path, EntryMeta meta);
  // Saves the file with its previous content when size, mtime, ctime and inode are unchanged
  // and every chunk is still stored. Returns false when it must be read.
  Result<bool> SaveUnchanged(const std::string& path, const struct stat& st);
  Status SaveSymlink(const std::string& path, const struct stat& st);
  Status SaveSpecial(const std::string& path, const struct stat& st, FileType type);
  // Sorted child names of `path`; nullopt (after a warning) when it cannot be listed.
  std::optional<std::vector<std::string>> ListDir(const std::string& path);
  bool Excluded(const std::string& path) const;
  EntryMeta MetaOf(const std::string& path, const struct stat& st, FileType type);
  Status Add(const EntryMeta& meta, std::vector<ContentFuture> contents);
  void Skip(std::string message);

  const FilesOptions& options_;
  BackupSink& sink_;
  OwnerNames owners_;
  std::set<std::string> saved_ancestors_;
  // First saved name of each multiply-linked regular file, by (st_dev, st_ino).
  std::map<std::pair<dev_t, ino_t>, std::string> first_names_;
  WalkCounts counts_;
  PreviousManifest previous_;
  // Regular files are read here, several at once, so a cold disk sees more than one request
  // at a time; their entries keep their place through BackupSink::AddEntryLater.
  std::unique_ptr<ThreadPool> readers_;
};

}  // namespace reprise::files
