#include "cli/commands.h"
#include "repo/wal_store.h"
#include "common/duration.h"
#include "repo/lock.h"
#include "repo/format.h"
#include "repo/prune.h"
#include "repo/retention.h"

namespace reprise::cli {

namespace {

int RunPrune(Context& ctx, Repository& repo, bool dry_run) {
  auto report = PruneRepository(
      repo, PruneOptions{.dry_run = dry_run},
      [&](const std::string& phase, uint64_t done, uint64_t total) {
        ctx.Progress("prune: " + phase + " " + std::to_string(done) + "/" + std::to_string(total));
      });
  ctx.EndProgress();
  if (!report.ok()) return ctx.Fail(report.status());
  const PruneReport& r = *report;
  if (ctx.opts.json) {
    ctx.PrintJson({{"dry_run", dry_run}, {"packs_total", r.packs_total},
                   {"packs_deleted", r.packs_deleted}, {"packs_repacked", r.packs_repacked},
                   {"packs_written", r.packs_written}, {"orphan_packs", r.orphan_packs},
                   {"bytes_total", r.bytes_total}, {"bytes_freed", r.bytes_freed},
                   {"blobs_used", r.blobs_used}, {"blobs_unused", r.blobs_unused}});
  } else {
    ctx.Say(std::string(dry_run ? "would delete " : "deleted ") +
            std::to_string(r.packs_deleted) + " pack(s) (" + std::to_string(r.orphan_packs) +
            " unreferenced), repack " + std::to_string(r.packs_repacked) + " into " +
            std::to_string(r.packs_written) + "; " + FormatBytes(r.bytes_freed) + " of " +
            FormatBytes(r.bytes_total) + " freed");
  }
  return kExitOk;
}

struct ForgetFlags {
  RetentionPolicy policy;
  std::string within;
  bool prune = false;
  bool dry_run = false;
};

}  // namespace

void AddPruneCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("prune", "remove data no point needs; repack mostly-empty packs");
  auto dry_run = std::make_shared<bool>(false);
  cmd->add_flag("--dry-run", *dry_run, "only say what would be removed");
  cmd->callback([&ctx, run, dry_run] {
    *run = [&ctx, dry_run]() -> int {
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      auto lock = RepoLock::Acquire(**repo, true, "prune", ctx.clock,
                                    [&](std::string m) { ctx.Warn("warning: " + m); });
      if (!lock.ok()) return ctx.Fail(lock.status());
      return RunPrune(ctx, **repo, *dry_run);
    };
  });
}

void AddForgetCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand(
      "forget", "remove points by a retention policy (then 'prune' frees their data)");
  auto f = std::make_shared<ForgetFlags>();
  cmd->add_option("--keep-last", f->policy.keep_last, "keep the N newest points");
  cmd->add_option("--keep-hourly", f->policy.keep_hourly, "keep the newest of N hours");
  cmd->add_option("--keep-daily", f->policy.keep_daily, "keep the newest of N days");
  cmd->add_option("--keep-weekly", f->policy.keep_weekly, "keep the newest of N weeks");
  cmd->add_option("--keep-monthly", f->policy.keep_monthly, "keep the newest of N months");
  cmd->add_option("--keep-yearly", f->policy.keep_yearly, "keep the newest of N years");
  cmd->add_option("--keep-within", f->within, "keep every point newer than this (e.g. 7d)");
  cmd->add_flag("--prune", f->prune, "prune right after");
  cmd->add_flag("--dry-run", f->dry_run, "only say what would be removed");
  cmd->callback([&ctx, run, f] {
    *run = [&ctx, f]() -> int {
      RetentionPolicy policy = f->policy;
      if (!f->within.empty()) {
        auto d = ParseDuration(f->within);
        if (!d.ok()) return ctx.Fail(InvalidArgument("--keep-within: " + d.status().message()));
        policy.keep_within_seconds = d->count();
      }
      std::string policy_source = "command line";
      if (policy.empty()) {
        auto plan = ctx.LoadPlanIfAny();
        if (!plan.ok()) return ctx.Fail(plan.status());
        if (*plan) {
          const Site* site = ctx.opts.site.empty()
                                 ? ((*plan)->PrimarySite() ? (*plan)->PrimarySite()
                                    : (*plan)->sites.empty() ? nullptr
                                                             : &(*plan)->sites.front())
                                 : (*plan)->FindSite(ctx.opts.site);
          if (site) {
            policy = (*plan)->RetentionFor(*site);
            policy_source = "site '" + site->name + "' of the plan";
          }
        }
      }
      if (policy.empty())
        return ctx.Fail(InvalidArgument(
            "no retention policy: give --keep-* flags or a retention in the plan "
            "(forget never removes everything by default)"));
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      auto lock = RepoLock::Acquire(**repo, true, "forget", ctx.clock,
                                    [&](std::string m) { ctx.Warn("warning: " + m); });
      if (!lock.ok()) return ctx.Fail(lock.status());
      auto points = (*repo)->ListPoints();
      if (!points.ok()) return ctx.Fail(points.status());
      std::vector<PointSummary> summaries;
      for (const auto& p : *points)
        summaries.push_back(PointSummary{.id = p.id.Hex(),
                                         .time_unix = p.time_ns / 1000000000,
                                         .host = p.host,
                                         .tags = p.tags,
                                         .subsec_ns = p.time_ns % 1000000000});
      RetentionDecision d = ApplyRetention(summaries, policy, ctx.clock.NowUnix());
      nlohmann::json keep = nlohmann::json::array(), remove = nlohmann::json::array();
      ctx.Say("policy (" + policy_source + "): " + policy.ToString());
      for (const auto& [p, reasons] : d.keep) {
        std::string why;
        for (const auto& r : reasons) why += (why.empty() ? "" : ", ") + r;
        keep.push_back({{"id", p.id}, {"reasons", reasons}});
        ctx.Say("keep   " + p.id.substr(0, 8) + "  " +
                FormatRfc3339(p.time_unix * 1000000000).substr(0, 19) + "  " + why);
      }
      for (const auto& p : d.remove) {
        remove.push_back(p.id);
        ctx.Say(std::string(f->dry_run ? "would remove " : "remove ") + p.id.substr(0, 8) +
                "  " + FormatRfc3339(p.time_unix * 1000000000).substr(0, 19));
        if (f->dry_run) continue;
        auto id = Id::FromHex(p.id);
        if (!id.ok()) return ctx.Fail(id.status());
        if (auto st = (*repo)->storage().Delete(PointKey(*id)); !st.ok()) return ctx.Fail(st);
      }
      // WAL that no kept point needs goes with the points.
      std::vector<Point> kept;
      for (const auto& p : *points) {
        bool removed = std::any_of(d.remove.begin(), d.remove.end(),
                                   [&](const PointSummary& r) { return r.id == p.id.Hex(); });
        if (!removed) kept.push_back(p);
      }
      auto expired = ExpireWal(**repo, kept, f->dry_run);
      if (!expired.ok()) return ctx.Fail(expired.status().WithContext("expiring WAL"));
      if (!expired->empty())
        ctx.Say(std::string(f->dry_run ? "would remove " : "removed ") +
                std::to_string(expired->size()) + " WAL file(s) older than every kept point");
      if (ctx.opts.json && !f->prune)
        ctx.PrintJson({{"dry_run", f->dry_run}, {"keep", keep}, {"remove", remove},
                       {"wal_removed", *expired}});
      if (f->prune) return RunPrune(ctx, **repo, f->dry_run);
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
