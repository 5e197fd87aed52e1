#include "failover/rebuild.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "common/subprocess.h"
#include "components/files/posix.h"
#include "failover/journal.h"
#include "failover/nodes.h"
#include "pg/connection.h"
#include "redis/client.h"

namespace reprise::failover {

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

const char* const kOwnFiles[] = {"postgresql.conf", "pg_hba.conf", "pg_ident.conf"};


double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Runs a PostgreSQL program as the site's os_user with the primary's password in PGPASSWORD
// (never on the command line).
Result<SubprocessResult> RunPg(const RebuildSpec& spec, std::vector<std::string> argv,
                               const std::string& password, milliseconds timeout) {
  SubprocessOptions o;
  o.argv = std::move(argv);
  o.run_as = spec.os_user;
  if (!password.empty()) o.env["PGPASSWORD"] = password;
  o.timeout = timeout;
  return RunSubprocess(o);
}

Result<SubprocessResult> RunShell(const RebuildSpec& spec, const std::string& script,
                                  milliseconds timeout) {
  SubprocessOptions o;
  o.argv = ShellArgv(script);
  o.run_as = spec.os_user;
  o.timeout = timeout;
  return RunSubprocess(o);
}

std::string Tail(const SubprocessResult& r) {
  std::string t = r.stderr_tail.empty() ? r.stdout_data : r.stderr_tail;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

Status Chown(const std::string& path, const RebuildSpec& spec) {
  if (spec.os_user.empty() || geteuid() != 0) return Status::Ok();
  ASSIGN_OR_RETURN(files::UserIds ids, files::LookupUser(spec.os_user));
  if (chown(path.c_str(), ids.uid, ids.gid) != 0) return ErrnoError("chown", path, errno);
  return Status::Ok();
}

Status WriteOwned(const std::string& path, const std::string& data, const RebuildSpec& spec) {
  RETURN_IF_ERROR(WriteFileAtomic(path, data));
  return Chown(path, spec);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += c;
    out += c;
  }
  return out + "'";
}

// Whether the node at `node` is a standby streaming from somewhere right now.
bool Streaming(const PgNode& node) {
  auto conn = pg::Connection::Open(node.conninfo, false, node.password);
  if (!conn.ok()) return false;
  auto rows = (*conn)->Query(
      "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE "
      "status = 'streaming')");
  return rows.ok() && rows->rows.size() == 1 && rows->rows[0][0] == "t";
}

Result<std::string> RebuildPostgres(const Site& site, const Site& primary,
                                    const FailoverHooks& hooks, std::string* moved_aside) {
  const RebuildSpec& spec = *site.rebuild;
  ASSIGN_OR_RETURN(std::string site_pw, LookupSecret(hooks.secrets, site.endpoints.postgres_password));
  ASSIGN_OR_RETURN(std::string primary_pw, LookupSecret(hooks.secrets, primary.endpoints.postgres_password));
  PgNode node{site.endpoints.postgres, site_pw};
  if (!site.endpoints.postgres.empty() && Streaming(node)) {
    // A standby that streams: from the current primary, as the site has just one.
    return std::string("already streaming");
  }
  const std::string& dir = spec.data_directory;
  const std::string pg_ctl = spec.bin_dir + "/pg_ctl";
  Clock::time_point start = Clock::now();

  // 1. Stop the old primary (it may already be down).
  if (!spec.stop_command.empty()) {
    ASSIGN_OR_RETURN(SubprocessResult r, RunShell(spec, spec.stop_command, milliseconds(120000)));
    if (!r.success()) {
      return FailedPrecondition(fmt::format("stop_command of site '{}' {}: {}", site.name,
                                            r.Describe(), Tail(r)));
    }
  } else {
    ASSIGN_OR_RETURN(SubprocessResult st, RunPg(spec, {pg_ctl, "-D", dir, "status"}, "",
                                                milliseconds(30000)));
    if (st.exit_code == 0) {
      ASSIGN_OR_RETURN(SubprocessResult r,
                       RunPg(spec, {pg_ctl, "-D", dir, "-m", "fast", "-w", "stop"}, "",
                             milliseconds(120000)));
      if (!r.success()) {
        return FailedPrecondition(fmt::format("stopping PostgreSQL in '{}' {}: {}", dir,
                                              r.Describe(), Tail(r)));
      }
    }
  }

  // 2. Keep the node's own configuration: a rewind or a base backup copies the source's.
  std::map<std::string, std::string> own;
  for (const char* name : kOwnFiles) {
    std::string path = dir + "/" + name;
    if (fs::exists(path)) own[name] = ReadText(path);
  }
  std::string auto_conf = fs::exists(dir + "/postgresql.auto.conf")
                              ? ReadText(dir + "/postgresql.auto.conf")
                              : std::string();

  // 3. pg_rewind, else a fresh base backup into a new directory. A just-promoted source
  // shows its new timeline in pg_control only after a checkpoint, and pg_rewind reads it there.
  {
    ASSIGN_OR_RETURN(auto source, pg::Connection::Open(primary.endpoints.postgres, false,
                                                       primary_pw));
    RETURN_IF_ERROR(source->Query("CHECKPOINT").status().WithContext(
        fmt::format("checkpoint on site '{}' before pg_rewind", primary.name)));
  }
  std::string method;
  ASSIGN_OR_RETURN(SubprocessResult rw,
                   RunPg(spec,
                         {spec.bin_dir + "/pg_rewind", "--target-pgdata=" + dir,
                          "--source-server=" + primary.endpoints.postgres, "--progress"},
                         primary_pw, milliseconds(3600 * 1000)));
  if (rw.success()) {
    method = "pg_rewind";
  } else {
    if (hooks.log) {
      hooks.log(fmt::format("rebuild '{}': pg_rewind failed ({}); taking a fresh base backup",
                            site.name, Tail(rw)));
    }
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    std::string aside = fmt::format("{}.reprise-old-{}", dir, stamp);
    if (rename(dir.c_str(), aside.c_str()) != 0) return ErrnoError("rename", dir, errno);
    *moved_aside = aside;
    ASSIGN_OR_RETURN(SubprocessResult bb,
                     RunPg(spec,
                           {spec.bin_dir + "/pg_basebackup", "-D", dir, "-d",
                            primary.endpoints.postgres, "-X", "stream", "-c", "fast"},
                           primary_pw, milliseconds(24 * 3600 * 1000)));
    if (!bb.success()) {
      return FailedPrecondition(fmt::format(
          "pg_basebackup from site '{}' {}: {}; the old data directory is kept in '{}'",
          primary.name, bb.Describe(), Tail(bb), aside));
    }
    method = "pg_basebackup";
    if (auto_conf.empty() && fs::exists(aside + "/postgresql.auto.conf")) {
      auto_conf = ReadText(aside + "/postgresql.auto.conf");
    }
  }

  // 4. Own configuration back, then follow the primary.
  for (const auto& [name, text] : own) RETURN_IF_ERROR(WriteOwned(dir + "/" + name, text, spec));
  std::string conninfo =
      spec.primary_conninfo.empty() ? primary.endpoints.postgres : spec.primary_conninfo;
  auto_conf += fmt::format(
      "\n# written by reprise rebuild: follow site '{}'\nprimary_conninfo = {}\n"
      "default_transaction_read_only = off\n",
      primary.name, Quote(conninfo));
  RETURN_IF_ERROR(WriteOwned(dir + "/postgresql.auto.conf", auto_conf, spec));
  std::error_code ec;
  fs::remove(dir + "/recovery.signal", ec);
  RETURN_IF_ERROR(WriteOwned(dir + "/standby.signal", "", spec));

  // 5. Start and wait until it streams.
  ASSIGN_OR_RETURN(SubprocessResult started,
                   spec.start_command.empty()
                       ? RunPg(spec,
                               {pg_ctl, "-D", dir, "-w", "-l", dir + "/reprise-start.log",
                                "start"},
                               "", milliseconds(300000))
                       : RunShell(spec, spec.start_command, milliseconds(300000)));
  if (!started.success()) {
    return FailedPrecondition(fmt::format("starting the rebuilt PostgreSQL of site '{}' {}: {}",
                                          site.name, started.Describe(), Tail(started)));
  }
  if (!site.endpoints.postgres.empty()) {
    Clock::time_point deadline = Clock::now() + std::chrono::seconds(120);
    while (!Streaming(node)) {
      if (Clock::now() >= deadline) {
        return Unavailable(fmt::format(
            "the rebuilt PostgreSQL of site '{}' started but does not stream from '{}' after "
            "120 s; HINT: check primary_conninfo and the primary's pg_hba.conf",
            site.name, primary.name));
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
  }
  return fmt::format("{} in {:.1f} s", method, Since(start));
}

}  // namespace

Result<RebuildReport> RebuildSite(const Plan& plan, const Site& site, const Site& primary,
                                  const FailoverHooks& hooks) {
  if (site.name == primary.name) {
    return FailedPrecondition(
        fmt::format("site '{}' is the current primary; it cannot follow itself", site.name));
  }
  RebuildReport report;
  if (!site.endpoints.postgres.empty() && !primary.endpoints.postgres.empty()) {
    if (!site.rebuild) {
      return FailedPrecondition(fmt::format(
          "site '{}' has no 'rebuild' settings; HINT: add sites.{}.rebuild.data_directory "
          "(reprise must run where that directory is)",
          site.name, site.name));
    }
    ASSIGN_OR_RETURN(report.postgres,
                     RebuildPostgres(site, primary, hooks, &report.moved_aside));
  }
  if (!site.endpoints.redis.empty() && !primary.endpoints.redis.empty()) {
    ASSIGN_OR_RETURN(std::string pw, LookupSecret(hooks.secrets, site.endpoints.redis_password));
    RedisNode node{site.endpoints.redis, pw};
    RETURN_IF_ERROR(DemoteRedis(node, primary.endpoints.redis));
    ASSIGN_OR_RETURN(redis::Address address, redis::ParseAddress(site.endpoints.redis));
    Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);
    while (true) {
      auto client = redis::Client::Connect(address, pw, milliseconds(5000));
      if (client.ok()) {
        auto state = redis::GetReplicationState(**client);
        if (state.ok() && !state->primary && state->link_up) break;
      }
      if (Clock::now() >= deadline) {
        return Unavailable(fmt::format("the Redis of site '{}' does not replicate from '{}' "
                                       "after 60 s",
                                       site.name, primary.name));
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    report.redis = "replicating";
  }
  return report;
}

}  // namespace reprise::failover
