#include "components/postgres/logical.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>
#include <utility>

#include "common/subprocess.h"

namespace reprise {
namespace {

using nlohmann::json;

// Quotes a value for a libpq connection string: 'it\'s'.
std::string ConnQuote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// A SQL string literal (standard_conforming_strings is on since 9.1).
std::string SqlLiteral(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// How the tools reach one server: everything but the database name, split into environment
// variables (secrets included) and the few settings that have none.
class Tools {
 public:
  static Result<Tools> Make(const LogicalOptions& o) {
    Tools t;
    t.o_ = o;
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(o.conninfo.c_str(), &err);
    if (opts == nullptr) {
      std::string why = err ? err : "out of memory";
      if (err) PQfreemem(err);
      while (!why.empty() && why.back() == '\n') why.pop_back();
      // libpq's message quotes the offending keyword, never the value.
      return InvalidArgument(fmt::format("bad postgres connection string: {}", why));
    }
    for (PQconninfoOption* p = opts; p->keyword != nullptr; ++p) {
      if (p->val == nullptr || *p->val == '\0') continue;
      std::string key = p->keyword, val = p->val;
      if (key == "dbname") {
        t.maintenance_db_ = val;
      } else if (p->envvar != nullptr) {
        t.env_[p->envvar] = val;
      } else {
        t.params_.emplace_back(key, val);
      }
    }
    PQconninfoFree(opts);
    for (const auto& [k, v] : o.env) t.env_[k] = v;  // explicit settings win
    if (t.maintenance_db_.empty()) t.maintenance_db_ = "postgres";
    for (const char* tool : {"pg_dump", "pg_dumpall", "pg_restore", "psql"}) {
      std::string path = t.Bin(tool);
      if (path.find('/') != std::string::npos && access(path.c_str(), X_OK) != 0) {
        return NotFound(fmt::format(
            "postgres tool '{}' not found: HINT: install the PostgreSQL client of the server's "
            "major version (e.g. postgresql-client-15) or set bin_dir",
            path));
      }
    }
    return t;
  }

  std::string Bin(const std::string& tool) const {
    return o_.bin_dir.empty() ? tool : o_.bin_dir + "/" + tool;
  }
  const std::string& maintenance_db() const { return maintenance_db_; }

  // A --dbname connection string naming `db`, without anything secret.
  std::string ConnString(const std::string& db) const {
    std::string s = "dbname=" + ConnQuote(db);
    for (const auto& [k, v] : params_) s += " " + k + "=" + ConnQuote(v);
    return s;
  }

  SubprocessOptions Command(std::vector<std::string> argv) const {
    SubprocessOptions so;
    so.argv = std::move(argv);
    so.env = env_;
    so.run_as = o_.run_as;
    so.cwd = "/";  // the tools' user may not be able to enter ours
    so.timeout = o_.timeout;
    return so;
  }

  // Runs one SQL statement with psql and returns its rows, one column each.
  Result<std::vector<std::string>> Query(const std::string& db, const std::string& sql) const {
    SubprocessOptions so = Command({Bin("psql"), "-X", "-q", "-A", "-t", "-0", "-v",
                                    "ON_ERROR_STOP=1", "--dbname=" + ConnString(db), "-c", sql});
    ASSIGN_OR_RETURN(SubprocessResult r, RunSubprocess(so));
    RETURN_IF_ERROR(
        CheckExit("psql", r).WithContext(fmt::format("querying postgres database '{}'", db)));
    std::vector<std::string> rows;
    std::string& out = r.stdout_data;
    size_t start = 0;
    while (start < out.size()) {
      size_t end = out.find('\0', start);
      if (end == std::string::npos) end = out.size();
      std::string row = out.substr(start, end - start);
      if (end == out.size() && !row.empty() && row.back() == '\n') row.pop_back();
      rows.push_back(std::move(row));
      start = end + 1;
    }
    return rows;
  }

  const LogicalOptions& options() const { return o_; }

 private:
  LogicalOptions o_;
  std::map<std::string, std::string> env_;
  std::vector<std::pair<std::string, std::string>> params_;
  std::string maintenance_db_;
};

struct Version {
  int num = 0;       // 150008
  std::string text;  // "15.8"
  int major() const { return num >= 100000 ? num / 10000 : num / 100; }
};

Result<Version> ServerVersion(const Tools& t) {
  ASSIGN_OR_RETURN(std::vector<std::string> rows,
                   t.Query(t.maintenance_db(),
                           "SELECT current_setting('server_version_num') || ' ' || "
                           "current_setting('server_version')"));
  Version v;
  if (rows.size() == 1) {
    const std::string& row = rows[0];
    size_t sp = row.find(' ');
    v.num = std::atoi(row.substr(0, sp).c_str());
    if (sp != std::string::npos) v.text = row.substr(sp + 1, row.find(' ', sp + 1) - sp - 1);
  }
  if (v.num <= 0) return Internal("unexpected answer to the postgres server version query");
  return v;
}

// "pg_dump (PostgreSQL) 15.8 (Debian 15.8-1)" -> "15.8".
Result<std::string> ToolVersion(const Tools& t, const std::string& tool) {
  SubprocessOptions so = t.Command({t.Bin(tool), "--version"});
  ASSIGN_OR_RETURN(SubprocessResult r, RunSubprocess(so));
  RETURN_IF_ERROR(CheckExit(tool, r));
  std::string out = r.stdout_data;
  size_t p = out.find(") ");
  if (p == std::string::npos) return std::string();
  out = out.substr(p + 2);
  return out.substr(0, out.find_first_of(" \n"));
}

int MajorOf(const std::string& version) { return std::atoi(version.c_str()); }

// Streams a tool's stdout into one new content and adds `entry` with it.
Status DumpInto(BackupSink& sink, const std::string& tool, SubprocessOptions so, json entry) {
  std::unique_ptr<ContentWriter> writer = sink.NewContent();
  so.stdout_sink = [&](ByteView data) {
    sink.progress().bytes_read.fetch_add(data.size(), std::memory_order_relaxed);
    return writer->Write(data);
  };
  ASSIGN_OR_RETURN(SubprocessResult result, RunSubprocess(so));
  ContentFuture content = writer->Close();
  RETURN_IF_ERROR(CheckExit(tool, result));
  RETURN_IF_ERROR(sink.AddEntry(std::move(entry), {content}));
  sink.progress().entries.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

void Warn(const RestoreOptions& options, const std::string& message) {
  if (options.warn) {
    options.warn(message);
  } else {
    std::cerr << "warning: " << message << "\n";
  }
}

// A private directory for staged dumps, readable by the tools' user, removed at the end.
class StagingDir {
 public:
  static Result<StagingDir> Make(const LogicalOptions& o) {
    std::string base = o.work_dir;
    if (base.empty()) {
      const char* tmp = getenv("TMPDIR");
      base = tmp && *tmp ? tmp : "/var/tmp";
    }
    std::string templ = base + "/reprise-pg-restore-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) {
      return ErrnoError("creating the restore work directory in", base, errno)
          .WithContext(
              "HINT: set the postgres work_dir to a writable directory with room "
              "for the largest dump");
    }
    StagingDir d;
    d.path_ = buf.data();
    if (!o.run_as.empty() && geteuid() == 0) {
      passwd* pw = getpwnam(o.run_as.c_str());
      if (pw == nullptr) return InvalidArgument(fmt::format("no such user '{}'", o.run_as));
      d.uid_ = pw->pw_uid;
      d.gid_ = pw->pw_gid;
      if (chown(d.path_.c_str(), d.uid_, d.gid_) != 0) {
        return ErrnoError("chown", d.path_, errno);
      }
    }
    return d;
  }
  StagingDir() = default;
  StagingDir(StagingDir&& other) noexcept { *this = std::move(other); }
  StagingDir& operator=(StagingDir&& other) noexcept {
    std::swap(path_, other.path_);
    uid_ = other.uid_;
    gid_ = other.gid_;
    return *this;
  }
  ~StagingDir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }

  // Writes one content into a new file in the directory and returns its path.
  Result<std::string> Stage(RestoreSource& source, const json& content, const std::string& name) {
    std::string path = path_ + "/" + name;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoError("create", path, errno);
    Status st = source.ReadContent(content, [&](ByteView data) -> Status {
      size_t done = 0;
      while (done < data.size()) {
        ssize_t n = write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
          if (errno == EINTR) continue;
          return ErrnoError("write", path, errno);
        }
        done += static_cast<size_t>(n);
      }
      return Status::Ok();
    });
    if (st.ok() && uid_ != static_cast<uid_t>(-1) && fchown(fd, uid_, gid_) != 0) {
      st = ErrnoError("chown", path, errno);
    }
    if (close(fd) != 0 && st.ok()) st = ErrnoError("close", path, errno);
    if (!st.ok()) {
      unlink(path.c_str());
      return st;
    }
    return path;
  }

 private:
  std::string path_;
  uid_t uid_ = static_cast<uid_t>(-1);
  gid_t gid_ = static_cast<gid_t>(-1);
};

Status RestoreGlobals(const Tools& t, RestoreSource& source, const json& entry,
                      const RestoreOptions& options) {
  if (!entry.contains("contents") || entry["contents"].empty()) return Status::Ok();
  const json& content = entry["contents"][0];
  SubprocessOptions so = t.Command({t.Bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=0",
                                    "--dbname=" + t.ConnString(t.maintenance_db()), "-f", "-"});
  so.stdin_feed = [&](const StdinWriter& write) { return source.ReadContent(content, write); };
  so.stdout_sink = [](ByteView) { return Status::Ok(); };
  ASSIGN_OR_RETURN(SubprocessResult r, RunSubprocess(so));
  RETURN_IF_ERROR(CheckExit("psql", r).WithContext("applying postgres roles and tablespaces"));
  // psql goes on after a failed statement; each failure is worth a warning, not a stop (the
  // roles of a fresh server, such as "postgres", already exist).
  size_t start = 0;
  const std::string& err = r.stderr_tail;
  while (start < err.size()) {
    size_t end = err.find('\n', start);
    if (end == std::string::npos) end = err.size();
    std::string line = err.substr(start, end - start);
    if (line.find("ERROR:") != std::string::npos) {
      Warn(options, "applying postgres globals: " + line);
    }
    start = end + 1;
  }
  return Status::Ok();
}

Status RestoreDatabase(const Tools& t, StagingDir& staging, RestoreSource& source,
                       const json& entry, int index, const RestoreOptions& options) {
  const std::string db = entry.value("database", "");
  if (db.empty() || !entry.contains("contents") || entry["contents"].size() != 1) {
    return Corruption("postgres manifest entry without a database or its dump");
  }
  const LogicalOptions& o = t.options();
  ASSIGN_OR_RETURN(
      std::vector<std::string> exists,
      t.Query(t.maintenance_db(), "SELECT 1 FROM pg_database WHERE datname = " + SqlLiteral(db)));
  bool clean = false;
  if (!exists.empty()) {
    ASSIGN_OR_RETURN(
        std::vector<std::string> count,
        t.Query(db,
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"));
    bool empty = count.size() == 1 && count[0] == "0";
    if (!empty && !options.overwrite) {
      return AlreadyExists(fmt::format(
          "postgres database '{}' already exists on the target and holds tables: HINT: drop "
          "it, restore with overwrite to replace its objects, or leave it out of the include "
          "list",
          db));
    }
    clean = !empty;
  }

  ASSIGN_OR_RETURN(std::string file,
                   staging.Stage(source, entry["contents"][0], fmt::format("{}.dump", index)));
  std::vector<std::string> argv = {t.Bin("pg_restore"), "-j",
                                   std::to_string(o.jobs > 0 ? o.jobs : 1)};
  if (exists.empty()) {
    // --create makes the database as it was (encoding, locale, owner, settings).
    argv.push_back("--create");
    argv.push_back("--dbname=" + t.ConnString(t.maintenance_db()));
  } else {
    argv.push_back("--dbname=" + t.ConnString(db));
    if (clean) {
      argv.push_back("--clean");
      argv.push_back("--if-exists");
    }
  }
  if (o.no_owner) argv.push_back("--no-owner");
  argv.push_back(file);
  SubprocessOptions so = t.Command(std::move(argv));
  so.stdout_sink = [](ByteView) { return Status::Ok(); };
  Result<SubprocessResult> r = RunSubprocess(so);
  unlink(file.c_str());  // one staged dump at a time
  if (!r.ok()) return r.status();
  return CheckExit("pg_restore", *r)
      .WithContext(fmt::format("restoring postgres database '{}'", db));
}

}  // namespace

Result<json> LogicalBackup(const LogicalOptions& options, BackupSink& sink) {
  ASSIGN_OR_RETURN(Tools t, Tools::Make(options));
  ASSIGN_OR_RETURN(Version server, ServerVersion(t));
  ASSIGN_OR_RETURN(std::string dump_version, ToolVersion(t, "pg_dump"));
  if (MajorOf(dump_version) > 0 && MajorOf(dump_version) < server.major()) {
    return FailedPrecondition(
        fmt::format("pg_dump {} cannot dump postgres server {}: HINT: install the client tools of "
                    "version {} or newer and point bin_dir at them",
                    dump_version, server.text, server.major()));
  }

  std::vector<std::string> databases = options.databases;
  if (databases.empty()) {
    ASSIGN_OR_RETURN(databases,
                     t.Query(t.maintenance_db(),
                             "SELECT datname FROM pg_database WHERE NOT datistemplate AND "
                             "datallowconn ORDER BY datname"));
    if (databases.empty()) {
      return FailedPrecondition("the postgres server has no database that accepts connections");
    }
  }

  if (options.globals) {
    SubprocessOptions so =
        t.Command({t.Bin("pg_dumpall"), "--globals-only",
                   "--dbname=" + t.ConnString(t.maintenance_db()), "-l", t.maintenance_db()});
    RETURN_IF_ERROR(
        DumpInto(sink, "pg_dumpall", std::move(so), json{{"type", "globals"}, {"format", "sql"}})
            .WithContext("dumping postgres roles and tablespaces"));
  }
  for (const std::string& db : databases) {
    SubprocessOptions so = t.Command({t.Bin("pg_dump"), "-Fc", "--dbname=" + t.ConnString(db)});
    json entry = {{"type", "pg_dump"},
                  {"database", db},
                  {"format", "custom"},
                  {"server_version", server.text}};
    RETURN_IF_ERROR(DumpInto(sink, "pg_dump", std::move(so), std::move(entry))
                        .WithContext(fmt::format("dumping postgres database '{}'", db)));
  }
  return json{{"mode", "logical"},
              {"databases", databases},
              {"server_version", server.text},
              {"server_version_num", server.num},
              {"pg_dump_version", dump_version},
              {"globals", options.globals}};
}

Status LogicalRestore(const json& info, RestoreSource& source, const LogicalOptions& target,
                      const RestoreOptions& options) {
  if (info.is_object() && info.value("mode", "logical") != "logical") {
    return InvalidArgument("this postgres backup was not made in logical mode");
  }
  ASSIGN_OR_RETURN(Tools t, Tools::Make(target));
  std::vector<json> entries;
  RETURN_IF_ERROR(source.ForEachEntry([&](const json& e) {
    entries.push_back(e);
    return Status::Ok();
  }));
  const std::set<std::string> include(options.include.begin(), options.include.end());
  std::set<std::string> found;
  for (const json& e : entries) {
    if (e.value("type", "") == "pg_dump") found.insert(e.value("database", ""));
  }
  for (const std::string& name : include) {
    if (found.count(name) == 0) {
      return NotFound(fmt::format("postgres database '{}' is not in this backup", name));
    }
  }

  ASSIGN_OR_RETURN(StagingDir staging, StagingDir::Make(target));
  int index = 0;
  for (const json& e : entries) {
    const std::string type = e.value("type", "");
    if (type == "globals") {
      if (target.globals) RETURN_IF_ERROR(RestoreGlobals(t, source, e, options));
    } else if (type == "pg_dump") {
      if (!include.empty() && include.count(e.value("database", "")) == 0) continue;
      RETURN_IF_ERROR(RestoreDatabase(t, staging, source, e, index++, options));
    } else {
      Warn(options, fmt::format("skipping postgres manifest entry of unknown type '{}'", type));
    }
  }
  return Status::Ok();
}

}  // namespace reprise
