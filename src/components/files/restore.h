// The restore side of the files component: recreates manifest entries under a target
// directory. Directories are created 0700 and get their mode, owner and mtime after all
// entries are done (deepest first), so a read-only directory can still be filled and its
// mtime is not disturbed by its children.
//
// Regular files are written to their final name with O_EXCL, or, with overwrite, to a temp
// name in the same directory that is renamed over the final name. When a content cannot be
// read (e.g. kCorruption), the file being written is removed and the restore fails with the
// file's path in the error: no partial or wrong bytes stay under a final name.
//
// Durability: files are not fsync'ed one by one (slow); one syncfs() of the target's
// filesystem at the end makes the whole restore durable before Run() returns OK.
//
// Owners: the numeric uid/gid are restored (names are informational). Not running as root,
// lchown's EPERM is expected and ignored (restored files belong to the user), and EPERM on
// the mode or times of an existing directory the user does not own (e.g. "/home" when
// restoring to "/") is a warning. An existing directory that is not writable by its owner
// (from an earlier restore) is made so until the fix-up.
//
// Warnings (a device that cannot be created without privileges, an owner that cannot be set
// as root, a hard link whose first name was not restored) do not fail the restore; they are
// passed to options.warn (stderr as "warning: ..." when unset) and counted (warnings()).
//
// Safety: entry paths with "", ".", ".." components or NUL, and entries below a symlink this
// restore created, are refused with kCorruption, so a manifest cannot write outside the target.
#pragma once

#include <sys/stat.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/thread_pool.h"
#include "components/component.h"
#include "components/files/metadata.h"
#include "components/files/posix.h"

namespace reprise::files {

class TreeRestorer {
 public:
  TreeRestorer(RestoreSource& source, const RestoreOptions& options);
  Status Run();
  size_t warnings() const { return warnings_; }

 private:
  Status RestoreEntry(const nlohmann::json& entry);
  Status RestoreObject(const EntryMeta& meta, const nlohmann::json& entry);
  Status RestoreDir(const EntryMeta& meta);
  Status RestoreFile(const EntryMeta& meta, const nlohmann::json& entry);
  // Fills, finishes and (with overwrite) renames one created file; on failure removes it.
  // Runs on a writer thread.
  Status FillFile(UniqueFd& fd, const EntryMeta& meta, const nlohmann::json& contents,
                  const std::string& path, const std::string& temp);
  Status WriteContents(int fd, const EntryMeta& meta, const nlohmann::json& contents,
                       const std::string& path, Bytes& buffer);
  // Small files are filled in batches: one ReadContents for many files, whose blobs sit back
  // to back in the packs, so a remote repository answers them in a few large ranged GETs.
  struct SmallFile {
    EntryMeta meta;
    nlohmann::json content;  // its one content list
    std::string path, temp;
  };
  void SubmitBatch();
  Status FillBatch(std::vector<SmallFile>& files);
  Status WriteSmall(const SmallFile& file, const Bytes& data);
  // Waits for every file handed to the writers; returns the first failure.
  Status Drain();
  Status FirstError();
  Status RestoreHardlink(const EntryMeta& meta);
  Status RestoreNode(const EntryMeta& meta);
  Status CreateNode(const EntryMeta& meta, const std::string& path);
  Status FixUpDirs();
  Status ApplyToFd(int fd, const EntryMeta& meta, const std::string& path);
  Status ApplyToPath(const EntryMeta& meta, const std::string& path);
  void CheckChown(int rc, const std::string& path);
  Status CheckNotOwner(int rc, const char* what, const std::string& path);
  // With overwrite, removes a non-directory at `path`; without, refuses an existing one.
  Status MakeRoom(const std::string& path);

  bool Selected(const EntryMeta& meta) const;
  bool UnderRestoredSymlink(const std::string& path) const;
  std::string FullPath(const std::string& manifest_path) const;
  void Warn(const std::string& message);

  RestoreSource& source_;
  const RestoreOptions& options_;
  std::string target_;                 // without trailing '/'; "" for "/"
  std::vector<std::string> includes_;  // without leading or trailing '/'
  const bool is_root_;
  // Files are created in manifest order on the calling thread (so names exist for hard links
  // and errors like "already exists" stop the walk at once) and filled by writer threads, so
  // many small files restore in parallel.
  std::unique_ptr<ThreadPool> writers_;
  std::vector<SmallFile> batch_;  // created, waiting to be filled (calling thread only)
  uint64_t batch_bytes_ = 0;
  std::mutex mu_;  // guards error_, warnings_, and calls of options_.warn
  Status error_;
  std::vector<EntryMeta> dirs_;               // to fix up at the end, in creation order
  std::unordered_set<std::string> symlinks_;  // manifest paths of restored symlinks
  // Hard links: manifest path of an inode's first name -> where it was restored.
  std::map<std::string, std::string> restored_inodes_;
  // Multiply-linked files left out by `include`, kept in case a later name is included.
  std::map<std::string, nlohmann::json> unselected_inodes_;
  size_t warnings_ = 0;
};

}  // namespace reprise::files
