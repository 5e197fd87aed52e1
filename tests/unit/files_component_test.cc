// Tests of the files component against an in-memory stand-in for the engine: back a real
// temporary tree up, restore it elsewhere, and compare everything the component promises
// to keep.
#include "components/files/files_component.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "components/component.h"

namespace reprise {
namespace {

using nlohmann::json;

constexpr size_t kTestChunk = 256 * 1024;  // contents are split into chunks of this size
constexpr uint64_t kMiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------
// The engine stand-in: keeps each content's chunks in a map keyed by a counter, resolves
// futures at once, and plays the entries back.

class MemoryRepo;

class MemoryWriter final : public ContentWriter {
 public:
  MemoryWriter(MemoryRepo& repo, uint64_t number) : repo_(repo), number_(number) {}
  Status Write(ByteView data) override;
  ContentFuture Close() override;

 private:
  MemoryRepo& repo_;
  uint64_t number_;
  Bytes data_;
};

class MemoryRepo final : public BackupSink, public RestoreSource {
 public:
  std::unique_ptr<ContentWriter> NewContent() override {
    return std::make_unique<MemoryWriter>(*this, contents_started_++);
  }

  Status AddEntry(json entry, std::vector<ContentFuture> contents) override {
    json lists = json::array();
    for (ContentFuture& f : contents) {
      const Result<Content>& content = f.get();
      if (!content.ok()) return content.status();
      lists.push_back(ContentToJson(*content));
    }
    // Like the engine: entries without contents get no "contents" field.
    if (!lists.empty()) entry["contents"] = std::move(lists);
    entries.push_back(std::move(entry));
    return Status::Ok();
  }

  void Warn(std::string message) override { warnings.push_back(std::move(message)); }
  BackupProgress& progress() override { return progress_; }

  Status ForEachEntry(const std::function<Status(const json&)>& fn) override {
    for (const json& e : entries) RETURN_IF_ERROR(fn(e));
    return Status::Ok();
  }

  Status ReadContent(const json& list, const std::function<Status(ByteView)>& sink) override {
    ASSIGN_OR_RETURN(Content content, ContentFromJson(list));
    for (const ChunkRef& chunk : content.chunks) {
      if (corrupt.count(chunk.id) != 0) {
        return Corruption("blob '" + chunk.id.Short() + "' in pack 'test' is damaged");
      }
      auto it = blobs.find(chunk.id);
      if (it == blobs.end()) return NotFound("blob '" + chunk.id.Short() + "'");
      if (it->second.size() != chunk.length) return Corruption("length mismatch");
      RETURN_IF_ERROR(sink(it->second));
    }
    return Status::Ok();
  }

  Content Store(const Bytes& data) {
    Content content;
    for (size_t off = 0; off < data.size(); off += kTestChunk) {
      size_t len = std::min(kTestChunk, data.size() - off);
      Id id;
      uint64_t n = ++chunks_stored_;
      std::memcpy(id.bytes.data(), &n, sizeof(n));
      blobs[id] = Bytes(data.begin() + off, data.begin() + off + len);
      content.chunks.push_back({.id = id, .length = static_cast<uint32_t>(len)});
      content.size += len;
    }
    return content;
  }

  // The entry whose decoded path is `path`, or nullptr.
  const json* Find(const std::string& path) const {
    for (const json& e : entries) {
      if (PathOf(e) == path) return &e;
    }
    return nullptr;
  }

  static std::string PathOf(const json& e) {
    if (e.contains("path")) return e["path"].get<std::string>();
    Result<Bytes> raw = Base64Decode(e["path_b64"].get<std::string>());
    return raw.ok() ? std::string(AsString(*raw)) : std::string("<bad base64>");
  }

  std::vector<json> entries;
  std::vector<std::string> warnings;
  std::map<Id, Bytes> blobs;
  std::set<Id> corrupt;  // ReadContent fails with kCorruption on these chunks
  // Called after every Write with the content number and the bytes written so far.
  std::function<void(uint64_t, size_t)> on_write;

 private:
  uint64_t contents_started_ = 0;
  uint64_t chunks_stored_ = 0;
  BackupProgress progress_;
};

Status MemoryWriter::Write(ByteView data) {
  data_.insert(data_.end(), data.begin(), data.end());
  if (repo_.on_write) repo_.on_write(number_, data_.size());
  return Status::Ok();
}

ContentFuture MemoryWriter::Close() {
  std::promise<Result<Content>> promise;
  promise.set_value(repo_.Store(data_));
  return promise.get_future().share();
}

// ---------------------------------------------------------------------------------------
// Filesystem helpers.

std::string ReadRange(const std::string& path, uint64_t offset, uint64_t length) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return "<cannot open>";
  std::string data(length, '\0');
  ssize_t n = ::pread(fd, data.data(), length, static_cast<off_t>(offset));
  ::close(fd);
  if (n < 0) return "<cannot read>";
  data.resize(static_cast<size_t>(n));
  return data;
}

std::string ReadAll(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "<missing>";
  return ReadRange(path, 0, static_cast<uint64_t>(st.st_size));
}

// Data regions as the filesystem reports them.
std::vector<std::pair<off_t, off_t>> DataRegions(const std::string& path) {
  std::vector<std::pair<off_t, off_t>> regions;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return regions;
  off_t size = ::lseek(fd, 0, SEEK_END);
  off_t off = 0;
  while (off < size) {
    off_t data = ::lseek(fd, off, SEEK_DATA);
    if (data < 0) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    regions.emplace_back(data, hole - data);
    off = hole;
  }
  ::close(fd);
  return regions;
}

std::vector<std::string> ListNames(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Compares two trees object by object: names, types, modes, owners, mtimes (ns), file bytes,
// data regions (sparseness), symlink targets, device numbers and which names share an inode.
class TreeComparer {
 public:
  void Compare(const std::string& a, const std::string& b) { CompareObject(a, b, "."); }

 private:
  void CompareObject(const std::string& a, const std::string& b, const std::string& rel) {
    struct stat sa, sb;
    ASSERT_EQ(::lstat(a.c_str(), &sa), 0) << rel;
    ASSERT_EQ(::lstat(b.c_str(), &sb), 0) << "not restored: " << rel;
    ASSERT_EQ(sa.st_mode & S_IFMT, sb.st_mode & S_IFMT) << "type of " << rel;
    EXPECT_EQ(sa.st_mode & 07777, sb.st_mode & 07777) << "mode of " << rel;
    EXPECT_EQ(sa.st_uid, sb.st_uid) << "uid of " << rel;
    EXPECT_EQ(sa.st_gid, sb.st_gid) << "gid of " << rel;
    EXPECT_EQ(MtimeNs(sa), MtimeNs(sb)) << "mtime of " << rel;
    if (S_ISREG(sa.st_mode)) CompareFiles(a, b, sa, sb, rel);
    if (S_ISLNK(sa.st_mode)) EXPECT_EQ(Target(a), Target(b)) << "target of " << rel;
    if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) {
      EXPECT_EQ(sa.st_rdev, sb.st_rdev) << "device of " << rel;
    }
    if (S_ISDIR(sa.st_mode)) {
      std::vector<std::string> names = ListNames(a);
      ASSERT_EQ(names, ListNames(b)) << "names in " << rel;
      for (const std::string& n : names) {
        CompareObject(a + "/" + n, b + "/" + n, rel + "/" + n);
      }
    }
  }

  void CompareFiles(const std::string& a, const std::string& b, const struct stat& sa,
                    const struct stat& sb, const std::string& rel) {
    ASSERT_EQ(sa.st_size, sb.st_size) << "size of " << rel;
    auto regions = DataRegions(a);
    EXPECT_EQ(regions, DataRegions(b)) << "data regions of " << rel;
    for (const auto& [off, len] : regions) {
      EXPECT_TRUE(ReadRange(a, off, len) == ReadRange(b, off, len)) << "bytes of " << rel;
    }
    // Names share an inode in the restore exactly when they do in the source.
    auto [fwd, new_a] = a_to_b_.emplace(sa.st_ino, sb.st_ino);
    auto [back, new_b] = b_to_a_.emplace(sb.st_ino, sa.st_ino);
    EXPECT_EQ(fwd->second, sb.st_ino) << "hard links of " << rel;
    EXPECT_EQ(back->second, sa.st_ino) << "hard links of " << rel;
  }

  static std::string Target(const std::string& path) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
    return n < 0 ? "<unreadable>" : std::string(buf, static_cast<size_t>(n));
  }

  std::map<ino_t, ino_t> a_to_b_;
  std::map<ino_t, ino_t> b_to_a_;
};

void MakeWritable(const std::string& dir) {
  ::chmod(dir.c_str(), 0700);
  for (const std::string& n : ListNames(dir)) {
    std::string p = dir + "/" + n;
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) MakeWritable(p);
  }
}

std::string Pattern(size_t size, uint32_t seed) {
  std::string data(size, '\0');
  uint32_t x = seed;
  for (char& c : data) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return data;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

class FilesComponentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reprise-files-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    base_ = tmpl;
    src_ = base_ + "/src";
    dst_ = base_ + "/dst";
    ASSERT_EQ(::mkdir(src_.c_str(), 0755), 0);
  }

  void TearDown() override {
    for (const std::string& m : mounts_) ::umount2(m.c_str(), MNT_DETACH);
    MakeWritable(base_);
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }

  std::string S(const std::string& rel) const { return src_ + "/" + rel; }
  // Where a source object lands when restoring into `target`.
  std::string R(const std::string& rel, const std::string& target = "") const {
    return (target.empty() ? dst_ : target) + src_ + (rel.empty() ? "" : "/" + rel);
  }
  // The manifest path of a source object.
  std::string M(const std::string& rel) const { return src_.substr(1) + "/" + rel; }

  void Ok(int rc, const std::string& what) {
    ASSERT_EQ(rc, 0) << what << ": " << std::strerror(errno);
  }
  void MkDir(const std::string& rel, mode_t mode) {
    Ok(::mkdir(S(rel).c_str(), 0700), "mkdir " + rel);
    Ok(::chmod(S(rel).c_str(), mode), "chmod " + rel);
  }
  void File(const std::string& rel, const std::string& data, mode_t mode = 0644) {
    int fd = ::open(S(rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0) << rel << ": " << std::strerror(errno);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
    Ok(::chmod(S(rel).c_str(), mode), "chmod " + rel);
  }
  void SetMtime(const std::string& rel, int64_t ns) {
    struct timespec t[2];
    t[0].tv_sec = t[1].tv_sec = ns >= 0 ? ns / 1'000'000'000 : -1;
    t[0].tv_nsec = t[1].tv_nsec = ns >= 0 ? ns % 1'000'000'000 : ns + 1'000'000'000;
    Ok(::utimensat(AT_FDCWD, S(rel).c_str(), t, AT_SYMLINK_NOFOLLOW), "utimensat " + rel);
  }

  void BuildTree() {
    MkDir("a", 0755);
    MkDir("a/b", 0750);
    MkDir("a/b/c", 0755);
    File("a/b/c/deep.txt", "deep down");
    MkDir("empty_dir", 0755);
    File("empty_file", "");
    File("name with spaces\nand newline", "odd name");
    File("\xff\xfe", "not utf-8");
    Ok(::symlink("a/b/c/deep.txt", S("link").c_str()), "symlink");
    Ok(::symlink("does/not/exist", S("dangling").c_str()), "symlink");
    File("hard1", "shared inode", 0640);
    Ok(::link(S("hard1").c_str(), S("hard2").c_str()), "link");
    MkDir("sub", 0755);
    Ok(::link(S("hard1").c_str(), S("sub/hard3").c_str()), "link");
    MakeSparse("sparse", 1024 * kMiB, {1 * kMiB, 700 * kMiB});
    MakeSparse("hollow", 16 * kMiB, {});
    File("big", Pattern(2 * kMiB + kMiB / 2, 7));
    Ok(::mkfifo(S("fifo").c_str(), 0640), "mkfifo");
    File("m0600", "0600", 0600);
    File("m0755", "0755", 0755);
    File("m04755", "04755", 04755);
    MkDir("sticky", 01777);
    MkDir("ro_dir", 0755);
    File("ro_dir/inside", "in a read-only directory");
    File("ancient", "before 1970");
    if (::geteuid() == 0) {
      File("owned", "someone else's");
      Ok(::chown(S("owned").c_str(), 1234, 5678), "chown");
      Ok(::mknod(S("chardev").c_str(), S_IFCHR | 0640, makedev(1, 3)), "mknod");
      Ok(::mknod(S("blockdev").c_str(), S_IFBLK | 0600, makedev(7, 99)), "mknod");
    }
    SetMtime("a/b/c/deep.txt", 1'000'000'000'123'456'789);
    SetMtime("link", 1'100'000'000'000'000'005);
    SetMtime("ancient", -123'456'789);
    SetMtime("a/b", 1'200'000'000'999'999'999);
    Ok(::chmod(S("ro_dir").c_str(), 0555), "chmod ro_dir");
  }

  void MakeSparse(const std::string& rel, uint64_t size, const std::vector<uint64_t>& data_at) {
    int fd = ::open(S(rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    for (uint64_t off : data_at) {
      std::string data = Pattern(64 * 1024, static_cast<uint32_t>(off));
      ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)),
                static_cast<ssize_t>(data.size()));
    }
    ::close(fd);
  }

  Result<json> Backup(FilesOptions options, MemoryRepo& repo) {
    FilesComponent component(std::move(options));
    return component.Backup(repo);
  }
  Result<json> BackupSrc(MemoryRepo& repo) { return Backup({.paths = {src_}}, repo); }

  Status Restore(MemoryRepo& repo, RestoreOptions options) {
    FilesComponent component(FilesOptions{});
    return component.Restore(json::object(), repo, options);
  }

  bool Exists(const std::string& path) const {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }

  std::vector<std::string> TempFilesIn(const std::string& dir) const {
    std::vector<std::string> temps;
    for (const std::string& n : ListNames(dir)) {
      if (n.find("reprise-tmp") != std::string::npos) temps.push_back(n);
    }
    return temps;
  }

  std::string base_, src_, dst_;
  std::vector<std::string> mounts_;
};

TEST_F(FilesComponentTest, RoundTripKeepsEverything) {
  ASSERT_NO_FATAL_FAILURE(BuildTree());
  MemoryRepo repo;
  Result<json> info = BackupSrc(repo);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(repo.warnings.empty()) << Joined(repo.warnings);

  ASSERT_TRUE(Restore(repo, {.target = dst_}).ok());
  ASSERT_NO_FATAL_FAILURE(TreeComparer().Compare(src_, R("")));

  struct stat st;
  ASSERT_EQ(::stat(R("sparse").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 1024 * kMiB);
  EXPECT_LE(static_cast<uint64_t>(st.st_blocks) * 512, 1 * kMiB) << "holes were filled";
  ASSERT_EQ(::stat(R("hollow").c_str(), &st), 0);
  EXPECT_EQ(st.st_blocks, 0);
  EXPECT_EQ(ReadAll(R("m04755")), "04755");
}

TEST_F(FilesComponentTest, ManifestEntriesFollowTheFormat) {
  ASSERT_NO_FATAL_FAILURE(BuildTree());
  MemoryRepo repo;
  Result<json> info = BackupSrc(repo);
  ASSERT_TRUE(info.ok()) << info.status().ToString();

  const json* odd = repo.Find(M("\xff\xfe"));
  ASSERT_NE(odd, nullptr);
  EXPECT_FALSE(odd->contains("path"));
  EXPECT_EQ((*odd)["path_b64"], Base64Encode(AsBytes(M("\xff\xfe"))));
  ASSERT_NE(repo.Find(M("name with spaces\nand newline")), nullptr);

  const json* hard2 = repo.Find(M("hard2"));
  ASSERT_NE(hard2, nullptr);
  EXPECT_EQ((*hard2)["type"], "hardlink");
  EXPECT_EQ((*hard2)["link"], M("hard1"));
  EXPECT_EQ((*repo.Find(M("sub/hard3")))["link"], M("hard1"));
  EXPECT_EQ((*repo.Find(M("hard1")))["nlink"], 3);

  const json* sparse = repo.Find(M("sparse"));
  ASSERT_NE(sparse, nullptr);
  json want_extents =
      json::array({json::array({1 * kMiB, 64 * 1024}), json::array({700 * kMiB, 64 * 1024})});
  EXPECT_EQ((*sparse)["extents"], want_extents);
  EXPECT_EQ((*sparse)["contents"].size(), 2u);
  EXPECT_EQ((*sparse)["size"], 1024 * kMiB);
  EXPECT_EQ((*repo.Find(M("hollow")))["extents"], json::array());
  EXPECT_FALSE(repo.Find(M("big"))->contains("extents"));
  EXPECT_EQ((*repo.Find(M("big")))["contents"].size(), 1u);

  EXPECT_EQ((*repo.Find(M("dangling")))["target"], "does/not/exist");
  EXPECT_EQ((*repo.Find(M("dangling")))["type"], "symlink");
  EXPECT_EQ((*repo.Find(M("fifo")))["type"], "fifo");
  EXPECT_EQ((*repo.Find(M("m04755")))["mode"], 04755);
  EXPECT_EQ((*repo.Find(M("sticky")))["mode"], 01777);
  EXPECT_EQ((*repo.Find(M("ancient")))["mtime_ns"], -123'456'789);
  EXPECT_EQ((*repo.Find(M("a/b/c/deep.txt")))["mtime_ns"], 1'000'000'000'123'456'789);
  if (::geteuid() == 0) {
    EXPECT_EQ((*repo.Find(M("chardev")))["rdev"], makedev(1, 3));
    EXPECT_EQ((*repo.Find(M("owned")))["uid"], 1234);
    EXPECT_EQ((*repo.Find(M("a")))["user"], "root");
  }

  // Parents come before children; every path appears once.
  std::set<std::string> seen;
  for (const json& e : repo.entries) {
    std::string p = MemoryRepo::PathOf(e);
    EXPECT_TRUE(seen.insert(p).second) << "twice: " << p;
    size_t slash = p.rfind('/');
    if (slash != std::string::npos) EXPECT_EQ(seen.count(p.substr(0, slash)), 1u) << p;
  }

  uint64_t files = 0;
  for (const json& e : repo.entries) files += e["type"] == "file" ? 1 : 0;
  EXPECT_EQ((*info)["files"], files);
  EXPECT_EQ((*info)["roots"], json::array({src_}));
  EXPECT_EQ((*info)["bytes"], repo.progress().bytes_read.load());
  EXPECT_EQ(repo.progress().entries.load(), repo.entries.size());
  EXPECT_EQ((*info)["skipped"], 0);

  // The same tree gives the same manifest. The source's ancestors (under /tmp) are listed too;
  // other processes creating temp dirs change their mtimes between the two backups.
  MemoryRepo again;
  ASSERT_TRUE(BackupSrc(again).ok());
  ASSERT_EQ(again.entries.size(), repo.entries.size());
  const std::string src_rel = src_.substr(1);  // entries have no leading slash
  for (size_t i = 0; i < repo.entries.size(); ++i) {
    json a = repo.entries[i], b = again.entries[i];
    a.erase("contents");
    b.erase("contents");
    if (src_rel.starts_with(MemoryRepo::PathOf(a) + "/")) {
      a.erase("mtime_ns");
      b.erase("mtime_ns");
    }
    EXPECT_EQ(a, b) << i;
  }
}

TEST_F(FilesComponentTest, IncludeRestoresOnlyThosePaths) {
  ASSERT_NO_FATAL_FAILURE(BuildTree());
  MemoryRepo repo;
  ASSERT_TRUE(BackupSrc(repo).ok());

  ASSERT_TRUE(Restore(repo, {.target = dst_, .include = {"/" + M("a/b")}}).ok());
  EXPECT_EQ(ReadAll(R("a/b/c/deep.txt")), "deep down");
  EXPECT_FALSE(Exists(R("empty_file")));
  EXPECT_FALSE(Exists(R("hard1")));
  EXPECT_FALSE(Exists(R("a/bb")));
  struct stat st;
  ASSERT_EQ(::stat(R("a/b").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(MtimeNs(st), 1'200'000'000'999'999'999);

  const std::string dst2 = base_ + "/dst2";
  ASSERT_TRUE(Restore(repo, {.target = dst2, .include = {M("ro_dir/")}}).ok());
  EXPECT_EQ(ReadAll(R("ro_dir/inside", dst2)), "in a read-only directory");
  ASSERT_EQ(::stat(R("ro_dir", dst2).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  EXPECT_EQ(ListNames(R("", dst2)), std::vector<std::string>{"ro_dir"});
}

TEST_F(FilesComponentTest, IncludedHardLinkGetsTheDataWhenItsFirstNameIsLeftOut) {
  ASSERT_NO_FATAL_FAILURE(BuildTree());
  MemoryRepo repo;
  ASSERT_TRUE(BackupSrc(repo).ok());
  ASSERT_TRUE(Restore(repo, {.target = dst_, .include = {M("sub"), M("hard2")}}).ok());
  EXPECT_FALSE(Exists(R("hard1")));
  EXPECT_EQ(ReadAll(R("hard2")), "shared inode");
  struct stat a, b;
  ASSERT_EQ(::stat(R("hard2").c_str(), &a), 0);
  ASSERT_EQ(::stat(R("sub/hard3").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(a.st_mode & 07777, 0640u);
}

TEST_F(FilesComponentTest, ExcludesLeaveObjectsOut) {
  ASSERT_NO_FATAL_FAILURE(BuildTree());
  MemoryRepo repo;
  ASSERT_TRUE(Backup({.paths = {src_}, .excludes = {"*/empty_*", S("a/b")}}, repo).ok());
  EXPECT_EQ(repo.Find(M("empty_dir")), nullptr);
  EXPECT_EQ(repo.Find(M("empty_file")), nullptr);
  EXPECT_EQ(repo.Find(M("a/b")), nullptr);
  EXPECT_EQ(repo.Find(M("a/b/c/deep.txt")), nullptr);
  EXPECT_NE(repo.Find(M("a")), nullptr);
  EXPECT_NE(repo.Find(M("big")), nullptr);
  EXPECT_TRUE(repo.warnings.empty()) << Joined(repo.warnings);
}

TEST_F(FilesComponentTest, SocketsAreSkippedWithAWarning) {
  File("plain", "x");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::string path = S("sock");
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  MemoryRepo repo;
  Result<json> info = BackupSrc(repo);
  ::close(fd);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(repo.Find(M("sock")), nullptr);
  EXPECT_NE(repo.Find(M("plain")), nullptr);
  ASSERT_EQ(repo.warnings.size(), 1u);
  EXPECT_NE(repo.warnings[0].find(path), std::string::npos) << repo.warnings[0];
  EXPECT_NE(repo.warnings[0].find("socket"), std::string::npos) << repo.warnings[0];
  EXPECT_EQ((*info)["skipped"], 1);
}

TEST_F(FilesComponentTest, FileGrowingWhileReadIsSavedAsReadWithAWarning) {
  File("grow", Pattern(3 * kMiB, 3));
  MemoryRepo repo;
  bool appended = false;
  repo.on_write = [&](uint64_t, size_t written) {
    if (appended || written < kMiB) return;
    int fd = ::open(S("grow").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "tail", 4), 4);
    ::close(fd);
    appended = true;
  };
  ASSERT_TRUE(BackupSrc(repo).ok());
  ASSERT_TRUE(appended);
  ASSERT_EQ(repo.warnings.size(), 1u) << Joined(repo.warnings);
  EXPECT_NE(repo.warnings[0].find(S("grow")), std::string::npos);
  EXPECT_NE(repo.warnings[0].find("changed"), std::string::npos);
  EXPECT_EQ((*repo.Find(M("grow")))["size"], 3 * kMiB + 4);
  ASSERT_TRUE(Restore(repo, {.target = dst_}).ok());
  EXPECT_TRUE(ReadAll(R("grow")) == ReadAll(S("grow")));
}

TEST_F(FilesComponentTest, CorruptContentLeavesNoFileAndNamesThePath) {
  ASSERT_NO_FATAL_FAILURE(BuildTree());
  MemoryRepo repo;
  ASSERT_TRUE(BackupSrc(repo).ok());
  const json& chunks = (*repo.Find(M("big")))["contents"][0];
  ASSERT_GT(chunks.size(), 3u);
  repo.corrupt.insert(*Id::FromHex(chunks[2][0].get<std::string>()));

  Status s = Restore(repo, {.target = dst_});
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(R("big")), std::string::npos) << s.ToString();
  EXPECT_FALSE(Exists(R("big")));
  EXPECT_TRUE(TempFilesIn(R("")).empty());
}

TEST_F(FilesComponentTest, CorruptContentWithOverwriteKeepsTheOldFile) {
  ASSERT_NO_FATAL_FAILURE(BuildTree());
  MemoryRepo repo;
  ASSERT_TRUE(BackupSrc(repo).ok());
  ASSERT_TRUE(Restore(repo, {.target = dst_}).ok());
  const std::string old_bytes = "bytes from before the restore";
  {
    int fd = ::open(R("big").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, old_bytes.data(), old_bytes.size()),
              static_cast<ssize_t>(old_bytes.size()));
    ::close(fd);
  }
  const json& chunks = (*repo.Find(M("big")))["contents"][0];
  repo.corrupt.insert(*Id::FromHex(chunks[1][0].get<std::string>()));

  Status s = Restore(repo, {.target = dst_, .overwrite = true});
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(R("big")), std::string::npos) << s.ToString();
  EXPECT_EQ(ReadAll(R("big")), old_bytes);
  EXPECT_TRUE(TempFilesIn(R("")).empty());
}

TEST_F(FilesComponentTest, ExistingFilesAreKeptUnlessOverwriting) {
  ASSERT_NO_FATAL_FAILURE(BuildTree());
  MemoryRepo repo;
  ASSERT_TRUE(BackupSrc(repo).ok());
  ASSERT_TRUE(Restore(repo, {.target = dst_}).ok());

  // Damage the restored copy, then restore over it.
  File("../dst" + src_ + "/a/b/c/deep.txt", "changed");
  ASSERT_EQ(::chmod(R("m0600").c_str(), 0644), 0);
  ASSERT_EQ(::unlink(R("link").c_str()), 0);
  File("../dst" + src_ + "/link", "a file where a symlink was");
  ASSERT_EQ(::unlink(R("hard2").c_str()), 0);

  Status refused = Restore(repo, {.target = dst_});
  EXPECT_EQ(refused.code(), Code::kAlreadyExists) << refused.ToString();
  EXPECT_EQ(ReadAll(R("a/b/c/deep.txt")), "changed");

  Status s = Restore(repo, {.target = dst_, .overwrite = true});
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_NO_FATAL_FAILURE(TreeComparer().Compare(src_, R("")));
  EXPECT_TRUE(TempFilesIn(R("")).empty());
}

TEST_F(FilesComponentTest, UnsafeManifestPathsAreRejected) {
  json dir = {{"type", "dir"}, {"mode", 0755}, {"uid", 0}, {"gid", 0}, {"mtime_ns", 0}};
  {
    MemoryRepo repo;
    json evil = dir;
    evil["path"] = "x/../../evil";
    repo.entries = {evil};
    Status s = Restore(repo, {.target = dst_});
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find("would leave the target"), std::string::npos) << s.ToString();
    EXPECT_FALSE(Exists(base_ + "/evil"));
  }
  {
    MemoryRepo repo;
    json link = {{"path", "x"}, {"type", "symlink"}, {"target", base_}, {"mode", 0777},
                 {"uid", 0},    {"gid", 0},          {"mtime_ns", 0}};
    json below = dir;
    below["path"] = "x/escaped";
    repo.entries = {link, below};
    Status s = Restore(repo, {.target = dst_});
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find("below a symlink"), std::string::npos) << s.ToString();
    EXPECT_FALSE(Exists(base_ + "/escaped"));
  }
  {
    MemoryRepo repo;
    json file = dir;
    file["path"] = "f";
    file["type"] = "file";  // no "size"
    repo.entries = {file};
    Status s = Restore(repo, {.target = dst_});
    EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
    EXPECT_NE(s.message().find("size"), std::string::npos) << s.ToString();
  }
}

TEST_F(FilesComponentTest, ContentLongerThanTheManifestSaysIsCorruption) {
  File("f", "twelve bytes");
  MemoryRepo repo;
  ASSERT_TRUE(BackupSrc(repo).ok());
  for (json& e : repo.entries) {
    if (MemoryRepo::PathOf(e) == M("f")) e["size"] = 5;
  }
  Status s = Restore(repo, {.target = dst_});
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_FALSE(Exists(R("f")));
}

TEST_F(FilesComponentTest, MissingRootIsAnError) {
  MemoryRepo repo;
  Result<json> info = Backup({.paths = {S("nope")}}, repo);
  EXPECT_EQ(info.status().code(), Code::kNotFound) << info.status().ToString();
  EXPECT_NE(info.status().message().find("HINT"), std::string::npos);
}

TEST_F(FilesComponentTest, NestedAndRelativeRootsAreSavedOnce) {
  File("f", "once");
  MkDir("d", 0755);
  File("d/g", "once too");
  ASSERT_EQ(::chdir(src_.c_str()), 0);
  MemoryRepo repo;
  Result<json> info = Backup({.paths = {"d", src_, "./d/../d/g"}}, repo);
  ASSERT_EQ(::chdir("/"), 0);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ((*info)["roots"], json::array({src_}));
  std::set<std::string> paths;
  for (const json& e : repo.entries) {
    EXPECT_TRUE(paths.insert(MemoryRepo::PathOf(e)).second) << MemoryRepo::PathOf(e);
  }
  EXPECT_NE(repo.Find(M("d/g")), nullptr);
}

TEST_F(FilesComponentTest, OneFileSystemStopsAtMountPoints) {
  MkDir("mnt", 0755);
  if (::mount("none", S("mnt").c_str(), "tmpfs", 0, nullptr) != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  mounts_.push_back(S("mnt"));
  File("mnt/inside", "other filesystem");
  File("outside", "same filesystem");

  MemoryRepo one;
  ASSERT_TRUE(Backup({.paths = {src_}, .one_file_system = true}, one).ok());
  EXPECT_NE(one.Find(M("mnt")), nullptr);
  EXPECT_EQ(one.Find(M("mnt/inside")), nullptr);
  EXPECT_NE(one.Find(M("outside")), nullptr);

  MemoryRepo all;
  ASSERT_TRUE(Backup({.paths = {src_}}, all).ok());
  EXPECT_NE(all.Find(M("mnt/inside")), nullptr);
}

// ---------------------------------------------------------------------------------------

TEST(ContentJsonTest, RoundTrips) {
  Content content;
  content.chunks = {{.id = Id::Random(), .length = 5}, {.id = Id::Random(), .length = 7}};
  content.size = 12;
  json j = ContentToJson(content);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0][0], content.chunks[0].id.Hex());
  EXPECT_EQ(j[1][1], 7);
  Result<Content> back = ContentFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->size, 12u);
  ASSERT_EQ(back->chunks.size(), 2u);
  EXPECT_EQ(back->chunks[1].id, content.chunks[1].id);
  EXPECT_EQ(back->chunks[1].length, 7u);

  Result<Content> empty = ContentFromJson(json::array());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size, 0u);
  Result<Content> largest = ContentFromJson(json::array({json::array({j[0][0], 4294967295u})}));
  ASSERT_TRUE(largest.ok());
  EXPECT_EQ(largest->size, 4294967295u);
}

TEST(ContentJsonTest, RejectsMalformedLists) {
  const std::string id = Id::Random().Hex();
  const std::vector<json> bad = {
      json::object(),
      json::array({json::array({std::string(64, 'z'), 1})}),
      json::array({json::array({id.substr(1), 1})}),
      json::array({json::array({id, -1})}),
      json::array({json::array({id, 4294967296ull})}),
      json::array({json::array({id, 1.5})}),
      json::array({json::array({id, "1"})}),
      json::array({json::array({id})}),
      json::array({json::array({id, 1, 2})}),
      json::array({json::array({5, 1})}),
      json::array({id}),
  };
  for (const json& j : bad) {
    Result<Content> r = ContentFromJson(j);
    EXPECT_EQ(r.status().code(), Code::kCorruption) << j.dump();
  }
}

}  // namespace
}  // namespace reprise
