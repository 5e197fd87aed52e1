#include "storage/local/local_storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <new>
#include <string_view>
#include <thread>
#include <utility>

#include "common/direct_io.h"

namespace reprise {
namespace fs = std::filesystem;

namespace {

// Marks the temp file of an unfinished Put; keys containing it are refused so that List can
// tell temp files from objects by name alone.
constexpr std::string_view kTempMarker = ".tmp-";

// New objects and directories are private to the owner: a repository holds backups.
constexpr mode_t kFileMode = 0600;
constexpr mode_t kDirMode = 0700;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error (close can report a failed write-back on some filesystems).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Status FsyncDir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError("open directory", dir.native(), errno);
  if (::fsync(fd.get()) != 0) return ErrnoError("fsync directory", dir.native(), errno);
  return Status::Ok();
}

// Creates `dir` and its missing parents, fsyncing each new directory's parent so the new
// entries survive a crash. Racing creators are fine (EEXIST).
Status EnsureDir(const fs::path& dir, const std::optional<std::pair<uid_t, gid_t>>& owner) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Ok();
    return IOError("'" + dir.native() + "' exists but is not a directory");
  }
  if (errno != ENOENT) return ErrnoError("stat", dir.native(), errno);
  fs::path parent = dir.parent_path();
  if (!parent.empty() && parent != dir) RETURN_IF_ERROR(EnsureDir(parent, owner));
  if (::mkdir(dir.c_str(), kDirMode) != 0) {
    if (errno == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      return Status::Ok();
    return ErrnoError("create directory", dir.native(), errno);
  }
  if (owner) (void)::chown(dir.c_str(), owner->first, owner->second);
  if (!parent.empty()) RETURN_IF_ERROR(FsyncDir(parent));
  return Status::Ok();
}

Result<std::string> RandomSuffix() {
  uint8_t r[8];
  if (RAND_bytes(r, sizeof(r)) != 1) return Internal("no randomness for a temp file name");
  return HexEncode(ByteView(r, sizeof(r)));
}

Status WriteAll(int fd, ByteView data, const fs::path& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path.native(), errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status ReadAllAt(int fd, uint8_t* out, size_t len, uint64_t offset, const fs::path& path) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, out + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", path.native(), errno);
    }
    if (n == 0) return IOError("read '" + path.native() + "': file is shorter than expected");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// ENOTDIR (a path component is a file) means the object does not exist either.
Status MissingAware(std::string_view what, const fs::path& path, int err) {
  return ErrnoError(what, path.native(), err == ENOTDIR ? ENOENT : err);
}

// Opens an object for reading and returns its size; a directory is not an object.
Result<std::pair<int, uint64_t>> OpenObject(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return MissingAware("open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoError("stat", path.native(), err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return NotFound("'" + path.native() + "' is not an object (not a regular file)");
  }
  return std::pair<int, uint64_t>(fd, static_cast<uint64_t>(st.st_size));
}

// Calls visit(relative key, full path, stat) for every regular file under dir, recursively.
// Entries that vanish while walking (a concurrent Delete) are skipped; symlinked directories
// are not followed.
template <typename Visit>
Status Walk(const fs::path& dir, const std::string& rel, Visit& visit) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::Ok();
    return ErrnoError("open directory", dir.native(), errno);
  }
  Status status;
  while (true) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (e == nullptr) {
      if (errno != 0) status = ErrnoError("read directory", dir.native(), errno);
      break;
    }
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string key = rel.empty() ? std::string(name) : rel + "/" + std::string(name);
    fs::path full = dir / name;
    struct stat st;
    if (::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      status = ErrnoError("stat", full.native(), errno);
      break;
    }
    if (S_ISLNK(st.st_mode)) {
      // A symlink to a file counts as that file; to anything else, it is skipped.
      if (::stat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    }
    if (S_ISDIR(st.st_mode)) {
      status = Walk(full, key, visit);
      if (!status.ok()) break;
    } else if (S_ISREG(st.st_mode)) {
      visit(key, full, st);
    }
  }
  ::closedir(d);
  return status;
}

}  // namespace

LocalStorage::LocalStorage(std::filesystem::path root) : root_(root.lexically_normal()) {
  // "/backups/rag/" -> "/backups/rag", so Location() and messages are stable.
  if (!root_.has_filename() && root_.has_relative_path()) root_ = root_.parent_path();
  struct stat st;
  if (::geteuid() == 0 && ::stat(root_.c_str(), &st) == 0 && st.st_uid != 0)
    owner_ = std::pair{st.st_uid, st.st_gid};
}

std::string LocalStorage::Location() const { return root_.string(); }

std::filesystem::path LocalStorage::PathOf(const std::string& key) const { return root_ / key; }

Result<Bytes> LocalStorage::Get(const std::string& key) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  fs::path path = PathOf(key);
  ASSIGN_OR_RETURN(auto opened, OpenObject(path));
  Fd fd(opened.first);
  Bytes out(opened.second);
  RETURN_IF_ERROR(ReadAllAt(fd.get(), out.data(), out.size(), 0, path));
  return out;
}

namespace {
constexpr size_t kMaxOpenFiles = 64;
}  // namespace

LocalStorage::OpenFile::~OpenFile() {
  if (fd >= 0) ::close(fd);
}

Result<std::shared_ptr<LocalStorage::OpenFile>> LocalStorage::OpenForRead(const std::string& key) {
  {
    std::lock_guard lk(cache_mu_);
    auto it = open_files_.find(key);
    if (it != open_files_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(auto opened, OpenObject(PathOf(key)));
  auto file = std::make_shared<OpenFile>();
  file->fd = opened.first;
  file->size = opened.second;
  std::lock_guard lk(cache_mu_);
  auto [it, fresh] = open_files_.try_emplace(key, file);
  if (!fresh) return it->second;  // another thread opened it meanwhile
  open_order_.push_back(key);
  while (open_order_.size() > kMaxOpenFiles) {
    open_files_.erase(open_order_.front());
    open_order_.pop_front();
  }
  return file;
}

void LocalStorage::Forget(const std::string& key) {
  std::lock_guard lk(cache_mu_);
  if (open_files_.erase(key)) std::erase(open_order_, key);
}

Result<Bytes> LocalStorage::GetRange(const std::string& key, uint64_t offset, uint64_t length) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  fs::path path = PathOf(key);
  ASSIGN_OR_RETURN(std::shared_ptr<OpenFile> file, OpenForRead(key));
  uint64_t size = file->size;
  if (offset > size || length > size - offset) {
    return InvalidArgument("range " + std::to_string(offset) + "+" + std::to_string(length) +
                           " of '" + key + "' is past its end (" + std::to_string(size) +
                           " bytes)");
  }
  Bytes out(length);
  RETURN_IF_ERROR(ReadAllAt(file->fd, out.data(), out.size(), offset, path));
  return out;
}

Status LocalStorage::Put(const std::string& key, ByteView data) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  Forget(key);
  fs::path path = PathOf(key);
  fs::path dir = path.parent_path();
  RETURN_IF_ERROR(EnsureDir(dir, owner_));
  ASSIGN_OR_RETURN(std::string suffix, RandomSuffix());
  fs::path tmp = path.native() + std::string(kTempMarker) + suffix;

  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode));
  if (fd.get() < 0) return ErrnoError("create", tmp.native(), errno);
  Status st = WriteAll(fd.get(), data, tmp);
  if (st.ok() && owner_ && ::fchown(fd.get(), owner_->first, owner_->second) != 0)
    st = ErrnoError("chown", tmp.native(), errno);
  if (st.ok() && ::fsync(fd.get()) != 0) st = ErrnoError("fsync", tmp.native(), errno);
  if (st.ok() && fd.Close() != 0) st = ErrnoError("close", tmp.native(), errno);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = ErrnoError("rename to '" + path.native() + "'", tmp.native(), errno);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(dir);
}

namespace {

// Streams an object into "<key>.tmp-<random>" as it is appended, then fsync, rename and
// directory fsync on Commit (as Put). The bulk goes with O_DIRECT, in 4 KiB-aligned pieces of
// about 1 MiB written by a flusher thread while the caller fills the next piece, so a WAL pack
// does not pass through the page cache, nothing copies it there, the caller waits for the disk
// only in Commit, and fsync waits only for the tail. (On the 2-core VM of
// bench/wal_push_latency.sh a buffered 9 MB write plus fsync took 6 to 27 ms, mostly the copy
// into fresh page-cache pages; with O_DIRECT 5 to 7 ms.) Pieces live in up to kBuffers
// buffers, mapped populated (one batch of page faults instead of one fault per page), so a
// slow first write does not stall the caller. A filesystem that refuses O_DIRECT (EINVAL)
// gets ordinary writes.
class LocalObjectWriter final : public ObjectWriter {
 public:
  static constexpr size_t kFlushAt = 1 << 20;
  static constexpr size_t kBuffers = 4;

  LocalObjectWriter(int fd, bool direct, fs::path tmp, fs::path path,
                    std::optional<std::pair<uid_t, gid_t>> owner)
      : fd_(fd), direct_(direct), tmp_(std::move(tmp)), path_(std::move(path)),
        owner_(std::move(owner)) {}
  ~LocalObjectWriter() override {
    StopFlusher();
    if (!committed_) {
      fd_.Close();
      ::unlink(tmp_.c_str());
    }
  }

  uint8_t* Reserve(size_t n) override {
    if (!cur_.data) cur_ = TakeBuffer(n);
    cur_.Grow(fill_, fill_ + n);
    reserved_ = n;
    return cur_.data + fill_;
  }

  Status Append(size_t n) override {
    if (!cur_.data || n > reserved_) return Internal("ObjectWriter: appending more than reserved");
    reserved_ = 0;
    fill_ += n;
    if (fill_ < kFlushAt) return Status::Ok();
    // Queue the aligned part for the flusher and go on in another buffer.
    size_t len = direct_ ? fill_ / kDirectAlign * kDirectAlign : fill_;
    Buffer next = TakeBuffer(fill_ - len);
    if (!next.data) return FirstError();
    if (fill_ > len) std::memcpy(next.data, cur_.data + len, fill_ - len);
    fill_ -= len;
    Queue(std::move(cur_), len);
    cur_ = std::move(next);
    return Status::Ok();
  }

  Status Commit() override {
    StopFlusher();
    RETURN_IF_ERROR(FirstError());
    // The tail goes through the page cache.
    if (direct_) RETURN_IF_ERROR(DropDirect(fd_.get(), direct_, tmp_.native()));
    if (fill_) RETURN_IF_ERROR(WriteAt(cur_.data, fill_));
    if (owner_ && ::fchown(fd_.get(), owner_->first, owner_->second) != 0)
      return ErrnoError("chown", tmp_.native(), errno);
    if (::fsync(fd_.get()) != 0) return ErrnoError("fsync", tmp_.native(), errno);
    if (fd_.Close() != 0) return ErrnoError("close", tmp_.native(), errno);
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      return ErrnoError("rename to '" + path_.native() + "'", tmp_.native(), errno);
    committed_ = true;
    return FsyncDir(path_.parent_path());
  }

 private:
  // An aligned, populated anonymous mapping.
  struct Buffer {
    uint8_t* data = nullptr;
    size_t cap = 0;
    Buffer() = default;
    Buffer(Buffer&& o) noexcept : data(std::exchange(o.data, nullptr)), cap(std::exchange(o.cap, 0)) {}
    Buffer& operator=(Buffer&& o) noexcept {
      std::swap(data, o.data);
      std::swap(cap, o.cap);
      return *this;
    }
    ~Buffer() {
      if (data) ::munmap(data, cap);
    }
    // Holds at least `need` bytes afterwards, keeping the first `keep`.
    void Grow(size_t keep, size_t need) {
      if (need <= cap) return;
      size_t size = std::max(cap * 2, (need + kDirectAlign - 1) / kDirectAlign * kDirectAlign);
      void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      if (keep) std::memcpy(p, data, keep);
      if (data) ::munmap(data, cap);
      data = static_cast<uint8_t*>(p);
      cap = size;
    }
  };
  struct Piece {
    Buffer buffer;
    size_t len;
  };

  // Writes `len` bytes after what is written so far (on the flusher, or in Commit after it).
  Status WriteAt(const uint8_t* data, size_t len) {
    RETURN_IF_ERROR(PwriteAll(fd_.get(), ByteView(data, len), offset_, direct_, tmp_.native()));
    offset_ += len;
    return Status::Ok();
  }

  // A buffer for the next piece, holding `carry` bytes and a piece more; waits for the
  // flusher when all kBuffers are taken. Empty after a write error.
  Buffer TakeBuffer(size_t carry) {
    Buffer b;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return !free_.empty() || made_ < kBuffers || !error_.ok(); });
      if (!error_.ok()) return b;
      if (!free_.empty()) {
        b = std::move(free_.back());
        free_.pop_back();
      } else {
        ++made_;
      }
    }
    b.Grow(0, carry + kFlushAt + kFlushAt / 4);
    return b;
  }

  void Queue(Buffer b, size_t len) {
    std::unique_lock lk(mu_);
    queue_.push_back(Piece{std::move(b), len});
    if (!flusher_.joinable()) flusher_ = std::thread([this] { Flusher(); });
    cv_.notify_all();
  }

  void Flusher() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return !queue_.empty() || stop_; });
      if (queue_.empty()) return;
      Piece piece = std::move(queue_.front());
      queue_.pop_front();
      Status st = error_;
      lk.unlock();
      if (st.ok()) st = WriteAt(piece.buffer.data, piece.len);
      lk.lock();
      if (!st.ok() && error_.ok()) error_ = st;
      free_.push_back(std::move(piece.buffer));
      cv_.notify_all();
    }
  }

  // Lets the flusher write what is queued, then ends it.
  void StopFlusher() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    if (flusher_.joinable()) flusher_.join();
  }

  Status FirstError() {
    std::lock_guard lk(mu_);
    return error_;
  }

  Fd fd_;
  std::atomic<bool> direct_;  // the flusher may turn it off (EINVAL)
  fs::path tmp_, path_;
  std::optional<std::pair<uid_t, gid_t>> owner_;
  Buffer cur_;  // being filled
  size_t fill_ = 0, reserved_ = 0;
  uint64_t offset_ = 0;  // bytes written: the flusher's while it runs
  bool committed_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread flusher_;
  std::deque<Piece> queue_;  // under mu_, as the rest below
  std::vector<Buffer> free_;
  size_t made_ = 0;
  bool stop_ = false;
  Status error_;
};

}  // namespace

Result<std::unique_ptr<ObjectWriter>> LocalStorage::OpenWriter(const std::string& key) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  Forget(key);
  fs::path path = PathOf(key);
  RETURN_IF_ERROR(EnsureDir(path.parent_path(), owner_));
  ASSIGN_OR_RETURN(std::string suffix, RandomSuffix());
  fs::path tmp = path.native() + std::string(kTempMarker) + suffix;
  bool direct = false;  // not on tmpfs before Linux 6.6, nor some FUSE filesystems
  int fd = OpenDirect(tmp.c_str(), O_EXCL | O_CLOEXEC, kFileMode, &direct);
  if (fd < 0) return ErrnoError("create", tmp.native(), errno);
  return std::unique_ptr<ObjectWriter>(
      new LocalObjectWriter(fd, direct, std::move(tmp), std::move(path), owner_));
}

Status LocalStorage::Delete(const std::string& key) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  Forget(key);
  fs::path path = PathOf(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::Ok();
    return ErrnoError("delete", path.native(), errno);
  }
  return FsyncDir(path.parent_path());
}

Result<ObjectInfo> LocalStorage::Stat(const std::string& key) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  fs::path path = PathOf(key);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return MissingAware("stat", path, errno);
  if (!S_ISREG(st.st_mode))
    return NotFound("'" + path.native() + "' is not an object (not a regular file)");
  return ObjectInfo{.key = key, .size = static_cast<uint64_t>(st.st_size)};
}

Result<std::vector<ObjectInfo>> LocalStorage::List(const std::string& prefix) {
  RETURN_IF_ERROR(ValidateStorageKey(prefix, true));
  size_t slash = prefix.rfind('/');
  std::string dir_part = slash == std::string::npos ? "" : prefix.substr(0, slash);
  std::vector<ObjectInfo> out;
  auto visit = [&](const std::string& key, const fs::path&, const struct stat& st) {
    if (key.compare(0, prefix.size(), prefix) != 0) return;
    if (key.find(kTempMarker) != std::string::npos) return;
    out.push_back(ObjectInfo{.key = key, .size = static_cast<uint64_t>(st.st_size)});
  };
  fs::path start = dir_part.empty() ? root_ : root_ / dir_part;
  RETURN_IF_ERROR(Walk(start, dir_part, visit));
  return out;
}

Status LocalStorage::Cleanup(int64_t min_age_seconds) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  Status first_error;
  auto visit = [&](const std::string&, const fs::path& full, const struct stat& st) {
    if (full.filename().native().find(kTempMarker) == std::string::npos) return;
    if (now - static_cast<int64_t>(st.st_mtime) < min_age_seconds) return;
    if (::unlink(full.c_str()) != 0 && errno != ENOENT && first_error.ok())
      first_error = ErrnoError("delete temp file", full.native(), errno);
  };
  RETURN_IF_ERROR(Walk(root_, "", visit));
  return first_error;
}

}  // namespace reprise
