#include "common/direct_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace reprise {

int OpenDirect(const char* path, int flags, mode_t mode, bool* direct) {
  int fd = ::open(path, O_WRONLY | O_CREAT | flags | O_DIRECT, mode);
  *direct = fd >= 0;
  if (fd < 0 && errno == EINVAL) fd = ::open(path, O_WRONLY | O_CREAT | flags, mode);
  return fd;
}

Status DropDirect(int fd, std::atomic<bool>& direct, std::string_view path) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_DIRECT) != 0)
    return ErrnoError("fcntl", path, errno);
  direct = false;
  return Status::Ok();
}

Status PwriteAll(int fd, ByteView data, uint64_t offset, std::atomic<bool>& direct,
                 std::string_view path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL && direct) {
      RETURN_IF_ERROR(DropDirect(fd, direct, path));
      continue;
    }
    if (n < 0) return ErrnoError("write", path, errno);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace reprise
