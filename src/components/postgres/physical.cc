#include "components/postgres/physical.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>
#include <unordered_map>

#include "components/files/posix.h"
#include "pg/backup_manifest.h"
#include "pg/connection.h"
#include "pg/crc32c.h"
#include "pg/replication.h"
#include "pg/wal_names.h"

namespace reprise {

namespace {

namespace fs = std::filesystem;
using files::JoinPath;
using files::PathError;
using files::UniqueFd;

constexpr char kPgControl[] = "global/pg_control";

std::string Hex8(uint32_t v) {
  char buf[9];
  snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// CRC32C as PostgreSQL's manifest writes it: the 4 bytes of the value in memory order.
std::string CrcHex(uint32_t crc) {
  uint8_t b[4] = {static_cast<uint8_t>(crc), static_cast<uint8_t>(crc >> 8),
                  static_cast<uint8_t>(crc >> 16), static_cast<uint8_t>(crc >> 24)};
  return HexEncode(ByteView(b, 4));
}

// The key a file has in the previous manifest and in the backup_manifest: its path in the
// data directory (tablespace members under pg_tblspc/<oid>/).
std::string ManifestPath(const nlohmann::json& entry) {
  std::string path = entry["path"].get<std::string>();
  if (entry.contains("tablespace"))
    return "pg_tblspc/" + std::to_string(entry["tablespace"].get<uint32_t>()) + "/" + path;
  return path;
}

class Receiver final : public pg::BaseBackupReceiver {
 public:
  Receiver(BackupSink& sink, uint32_t block_size,
           std::unordered_map<std::string, nlohmann::json> previous)
      : sink_(sink), block_size_(block_size), previous_(std::move(previous)) {}

  Status OnArchive(const std::string& name, const std::string& tablespace_path,
                   std::optional<uint32_t> oid) override {
    tablespace_ = oid;
    if (oid) tablespaces_.push_back({{"oid", *oid}, {"location", tablespace_path}});
    return Status::Ok();
  }

  Status OnMember(const pg::TarMember& m,
                  const std::function<Result<size_t>(uint8_t*, size_t)>& read) override {
    nlohmann::json entry = {{"path", m.path}, {"mode", m.mode}, {"mtime", m.mtime}};
    if (tablespace_) entry["tablespace"] = *tablespace_;
    switch (m.type) {
      case pg::TarMember::Type::kDirectory:
        entry["type"] = "dir";
        return sink_.AddEntry(std::move(entry), {});
      case pg::TarMember::Type::kSymlink:
        entry["type"] = "symlink";
        entry["target"] = m.link_target;
        return sink_.AddEntry(std::move(entry), {});
      case pg::TarMember::Type::kFile:
        break;
    }
    entry["type"] = "file";
    entry["size"] = m.size;
    const std::string key = ManifestPath(entry);
    std::unique_ptr<ContentWriter> writer;
    if (IsRelationFile(key)) {
      ContentOptions co;
      co.fixed_block = block_size_;
      if (auto it = previous_.find(key); it != previous_.end()) co.previous = it->second;
      writer = sink_.NewContent(co);
    } else {
      writer = sink_.NewContent();
    }
    uint32_t crc = 0;
    uint64_t got = 0;
    buf_.resize(1 << 20);
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, read(buf_.data(), buf_.size()));
      if (n == 0) break;
      crc = pg::Crc32c(crc, buf_.data(), n);
      got += n;
      sink_.progress().bytes_read += n;
      RETURN_IF_ERROR(writer->Write(ByteView(buf_.data(), n)));
    }
    if (got != m.size)
      return Corruption("base backup: file '" + key + "' announced " + std::to_string(m.size) +
                        " bytes, " + std::to_string(got) + " arrived");
    crcs_[key] = CrcHex(crc);
    sizes_[key] = got;
    sink_.progress().entries++;
    return sink_.AddEntry(std::move(entry), {writer->Close()});
  }

  Status OnManifestData(ByteView data) override {
    manifest_.insert(manifest_.end(), data.begin(), data.end());
    return Status::Ok();
  }

  // Every file the server listed arrived whole, with the checksum it computed.
  Status VerifyAgainstManifest(const pg::BackupManifest& m) const {
    for (const auto& [path, f] : m.files) {
      auto it = sizes_.find(path);
      if (it == sizes_.end())
        return Corruption("base backup: '" + path + "' is in the backup manifest but did not arrive");
      if (it->second != f.size)
        return Corruption("base backup: '" + path + "' has " + std::to_string(it->second) +
                          " bytes, the backup manifest says " + std::to_string(f.size));
      if (f.checksum_algorithm == "CRC32C" && crcs_.at(path) != f.checksum)
        return Corruption("base backup: '" + path + "' does not match its CRC32C in the backup "
                          "manifest (transfer damaged)");
    }
    for (const auto& [path, size] : sizes_)
      if (!m.files.count(path))
        return Corruption("base backup: '" + path + "' arrived but is not in the backup manifest");
    return Status::Ok();
  }

  const std::string& manifest() const { return manifest_; }
  const nlohmann::json& tablespaces() const { return tablespaces_; }

 private:
  BackupSink& sink_;
  uint32_t block_size_;
  std::unordered_map<std::string, nlohmann::json> previous_;
  std::optional<uint32_t> tablespace_;
  nlohmann::json tablespaces_ = nlohmann::json::array();
  std::unordered_map<std::string, std::string> crcs_;
  std::unordered_map<std::string, uint64_t> sizes_;
  std::string manifest_;
  Bytes buf_;
};

}  // namespace

bool IsRelationFile(const std::string& path) {
  static const std::regex kRel(
      R"(^(base/[0-9]+|global|pg_tblspc/[0-9]+/[^/]+/[0-9]+)/[0-9]+(_(fsm|vm|init))?(\.[0-9]+)?$)");
  return std::regex_match(path, kRel);
}

Result<nlohmann::json> PostgresPhysicalComponent::Backup(BackupSink& sink) {
  auto conn = pg::Connection::Open(options_.conninfo, /*replication=*/true, options_.password);
  if (!conn.ok()) return conn.status();
  ASSIGN_OR_RETURN(pg::SystemInfo system, pg::IdentifySystem(**conn));
  ASSIGN_OR_RETURN(uint64_t block_bytes, pg::ShowBytes(**conn, "block_size"));
  ASSIGN_OR_RETURN(uint64_t segment_size, pg::ShowBytes(**conn, "wal_segment_size"));
  ASSIGN_OR_RETURN(std::string version, pg::Show(**conn, "server_version"));
  const uint32_t block_size = static_cast<uint32_t>(block_bytes);
  if (block_bytes < 1024 || block_bytes > (1u << 20) || (block_bytes & (block_bytes - 1)))
    return FailedPrecondition("server reports block_size " + std::to_string(block_bytes));

  // The previous point's contents by path: relation files become deltas of their old maps.
  std::unordered_map<std::string, nlohmann::json> previous;
  if (auto cursor = sink.Previous()) {
    for (;;) {
      auto e = cursor->Next();
      if (!e.ok() || !*e) break;
      const nlohmann::json& entry = **e;
      if (entry.value("type", "") != "file" || !entry.contains("contents")) continue;
      if (entry["contents"].size() != 1 || !entry["contents"][0].is_object()) continue;
      previous[ManifestPath(entry)] = entry["contents"][0];
    }
  }

  Receiver receiver(sink, block_size, std::move(previous));
  pg::BaseBackupOptions bb;
  bb.label = options_.label;
  // WAIT false: the server still switches to a new segment at the backup's end, but does not
  // block (forever, with a broken archive_command) until it is archived. The caller waits for
  // the point's WAL in the repository itself, bounded (backup --wal-wait), whichever way
  // (archive_command or wal-stream) it comes.
  bb.wait_for_wal_archive = false;
  const int64_t started = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  ASSIGN_OR_RETURN(pg::BaseBackupResult result, pg::BaseBackup(**conn, bb, receiver));
  const int64_t finished = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  auto manifest = pg::ParseBackupManifest(receiver.manifest());
  if (!manifest.ok()) return manifest.status().WithContext("backup manifest");
  RETURN_IF_ERROR(receiver.VerifyAgainstManifest(*manifest));
  auto mw = sink.NewContent();
  RETURN_IF_ERROR(mw->Write(AsBytes(receiver.manifest())));
  RETURN_IF_ERROR(sink.AddEntry({{"type", "backup_manifest"}}, {mw->Close()}));

  nlohmann::json info = {
      {"mode", "physical"},
      {"system_id", system.system_id},
      {"server_version", version},
      {"block_size", block_size},
      {"wal_segment_size", segment_size},
      {"start_lsn", pg::FormatLsn(result.start_lsn)},
      {"start_tli", result.start_tli},
      {"end_lsn", pg::FormatLsn(result.end_lsn)},
      {"end_tli", result.end_tli},
      {"start_wal", pg::SegmentName(result.start_tli, result.start_lsn, segment_size)},
      {"end_wal", pg::SegmentName(result.end_tli, result.end_lsn, segment_size)},
      {"started_ns", started},
      {"finished_ns", finished},
      {"tablespaces", receiver.tablespaces()},
      {"source", pg::RedactConninfo(options_.conninfo)}};
  return info;
}

namespace {

struct OwnerIds {
  bool set = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The owner to give restored files: os_user when running as root, else none.
Result<OwnerIds> LookupOwner(const std::string& user) {
  OwnerIds ids;
  if (user.empty() || geteuid() != 0) return ids;
  auto found = files::LookupUser(user);
  if (!found.ok()) return found.status().WithContext("os_user");
  ids.set = true;
  ids.uid = found->uid;
  ids.gid = found->gid;
  return ids;
}

bool SafeRelative(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  size_t start = 0;
  for (;;) {
    size_t slash = p.find('/', start);
    std::string part = p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

// Writes the data directory. Files are written by a few threads; each file is compared
// block by block with what is on disk when delta is on.
class DataDirWriter {
 public:
  DataDirWriter(RestoreSource& source, const RestoreOptions& options, const nlohmann::json& info)
      : source_(source), options_(options), info_(info) {}

  Status Run() {
    root_ = options_.target;
    if (root_.empty()) return InvalidArgument("no target directory for the data directory");
    delta_ = options_.params.value("delta", false);
    ASSIGN_OR_RETURN(owner_, LookupOwner(options_.params.value("os_user", std::string())));
    RETURN_IF_ERROR(PrepareTarget());
    if (auto m = options_.params.find("tablespace_map"); m != options_.params.end())
      for (auto& [oid, dir] : m->items()) tablespace_map_[oid] = dir.get<std::string>();
    for (const auto& t : info_.value("tablespaces", nlohmann::json::array())) {
      std::string oid = std::to_string(t["oid"].get<uint32_t>());
      if (!tablespace_map_.count(oid)) tablespace_map_[oid] = t["location"].get<std::string>();
    }

    std::vector<std::thread> workers;
    const size_t n = std::max<size_t>(2, std::min<size_t>(4, std::thread::hardware_concurrency()));
    for (size_t i = 0; i < n; ++i) workers.emplace_back([this] { WorkLoop(); });
    Status st = source_.ForEachEntry([this](const nlohmann::json& e) { return OnEntry(e); });
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers) t.join();
    if (st.ok()) st = TakeError();
    RETURN_IF_ERROR(st);
    RETURN_IF_ERROR(VerifyManifest());
    if (delta_) RETURN_IF_ERROR(RemoveExtraneous());
    // Everything but pg_control is durable before pg_control appears.
    int dfd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return PathError("opening", root_, errno);
    if (::syncfs(dfd) != 0) {
      int e = errno;
      ::close(dfd);
      return PathError("syncing", root_, e);
    }
    ::close(dfd);
    if (!pg_control_) return Corruption("the backup has no '" + std::string(kPgControl) + "'");
    RETURN_IF_ERROR(WriteWhole(*pg_control_, /*final_step=*/true));
    return Status::Ok();
  }

  uint64_t written() const { return written_; }
  uint64_t skipped() const { return skipped_; }

 private:
  Status PrepareTarget() {
    std::error_code ec;
    bool exists = fs::exists(root_, ec);
    if (exists && !fs::is_directory(root_, ec))
      return InvalidArgument("target '" + root_ + "' is not a directory");
    if (exists && fs::exists(JoinPath(root_, "postmaster.pid"), ec))
      return FailedPrecondition("target '" + root_ + "' has a postmaster.pid: a server may be "
                                "running on it. HINT: stop it first");
    bool only_spool = true;
    if (exists)
      for (const auto& e : fs::directory_iterator(root_, ec))
        if (e.path().filename() != "reprise-wal") only_spool = false;
    if (exists && !only_spool && !delta_)
      return FailedPrecondition("target '" + root_ + "' is not empty. HINT: restore into an "
                                "empty directory, or give --delta to update it in place (only "
                                "blocks that differ are written)");
    RETURN_IF_ERROR(files::MakeDirs(root_));
    ::chmod(root_.c_str(), 0700);
    if (owner_.set) (void)::chown(root_.c_str(), owner_.uid, owner_.gid);
    // Without pg_control the server refuses to start: the directory stays unusable until
    // the restore has finished and been verified.
    std::string control = JoinPath(root_, kPgControl);
    if (::unlink(control.c_str()) == 0) {
      int dfd = ::open(JoinPath(root_, "global").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    } else if (errno != ENOENT) {
      return PathError("removing", control, errno);
    }
    return Status::Ok();
  }

  Result<std::string> Place(const nlohmann::json& e) {
    std::string path = e["path"].get<std::string>();
    if (!SafeRelative(path)) return Corruption("entry path '" + files::Printable(path) + "' is unsafe");
    if (e.contains("tablespace")) {
      std::string oid = std::to_string(e["tablespace"].get<uint32_t>());
      auto it = tablespace_map_.find(oid);
      if (it == tablespace_map_.end()) return Corruption("tablespace " + oid + " has no location");
      return JoinPath(it->second, path);
    }
    return JoinPath(root_, path);
  }

  void Own(const std::string& path) {
    if (owner_.set) (void)::lchown(path.c_str(), owner_.uid, owner_.gid);
  }

  Status OnEntry(const nlohmann::json& e) {
    const std::string type = e.value("type", "");
    if (type == "backup_manifest") {
      manifest_text_.clear();
      return source_.ReadContent(e["contents"][0], [this](ByteView b) {
        manifest_text_.append(reinterpret_cast<const char*>(b.data()), b.size());
        return Status::Ok();
      });
    }
    ASSIGN_OR_RETURN(std::string path, Place(e));
    restored_.insert(ManifestPath(e));
    if (type == "dir") {
      RETURN_IF_ERROR(files::MakeDirs(path));
      ::chmod(path.c_str(), e.value("mode", 0700u) & 07777);
      Own(path);
      return Status::Ok();
    }
    if (type == "symlink") {
      std::string target = e["target"].get<std::string>();
      if (e.contains("path")) {
        // pg_tblspc/<oid> -> tablespace location (remapped when asked)
        std::string p = e["path"].get<std::string>();
        if (p.rfind("pg_tblspc/", 0) == 0) {
          auto it = tablespace_map_.find(p.substr(10));
          if (it != tablespace_map_.end()) target = it->second;
        }
      }
      RETURN_IF_ERROR(files::MakeParents(path));
      ::unlink(path.c_str());
      if (::symlink(target.c_str(), path.c_str()) != 0) return PathError("creating symlink", path, errno);
      Own(path);
      return Status::Ok();
    }
    if (type != "file") return Corruption("unknown entry type '" + type + "'");
    if (ManifestPath(e) == kPgControl) {
      pg_control_ = e;
      return Status::Ok();
    }
    std::unique_lock lk(mu_);
    queue_cv_.wait(lk, [&] { return queue_.size() < 64 || !error_.ok(); });
    if (!error_.ok()) return error_;
    queue_.push_back(e);
    cv_.notify_one();
    return Status::Ok();
  }

  void WorkLoop() {
    for (;;) {
      nlohmann::json e;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return !queue_.empty() || done_; });
        if (queue_.empty()) return;
        e = std::move(queue_.front());
        queue_.pop_front();
      }
      queue_cv_.notify_all();
      Status st = WriteFile(e);
      if (!st.ok()) {
        std::lock_guard lk(mu_);
        if (error_.ok()) error_ = st;
        queue_cv_.notify_all();
      }
    }
  }

  Status TakeError() {
    std::lock_guard lk(mu_);
    return error_;
  }

  Status WriteFile(const nlohmann::json& e) {
    const auto& content = e["contents"][0];
    if (delta_ && content.is_object()) return WriteDelta(e);
    return WriteWhole(e, false);
  }

  void RecordCrc(const nlohmann::json& e, uint32_t crc, uint64_t size) {
    std::lock_guard lk(crc_mu_);
    crcs_[ManifestPath(e)] = {CrcHex(crc), size};
  }

  // Writes a file from scratch to a temp name, then renames it into place.
  Status WriteWhole(const nlohmann::json& e, bool final_step) {
    ASSIGN_OR_RETURN(std::string path, Place(e));
    RETURN_IF_ERROR(files::MakeParents(path));
    std::string temp = path + ".reprise-tmp";
    // O_DIRECT where the filesystem takes it: a restored cluster's files go straight to the
    // disk in 1 MiB writes instead of 8 KiB page blocks copied into the page cache.
    bool direct = false;
    UniqueFd fd = files::OpenForDirectWrite(temp, 0600, &direct);
    if (!fd.valid()) return PathError("creating", temp, errno);
    files::SequentialWriter out(fd.get(), direct, temp);
    uint32_t crc = 0;
    Status st = source_.ReadContent(e["contents"][0], [&](ByteView b) {
      crc = pg::Crc32c(crc, b.data(), b.size());
      return out.Write(b);
    });
    if (st.ok()) st = out.Finish();
    const uint64_t off = out.size();
    if (st.ok() && off != e.value("size", uint64_t{0}))
      st = Corruption("file '" + path + "' restored with " + std::to_string(off) +
                      " bytes, the backup says " + std::to_string(e.value("size", uint64_t{0})));
    if (st.ok() && final_step && ::fsync(fd.get()) != 0) st = PathError("syncing", temp, errno);
    if (st.ok()) st = fd.Close(temp);
    if (st.ok()) {
      ::chmod(temp.c_str(), e.value("mode", 0600u) & 07777);
      Own(temp);
      if (::rename(temp.c_str(), path.c_str()) != 0) st = PathError("renaming", temp, errno);
    }
    if (!st.ok()) {
      ::unlink(temp.c_str());
      return st.WithContext("restoring '" + path + "'");
    }
    if (final_step) {
      int dfd = ::open(files::DirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    }
    written_ += off;
    RecordCrc(e, crc, off);
    return Status::Ok();
  }

  // Rewrites only the blocks whose content differs from the backup's.
  Status WriteDelta(const nlohmann::json& e) {
    ASSIGN_OR_RETURN(std::string path, Place(e));
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      if (::lstat(path.c_str(), &st) == 0) {
        std::error_code ec;
        fs::remove_all(path, ec);
      }
      return WriteWhole(e, false);
    }
    ASSIGN_OR_RETURN(Content want, source_.Resolve(e["contents"][0]));
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return PathError("opening", path, errno);
    Bytes have;
    uint64_t off = 0;
    uint32_t crc = 0;
    for (const ChunkRef& c : want.chunks) {
      have.resize(c.length);
      ssize_t n = off < static_cast<uint64_t>(st.st_size)
                      ? ::pread(fd.get(), have.data(), c.length, static_cast<off_t>(off))
                      : 0;
      bool same = n == static_cast<ssize_t>(c.length) && source_.ChunkIdOf(have) == c.id;
      if (same) {
        skipped_ += c.length;
      } else {
        ASSIGN_OR_RETURN(Bytes data, source_.ReadChunk(c));
        RETURN_IF_ERROR(files::WriteAllAt(fd.get(), data, off, path));
        have = std::move(data);
        written_ += c.length;
      }
      crc = pg::Crc32c(crc, have.data(), have.size());
      off += c.length;
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(off)) != 0) return PathError("truncating", path, errno);
    RETURN_IF_ERROR(fd.Close(path));
    ::chmod(path.c_str(), e.value("mode", 0600u) & 07777);
    Own(path);
    RecordCrc(e, crc, off);
    return Status::Ok();
  }

  Status VerifyManifest() {
    if (manifest_text_.empty())
      return Corruption("the point has no backup_manifest: cannot verify the restore");
    ASSIGN_OR_RETURN(pg::BackupManifest m, pg::ParseBackupManifest(manifest_text_));
    for (const auto& [path, f] : m.files) {
      if (path == kPgControl) continue;  // written last, from the same verified content
      auto it = crcs_.find(path);
      if (it == crcs_.end()) return Corruption("restored data directory lacks '" + path + "'");
      if (it->second.second != f.size)
        return Corruption("restored '" + path + "' has " + std::to_string(it->second.second) +
                          " bytes, the backup manifest says " + std::to_string(f.size));
      if (f.checksum_algorithm == "CRC32C" && it->second.first != f.checksum)
        return Corruption("restored '" + path + "' does not match the backup manifest");
    }
    // Keep the manifest beside the data, as pg_basebackup does (pg_verifybackup reads it).
    std::string mpath = JoinPath(root_, "backup_manifest");
    UniqueFd fd(::open(mpath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return PathError("creating", mpath, errno);
    RETURN_IF_ERROR(files::WriteAllAt(fd.get(), AsBytes(manifest_text_), 0, mpath));
    RETURN_IF_ERROR(fd.Close(mpath));
    Own(mpath);
    restored_.insert("backup_manifest");
    return Status::Ok();
  }

  // Delta: what the backup does not have goes (stale WAL above all).
  Status RemoveExtraneous() {
    std::error_code ec;
    std::vector<fs::path> extra;
    for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      std::string rel = fs::relative(it->path(), root_, ec).string();
      if (rel == "reprise-wal" || rel.rfind("reprise-wal/", 0) == 0) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (rel == kPgControl) continue;
      if (!restored_.count(rel)) {
        extra.push_back(it->path());
        if (it->is_directory(ec) && !it->is_symlink(ec)) it.disable_recursion_pending();
      }
    }
    if (ec) return PathError("listing", root_, ec.value());
    for (const auto& p : extra) {
      fs::remove_all(p, ec);
      if (ec) return PathError("removing", p.string(), ec.value());
    }
    return Status::Ok();
  }

  RestoreSource& source_;
  const RestoreOptions& options_;
  const nlohmann::json& info_;
  std::string root_;
  bool delta_ = false;
  OwnerIds owner_;
  std::map<std::string, std::string> tablespace_map_;
  std::optional<nlohmann::json> pg_control_;
  std::string manifest_text_;
  std::set<std::string> restored_;

  std::mutex mu_;
  std::condition_variable cv_, queue_cv_;
  std::deque<nlohmann::json> queue_;
  bool done_ = false;
  Status error_;

  std::mutex crc_mu_;
  std::map<std::string, std::pair<std::string, uint64_t>> crcs_;
  std::atomic<uint64_t> written_{0}, skipped_{0};
};

}  // namespace

Status PostgresPhysicalComponent::Restore(const nlohmann::json& info, RestoreSource& source,
                                          const RestoreOptions& options) {
  if (info.value("mode", "") != "physical")
    return InvalidArgument("this point holds a logical dump, not a physical backup");
  DataDirWriter writer(source, options, info);
  RETURN_IF_ERROR(writer.Run());
  if (options.warn && options.params.value("delta", false))
    options.warn("delta restore: " + std::to_string(writer.written()) + " bytes written, " +
                 std::to_string(writer.skipped()) + " bytes already in place");
  return Status::Ok();
}

}  // namespace reprise
