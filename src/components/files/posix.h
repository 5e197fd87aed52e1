// Small POSIX helpers for the files component: an owning fd, full writes, readlink, mkdir -p,
// path joining. Errors are Status values from ErrnoError naming the call and the path.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace reprise::files {

// Owns a file descriptor; closes it (ignoring errors) unless Close() was called.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release();
  // close() with its error reported (a failed close can mean lost writes).
  Status Close(std::string_view path);

 private:
  int fd_ = -1;
};

// Name bytes made fit for messages (which must be UTF-8): control bytes, and every byte
// >= 0x80 when the name is not valid UTF-8, are shown as \xNN.
std::string Printable(std::string_view bytes);

// ErrnoError with the path made Printable (messages may end up in JSON, which must be UTF-8).
Status PathError(std::string_view what, std::string_view path, int err);

// pwrite() until all of `data` is written at `offset`, retrying on EINTR.
Status WriteAllAt(int fd, ByteView data, uint64_t offset, std::string_view path);

// Opens `path` for writing (O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, and `extra`) with
// O_DIRECT when the filesystem takes it; `direct` says whether it did.
UniqueFd OpenForDirectWrite(const std::string& path, mode_t mode, bool* direct, int extra = 0);

// Writes a new file front to back through one 1 MiB aligned buffer per thread (reused, so its
// pages are touched once): on an O_DIRECT descriptor the aligned bulk goes straight to the
// disk in 1 MiB writes, without a copy into the page cache; the unaligned tail goes through
// the page cache (Finish drops O_DIRECT for it). Also gathers small pieces (8 KiB page blocks)
// into large writes on an ordinary descriptor. Finish writes what is left; the caller syncs.
class SequentialWriter {
 public:
  SequentialWriter(int fd, bool direct, std::string_view path);
  Status Write(ByteView data);
  Status Finish();
  uint64_t size() const { return written_ + fill_; }

 private:
  Status Flush(bool all);
  int fd_;
  std::atomic<bool> direct_;
  std::string path_;
  uint8_t* buffer_;
  size_t fill_ = 0;
  uint64_t written_ = 0;
};

// The target of the symlink at `path`, raw bytes; `size_hint` is its lstat size.
Result<std::string> ReadLink(const std::string& path, size_t size_hint);

// Creates the directories leading to `path` (not `path` itself), like mkdir -p, mode 0755.
Status MakeParents(const std::string& path);
// Creates `path` and the directories above it; an existing directory is fine.
Status MakeDirs(const std::string& path);

// The uid and primary gid of a user name; kInvalidArgument when the user does not exist.
struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
};
Result<UserIds> LookupUser(const std::string& name);

// "/a" + "b" -> "/a/b"; "/" + "b" -> "/b".
std::string JoinPath(const std::string& dir, std::string_view name);
// Everything before the last '/', "/" for "/x", "." when there is no '/'.
std::string DirName(const std::string& path);

}  // namespace reprise::files
