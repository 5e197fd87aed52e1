// Small POSIX helpers for the files component: an owning fd, full writes, readlink, mkdir -p,
// path joining. Errors are Status values from ErrnoError naming the call and the path.
#pragma once

#include <sys/types.h>

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
