#include "components/files/posix.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "common/bytes.h"
#include "common/direct_io.h"

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

UniqueFd OpenForDirectWrite(const std::string& path, mode_t mode, bool* direct, int extra) {
  return UniqueFd(OpenDirect(path.c_str(), O_TRUNC | O_CLOEXEC | extra, mode, direct));
}

namespace {

constexpr size_t kSequentialBuffer = 1 << 20;

// This thread's aligned buffer, for the life of the thread.
uint8_t* ThreadWriteBuffer() {
  struct Buffer {
    uint8_t* p = nullptr;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buffer;
  if (!buffer.p) {
    void* p = nullptr;
    if (::posix_memalign(&p, kDirectAlign, kSequentialBuffer) != 0) throw std::bad_alloc();
    buffer.p = static_cast<uint8_t*>(p);
  }
  return buffer.p;
}

}  // namespace

SequentialWriter::SequentialWriter(int fd, bool direct, std::string_view path)
    : fd_(fd), direct_(direct), path_(path), buffer_(ThreadWriteBuffer()) {}

Status SequentialWriter::Write(ByteView data) {
  while (!data.empty()) {
    size_t n = std::min(data.size(), kSequentialBuffer - fill_);
    std::memcpy(buffer_ + fill_, data.data(), n);
    fill_ += n;
    data = data.subspan(n);
    if (fill_ == kSequentialBuffer) RETURN_IF_ERROR(Flush(false));
  }
  return Status::Ok();
}

Status SequentialWriter::Finish() { return Flush(true); }

Status SequentialWriter::Flush(bool all) {
  size_t len = direct_ ? fill_ / kDirectAlign * kDirectAlign : fill_;
  if (all && len < fill_) {
    // An unaligned tail: through the page cache from here on.
    if (len > 0) RETURN_IF_ERROR(Flush(false));
    RETURN_IF_ERROR(DropDirect(fd_, direct_, path_));
    len = fill_;
  }
  if (len == 0) return Status::Ok();
  RETURN_IF_ERROR(PwriteAll(fd_, ByteView(buffer_, len), written_, direct_, path_));
  written_ += len;
  fill_ -= len;
  if (fill_ > 0) std::memmove(buffer_, buffer_ + len, fill_);
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
