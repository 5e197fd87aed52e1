#include <unistd.h>

#include <algorithm>
#include <map>

#include "cli/commands.h"
#include "orchestrate/backup.h"
#include "orchestrate/component_factory.h"
#include "orchestrate/pg_recovery.h"
#include "repo/lock.h"
#include "repo/wal_store.h"

#include <chrono>
#include <thread>

namespace reprise::cli {

namespace {

struct BackupFlags {
  std::vector<std::string> paths;
  std::vector<std::string> components;
  std::vector<std::string> tags;
  std::vector<std::string> excludes;
  int wal_wait_s = 60;
  int parallel = 4;
};

Result<BackupJob> BuildJob(Context& ctx, const BackupFlags& f) {
  BackupJob job;
  job.tags = f.tags;
  job.parallel = f.parallel;
  if (!f.paths.empty()) {
    if (!f.components.empty())
      return InvalidArgument("give either PATHs or --component, not both");
    BackupItem item;
    item.name = item.kind = "files";
    ASSIGN_OR_RETURN(item.component, MakeFilesComponent(f.paths, f.excludes));
    job.items.push_back(std::move(item));
    return job;
  }
  ASSIGN_OR_RETURN(const Plan* plan, ctx.LoadPlanIfAny());
  if (!plan)
    return InvalidArgument(
        "nothing to back up: give PATHs, or a plan (--plan or ./reprise.yaml) naming components");
  for (const auto& name : f.components)
    if (!plan->FindComponent(name))
      return InvalidArgument("the plan has no component '" + name + "'");
  job.plan_name = plan->name;
  job.site = ctx.opts.site;
  if (job.site.empty() && !plan->sites.empty())
    job.site = plan->PrimarySite() ? plan->PrimarySite()->name : plan->sites.front().name;
  for (const auto& spec : plan->components) {
    if (!f.components.empty() &&
        std::find(f.components.begin(), f.components.end(), spec.name) == f.components.end())
      continue;
    BackupItem item;
    item.name = spec.name;
    item.kind = std::string(ComponentKindName(spec.kind));
    auto c = MakeComponent(spec, [&ctx](const std::string& n) { return ctx.SecretValue(n); });
    if (c.ok()) {
      item.component = std::move(*c);
    } else {
      item.build_error = c.status();
    }
    job.items.push_back(std::move(item));
  }
  return job;
}

}  // namespace

void AddBackupCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand(
      "backup", "back up the plan's components (or PATHs, without a plan) into one new point");
  auto f = std::make_shared<BackupFlags>();
  cmd->add_option("paths", f->paths, "files or directories to back up (no plan needed)");
  cmd->add_option("--component", f->components, "back up only this component of the plan");
  cmd->add_option("--tag", f->tags, "tag the point (repeatable)");
  cmd->add_option("--exclude", f->excludes, "with PATHs: skip paths matching this glob");
  cmd->add_option("--wal-wait", f->wal_wait_s,
                  "postgres: seconds to wait for the WAL the point needs to reach the archive "
                  "(default 60); after that the backup exits 3 with a warning");
  cmd->add_option("--parallel", f->parallel,
                  "components backed up at once (default 4)")
      ->check(CLI::Range(1, 64));
  cmd->callback([&ctx, run, f] {
    *run = [&ctx, f]() -> int {
      auto job = BuildJob(ctx, *f);
      if (!job.ok()) return ctx.Fail(job.status());
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      auto lock = RepoLock::Acquire(**repo, false, "backup", ctx.clock,
                                    [&](std::string m) { ctx.Warn("warning: " + m); });
      if (!lock.ok()) return ctx.Fail(lock.status());
      auto st = (*repo)->LoadIndex();
      if (!st.ok()) return ctx.Fail(st);
      // Components run side by side: one progress line with the latest figures of those
      // heard from in the last half second (the others have finished).
      using Steady = std::chrono::steady_clock;
      std::map<std::string, std::pair<BackupTick, Steady::time_point>> seen;
      auto point = RunBackup(**repo, *job, ctx.clock, [&](const BackupTick& t) {
        auto now = Steady::now();
        seen[t.component] = {t, now};
        std::map<std::string, BackupTick> latest;
        for (const auto& [name, v] : seen)
          if (now - v.second < std::chrono::milliseconds(500)) latest[name] = v.first;
        std::string line = "backup";
        for (const auto& [name, x] : latest) {
          double rate = x.seconds > 0 ? static_cast<double>(x.bytes_read) / x.seconds : 0;
          line += " " + name + ": " + std::to_string(x.entries) + " entries, " +
                  FormatBytes(x.bytes_read) + " (" + FormatBytes(static_cast<uint64_t>(rate)) +
                  "/s)";
          line += ", " + FormatBytes(x.new_bytes) + " new";
          if (latest.size() == 1)
            line += ", " + FormatBytes(x.stored_bytes) + " stored, " + FormatSeconds(x.seconds);
          line += ";";
        }
        line.pop_back();
        ctx.Progress(line);
      });
      ctx.EndProgress();
      if (!point.ok()) return ctx.Fail(point.status());
      const Point& p = *point;
      // A physical postgres point is restorable once the WAL up to its end is archived
      // (archive_command: the server already waited for it; wal-stream: it arrives within
      // a second or so). Wait for it, bounded, and say so when it does not come.
      std::vector<std::string> wal_missing;
      for (const auto& c : p.components) {
        if (c.kind != "postgres" || c.status != "ok" || c.info.value("mode", "") != "physical")
          continue;
        nlohmann::json info = c.info;
        info["component"] = c.name;
        WalStore wal(**repo, c.name, ctx.clock);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(f->wal_wait_s);
        for (;;) {
          auto needs = PlanRecoveryWal(wal, info, RecoveryTarget{});
          if (needs.ok()) break;
          if (std::chrono::steady_clock::now() >= deadline) {
            wal_missing.push_back(c.name + ": " + needs.status().message());
            break;
          }
          ctx.Progress("waiting for the WAL of " + c.name + " to be archived");
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
        ctx.EndProgress();
      }
      for (const auto& m : wal_missing)
        ctx.Warn("warning: point " + p.id.Short() + " cannot be restored until its WAL is "
                 "archived: " + m);
      uint64_t warnings = wal_missing.size();
      std::vector<const PointComponent*> failed;
      for (const auto& c : p.components) {
        warnings += c.warning_count;
        if (c.status != "ok") failed.push_back(&c);
      }
      auto seconds_of = [](const PointComponent& c) {
        return static_cast<double>(c.finished_ns - c.started_ns) / 1e9;
      };
      if (ctx.opts.json) {
        nlohmann::json comps = nlohmann::json::array();
        for (const auto& c : p.components)
          comps.push_back({{"name", c.name}, {"kind", c.kind}, {"status", c.status},
                           {"error", c.error}, {"started", FormatRfc3339(c.started_ns)},
                           {"finished", FormatRfc3339(c.finished_ns)},
                           {"seconds", seconds_of(c)}, {"position", PositionOf(c)},
                           {"stats", c.stats}, {"info", c.info}, {"warnings", c.warnings},
                           {"warning_count", c.warning_count}});
        nlohmann::json names = nlohmann::json::array();
        for (const auto* c : failed) names.push_back(c->name);
        ctx.PrintJson({{"point", p.id.Hex()}, {"status", p.status}, {"failed", names},
                       {"stats", p.stats}, {"components", comps}});
      } else {
        for (const auto& c : p.components) {
          if (c.status != "ok") continue;
          for (const auto& w : c.warnings) ctx.Warn("warning: " + c.name + ": " + w);
          if (c.warning_count > c.warnings.size())
            ctx.Warn("warning: " + c.name + ": " +
                     std::to_string(c.warning_count - c.warnings.size()) + " more warnings");
          std::string line = c.name + ": " + std::to_string(c.entries) + " entries, " +
                             FormatBytes(c.stats.value("bytes", uint64_t{0}));
          if (c.stats.contains("new_bytes"))
            line += ", " + FormatBytes(c.stats.value("new_bytes", uint64_t{0})) + " new, " +
                    FormatBytes(c.stats.value("stored_bytes", uint64_t{0})) + " stored";
          line += ", " + FormatSeconds(seconds_of(c));
          if (std::string pos = DescribePosition(c); !pos.empty()) line += ", " + pos;
          ctx.Say(line);
        }
        ctx.Say(std::string(p.status == "partial" ? "PARTIAL point " : "point ") + p.id.Short() +
                " saved in " + FormatSeconds(p.stats.value("seconds", 0.0)) + " (" +
                FormatBytes(p.stats.value("new_bytes", uint64_t{0})) + " new, " +
                FormatBytes(p.stats.value("stored_bytes", uint64_t{0})) + " stored)");
      }
      // Which component failed and why, on stderr even with --json: the exit code says only
      // that the point is partial.
      for (const auto* c : failed)
        ctx.Warn("component '" + c->name + "' FAILED after " + FormatSeconds(seconds_of(*c)) +
                 ": " + c->error);
      if (!failed.empty())
        ctx.Warn("point " + p.id.Short() + " is PARTIAL: " + std::to_string(failed.size()) +
                 " of " + std::to_string(p.components.size()) +
                 " components failed and cannot be restored from it");
      if (!failed.empty() || warnings) return kExitPartial;
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
