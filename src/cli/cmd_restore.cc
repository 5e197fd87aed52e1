#include "cli/commands.h"
#include "orchestrate/restore.h"
#include "repo/lock.h"

namespace reprise::cli {

namespace {
struct RestoreFlags {
  std::string point = "latest";
  std::string target;
  std::vector<std::string> components;
  std::vector<std::string> include;
  bool overwrite = false;
};
}  // namespace

void AddRestoreCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("restore", "restore a point (or some of its components)");
  auto f = std::make_shared<RestoreFlags>();
  cmd->add_option("point", f->point, "point id (or a prefix of 4+ digits), or 'latest'");
  cmd->add_option("--target", f->target, "directory to restore into")->required();
  cmd->add_option("--component", f->components, "restore only this component (repeatable)");
  cmd->add_option("--include", f->include, "restore only this path and what is under it");
  cmd->add_flag("--overwrite", f->overwrite, "replace files that already exist in the target");
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
      RestoreJob job{.components = f->components,
                     .options = RestoreOptions{.target = f->target,
                                               .overwrite = f->overwrite,
                                               .include = f->include,
                                               .warn = [&](const std::string& m) {
                                                 ctx.Warn("warning: " + m);
                                               }}};
      auto t0 = ctx.clock.NowUnixNanos();
      auto report = RunRestore(**repo, *point, job, [&](const std::string& c, uint64_t bytes) {
        double s = static_cast<double>(ctx.clock.NowUnixNanos() - t0) / 1e9;
        ctx.Progress("restore " + c + ": " + FormatBytes(bytes) + " (" +
                     FormatBytes(static_cast<uint64_t>(s > 0 ? bytes / s : 0)) + "/s), " +
                     FormatSeconds(s));
      });
      ctx.EndProgress();
      if (!report.ok()) return ctx.Fail(report.status());
      if (ctx.opts.json) {
        nlohmann::json comps = nlohmann::json::array();
        for (const auto& c : report->components)
          comps.push_back({{"name", c.name}, {"kind", c.kind}, {"seconds", c.seconds},
                           {"bytes", c.bytes}});
        ctx.PrintJson({{"point", point->id.Hex()}, {"target", f->target},
                       {"seconds", report->seconds}, {"bytes", report->bytes},
                       {"components", comps}});
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
