#include "components/redis/redis_component.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "common/subprocess.h"
#include "components/redis/rdb_stream.h"
#include "redis/client.h"

namespace reprise {

namespace {

using nlohmann::json;
using redis::Client;
using redis::Reply;
using Clock = std::chrono::steady_clock;

struct DbCount {
  uint64_t keys = 0, expires = 0;
};
using Keyspace = std::map<int, DbCount>;  // db number -> counts

// INFO keyspace: "db0" -> "keys=12,expires=1,avg_ttl=0".
Result<Keyspace> ReadKeyspace(Client& client) {
  ASSIGN_OR_RETURN(auto info, redis::Info(client, "keyspace"));
  Keyspace out;
  for (const auto& [name, value] : info) {
    if (name.rfind("db", 0) != 0) continue;
    int db = std::atoi(name.c_str() + 2);
    DbCount c;
    size_t k = value.find("keys=");
    size_t e = value.find("expires=");
    if (k != std::string::npos) c.keys = std::strtoull(value.c_str() + k + 5, nullptr, 10);
    if (e != std::string::npos) c.expires = std::strtoull(value.c_str() + e + 8, nullptr, 10);
    out[db] = c;
  }
  return out;
}

std::string DbName(int db) { return "db" + std::to_string(db); }

Status Select(Client& client, int db) {
  return client.Command({"SELECT", std::to_string(db)}).status();
}

struct SampleKey {
  int db = 0;
  std::string key, type;
};

Result<std::string> TypeOf(Client& client, const std::string& key) {
  ASSIGN_OR_RETURN(Reply r, client.Command({"TYPE", key}));
  return r.str;
}

// A few keys per database that have no TTL (they cannot vanish before a restore) and whose
// names are valid UTF-8 (they go into the JSON manifest), with their types.
Result<std::vector<SampleKey>> Sample(Client& client, const Keyspace& keyspace, int per_total,
                                      int home_db) {
  std::vector<SampleKey> out;
  std::vector<int> dbs;
  for (const auto& [db, c] : keyspace) {
    if (c.keys > 0) dbs.push_back(db);
  }
  if (dbs.empty() || per_total <= 0) return out;
  int per_db = std::max(1, per_total / static_cast<int>(dbs.size()));
  for (int db : dbs) {
    RETURN_IF_ERROR(Select(client, db));
    std::set<std::string> seen;
    for (int attempt = 0; attempt < per_db * 4 && static_cast<int>(seen.size()) < per_db;
         ++attempt) {
      ASSIGN_OR_RETURN(Reply k, client.Command({"RANDOMKEY"}));
      if (k.type == Reply::Type::kNil) break;
      if (seen.count(k.str) || !IsValidUtf8(k.str)) continue;
      ASSIGN_OR_RETURN(Reply ttl, client.Command({"PTTL", k.str}));
      if (ttl.integer != -1) continue;
      ASSIGN_OR_RETURN(std::string type, TypeOf(client, k.str));
      if (type == "none") continue;
      seen.insert(k.str);
      out.push_back({db, k.str, type});
    }
  }
  RETURN_IF_ERROR(Select(client, home_db));
  return out;
}

// Keeps the sampled keys that still exist with the same type and no TTL (so they were in the
// snapshot, which was taken between the two looks).
Result<std::vector<SampleKey>> Recheck(Client& client, std::vector<SampleKey> sample,
                                       int home_db) {
  std::vector<SampleKey> kept;
  int current = -1;
  for (auto& s : sample) {
    if (s.db != current) {
      RETURN_IF_ERROR(Select(client, s.db));
      current = s.db;
    }
    ASSIGN_OR_RETURN(std::string type, TypeOf(client, s.key));
    ASSIGN_OR_RETURN(Reply ttl, client.Command({"PTTL", s.key}));
    if (type == s.type && ttl.integer == -1) kept.push_back(std::move(s));
  }
  if (current != -1) RETURN_IF_ERROR(Select(client, home_db));
  return kept;
}

uint64_t InfoU64(const std::map<std::string, std::string>& info, const std::string& key) {
  auto it = info.find(key);
  return it == info.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
}

std::string InfoStr(const std::map<std::string, std::string>& info, const std::string& key) {
  auto it = info.find(key);
  return it == info.end() ? std::string() : it->second;
}

void Warn(const RestoreOptions& options, const std::string& message) {
  if (options.warn) {
    options.warn(message);
  } else {
    std::cerr << "warning: " << message << "\n";
  }
}

// Reads `path` in blocks into `fn`.
Status ReadFileInto(const std::string& path, const std::function<Status(ByteView)>& fn) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path, errno);
  std::vector<uint8_t> buf(1 << 20);
  Status st;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = ErrnoError("read", path, errno);
      break;
    }
    if (n == 0) break;
    st = fn(ByteView(buf.data(), static_cast<size_t>(n)));
    if (!st.ok()) break;
  }
  close(fd);
  return st;
}

Status RunController(const std::string& what, const std::string& command,
                     std::chrono::milliseconds timeout) {
  SubprocessOptions so;
  so.argv = ShellArgv(command);
  so.timeout = timeout;
  ASSIGN_OR_RETURN(SubprocessResult r, RunSubprocess(so));
  return CheckExit("sh", r).WithContext(fmt::format("redis {} command", what));
}

}  // namespace

int MaxRdbVersion(std::string_view v) {
  int major = 0, minor = 0;
  size_t i = 0;
  if (v.empty() || v[0] < '0' || v[0] > '9') return 0;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') major = major * 10 + (v[i++] - '0');
  if (i < v.size() && v[i] == '.') {
    ++i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') minor = minor * 10 + (v[i++] - '0');
  }
  if (major < 3 || (major == 3 && minor < 2)) return 6;
  if (major == 3) return 7;
  if (major == 4) return 8;
  if (major == 5 || major == 6) return 9;
  if (major == 7 && minor < 2) return 10;
  if (major == 7 && minor < 4) return 11;
  return 12;  // 7.4, 8.x and anything newer we know of
}

RedisComponent::RedisComponent(RedisComponentOptions options) : options_(std::move(options)) {}

Result<json> RedisComponent::Backup(BackupSink& sink) {
  const auto& o = options_;
  ASSIGN_OR_RETURN(redis::Address address, redis::ParseAddress(o.url));
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client,
                   Client::Connect(address, o.password, o.timeout));
  std::string where = client->Describe();
  ASSIGN_OR_RETURN(auto server, redis::Info(*client, "server"));
  std::string redis_version = InfoStr(server, "redis_version");
  ASSIGN_OR_RETURN(Keyspace before, ReadKeyspace(*client));
  ASSIGN_OR_RETURN(std::vector<SampleKey> sample,
                   Sample(*client, before, o.sample_size, address.db));
  ASSIGN_OR_RETURN(auto replication, redis::Info(*client, "replication"));
  uint64_t repl_offset = InfoU64(replication, "master_repl_offset");

  std::unique_ptr<ContentWriter> writer = sink.NewContent();
  auto into_writer = [&](ByteView data) -> Status {
    sink.progress().bytes_read.fetch_add(data.size(), std::memory_order_relaxed);
    return writer->Write(data);
  };
  int rdb_version = 0;
  uint64_t bytes = 0;
  json method_info = json::object();
  Status transfer;
  if (o.method == RedisComponentOptions::kReplication) {
    redis::RdbStreamOptions so;
    so.address = address;
    so.password = o.password;
    so.connect_timeout = o.timeout;
    so.stall_timeout = o.stall_timeout;
    so.tamper = o.test_tamper;
    auto r = redis::StreamRdb(so, into_writer);
    if (r.ok()) {
      rdb_version = r->rdb_version;
      bytes = r->bytes;
      method_info = {{"diskless", r->diskless}, {"rdb_only", r->rdb_only},
                     {"checksummed", r->checksummed}};
    }
    transfer = r.status();
  } else {
    // BGSAVE, then the file it wrote.
    std::string path = o.rdb_path;
    if (path.empty()) {
      auto dir = client->Command({"CONFIG", "GET", "dir"});
      auto file = client->Command({"CONFIG", "GET", "dbfilename"});
      if (!dir.ok() || !file.ok() || dir->elements.size() != 2 || file->elements.size() != 2) {
        Status why = !dir.ok() ? dir.status() : file.status();
        return FailedPrecondition(fmt::format(
            "cannot find the dump file of redis '{}'{}: HINT: set rdb_path in the plan", where,
            why.ok() ? "" : ": " + why.message()));
      }
      path = dir->elements[1].str + "/" + file->elements[1].str;
    }
    auto persistence = [&]() { return redis::Info(*client, "persistence"); };
    auto deadline = Clock::now() + o.bgsave_timeout;
    ASSIGN_OR_RETURN(auto p0, persistence());
    // A save already running (someone else's) would not contain writes made after it forked.
    while (InfoU64(p0, "rdb_bgsave_in_progress") == 1) {
      if (Clock::now() > deadline) {
        return Unavailable(fmt::format("redis '{}' still saves after {} s", where,
                                       o.bgsave_timeout.count() / 1000));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ASSIGN_OR_RETURN(p0, persistence());
    }
    uint64_t saves0 = InfoU64(p0, "rdb_saves");
    bool has_saves = p0.count("rdb_saves") > 0;
    uint64_t last0 = InfoU64(p0, "rdb_last_save_time");
    if (!has_saves) {
      // lastsave has one-second resolution: start in a later second than the last save.
      for (;;) {
        ASSIGN_OR_RETURN(Reply t, client->Command({"TIME"}));
        if (t.elements.empty() || std::strtoull(t.elements[0].str.c_str(), nullptr, 10) > last0)
          break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    // SCHEDULE: when an AOF rewrite runs, the save starts after it instead of failing.
    RETURN_IF_ERROR(client->Command({"BGSAVE", "SCHEDULE"}).status());
    bool seen_running = false;
    for (;;) {
      ASSIGN_OR_RETURN(auto p, persistence());
      bool running = InfoU64(p, "rdb_bgsave_in_progress") == 1;
      seen_running |= running;
      bool advanced = (has_saves && InfoU64(p, "rdb_saves") > saves0) ||
                      InfoU64(p, "rdb_last_save_time") > last0;
      if (!running && (advanced || seen_running)) {
        if (InfoStr(p, "rdb_last_bgsave_status") != "ok") {
          return FailedPrecondition(fmt::format(
              "BGSAVE on redis '{}' failed (rdb_last_bgsave_status:{}): HINT: see the "
              "server's log (disk full, permissions of its dir)",
              where, InfoStr(p, "rdb_last_bgsave_status")));
        }
        break;
      }
      if (Clock::now() > deadline) {
        return Unavailable(fmt::format("BGSAVE on redis '{}' did not finish within {} s",
                                       where, o.bgsave_timeout.count() / 1000));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    redis::RdbVerifier verifier;
    uint64_t offset = 0;
    std::vector<uint8_t> scratch;
    transfer = ReadFileInto(path, [&](ByteView data) -> Status {
      ByteView out = data;
      if (o.test_tamper) {
        scratch.assign(data.begin(), data.end());
        o.test_tamper(offset, std::span<uint8_t>(scratch));
        out = ByteView(scratch);
      }
      offset += out.size();
      RETURN_IF_ERROR(verifier.Update(out));
      return into_writer(out);
    });
    if (transfer.ok()) transfer = verifier.Finish();
    if (!transfer.ok()) transfer = transfer.WithContext(fmt::format("dump file '{}'", path));
    rdb_version = verifier.version();
    bytes = verifier.size();
    method_info = {{"rdb_path", path}, {"checksummed", verifier.checksummed()}};
  }
  ContentFuture content = writer->Close();
  RETURN_IF_ERROR(transfer);

  ASSIGN_OR_RETURN(Keyspace after, ReadKeyspace(*client));
  ASSIGN_OR_RETURN(sample, Recheck(*client, std::move(sample), address.db));
  json keys = json::object(), expires = json::object(), keys_before = json::object();
  bool stable = true;
  std::set<int> dbs;
  for (const auto& [db, c] : before) dbs.insert(db);
  for (const auto& [db, c] : after) dbs.insert(db);
  for (int db : dbs) {
    DbCount b = before.count(db) ? before.at(db) : DbCount{};
    DbCount a = after.count(db) ? after.at(db) : DbCount{};
    if (a.keys > 0 || b.keys > 0) {
      keys[DbName(db)] = a.keys;
      expires[DbName(db)] = std::max(a.expires, b.expires);
      keys_before[DbName(db)] = b.keys;
    }
    stable &= a.keys == b.keys;
  }
  json samples = json::array();
  for (const auto& s : sample) samples.push_back({{"db", s.db}, {"key", s.key}, {"type", s.type}});
  json entry = {{"type", "rdb"},         {"rdb_version", rdb_version},
                {"redis_version", redis_version}, {"bytes", bytes},
                {"keys", keys},          {"expires", expires},
                {"sample", samples}};
  if (!stable) {
    entry["keys_before"] = keys_before;
    sink.Warn(fmt::format(
        "redis '{}' was written to during the backup (key counts went from {} to {}): the "
        "restore check allows any count in between",
        where, keys_before.dump(), keys.dump()));
  }
  RETURN_IF_ERROR(sink.AddEntry(entry, {content}));
  sink.progress().entries.fetch_add(1, std::memory_order_relaxed);
  json info = {{"method", o.method == RedisComponentOptions::kReplication ? "replication"
                                                                          : "bgsave"},
               {"rdb_version", rdb_version},
               {"redis_version", redis_version},
               {"master_repl_offset", repl_offset},
               {"keys", keys}};
  info.update(method_info);
  return info;
}

namespace {

// Where dump.rdb goes: a directory (existing, or named with a trailing '/') gets "dump.rdb".
std::string RdbTarget(const std::string& target) {
  std::error_code ec;
  if (target.back() == '/' || std::filesystem::is_directory(target, ec)) {
    return (std::filesystem::path(target) / "dump.rdb").string();
  }
  return target;
}

// Writes `path` from the entry's content: temp file beside it, fsync, rename, fsync dir; the
// owner and mode of the file it replaces (or, for a new file, the directory's owner).
Status WriteRdb(const std::string& path, const json& content, RestoreSource& source,
                const RestoreOptions& options, int* version) {
  namespace fs = std::filesystem;
  fs::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  struct stat old {};
  uid_t uid;
  gid_t gid;
  mode_t mode = 0644;
  if (stat(path.c_str(), &old) == 0) {
    uid = old.st_uid;
    gid = old.st_gid;
    mode = old.st_mode & 07777;
  } else {
    struct stat d {};
    if (stat(dir.c_str(), &d) != 0) return ErrnoError("stat", dir, errno);
    uid = d.st_uid;
    gid = d.st_gid;
  }
  std::string tmp = path + ".reprise-tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create", tmp, errno);
  redis::RdbVerifier verifier;
  Status st = source.ReadContent(content, [&](ByteView data) -> Status {
    RETURN_IF_ERROR(verifier.Update(data));
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("write", tmp, errno);
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  });
  if (st.ok()) st = verifier.Finish().WithContext("stored RDB");
  if (st.ok() && fchmod(fd, mode) != 0) st = ErrnoError("chmod", tmp, errno);
  if (st.ok() && fchown(fd, uid, gid) != 0 && (getuid() != uid || getgid() != gid)) {
    Warn(options, fmt::format("cannot give '{}' the owner {}:{}: {}", path, uid, gid,
                              std::strerror(errno)));
  }
  if (st.ok() && fsync(fd) != 0) st = ErrnoError("fsync", tmp, errno);
  if (close(fd) != 0 && st.ok()) st = ErrnoError("close", tmp, errno);
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoError("rename", tmp, errno);
  if (!st.ok()) {
    unlink(tmp.c_str());
    return st;
  }
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  *version = verifier.version();
  return Status::Ok();
}

// Connects and asks PING; nullptr when nothing answers (refused, timeout).
Result<std::unique_ptr<Client>> TryConnect(const redis::Address& a, const std::string& password,
                                           std::chrono::milliseconds timeout) {
  auto c = Client::Connect(a, password, timeout);
  if (!c.ok()) return c.status();
  RETURN_IF_ERROR((*c)->Command({"PING"}).status());
  return std::move(*c);
}

Status RefuseAof(const std::string& where, const std::string& when) {
  return FailedPrecondition(fmt::format(
      "redis '{}' {} appendonly yes (aof_enabled:1): it loads its AOF at start, not dump.rdb, "
      "so the restored RDB would be ignored: HINT: set 'appendonly no' in its configuration "
      "for the restore (CONFIG SET appendonly yes afterwards rewrites the AOF from the "
      "restored data)",
      where, when));
}

}  // namespace

Status RedisComponent::Restore(const json& info, RestoreSource& source,
                               const RestoreOptions& options) {
  const auto& o = options_;
  json entry;
  RETURN_IF_ERROR(source.ForEachEntry([&](const json& e) -> Status {
    if (entry.is_null() && e.value("type", "") == "rdb") entry = e;
    return Status::Ok();
  }));
  if (entry.is_null() || !entry.contains("contents") || entry["contents"].empty()) {
    return Corruption("the redis component of this point holds no RDB entry");
  }
  std::string target = !options.target.empty() ? options.target : o.restore_rdb_path;
  if (target.empty()) {
    return InvalidArgument(
        "a redis restore needs to know where dump.rdb goes: HINT: give --target "
        "/var/lib/redis (the server's dir) or set restore.rdb_path in the plan");
  }
  std::string path = RdbTarget(target);
  bool force = false;
  if (auto f = options.params.find("force"); f != options.params.end() && f->is_boolean())
    force = f->get<bool>();
  int rdb_version = entry.value("rdb_version", info.value("rdb_version", 0));
  std::string source_version = entry.value("redis_version", "");

  std::optional<redis::Address> address;
  std::string where = "(no url)";
  if (!o.url.empty()) {
    ASSIGN_OR_RETURN(redis::Address a, redis::ParseAddress(o.url));
    address = a;
    where = a.host + ":" + std::to_string(a.port);
  }
  auto check_version = [&](const std::string& target_version) -> Status {
    int max = MaxRdbVersion(target_version);
    if (max != 0 && rdb_version > max && !force) {
      return FailedPrecondition(fmt::format(
          "redis '{}' runs {} which reads RDB versions up to {}, but the point holds RDB "
          "version {} (from redis {}): HINT: restore into a redis at least as new as the "
          "source, or pass force to try anyway",
          where, target_version, max, rdb_version, source_version));
    }
    return Status::Ok();
  };

  // Before touching anything: what does the running target say?
  bool was_running = false;
  if (address) {
    auto c = TryConnect(*address, o.password, std::min(o.timeout, std::chrono::milliseconds(3000)));
    if (c.ok()) {
      was_running = true;
      ASSIGN_OR_RETURN(auto server, redis::Info(**c, "server"));
      RETURN_IF_ERROR(check_version(InfoStr(server, "redis_version")));
      ASSIGN_OR_RETURN(auto persistence, redis::Info(**c, "persistence"));
      if (InfoStr(persistence, "aof_enabled") == "1") return RefuseAof(where, "runs with");
    } else if (c.status().code() == Code::kUnauthenticated ||
               c.status().code() == Code::kPermissionDenied) {
      return c.status();
    }
  }
  if (was_running && o.controller_stop.empty()) {
    return FailedPrecondition(fmt::format(
        "redis '{}' is running: it would ignore a new dump.rdb and may overwrite it at "
        "shutdown: HINT: set restore.stop_command in the plan, or stop the server first",
        where));
  }
  if (!o.controller_stop.empty()) {
    RETURN_IF_ERROR(RunController("stop", o.controller_stop, o.controller_timeout));
    if (address) {
      // A server that still answers would save over our file when it finally exits.
      auto deadline = Clock::now() + o.controller_timeout;
      for (;;) {
        auto c = TryConnect(*address, o.password, std::chrono::milliseconds(1000));
        if (!c.ok() && c.status().code() == Code::kUnavailable &&
            c.status().message().find("LOADING") == std::string::npos)
          break;
        if (Clock::now() > deadline) {
          return FailedPrecondition(fmt::format(
              "redis '{}' still answers after the stop command: HINT: check "
              "restore.stop_command",
              where));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  int written_version = 0;
  RETURN_IF_ERROR(WriteRdb(path, entry["contents"][0], source, options, &written_version)
                      .WithContext(fmt::format("restoring '{}'", path)));
  if (rdb_version == 0) rdb_version = written_version;

  if (o.controller_start.empty()) {
    Warn(options, fmt::format("'{}' written; no start command, so redis did not load it and "
                              "nothing was checked",
                              path));
    return Status::Ok();
  }
  RETURN_IF_ERROR(RunController("start", o.controller_start, o.controller_timeout));
  if (!address) {
    Warn(options, "no redis url: the restored server was not checked");
    return Status::Ok();
  }

  // Up and loaded?
  std::unique_ptr<Client> client;
  auto deadline = Clock::now() + o.load_timeout;
  // A server that loads a big RDB answers (LOADING) long before it is done; one that never
  // answers did not start (a port in use, a bad flag): that is known much sooner.
  auto answer_deadline = Clock::now() + std::min(o.load_timeout, std::chrono::milliseconds(30000));
  bool answered = false;
  Status last;
  for (;;) {
    auto c = TryConnect(*address, o.password, o.timeout);
    if (c.ok() || c.status().message().find("LOADING") != std::string::npos) answered = true;
    if (!answered && Clock::now() > answer_deadline) {
      return Unavailable(fmt::format(
          "redis '{}' does not answer 30 s after its start command: HINT: see the server's "
          "log (a port in use, a bad flag, a wrong dir)",
          where));
    }
    if (c.ok()) {
      auto p = redis::Info(**c, "persistence");
      if (p.ok() && InfoStr(*p, "loading") == "0") {
        client = std::move(*c);
        break;
      }
      last = p.ok() ? Unavailable("loading") : p.status();
    } else {
      last = c.status();
      if (last.code() == Code::kUnauthenticated || last.code() == Code::kPermissionDenied)
        return last;
    }
    if (Clock::now() > deadline) {
      return Unavailable(fmt::format(
          "redis '{}' did not come up with the restored data within {} s ({}): HINT: see "
          "the server's log (an RDB version it cannot read, a wrong dir or dbfilename)",
          where, o.load_timeout.count() / 1000, last.message()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSIGN_OR_RETURN(auto server, redis::Info(*client, "server"));
  ASSIGN_OR_RETURN(auto persistence, redis::Info(*client, "persistence"));
  if (InfoStr(persistence, "aof_enabled") == "1") return RefuseAof(where, "was started with");
  if (!was_running) RETURN_IF_ERROR(check_version(InfoStr(server, "redis_version")));

  // The checks: key counts per database, then the sampled keys.
  ASSIGN_OR_RETURN(Keyspace got, ReadKeyspace(*client));
  const json keys = entry.value("keys", json::object());
  const json expires = entry.value("expires", json::object());
  const json before = entry.value("keys_before", keys);
  std::vector<std::string> problems;
  std::set<std::string> named;
  for (const auto& [name, count] : keys.items()) {
    named.insert(name);
    int db = std::atoi(name.c_str() + 2);
    uint64_t want = count.get<uint64_t>();
    uint64_t b = before.value(name, want);
    uint64_t exp = expires.value(name, uint64_t{0});
    uint64_t hi = std::max(want, b);
    uint64_t lo = std::min(want, b);
    lo = lo > exp ? lo - exp : 0;  // keys with a TTL may have expired since
    uint64_t have = got.count(db) ? got.at(db).keys : 0;
    if (have < lo || have > hi) {
      problems.push_back(lo == hi ? fmt::format("{} holds {} keys, the point {}", name, have, hi)
                                  : fmt::format("{} holds {} keys, the point {} to {}", name,
                                                have, lo, hi));
    }
  }
  for (const auto& [db, c] : got) {
    if (!named.count(DbName(db)) && c.keys > 0) {
      problems.push_back(fmt::format("{} holds {} keys, the point none", DbName(db), c.keys));
    }
  }
  int current = -1;
  for (const auto& s : entry.value("sample", json::array())) {
    int db = s.value("db", 0);
    std::string key = s.value("key", ""), type = s.value("type", "");
    if (db != current) {
      RETURN_IF_ERROR(Select(*client, db));
      current = db;
    }
    ASSIGN_OR_RETURN(std::string have, TypeOf(*client, key));
    if (have != type) {
      problems.push_back(have == "none"
                             ? fmt::format("key '{}' (db {}) is missing", key, db)
                             : fmt::format("key '{}' (db {}) is a {}, the point has a {}", key,
                                           db, have, type));
    }
  }
  if (!problems.empty()) {
    std::string list;
    for (size_t i = 0; i < problems.size() && i < 10; ++i) list += (i ? "; " : "") + problems[i];
    if (problems.size() > 10) list += fmt::format("; and {} more", problems.size() - 10);
    return Corruption(fmt::format("redis '{}' after restore does not match the point: {}",
                                  where, list));
  }
  return Status::Ok();
}

}  // namespace reprise
