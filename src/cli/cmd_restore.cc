#include <pwd.h>
#include <unistd.h>

#include <filesystem>

#include "cli/commands.h"
#include "components/files/posix.h"
#include "orchestrate/pg_recovery.h"
#include "orchestrate/restore.h"
#include "repo/lock.h"
#include "repo/wal_store.h"

namespace reprise::cli {

namespace {
struct RestoreFlags {
  std::string point = "latest";
  std::string target;
  std::vector<std::string> components;
  std::vector<std::string> include;
  bool overwrite = false;
  // postgres (physical) components
  std::string to_time, to_lsn;
  bool to_end = false, delta = false, start = false, no_archive = false, keep_spool = false;
  std::optional<int> port;
  std::string os_user;
};

// One physical postgres component being restored, with what its recovery needs.
struct PgRestore {
  double wal_seconds = 0;
  const PointComponent* pc = nullptr;
  const ComponentSpec* spec = nullptr;  // from the plan, when it has the component
  std::string data_dir;
  std::string os_user;
  RecoveryTarget target;
  WalNeeds needs;
};

Result<RecoveryTarget> TargetFrom(const RestoreFlags& f) {
  int given = !f.to_time.empty() + !f.to_lsn.empty() + f.to_end;
  if (given > 1) return InvalidArgument("give at most one of --to-time, --to-lsn, --to-end");
  RecoveryTarget t;
  if (!f.to_time.empty()) {
    t.kind = RecoveryTarget::Kind::kTime;
    if (!ParseRfc3339(f.to_time, &t.time_ns))
      return InvalidArgument("--to-time '" + f.to_time +
                             "': expected RFC 3339 UTC, e.g. 2026-11-24T19:30:00Z");
  } else if (!f.to_lsn.empty()) {
    t.kind = RecoveryTarget::Kind::kLsn;
    ASSIGN_OR_RETURN(t.lsn, pg::ParseLsn(f.to_lsn));
  } else if (f.to_end) {
    t.kind = RecoveryTarget::Kind::kEnd;
  }
  return t;
}

std::string DefaultOsUser(const std::string& given, const ComponentSpec* spec) {
  if (!given.empty()) return given;
  if (spec && !spec->postgres.os_user.empty()) return spec->postgres.os_user;
  if (geteuid() == 0 && getpwnam("postgres")) return "postgres";  // root cannot run postgres
  return "";
}

}  // namespace

void AddRestoreCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("restore", "restore a point (or some of its components)");
  auto f = std::make_shared<RestoreFlags>();
  cmd->add_option("point", f->point, "point id (or a prefix of 4+ digits), or 'latest'");
  cmd->add_option("--target,--target-dir", f->target,
                  "directory to restore into (postgres: the data directory to write; redis: "
                  "where dump.rdb goes); not needed for command components with a restore "
                  "command, or redis components with restore.rdb_path, in the plan");
  cmd->add_option("--component", f->components, "restore only this component (repeatable)");
  cmd->add_option("--include", f->include, "restore only this path and what is under it");
  cmd->add_flag("--overwrite", f->overwrite, "replace files that already exist in the target");
  cmd->add_option("--to-time", f->to_time,
                  "postgres: recover to this moment (RFC 3339 UTC), replaying archived WAL");
  cmd->add_option("--to-lsn", f->to_lsn, "postgres: recover to this WAL position (e.g. 0/5000060)");
  cmd->add_flag("--to-end", f->to_end, "postgres: replay all archived WAL (default: stop as soon "
                "as the point is consistent)");
  cmd->add_flag("--delta", f->delta, "postgres: update an existing data directory in place, "
                "writing only the blocks that differ");
  cmd->add_flag("--start", f->start, "postgres: start the server and wait until recovery ends");
  cmd->add_option("--port", f->port, "postgres: port for the restored server");
  cmd->add_flag("--no-archive", f->no_archive,
                "postgres: archive_mode = off in the restored server (drills beside a live one)");
  cmd->add_option("--os-user", f->os_user,
                  "postgres: owner of the restored files and user that runs the server "
                  "(default: the plan's os_user; 'postgres' when run as root)");
  cmd->callback([&ctx, run, f] {
    *run = [&ctx, f]() -> int {
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      auto lock = RepoLock::Acquire(**repo, false, "restore", ctx.clock,
                                    [&](std::string m) { ctx.Warn("warning: " + m); });
      if (!lock.ok()) return ctx.Fail(lock.status());
      if (auto st = (*repo)->LoadIndex(); !st.ok()) return ctx.Fail(st);
      auto point = (*repo)->ResolvePoint(f->point);
      if (!point.ok()) return ctx.Fail(point.status());
      if (point->status != "complete")
        ctx.Warn("warning: point " + point->id.Short() +
                 " is PARTIAL: its failed components cannot be restored");
      auto target = TargetFrom(*f);
      if (!target.ok()) return ctx.Fail(target.status());
      auto plan = ctx.LoadPlanIfAny();
      if (!plan.ok()) return ctx.Fail(plan.status());

      if (f->target.empty()) {
        // Only a command component with a restore command, or a redis component with a
        // restore.rdb_path, in the plan needs no target.
        for (const auto& pc : point->components) {
          bool wanted = f->components.empty() ||
                        std::find(f->components.begin(), f->components.end(), pc.name) !=
                            f->components.end();
          if (!wanted || pc.status != "ok") continue;
          const ComponentSpec* spec = *plan ? (*plan)->FindComponent(pc.name) : nullptr;
          bool piped = (pc.kind == "command" && spec && spec->kind == ComponentKind::kCommand &&
                        !spec->command.restore.empty()) ||
                       (pc.kind == "redis" && spec && spec->kind == ComponentKind::kRedis &&
                        !spec->redis.restore_rdb_path.empty());
          if (!piped) {
            return ctx.Fail(InvalidArgument("--target is required to restore component '" +
                                            pc.name + "' (kind " + pc.kind + ")"));
          }
        }
      }

      // Physical postgres components: plan their WAL first, so that a gap is refused before
      // anything is written.
      std::vector<PgRestore> pgs;
      size_t selected = 0;
      for (const auto& pc : point->components)
        if (f->components.empty() ||
            std::find(f->components.begin(), f->components.end(), pc.name) != f->components.end())
          ++selected;
      for (const auto& pc : point->components) {
        bool wanted = f->components.empty() ||
                      std::find(f->components.begin(), f->components.end(), pc.name) !=
                          f->components.end();
        if (!wanted || pc.kind != "postgres" || pc.status != "ok" ||
            pc.info.value("mode", "") != "physical")
          continue;
        PgRestore r;
        r.pc = &pc;
        r.spec = *plan ? (*plan)->FindComponent(pc.name) : nullptr;
        r.data_dir = selected == 1 ? f->target : files::JoinPath(f->target, pc.name);
        r.os_user = DefaultOsUser(f->os_user, r.spec);
        r.target = *target;
        nlohmann::json info = pc.info;
        info["component"] = pc.name;
        WalStore wal(**repo, pc.name, ctx.clock);
        auto needs = PlanRecoveryWal(wal, info, r.target);
        if (!needs.ok()) return ctx.Fail(needs.status());
        r.needs = std::move(*needs);
        pgs.push_back(std::move(r));
      }
      if (pgs.empty() && (target->kind != RecoveryTarget::Kind::kImmediate || f->start ||
                          f->delta || f->port))
        return ctx.Fail(InvalidArgument(
            "--to-time, --to-lsn, --to-end, --delta, --start and --port apply to physical "
            "postgres components, and this restore has none"));

      // Fetch (and so authenticate) the WAL before writing the data directory: damaged WAL
      // must fail the restore before anything that looks like a data directory exists.
      for (auto& r : pgs) {
        std::error_code ec;
        bool busy = false;
        for (const auto& e : std::filesystem::directory_iterator(r.data_dir, ec))
          if (e.path().filename() != "reprise-wal") busy = true;
        if (busy && !f->delta)
          return ctx.Fail(FailedPrecondition(
              "target '" + r.data_dir + "' is not empty. HINT: restore into an empty directory, "
              "or give --delta to update it in place (only blocks that differ are written)"));
        auto w0 = std::chrono::steady_clock::now();
        WalStore wal(**repo, r.pc->name, ctx.clock);
        std::string spool = files::JoinPath(r.data_dir, "reprise-wal");
        uint64_t seg = r.pc->info.value("wal_segment_size", pg::kDefaultSegmentSize);
        auto st = FetchRecoveryWal(wal, r.needs, spool, seg, r.os_user, [&](size_t d, size_t t) {
          ctx.Progress("fetch WAL " + r.pc->name + ": " + std::to_string(d) + "/" + std::to_string(t));
        });
        ctx.EndProgress();
        if (!st.ok()) {
          std::filesystem::remove_all(spool, ec);
          return ctx.Fail(st.WithContext("nothing was written to '" + r.data_dir + "'"));
        }
        r.wal_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
      }

      nlohmann::json params = nlohmann::json::object();
      if (f->delta) params["delta"] = true;
      if (!pgs.empty()) params["os_user"] = pgs.front().os_user;
      RestoreJob job{.components = f->components,
                     .options = RestoreOptions{.target = f->target,
                                               .overwrite = f->overwrite,
                                               .include = f->include,
                                               .warn = [&](const std::string& m) {
                                                 ctx.Warn("warning: " + m);
                                               },
                                               .params = params}};
      if (pgs.size() == 1 && selected == 1) job.options.target = pgs.front().data_dir;
      if (auto plan = ctx.LoadPlanIfAny(); plan.ok() && *plan) {
        job.plan = *plan;
        job.secrets = [&ctx](const std::string& n) { return ctx.SecretValue(n); };
      }
      auto t0 = ctx.clock.NowUnixNanos();
      auto report = RunRestore(**repo, *point, job, [&](const std::string& c, uint64_t bytes) {
        double s = static_cast<double>(ctx.clock.NowUnixNanos() - t0) / 1e9;
        ctx.Progress("restore " + c + ": " + FormatBytes(bytes) + " (" +
                     FormatBytes(static_cast<uint64_t>(s > 0 ? bytes / s : 0)) + "/s), " +
                     FormatSeconds(s));
      });
      ctx.EndProgress();
      if (!report.ok()) return ctx.Fail(report.status());

      // Recovery: WAL into the spool, settings, and (--start) the server.
      nlohmann::json recovery = nlohmann::json::array();
      for (auto& r : pgs) {
        std::string spool = files::JoinPath(r.data_dir, "reprise-wal");
        double wal_s = r.wal_seconds;
        RecoveryConfig rc{.spool_dir = spool, .target = r.target, .port = f->port,
                          .archive_off = f->no_archive, .os_user = r.os_user};
        if (auto wst = WriteRecoveryConfig(r.data_dir, rc); !wst.ok()) return ctx.Fail(wst);
        nlohmann::json rj = {{"component", r.pc->name}, {"data_dir", r.data_dir},
                             {"wal_files", r.needs.files.size()}, {"wal_seconds", wal_s},
                             {"first_wal", r.needs.first}, {"last_wal", r.needs.last}};
        ctx.Say(r.pc->name + ": " + std::to_string(r.needs.files.size()) +
                " WAL file(s) fetched and verified (" + r.needs.first + " .. " + r.needs.last +
                ") in " + FormatSeconds(wal_s));
        if (f->start) {
          StartOptions so;
          if (r.spec) {
            so.bin_dir = r.spec->postgres.bin_dir;
            so.start_command = r.spec->postgres.start_command;
          }
          so.os_user = r.os_user;
          auto secs = StartAndAwaitRecovery(r.data_dir, so);
          if (!secs.ok()) return ctx.Fail(secs.status().WithContext(r.pc->name));
          rj["recovery_seconds"] = *secs;
          if (!f->keep_spool) {
            std::error_code ec;
            std::filesystem::remove_all(spool, ec);
          }
          ctx.Say(r.pc->name + ": server started, recovery finished in " + FormatSeconds(*secs));
        } else {
          ctx.Say(r.pc->name + ": ready to start: pg_ctl -D " + r.data_dir +
                  " start (recovery settings are in postgresql.auto.conf)");
        }
        recovery.push_back(rj);
      }
      if (ctx.opts.json) {
        nlohmann::json comps = nlohmann::json::array();
        for (const auto& c : report->components)
          comps.push_back({{"name", c.name}, {"kind", c.kind}, {"seconds", c.seconds},
                           {"bytes", c.bytes}});
        ctx.PrintJson({{"point", point->id.Hex()}, {"target", f->target},
                       {"seconds", report->seconds}, {"bytes", report->bytes},
                       {"components", comps}, {"recovery", recovery}});
      } else {
        for (const auto& c : report->components) {
          double rate = c.seconds > 0 ? static_cast<double>(c.bytes) / c.seconds : 0;
          ctx.Say(c.name + ": " + FormatBytes(c.bytes) + " in " + FormatSeconds(c.seconds) +
                  " (" + FormatBytes(static_cast<uint64_t>(rate)) + "/s)");
        }
        ctx.Say("restored point " + point->id.Short() + " to " + f->target + " in " +
                FormatSeconds(report->seconds));
      }
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
