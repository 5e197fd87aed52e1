#include <filesystem>

#include "cli/commands.h"
#include "components/files/posix.h"
#include "orchestrate/pg_recovery.h"
#include "orchestrate/pg_restore_steps.h"
#include "orchestrate/restore.h"
#include "orchestrate/stack_restore.h"
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
  // the whole stack (a plan and no --target)
  bool no_start = false, no_health = false;
  int parallel = 4;
  // s3 and qdrant components
  bool delete_extra = false, force = false;
  double health_timeout_s = 30;
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

// --delete and --force, for the components that read them.
nlohmann::json KindParams(const RestoreFlags& f) {
  nlohmann::json params = nlohmann::json::object();
  if (f.delete_extra) params["delete"] = true;
  if (f.force) params["force"] = true;
  return params;
}

// `reprise restore` with a plan and no --target: every component back where the plan says,
// tier by tier (orchestrate/stack_restore.h).
int RestoreWholeStack(Context& ctx, const RestoreFlags& f, Repository& repo, const Point& point,
                      const Plan& plan, const RecoveryTarget& target) {
  StackRestoreOptions o{
      .components = f.components,
      .pg_target = target,
      .start_postgres = !f.no_start,
      .overwrite = f.overwrite,
      .parallel = f.parallel,
      .run_health = !f.no_health,
      .health_timeout =
          std::chrono::milliseconds(static_cast<int64_t>(std::max(0.0, f.health_timeout_s) * 1000)),
      .include = f.include,
      .pg_delta = f.delta,
      .pg_port = f.port,
      .pg_archive_off = f.no_archive,
      .os_user = f.os_user,
      .keep_wal_spool = f.keep_spool,
      .params = KindParams(f),
      .clock = &ctx.clock,
      .say = [&ctx](const std::string& line) { ctx.Say(line); },
      .warn = [&ctx](const std::string& line) { ctx.Warn(line); }};
  auto report = RestoreStack(repo, point, plan,
                             [&ctx](const std::string& n) { return ctx.SecretValue(n); }, o);
  if (!report.ok()) return ctx.Fail(report.status());
  bool damaged = false, failed = false, skipped = false;
  for (const auto& c : report->components) {
    damaged = damaged || c.code == Code::kCorruption;
    failed = failed || c.status == "failed";
    skipped = skipped || c.status == "skipped";
  }
  for (const auto& t : report->tiers) failed = failed || t.status == "failed";
  if (ctx.opts.json) {
    nlohmann::json j = report->ToJson();
    j["point"] = point.id.Hex();
    ctx.PrintJson(j);
  } else {
    ctx.Say("");
    for (const auto& c : report->components) {
      std::string line = c.name + " (" + c.kind + ", tier " + c.tier + "): " + c.status;
      if (c.status == "ok") {
        line += " in " + FormatSeconds(c.seconds) + ", " + FormatBytes(c.bytes);
        if (c.wal_seconds > 0) line += ", WAL fetched in " + FormatSeconds(c.wal_seconds);
      } else if (!c.error.empty()) {
        line += ": " + c.error;
      }
      ctx.Say(line);
    }
    std::string end = report->ok ? "restored point " : "point ";
    ctx.Say(end + point.id.Short() + (report->ok ? "" : " NOT fully restored") + " in " +
            std::to_string(report->tiers.size()) + " tier(s); measured RTO " +
            FormatSeconds(report->seconds) + " (" + FormatBytes(report->bytes) + ")");
  }
  if (report->ok) return kExitOk;
  if (damaged) return kExitDamage;
  if (failed) return kExitError;
  return skipped ? kExitPartial : kExitError;
}

}  // namespace

void AddRestoreCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("restore", "restore a point (or some of its components)");
  auto f = std::make_shared<RestoreFlags>();
  cmd->add_option("point", f->point, "point id (or a prefix of 4+ digits), or 'latest'");
  cmd->add_option("--target,--target-dir", f->target,
                  "directory to restore into (postgres: the data directory to write; redis: "
                  "where dump.rdb goes); without it and with a plan, the whole stack is "
                  "restored where the plan says, tier by tier");
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
  cmd->add_flag("--no-start", f->no_start,
                "whole stack (a plan, no --target): leave restored postgres servers stopped");
  cmd->add_flag("--no-health", f->no_health,
                "whole stack: do not run the tiers' health checks");
  cmd->add_option("--parallel", f->parallel,
                  "whole stack: components of one tier restored at once (default 4)")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--delete", f->delete_extra,
                "s3: delete the objects under the target prefix that are not in the point "
                "(after every object is uploaded)");
  cmd->add_flag("--force", f->force,
                "qdrant: restore a snapshot taken by another Qdrant minor version");
  cmd->add_option("--health-timeout", f->health_timeout_s,
                  "whole stack: seconds a tier's failing health checks are retried (default 30)")
      ->check(CLI::Range(0.0, 86400.0));
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
        if (*plan) return RestoreWholeStack(ctx, *f, **repo, *point, **plan, *target);
        for (const auto& pc : point->components) {
          bool wanted = f->components.empty() ||
                        std::find(f->components.begin(), f->components.end(), pc.name) !=
                            f->components.end();
          if (wanted && pc.status == "ok")
            return ctx.Fail(InvalidArgument(
                "--target is required to restore component '" + pc.name + "' (kind " +
                pc.kind + ") without a plan. HINT: give --target DIR, or --plan so that each "
                "component goes back where the plan says"));
        }
      }

      // Physical postgres components: plan their WAL first, so that a gap is refused before
      // anything is written.
      std::vector<PgRestoreStep> pgs;
      std::vector<const ComponentSpec*> pg_specs;
      size_t selected = 0;
      for (const auto& pc : point->components)
        if (f->components.empty() ||
            std::find(f->components.begin(), f->components.end(), pc.name) != f->components.end())
          ++selected;
      for (const auto& pc : point->components) {
        bool wanted = f->components.empty() ||
                      std::find(f->components.begin(), f->components.end(), pc.name) !=
                          f->components.end();
        if (!wanted || pc.status != "ok" || !IsPhysicalPostgres(pc)) continue;
        const ComponentSpec* spec = *plan ? (*plan)->FindComponent(pc.name) : nullptr;
        std::string dir = selected == 1 ? f->target : files::JoinPath(f->target, pc.name);
        auto step = PlanPgRestore(**repo, pc, dir, PgOsUser(f->os_user, spec), *target, ctx.clock);
        if (!step.ok()) return ctx.Fail(step.status());
        pgs.push_back(std::move(*step));
        pg_specs.push_back(spec);
      }
      if (pgs.empty() && (target->kind != RecoveryTarget::Kind::kImmediate || f->start ||
                          f->delta || f->port))
        return ctx.Fail(InvalidArgument(
            "--to-time, --to-lsn, --to-end, --delta, --start and --port apply to physical "
            "postgres components, and this restore has none"));

      // Fetch (and so authenticate) the WAL before writing the data directory: damaged WAL
      // must fail the restore before anything that looks like a data directory exists.
      for (const auto& step : pgs)
        if (auto st = CheckPgDataDir(step.data_dir, f->delta); !st.ok()) return ctx.Fail(st);
      for (auto& step : pgs) {
        auto st = FetchPgWal(**repo, step, ctx.clock, [&](size_t d, size_t t) {
          ctx.Progress("fetch WAL " + step.component + ": " + std::to_string(d) + "/" +
                       std::to_string(t));
        });
        ctx.EndProgress();
        if (!st.ok()) return ctx.Fail(st);
      }

      nlohmann::json params = KindParams(*f);
      if (f->delta) params["delta"] = true;
      if (!pgs.empty() && !pgs.front().os_user.empty()) params["os_user"] = pgs.front().os_user;
      RestoreJob job{.components = f->components,
                     .options = RestoreOptions{.target = f->target,
                                               .overwrite = f->overwrite,
                                               .include = f->include,
                                               .warn = [&](const std::string& m) {
                                                 ctx.Warn("warning: " + m);
                                               },
                                               .params = params},
                     .plan = nullptr,
                     .secrets = nullptr};
      if (pgs.size() == 1 && selected == 1) job.options.target = pgs.front().data_dir;
      if (*plan) {
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

      // Recovery: settings, and (--start) the server.
      nlohmann::json recovery = nlohmann::json::array();
      for (size_t i = 0; i < pgs.size(); ++i) {
        const PgRestoreStep& step = pgs[i];
        const ComponentSpec* spec = pg_specs[i];
        PgFinishOptions fo;
        fo.port = f->port;
        fo.archive_off = f->no_archive;
        fo.start = f->start;
        fo.keep_spool = f->keep_spool;
        if (spec) {
          fo.bin_dir = spec->postgres.bin_dir;
          fo.start_command = spec->postgres.start_command;
        }
        nlohmann::json rj = {{"component", step.component}, {"data_dir", step.data_dir},
                             {"wal_files", step.needs.files.size()},
                             {"wal_seconds", step.wal_seconds}, {"first_wal", step.needs.first},
                             {"last_wal", step.needs.last}};
        ctx.Say(step.component + ": " + std::to_string(step.needs.files.size()) +
                " WAL file(s) fetched and verified (" + step.needs.first + " .. " +
                step.needs.last + ") in " + FormatSeconds(step.wal_seconds));
        auto secs = FinishPgRestore(step, fo);
        if (!secs.ok()) return ctx.Fail(secs.status().WithContext(step.component));
        if (f->start) {
          rj["recovery_seconds"] = *secs;
          ctx.Say(step.component + ": server started, recovery finished in " +
                  FormatSeconds(*secs));
        } else {
          ctx.Say(step.component + ": ready to start: pg_ctl -D " + step.data_dir +
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
