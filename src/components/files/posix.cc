#include "components/files/posix.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "common/bytes.h"

namespace reprise::files {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.Release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::Release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

Status UniqueFd::Close(std::string_view path) {
  int fd = Release();
  if (fd < 0) return Status::Ok();
  // Linux closes the fd even when close() fails, so it is never retried.
  if (::close(fd) != 0 && errno != EINTR) return PathError("close", path, errno);
  return Status::Ok();
}

std::string Printable(std::string_view bytes) {
  const bool utf8 = IsValidUtf8(bytes);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || (!utf8 && c >= 0x80)) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

Status PathError(std::string_view what, std::string_view path, int err) {
  return ErrnoError(what, Printable(path), err);
}

Status WriteAllAt(int fd, ByteView data, uint64_t offset, std::string_view path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return PathError("write", path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<std::string> ReadLink(const std::string& path, size_t size_hint) {
  std::vector<char> buffer(size_hint + 1);
  for (;;) {
    ssize_t n = ::readlink(path.c_str(), buffer.data(), buffer.size());
    if (n < 0) return PathError("readlink", path, errno);
    // A full buffer may mean the link changed and grew since lstat(): try a larger one.
    if (static_cast<size_t>(n) < buffer.size()) return std::string(buffer.data(), n);
    buffer.resize(buffer.size() * 2);
  }
}

Result<UserIds> LookupUser(const std::string& name) {
  struct passwd pw, *found = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
    return InvalidArgument("user '" + name + "' does not exist on this host");
  return UserIds{.uid = pw.pw_uid, .gid = pw.pw_gid};
}

Status MakeDirs(const std::string& path) {
  if (path.empty() || path == "/") return Status::Ok();
  if (::mkdir(path.c_str(), 0755) == 0) return Status::Ok();
  if (errno == EEXIST) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::Ok();
    return AlreadyExists("'" + Printable(path) + "' exists and is not a directory");
  }
  if (errno != ENOENT) return PathError("mkdir", path, errno);
  RETURN_IF_ERROR(MakeParents(path));
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return Status::Ok();
  return PathError("mkdir", path, errno);
}

Status MakeParents(const std::string& path) {
  std::string parent = DirName(path);
  if (parent == "/" || parent == ".") return Status::Ok();
  return MakeDirs(parent);
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  if (dir.empty() || dir.back() == '/') return dir + std::string(name);
  return dir + "/" + std::string(name);
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace reprise::files
