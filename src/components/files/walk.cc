#include "components/files/walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "components/files/file_reader.h"
#include "components/files/posix.h"

namespace reprise::files {

namespace {

constexpr size_t kReadSize = 1 << 20;
constexpr size_t kReaderThreads = 3;

std::string ManifestPath(const std::string& path) {
  return path == "/" ? std::string() : path.substr(1);
}

std::string WhyNot(int err) { return std::strerror(err); }

Status WithRootHint(const Status& s) {
  return Status(s.code(), s.message() + ": HINT: fix the 'paths' of the files component");
}

Result<std::string> AbsolutePath(const std::string& given) {
  if (given.empty()) return InvalidArgument("a backup path is empty");
  if (given[0] == '/') return given;
  std::unique_ptr<char, decltype(&std::free)> cwd(::getcwd(nullptr, 0), &std::free);
  if (!cwd) return PathError("getcwd for", given, errno);
  return JoinPath(cwd.get(), given);
}

Result<std::string> NormalizeRoot(const std::string& given) {
  ASSIGN_OR_RETURN(std::string abs, AbsolutePath(given));
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= abs.size()) {
    size_t end = std::min(abs.find('/', start), abs.size());
    std::string part = abs.substr(start, end - start);
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    start = end + 1;
  }
  if (parts.empty()) return std::string("/");
  std::string last = parts.back();
  parts.pop_back();
  std::string parent = "/";
  for (const std::string& p : parts) parent = JoinPath(parent, p);
  if (last == "..") parent = JoinPath(parent, "..");
  std::unique_ptr<char, decltype(&std::free)> real(::realpath(parent.c_str(), nullptr), &std::free);
  if (!real) {
    return WithRootHint(PathError("resolving backup path", given, errno));
  }
  std::string root = last == ".." ? std::string(real.get()) : JoinPath(real.get(), last);
  struct stat st;
  if (::lstat(root.c_str(), &st) != 0) return WithRootHint(PathError("backup path", root, errno));
  if (!IsValidUtf8(root)) {
    return InvalidArgument("backup path '" + Printable(root) +
                           "' is not valid UTF-8: HINT: name a directory above it");
  }
  return root;
}

bool IsUnder(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

}  // namespace

Result<std::vector<std::string>> NormalizeRoots(const std::vector<std::string>& paths) {
  if (paths.empty()) return InvalidArgument("the files component has no 'paths' to save");
  std::vector<std::string> roots;
  for (const std::string& p : paths) {
    ASSIGN_OR_RETURN(std::string root, NormalizeRoot(p));
    roots.push_back(std::move(root));
  }
  std::sort(roots.begin(), roots.end());
  std::vector<std::string> kept;
  for (const std::string& r : roots) {
    bool nested =
        std::any_of(kept.begin(), kept.end(), [&](const std::string& k) { return IsUnder(r, k); });
    if (!nested) kept.push_back(r);
  }
  return kept;
}

TreeWalker::TreeWalker(const FilesOptions& options, BackupSink& sink)
    : options_(options),
      sink_(sink),
      previous_(sink.Previous()),
      readers_(std::make_unique<ThreadPool>(kReaderThreads, 2 * kReaderThreads)) {}

TreeWalker::~TreeWalker() { Finish(); }

void TreeWalker::Finish() { readers_.reset(); }

Status TreeWalker::SaveRoot(const std::string& root) {
  RETURN_IF_ERROR(SaveAncestors(root));
  struct stat st;
  if (::lstat(root.c_str(), &st) != 0) return PathError("backup path", root, errno);
  return SaveObject(root, st, st.st_dev);
}

// The directories above a root are saved (their metadata only) so that a restore recreates
// them faithfully; "/" itself is not, unless it is a root.
Status TreeWalker::SaveAncestors(const std::string& root) {
  for (size_t slash = root.find('/', 1); slash != std::string::npos;
       slash = root.find('/', slash + 1)) {
    std::string dir = root.substr(0, slash);
    if (!saved_ancestors_.insert(dir).second) continue;
    struct stat st;
    if (::lstat(dir.c_str(), &st) != 0) return PathError("lstat", dir, errno);
    if (!S_ISDIR(st.st_mode))
      return FailedPrecondition("'" + Printable(dir) + "' is not a directory");
    RETURN_IF_ERROR(Add(MetaOf(dir, st, FileType::kDir), {}));
    ++counts_.dirs;
  }
  return Status::Ok();
}

Status TreeWalker::Visit(const std::string& path, dev_t root_dev) {
  if (Excluded(path)) return Status::Ok();
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) {
      Skip("'" + Printable(path) + "' vanished during the backup; it is not saved");
    } else {
      Skip("cannot stat '" + Printable(path) + "': " + WhyNot(err) + "; it is not saved");
    }
    return Status::Ok();
  }
  return SaveObject(path, st, root_dev);
}

Status TreeWalker::SaveObject(const std::string& path, const struct stat& st, dev_t root_dev) {
  std::optional<FileType> type = TypeOfMode(st.st_mode);
  if (!type) {
    const char* what = S_ISSOCK(st.st_mode) ? "a socket" : "of an unknown type";
    Skip("'" + Printable(path) + "' is " + what + "; it is not saved");
    return Status::Ok();
  }
  switch (*type) {
    case FileType::kDir:
      return SaveDir(path, st, root_dev);
    case FileType::kFile:
      return SaveFile(path, st);
    case FileType::kSymlink:
      return SaveSymlink(path, st);
    default:
      return SaveSpecial(path, st, *type);
  }
}

Status TreeWalker::SaveDir(const std::string& path, const struct stat& st, dev_t root_dev) {
  RETURN_IF_ERROR(Add(MetaOf(path, st, FileType::kDir), {}));
  ++counts_.dirs;
  // A mount point below a root is saved as an empty directory with one_file_system.
  if (options_.one_file_system && st.st_dev != root_dev) return Status::Ok();
  std::optional<std::vector<std::string>> names = ListDir(path);
  if (!names) return Status::Ok();
  for (const std::string& name : *names) {
    RETURN_IF_ERROR(Visit(JoinPath(path, name), root_dev));
  }
  return Status::Ok();
}

std::optional<std::vector<std::string>> TreeWalker::ListDir(const std::string& path) {
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> dir(::opendir(path.c_str()));
  if (!dir) {
    int err = errno;
    Skip("cannot list '" + Printable(path) + "': " + WhyNot(err) + "; its contents are not saved");
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* d = ::readdir(dir.get());
    if (d == nullptr) break;
    std::string_view name = d->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  if (int err = errno; err != 0) {
    Skip("cannot list '" + Printable(path) + "': " + WhyNot(err) + "; its contents are not saved");
    return std::nullopt;
  }
  // std::string compares as unsigned bytes: the order is the raw byte order.
  std::sort(names.begin(), names.end());
  return names;
}

Status TreeWalker::SaveFile(const std::string& path, const struct stat& lst) {
  if (lst.st_nlink > 1) {
    auto first = first_names_.find({lst.st_dev, lst.st_ino});
    if (first != first_names_.end()) {
      EntryMeta link;
      link.path = ManifestPath(path);
      link.type = FileType::kHardlink;
      link.link = first->second;
      RETURN_IF_ERROR(Add(link, {}));
      ++counts_.hardlinks;
      return Status::Ok();
    }
  }
  ASSIGN_OR_RETURN(bool reused, SaveUnchanged(path, lst));
  if (reused) return Status::Ok();
  // Owner names are looked up here: the name cache is not thread-safe.
  EntryMeta meta = MetaOf(path, lst, FileType::kFile);
  if (lst.st_nlink > 1) first_names_.emplace(std::pair(lst.st_dev, lst.st_ino), meta.path);
  auto promise = std::make_shared<std::promise<Result<DeferredEntry>>>();
  EntryFuture entry = promise->get_future().share();
  readers_->Submit([this, path, meta, promise] { promise->set_value(ReadFile(path, meta)); });
  RETURN_IF_ERROR(sink_.AddEntryLater(std::move(entry)));
  sink_.progress().entries.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

Result<DeferredEntry> TreeWalker::ReadFile(const std::string& path, EntryMeta meta) {
  constexpr int kFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  UniqueFd fd(::open(path.c_str(), kFlags | O_NOATIME));
  if (!fd.valid() && errno == EPERM) fd = UniqueFd(::open(path.c_str(), kFlags));
  if (!fd.valid()) {
    int err = errno;
    Skip("cannot open '" + Printable(path) + "': " + WhyNot(err) + "; it is not saved");
    return DeferredEntry{};
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    Skip("'" + Printable(path) + "' changed type during the backup; it is not saved");
    return DeferredEntry{};
  }
  thread_local Bytes buffer(kReadSize);
  ASSIGN_OR_RETURN(std::optional<FileData> data, ReadFileData(fd.get(), st, path, sink_, buffer));
  if (!data) {
    ++counts_.skipped;  // ReadFileData warned
    return DeferredEntry{};
  }
  // What the open file says wins over the lstat() taken before it was opened.
  meta.mode = st.st_mode & 07777;
  meta.uid = st.st_uid;
  meta.gid = st.st_gid;
  meta.mtime_ns = TimespecToNs(st.st_mtim);
  meta.size = data->size;
  meta.nlink = st.st_nlink;
  meta.ctime_ns = TimespecToNs(st.st_ctim);
  meta.ino = st.st_ino;
  meta.sparse = data->sparse;
  meta.extents = data->extents;
  ++counts_.files;
  if (!data->sparse) counts_.bytes += data->size;
  for (const Extent& e : data->extents) counts_.bytes += e.length;
  return DeferredEntry{EntryToJson(meta), std::move(data->contents)};
}

Result<bool> TreeWalker::SaveUnchanged(const std::string& path, const struct stat& st) {
  EntryMeta meta = MetaOf(path, st, FileType::kFile);
  const nlohmann::json* prev = previous_.Find(meta.path);
  if (!prev || prev->value("type", "") != "file") return false;
  auto old = EntryFromJson(*prev);
  if (!old.ok()) return false;
  if (old->size != static_cast<uint64_t>(st.st_size) || old->mtime_ns != meta.mtime_ns ||
      old->ctime_ns != TimespecToNs(st.st_ctim) || old->ino != st.st_ino || old->ctime_ns == 0)
    return false;
  auto lists = prev->find("contents");
  size_t expected = old->sparse ? old->extents.size() : 1;
  if (lists == prev->end() || !lists->is_array() || lists->size() != expected) return false;
  std::vector<ContentFuture> contents;
  for (const auto& list : *lists) {
    if (!sink_.Reusable(list)) return false;
    auto c = ContentFromJson(list);
    if (!c.ok()) return false;
    contents.push_back(BackupSink::Ready(std::move(*c)));
  }
  meta.size = old->size;
  meta.nlink = st.st_nlink;
  meta.ctime_ns = old->ctime_ns;
  meta.ino = old->ino;
  meta.sparse = old->sparse;
  meta.extents = old->extents;
  RETURN_IF_ERROR(Add(meta, std::move(contents)));
  ++counts_.files;
  ++counts_.unchanged;
  if (st.st_nlink > 1) first_names_.emplace(std::pair(st.st_dev, st.st_ino), meta.path);
  return true;
}

Status TreeWalker::SaveSymlink(const std::string& path, const struct stat& st) {
  Result<std::string> target = ReadLink(path, static_cast<size_t>(st.st_size));
  if (!target.ok()) {
    Skip(Printable(target.status().message()) + "; the symlink is not saved");
    return Status::Ok();
  }
  EntryMeta meta = MetaOf(path, st, FileType::kSymlink);
  meta.target = std::move(*target);
  RETURN_IF_ERROR(Add(meta, {}));
  ++counts_.symlinks;
  return Status::Ok();
}

Status TreeWalker::SaveSpecial(const std::string& path, const struct stat& st, FileType type) {
  EntryMeta meta = MetaOf(path, st, type);
  if (type == FileType::kCharDev || type == FileType::kBlockDev) meta.rdev = st.st_rdev;
  RETURN_IF_ERROR(Add(meta, {}));
  ++counts_.special;
  return Status::Ok();
}

bool TreeWalker::Excluded(const std::string& path) const {
  return std::any_of(
      options_.excludes.begin(), options_.excludes.end(),
      [&](const std::string& pattern) { return ::fnmatch(pattern.c_str(), path.c_str(), 0) == 0; });
}

EntryMeta TreeWalker::MetaOf(const std::string& path, const struct stat& st, FileType type) {
  EntryMeta meta;
  meta.path = ManifestPath(path);
  meta.type = type;
  meta.mode = st.st_mode & 07777;
  meta.uid = st.st_uid;
  meta.gid = st.st_gid;
  meta.user = owners_.User(st.st_uid);
  meta.group = owners_.Group(st.st_gid);
  meta.mtime_ns = TimespecToNs(st.st_mtim);
  return meta;
}

Status TreeWalker::Add(const EntryMeta& meta, std::vector<ContentFuture> contents) {
  RETURN_IF_ERROR(sink_.AddEntry(EntryToJson(meta), std::move(contents)));
  sink_.progress().entries.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

void TreeWalker::Skip(std::string message) {
  sink_.Warn(std::move(message));
  ++counts_.skipped;
}

}  // namespace reprise::files
