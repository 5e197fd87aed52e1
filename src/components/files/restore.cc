#include "components/files/restore.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "components/files/posix.h"

namespace reprise::files {

using nlohmann::json;

namespace {

constexpr size_t kWriteSize = 1 << 20;
// Pieces of at least this many bytes (most chunks) are written as they come, without a copy
// into the write buffer: the buffer only gathers the small ones into large writes.
constexpr size_t kDirectWrite = 128 << 10;
// Writer threads: file creation and writes are mostly kernel time, and a small file's blobs
// are read on its writer thread (RepoRestoreSource::ReadContent), so these are also the reads
// in flight against a remote repository: enough threads to hide request latency.
constexpr size_t kWriterThreads = 12;
// Files of at most kSmallFile bytes are filled in batches of up to kBatchFiles files or
// kBatchBytes bytes (one ReadContents each).
constexpr uint64_t kSmallFile = 256 << 10;
constexpr size_t kBatchFiles = 256;
constexpr uint64_t kBatchBytes = 4 << 20;

std::string TrimSlashes(std::string s) {
  size_t begin = s.find_first_not_of('/');
  if (begin == std::string::npos) return std::string();
  size_t end = s.find_last_not_of('/');
  return s.substr(begin, end - begin + 1);
}

// A manifest path must stay inside the target: relative, no empty, "." or ".." component.
Status CheckPath(const std::string& path, bool allow_empty) {
  if (path.empty()) {
    if (allow_empty) return Status::Ok();
    return Corruption("a manifest entry has an empty path");
  }
  bool safe = path.find('\0') == std::string::npos;
  size_t start = 0;
  while (safe && start <= path.size()) {
    size_t end = std::min(path.find('/', start), path.size());
    std::string_view part(path.data() + start, end - start);
    safe = !part.empty() && part != "." && part != "..";
    start = end + 1;
  }
  if (safe) return Status::Ok();
  return Corruption("manifest path '" + Printable(path) + "' would leave the target directory");
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

Status ExistsError(const std::string& path) {
  return AlreadyExists("'" + Printable(path) +
                       "' already exists: HINT: restore into an empty directory or allow "
                       "overwriting");
}

// Calls `create` (a POSIX call returning -1/errno); when a parent directory is missing (left
// out by a filter, or not in the manifest), creates it and tries once more.
template <typename Create>
int CreateWithParents(const std::string& path, Create create) {
  int rc = create();
  if (rc < 0 && errno == ENOENT) {
    if (MakeParents(path).ok()) {
      rc = create();
    } else {
      errno = ENOENT;  // report the original failure
    }
  }
  return rc;
}

// Collects streamed bytes into large pwrite() calls from `offset` on, refusing more than
// `limit` bytes (a manifest that lies about sizes must not make us write past the extent).
class RangeWriter {
 public:
  RangeWriter(int fd, uint64_t offset, uint64_t limit, const std::string& path, Bytes& buffer)
      : fd_(fd), offset_(offset), limit_(limit), path_(path), buffer_(buffer) {}

  Status Append(ByteView data) {
    if (data.size() > limit_ - total_) {
      return Corruption("content of '" + Printable(path_) + "' is longer than the " +
                        std::to_string(limit_) + " bytes the manifest says");
    }
    total_ += data.size();
    const bool direct = data.size() >= std::min(kDirectWrite, buffer_.size());
    if (direct || fill_ + data.size() > buffer_.size()) RETURN_IF_ERROR(Flush());
    if (direct) {
      RETURN_IF_ERROR(WriteAllAt(fd_, data, offset_, path_));
      offset_ += data.size();
      return Status::Ok();
    }
    std::memcpy(buffer_.data() + fill_, data.data(), data.size());
    fill_ += data.size();
    return Status::Ok();
  }

  Status Flush() {
    if (fill_ == 0) return Status::Ok();
    RETURN_IF_ERROR(WriteAllAt(fd_, ByteView(buffer_.data(), fill_), offset_, path_));
    offset_ += fill_;
    fill_ = 0;
    return Status::Ok();
  }

  // Flushes and checks that exactly `limit` bytes came.
  Status Finish() {
    RETURN_IF_ERROR(Flush());
    if (total_ == limit_) return Status::Ok();
    return Corruption("content of '" + Printable(path_) + "' has " + std::to_string(total_) +
                      " bytes where the manifest says " + std::to_string(limit_));
  }

 private:
  int fd_;
  uint64_t offset_;
  uint64_t limit_;
  uint64_t total_ = 0;
  const std::string& path_;
  Bytes& buffer_;
  size_t fill_ = 0;
};

}  // namespace

TreeRestorer::TreeRestorer(RestoreSource& source, const RestoreOptions& options)
    : source_(source),
      options_(options),
      is_root_(::geteuid() == 0),
      writers_(std::make_unique<ThreadPool>(kWriterThreads, 4 * kWriterThreads)) {
  target_ = options.target;
  while (!target_.empty() && target_.back() == '/') target_.pop_back();
  for (const std::string& inc : options.include) includes_.push_back(TrimSlashes(inc));
}

Status TreeRestorer::Run() {
  if (options_.target.empty()) return InvalidArgument("the restore target is empty");
  const std::string top = target_.empty() ? std::string("/") : target_;
  RETURN_IF_ERROR(MakeDirs(top));
  if (includes_.empty()) RETURN_IF_ERROR(source_.ExpectFullRead());
  Status walked = source_.ForEachEntry([this](const json& e) {
    RETURN_IF_ERROR(FirstError());
    return RestoreEntry(e);
  });
  Status written = Drain();
  RETURN_IF_ERROR(written);  // a writer's failure first: it is usually why the walk stopped
  RETURN_IF_ERROR(walked);
  RETURN_IF_ERROR(FixUpDirs());
  UniqueFd fd(::open(top.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::syncfs(fd.get()) != 0) return PathError("syncfs", top, errno);
  return Status::Ok();
}

Status TreeRestorer::RestoreEntry(const json& entry) {
  try {
    ASSIGN_OR_RETURN(EntryMeta meta, EntryFromJson(entry));
    RETURN_IF_ERROR(CheckPath(meta.path, meta.type == FileType::kDir));
    if (meta.type == FileType::kHardlink) RETURN_IF_ERROR(CheckPath(meta.link, false));
    if (UnderRestoredSymlink(meta.path)) {
      return Corruption("manifest path '" + Printable(meta.path) + "' lies below a symlink");
    }
    if (!Selected(meta)) {
      if (meta.type == FileType::kFile && meta.nlink > 1) {
        unselected_inodes_.emplace(meta.path, entry);
      }
      return Status::Ok();
    }
    return RestoreObject(meta, entry);
  } catch (const json::exception& e) {
    return Corruption(std::string("manifest entry is malformed: ") + e.what());
  }
}

Status TreeRestorer::RestoreObject(const EntryMeta& meta, const json& entry) {
  switch (meta.type) {
    case FileType::kDir:
      return RestoreDir(meta);
    case FileType::kFile:
      return RestoreFile(meta, entry);
    case FileType::kHardlink:
      return RestoreHardlink(meta);
    default:
      return RestoreNode(meta);
  }
}

Status TreeRestorer::RestoreDir(const EntryMeta& meta) {
  const std::string path = FullPath(meta.path);
  // 0700 until FixUpDirs: nobody else looks in while it fills, and we can always write.
  auto create = [&] { return ::mkdir(path.c_str(), 0700); };
  if (CreateWithParents(path, create) != 0) {
    int err = errno;
    if (err != EEXIST) return PathError("mkdir", path, err);
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return PathError("lstat", path, errno);
    if (!S_ISDIR(st.st_mode)) {
      if (!options_.overwrite) return ExistsError(path);
      if (::unlink(path.c_str()) != 0) return PathError("unlink", path, errno);
      if (create() != 0) return PathError("mkdir", path, errno);
    } else if ((st.st_mode & 0700) != 0700 && !is_root_) {
      // An existing read-only directory (e.g. from an earlier restore) must take the new
      // entries; FixUpDirs sets its mode back. Not ours to change: creating will say so.
      ::chmod(path.c_str(), (st.st_mode & 07777) | 0700);
    }
  }
  dirs_.push_back(meta);
  return Status::Ok();
}

Status TreeRestorer::RestoreFile(const EntryMeta& meta, const json& entry) {
  const std::string path = FullPath(meta.path);
  const size_t expected = meta.sparse ? meta.extents.size() : 1;
  // A sparse file without data regions has no contents; the engine may leave out the field.
  const json empty = json::array();
  auto found = entry.find("contents");
  const json* contents = found != entry.end() ? &*found : &empty;
  if (!contents->is_array() || contents->size() != expected) {
    return Corruption("manifest entry of '" + Printable(path) + "' does not have " +
                      std::to_string(expected) + " content lists");
  }
  // With overwrite, the old file stays in place until the new one is complete.
  const std::string temp =
      options_.overwrite ? JoinPath(DirName(path), ".reprise-tmp-" + Id::Random().Short()) : path;
  UniqueFd fd(CreateWithParents(temp, [&] {
    return ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  }));
  if (!fd.valid()) {
    return errno == EEXIST && !options_.overwrite ? ExistsError(path)
                                                  : PathError("create", temp, errno);
  }
  // The name exists now; a writer thread fills it. The job owns copies of what it needs.
  if (meta.nlink > 1) restored_inodes_[meta.path] = meta.path;
  if (!meta.sparse && meta.size <= kSmallFile) {
    // Reopened by name when its batch is filled: a batch holds no descriptors while queued.
    RETURN_IF_ERROR(fd.Close(temp));
    batch_.push_back(SmallFile{meta, (*contents)[0], path, temp});
    batch_bytes_ += meta.size;
    if (batch_.size() >= kBatchFiles || batch_bytes_ >= kBatchBytes) SubmitBatch();
    return Status::Ok();
  }
  auto job = std::make_shared<std::tuple<int, EntryMeta, json, std::string, std::string>>(
      fd.Release(), meta, *contents, path, temp);
  writers_->Submit([this, job] {
    auto& [raw_fd, m, c, p, t] = *job;
    UniqueFd owned(raw_fd);
    Status s = FillFile(owned, m, c, p, t);
    if (!s.ok()) {
      std::lock_guard lk(mu_);
      if (error_.ok()) error_ = s;
    }
  });
  return Status::Ok();
}

Status TreeRestorer::FillFile(UniqueFd& fd, const EntryMeta& meta, const json& contents,
                              const std::string& path, const std::string& temp) {
  thread_local Bytes buffer(kWriteSize);
  Status s = WriteContents(fd.get(), meta, contents, path, buffer);
  // Start writing it back now, while other files are still coming: the syncfs that ends the
  // restore then finds little left to write (a hint only; that syncfs is what makes it
  // durable). About a quarter of a 400 MB restore from S3 was that final flush.
  if (s.ok()) (void)::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  if (s.ok()) s = ApplyToFd(fd.get(), meta, path);
  Status closed = fd.Close(temp);
  if (s.ok()) s = closed;
  if (s.ok() && temp != path && ::rename(temp.c_str(), path.c_str()) != 0) {
    s = PathError("rename over", path, errno);
  }
  if (!s.ok()) {
    ::unlink(temp.c_str());  // never leave partial or wrong bytes behind
    return s.WithContext("restoring '" + Printable(path) + "'");
  }
  return Status::Ok();
}

void TreeRestorer::SubmitBatch() {
  if (batch_.empty()) return;
  auto batch = std::make_shared<std::vector<SmallFile>>(std::move(batch_));
  batch_.clear();
  batch_bytes_ = 0;
  writers_->Submit([this, batch] {
    Status s = FillBatch(*batch);
    if (!s.ok()) {
      std::lock_guard lk(mu_);
      if (error_.ok()) error_ = s;
    }
  });
}

Status TreeRestorer::FillBatch(std::vector<SmallFile>& files) {
  std::vector<const json*> contents;
  contents.reserve(files.size());
  for (const SmallFile& f : files) contents.push_back(&f.content);
  std::vector<Bytes> data(files.size());
  Status read = source_.ReadContents(contents, [&](size_t i, ByteView b) {
    if (b.size() > files[i].meta.size - data[i].size()) {
      return Corruption("content of '" + Printable(files[i].path) + "' is longer than the " +
                        std::to_string(files[i].meta.size) + " bytes the manifest says");
    }
    data[i].insert(data[i].end(), b.begin(), b.end());
    return Status::Ok();
  });
  if (!read.ok()) {
    for (const SmallFile& f : files) ::unlink(f.temp.c_str());  // no partial or wrong bytes
    std::string which = "'" + Printable(files.front().path) + "'";
    if (files.size() > 1) {
      which = std::to_string(files.size()) + " small files, " + which + " to '" +
              Printable(files.back().path) + "'";
    }
    return read.WithContext("restoring " + which);
  }
  Status first;
  for (size_t i = 0; i < files.size(); ++i) {
    Status s = WriteSmall(files[i], data[i]);
    if (!s.ok()) {
      ::unlink(files[i].temp.c_str());
      if (first.ok()) first = s.WithContext("restoring '" + Printable(files[i].path) + "'");
    }
  }
  return first;
}

Status TreeRestorer::WriteSmall(const SmallFile& f, const Bytes& data) {
  if (data.size() != f.meta.size) {
    return Corruption("content of '" + Printable(f.path) + "' has " +
                      std::to_string(data.size()) + " bytes where the manifest says " +
                      std::to_string(f.meta.size));
  }
  UniqueFd fd(::open(f.temp.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return PathError("open", f.temp, errno);
  if (!data.empty()) RETURN_IF_ERROR(WriteAllAt(fd.get(), data, 0, f.path));
  RETURN_IF_ERROR(ApplyToFd(fd.get(), f.meta, f.path));
  RETURN_IF_ERROR(fd.Close(f.temp));
  if (f.temp != f.path && ::rename(f.temp.c_str(), f.path.c_str()) != 0) {
    return PathError("rename over", f.path, errno);
  }
  return Status::Ok();
}

Status TreeRestorer::Drain() {
  SubmitBatch();
  writers_.reset();  // finishes every queued job, then joins
  writers_ = std::make_unique<ThreadPool>(kWriterThreads, 4 * kWriterThreads);
  return FirstError();
}

Status TreeRestorer::FirstError() {
  std::lock_guard lk(mu_);
  return error_;
}

Status TreeRestorer::WriteContents(int fd, const EntryMeta& meta, const json& contents,
                                   const std::string& path, Bytes& buffer) {
  if (!meta.sparse) {
    RangeWriter writer(fd, 0, meta.size, path, buffer);
    RETURN_IF_ERROR(source_.ReadContent(contents[0], [&](ByteView b) { return writer.Append(b); }));
    return writer.Finish();
  }
  // Holes are made by the size alone; only the data regions are written.
  if (::ftruncate(fd, static_cast<off_t>(meta.size)) != 0) {
    return PathError("truncate", path, errno);
  }
  for (size_t i = 0; i < meta.extents.size(); ++i) {
    const Extent& extent = meta.extents[i];
    RangeWriter writer(fd, extent.offset, extent.length, path, buffer);
    RETURN_IF_ERROR(source_.ReadContent(contents[i], [&](ByteView b) { return writer.Append(b); }));
    RETURN_IF_ERROR(writer.Finish());
  }
  return Status::Ok();
}

Status TreeRestorer::RestoreHardlink(const EntryMeta& meta) {
  auto first = restored_inodes_.find(meta.link);
  if (first == restored_inodes_.end()) {
    auto unselected = unselected_inodes_.find(meta.link);
    if (unselected == unselected_inodes_.end()) {
      Warn("hard link '" + Printable(FullPath(meta.path)) + "' is not restored: its first name '" +
           Printable(meta.link) + "' was not restored");
      return Status::Ok();
    }
    // The first name was filtered out: this name gets the data, later ones link to it.
    ASSIGN_OR_RETURN(EntryMeta data, EntryFromJson(unselected->second));
    data.path = meta.path;
    RETURN_IF_ERROR(RestoreFile(data, unselected->second));
    restored_inodes_[meta.link] = meta.path;
    unselected_inodes_.erase(unselected);
    return Status::Ok();
  }
  if (options_.overwrite) RETURN_IF_ERROR(Drain());  // the first name may still be a temp file
  const std::string from = FullPath(first->second);
  const std::string path = FullPath(meta.path);
  RETURN_IF_ERROR(MakeRoom(path));
  if (CreateWithParents(path, [&] { return ::link(from.c_str(), path.c_str()); }) != 0) {
    return errno == EEXIST ? ExistsError(path) : PathError("link", path, errno);
  }
  return Status::Ok();
}

Status TreeRestorer::RestoreNode(const EntryMeta& meta) {
  const std::string path = FullPath(meta.path);
  RETURN_IF_ERROR(MakeRoom(path));
  Status s = CreateNode(meta, path);
  const bool device = meta.type == FileType::kCharDev || meta.type == FileType::kBlockDev;
  if (device && s.code() == Code::kPermissionDenied) {
    Warn(s.message() + "; the device is not restored (it needs privileges)");
    return Status::Ok();
  }
  RETURN_IF_ERROR(s);
  RETURN_IF_ERROR(ApplyToPath(meta, path));
  if (meta.type == FileType::kSymlink) symlinks_.insert(meta.path);
  return Status::Ok();
}

Status TreeRestorer::CreateNode(const EntryMeta& meta, const std::string& path) {
  const char* p = path.c_str();
  const char* verb = "mknod";
  int rc = CreateWithParents(path, [&] {
    switch (meta.type) {
      case FileType::kSymlink:
        verb = "symlink";
        return ::symlink(meta.target.c_str(), p);
      case FileType::kFifo:
        verb = "mkfifo";
        return ::mkfifo(p, 0600);
      case FileType::kCharDev:
        return ::mknod(p, S_IFCHR | 0600, meta.rdev);
      case FileType::kBlockDev:
        return ::mknod(p, S_IFBLK | 0600, meta.rdev);
      default:
        errno = EINVAL;
        return -1;
    }
  });
  if (rc == 0) return Status::Ok();
  return errno == EEXIST ? ExistsError(path) : PathError(verb, path, errno);
}

Status TreeRestorer::MakeRoom(const std::string& path) {
  if (!options_.overwrite) return Status::Ok();  // creating will report an existing object
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Status::Ok();
  if (S_ISDIR(st.st_mode)) {
    return AlreadyExists("'" + Printable(path) + "' is a directory and is not replaced");
  }
  if (::unlink(path.c_str()) != 0) return PathError("unlink", path, errno);
  return Status::Ok();
}

// Deepest first: a directory's mtime is set after everything inside it was created.
Status TreeRestorer::FixUpDirs() {
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    RETURN_IF_ERROR(ApplyToPath(*it, FullPath(it->path)));
  }
  return Status::Ok();
}

// Owner before mode: chown clears setuid/setgid bits.
Status TreeRestorer::ApplyToFd(int fd, const EntryMeta& meta, const std::string& path) {
  CheckChown(::fchown(fd, meta.uid, meta.gid), path);
  if (::fchmod(fd, meta.mode) != 0) return PathError("chmod", path, errno);
  const struct timespec times[2] = {NsToTimespec(meta.mtime_ns), NsToTimespec(meta.mtime_ns)};
  if (::futimens(fd, times) != 0) return PathError("set times of", path, errno);
  return Status::Ok();
}

Status TreeRestorer::ApplyToPath(const EntryMeta& meta, const std::string& path) {
  CheckChown(::lchown(path.c_str(), meta.uid, meta.gid), path);
  if (meta.type != FileType::kSymlink) {
    RETURN_IF_ERROR(CheckNotOwner(::chmod(path.c_str(), meta.mode), "chmod", path));
  }
  const struct timespec times[2] = {NsToTimespec(meta.mtime_ns), NsToTimespec(meta.mtime_ns)};
  return CheckNotOwner(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW),
                       "set times of", path);
}

// A user restoring into a tree with existing directories it does not own (say, "/home" when
// restoring to "/") cannot set their mode or times: a warning, not a failure.
Status TreeRestorer::CheckNotOwner(int rc, const char* what, const std::string& path) {
  if (rc == 0) return Status::Ok();
  int err = errno;
  if (is_root_ || err != EPERM) return PathError(what, path, err);
  Warn(PathError(what, path, err).message() + " (not the owner; left as it is)");
  return Status::Ok();
}

// Only root can give files away; a user restoring keeps ownership of what it restores.
void TreeRestorer::CheckChown(int rc, const std::string& path) {
  if (rc == 0) return;
  int err = errno;
  if (!is_root_ && err == EPERM) return;
  Warn("cannot set the owner of '" + Printable(path) + "': " + std::strerror(err));
}

bool TreeRestorer::Selected(const EntryMeta& meta) const {
  if (includes_.empty()) return true;
  for (const std::string& inc : includes_) {
    if (inc.empty() || IsUnder(meta.path, inc)) return true;
    // Directories above an included path are restored too, with their metadata.
    if (meta.type == FileType::kDir && (meta.path.empty() || IsUnder(inc, meta.path))) {
      return true;
    }
  }
  return false;
}

bool TreeRestorer::UnderRestoredSymlink(const std::string& path) const {
  if (symlinks_.empty()) return false;
  for (size_t slash = path.find('/'); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    if (symlinks_.count(path.substr(0, slash)) != 0) return true;
  }
  return false;
}

std::string TreeRestorer::FullPath(const std::string& manifest_path) const {
  if (manifest_path.empty()) return target_.empty() ? std::string("/") : target_;
  return target_ + "/" + manifest_path;
}

void TreeRestorer::Warn(const std::string& message) {
  std::lock_guard lk(mu_);
  ++warnings_;
  if (options_.warn) {
    options_.warn(message);
  } else {
    std::fprintf(stderr, "warning: %s\n", message.c_str());
  }
}

}  // namespace reprise::files
