// reprise health / failover / monitor (docs/commands/failover.md): the site-level commands.
// The work is in src/failover/ and src/health/; this file parses flags, asks for the typed
// confirmation and prints.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "failover/failover.h"
#include "failover/monitor.h"
#include "failover/rebuild.h"
#include "health/health.h"
#include "orchestrate/stack_restore.h"
#include "repo/lock.h"

namespace reprise::cli {

namespace {

// Set by SIGTERM/SIGINT while the monitor runs (a signal handler can only touch such a flag).
std::atomic<bool> g_stop_monitor{false};
extern "C" void StopMonitor(int) { g_stop_monitor = true; }

Result<const Plan*> NeedPlan(Context& ctx, const char* command) {
  ASSIGN_OR_RETURN(const Plan* plan, ctx.LoadPlanIfAny());
  if (!plan) {
    return InvalidArgument(std::string(command) + " needs a plan (--plan or ./reprise.yaml)");
  }
  return plan;
}

// A cold site's repository, opened with the site's credentials and the plan's passphrase.
Result<std::unique_ptr<Repository>> OpenSiteRepository(Context& ctx, const Site& site) {
  ASSIGN_OR_RETURN(std::string pass, ctx.Passphrase());
  ASSIGN_OR_RETURN(std::unique_ptr<Repository> repo, ctx.OpenRepoAt(site.repository, &site, pass));
  return repo;
}

failover::FailoverHooks Hooks(Context& ctx) {
  failover::FailoverHooks hooks;
  hooks.secrets = [&ctx](const std::string& name) { return ctx.SecretValue(name); };
  hooks.log = [&ctx](const std::string& line) {
    if (!ctx.opts.quiet && !ctx.opts.json) std::cerr << line << "\n";
  };
  // Failover to a cold site: its newest point, and the whole stack restored from it.
  hooks.cold.latest_point = [&ctx](const Site& site) -> Result<nlohmann::json> {
    ASSIGN_OR_RETURN(std::unique_ptr<Repository> repo, OpenSiteRepository(ctx, site));
    ASSIGN_OR_RETURN(Point point, repo->ResolvePoint("latest"));
    return nlohmann::json{{"id", point.id.Short()},
                          {"time_unix_ms", point.time_ns / 1000000},
                          {"status", point.status}};
  };
  hooks.cold.restore = [&ctx](const Site& site) -> Result<nlohmann::json> {
    ASSIGN_OR_RETURN(const Plan* plan, ctx.LoadPlanIfAny());
    if (!plan) return FailedPrecondition("no plan");
    ASSIGN_OR_RETURN(std::unique_ptr<Repository> repo, OpenSiteRepository(ctx, site));
    ASSIGN_OR_RETURN(std::unique_ptr<RepoLock> lock,
                     RepoLock::Acquire(*repo, false, "restore", ctx.clock,
                                       [&ctx](std::string m) { ctx.Warn("warning: " + m); }));
    RETURN_IF_ERROR(repo->LoadIndex());
    ASSIGN_OR_RETURN(Point point, repo->ResolvePoint("latest"));
    StackRestoreOptions o;
    o.pg_target.kind = RecoveryTarget::Kind::kEnd;  // everything archived, then promote
    o.clock = &ctx.clock;
    o.say = [&ctx](const std::string& line) {
      if (!ctx.opts.quiet && !ctx.opts.json) std::cerr << "  " << line << "\n";
    };
    o.warn = [&ctx](const std::string& line) { ctx.Warn(line); };
    ASSIGN_OR_RETURN(StackRestoreReport report,
                     RestoreStack(*repo, point, *plan,
                                  [&ctx](const std::string& n) { return ctx.SecretValue(n); },
                                  o));
    nlohmann::json j = report.ToJson();
    j["point"] = point.id.Short();
    return j;
  };
  return hooks;
}

// Asks for the target site's name on stdin; false (nothing may be done) unless typed exactly.
bool ConfirmTyped(const std::string& what, const std::string& site) {
  std::cerr << what << "\nType the target site's name to confirm: " << std::flush;
  std::string typed;
  if (std::getline(std::cin, typed) && typed == site) return true;
  std::cerr << "\n";
  return false;
}

Status NotConfirmed() {
  return FailedPrecondition(
      "not confirmed: nothing was done; HINT: type the site name exactly, or pass --yes in "
      "scripts");
}

std::string CrashHook() {
  const char* v = std::getenv("REPRISE_TEST_CRASH_AFTER_STEP");
  return v ? v : "";
}

}  // namespace

void AddFailoverCommands(CLI::App& app, Context& ctx, Action* run) {
  // health ---------------------------------------------------------------------------------
  auto* health = app.add_subcommand(
      "health", "run the health checks of every site (or --site S); exit 1 when one fails");
  health->callback([&ctx, run] {
    *run = [&ctx]() -> int {
      auto plan = NeedPlan(ctx, "health");
      if (!plan.ok()) return ctx.Fail(plan.status());
      if (!ctx.opts.site.empty() && !(*plan)->FindSite(ctx.opts.site)) {
        return ctx.Fail(InvalidArgument("site '" + ctx.opts.site + "' is not defined in the plan"));
      }
      auto secrets = [&ctx](const std::string& name) { return ctx.SecretValue(name); };
      bool all_ok = true;
      nlohmann::json out = nlohmann::json::array();
      for (const Site& site : (*plan)->sites) {
        if (!ctx.opts.site.empty() && site.name != ctx.opts.site) continue;
        std::vector<health::HealthResult> results = health::RunChecks(site.health, secrets);
        nlohmann::json checks = nlohmann::json::array();
        bool site_ok = true;
        for (const auto& r : results) {
          checks.push_back(r.ToJson());
          site_ok = site_ok && r.ok;
        }
        all_ok = all_ok && site_ok;
        out.push_back({{"site", site.name}, {"ok", site_ok}, {"checks", checks}});
        if (ctx.human()) {
          ctx.Say(site.name + " (" + std::string(SiteRoleName(site.role)) + "): " +
                  (results.empty() ? "no health checks" : site_ok ? "healthy" : "UNHEALTHY"));
          for (const auto& r : results) {
            ctx.Say(std::string("  ") + (r.ok ? "ok    " : "FAIL  ") + r.name + ": " + r.detail);
          }
        }
      }
      if (ctx.opts.json) ctx.PrintJson(out);
      return all_ok ? kExitOk : kExitError;
    };
  });

  // failover -------------------------------------------------------------------------------
  struct FailoverFlags {
    std::string to, reason;
    bool yes = false, force = false, dry_run = false;
  };
  auto f = std::make_shared<FailoverFlags>();
  auto* fo = app.add_subcommand(
      "failover",
      "make SITE the primary: check it, fence the old primary, wait for the replicas, promote, "
      "switch DNS and monitoring, notify; resumes a failover that was interrupted");
  fo->add_option("--to", f->to, "the site to fail over to")->required();
  fo->add_option("--reason", f->reason, "why, for the journal and the notifications")->required();
  fo->add_flag("--yes", f->yes, "do not ask for the typed site name (scripts)");
  fo->add_flag("--force", f->force,
               "go on although the target is unhealthy or further behind than failover.max_lag");
  fo->add_flag("--dry-run", f->dry_run, "print the steps without doing anything");
  fo->callback([&ctx, run, f] {
    *run = [&ctx, f]() -> int {
      auto plan = NeedPlan(ctx, "failover");
      if (!plan.ok()) return ctx.Fail(plan.status());
      failover::FailoverOptions options;
      options.to = f->to;
      options.reason = f->reason;
      options.force = f->force;
      options.crash_after_step = CrashHook();
      if (f->dry_run) {
        auto steps = failover::DescribeFailover(**plan, options);
        if (!steps.ok()) return ctx.Fail(steps.status());
        if (ctx.opts.json) {
          ctx.PrintJson({{"dry_run", true}, {"steps", *steps}});
        } else {
          for (const auto& s : *steps) std::cout << s << "\n";
          std::cout << "(dry run: nothing was done)\n";
        }
        return kExitOk;
      }
      if (!(*plan)->FindSite(f->to)) {
        return ctx.Fail(InvalidArgument("site '" + f->to + "' is not defined in the plan"));
      }
      if (!f->yes) {
        auto from = failover::CurrentPrimary(**plan);
        if (!ConfirmTyped("Fail over from '" + (from.ok() ? *from : std::string("?")) +
                              "' to '" + f->to + "'. The old primary will stop taking writes.",
                          f->to)) {
          return ctx.Fail(NotConfirmed());
        }
      }
      failover::FailoverOutcome out = failover::RunFailover(**plan, options, Hooks(ctx));
      if (ctx.opts.json) {
        nlohmann::json j = out.journal.ToJson();
        j["ok"] = out.status.ok();
        if (!out.status.ok()) j["error"] = out.status.message();
        ctx.PrintJson(j);
      }
      if (!out.status.ok()) return ctx.Fail(out.status);
      if (ctx.human()) {
        const auto& fig = out.journal.figures;
        std::string rpo = failover::DescribeRpo(fig);
        ctx.Say("failover to '" + out.journal.to + "' completed (journal " + out.journal.id +
                ")");
        ctx.Say("RTO (start to first write on the new primary): " +
                FormatSeconds(fig.value("rto_seconds", 0.0)));
        ctx.Say("RPO (not replicated at promotion): " + rpo);
      }
      return kExitOk;
    };
  });

  // rebuild --------------------------------------------------------------------------------
  auto rebuild_site = std::make_shared<std::string>();
  auto* rb = app.add_subcommand(
      "rebuild", "make SITE's PostgreSQL and Redis replicas of the current primary (pg_rewind, "
                 "else a fresh base backup; REPLICAOF)");
  rb->add_option("site", *rebuild_site, "the site to rebuild")->required();
  rb->callback([&ctx, run, rebuild_site] {
    *run = [&ctx, rebuild_site]() -> int {
      auto plan = NeedPlan(ctx, "rebuild");
      if (!plan.ok()) return ctx.Fail(plan.status());
      const Site* site = (*plan)->FindSite(*rebuild_site);
      if (!site) {
        return ctx.Fail(InvalidArgument("site '" + *rebuild_site + "' is not defined in the plan"));
      }
      auto current = failover::CurrentPrimary(**plan);
      if (!current.ok()) return ctx.Fail(current.status());
      auto report = failover::RebuildSite(**plan, *site, *(*plan)->FindSite(*current), Hooks(ctx));
      if (!report.ok()) return ctx.Fail(report.status());
      if (ctx.opts.json) {
        ctx.PrintJson({{"site", site->name}, {"primary", *current},
                       {"postgres", report->postgres}, {"redis", report->redis},
                       {"moved_aside", report->moved_aside}});
      } else {
        ctx.Say("site '" + site->name + "' follows '" + *current + "'" +
                (report->postgres.empty() ? "" : "; postgres: " + report->postgres) +
                (report->redis.empty() ? "" : "; redis: " + report->redis));
        if (!report->moved_aside.empty()) {
          ctx.Say("the old data directory was kept in '" + report->moved_aside + "'");
        }
      }
      return kExitOk;
    };
  });

  // failback -------------------------------------------------------------------------------
  auto fb = std::make_shared<FailoverFlags>();
  auto* back = app.add_subcommand(
      "failback",
      "return to SITE (the old primary): rebuild it as a replica of the current primary, switch "
      "over to it with the failover steps (zero loss: fenced and caught up), then rebuild the "
      "site that was primary as its replica");
  back->add_option("--to", fb->to, "the site to return to")->required();
  back->add_option("--reason", fb->reason, "why, for the journal and the notifications")
      ->required();
  back->add_flag("--yes", fb->yes, "do not ask for the typed site name (scripts)");
  back->callback([&ctx, run, fb] {
    *run = [&ctx, fb]() -> int {
      auto plan = NeedPlan(ctx, "failback");
      if (!plan.ok()) return ctx.Fail(plan.status());
      const Site* target = (*plan)->FindSite(fb->to);
      if (!target) return ctx.Fail(InvalidArgument("site '" + fb->to + "' is not defined in the plan"));
      auto current = failover::CurrentPrimary(**plan);
      if (!current.ok()) return ctx.Fail(current.status());
      if (*current == fb->to) {
        return ctx.Fail(FailedPrecondition("site '" + fb->to + "' is already the primary"));
      }
      const Site* now_primary = (*plan)->FindSite(*current);
      if (!fb->yes) {
        if (!ConfirmTyped("Fail back from '" + *current + "' to '" + fb->to +
                              "': rebuild it, then switch over.",
                          fb->to)) {
          return ctx.Fail(NotConfirmed());
        }
      }
      failover::FailoverHooks hooks = Hooks(ctx);
      hooks.log("failback: rebuilding '" + fb->to + "' as a replica of '" + *current + "'");
      auto rebuilt = failover::RebuildSite(**plan, *target, *now_primary, hooks);
      if (!rebuilt.ok()) return ctx.Fail(rebuilt.status().WithContext("failback"));
      hooks.log("failback: '" + fb->to + "' follows '" + *current + "' (" + rebuilt->postgres +
                ")");
      failover::FailoverOptions options;
      options.to = fb->to;
      options.reason = "failback: " + fb->reason;
      options.crash_after_step = CrashHook();
      failover::FailoverOutcome out = failover::RunFailover(**plan, options, hooks);
      if (!out.status.ok()) return ctx.Fail(out.status.WithContext("failback switchover"));
      std::string old_state = "left fenced (no 'rebuild' settings)";
      if (now_primary->rebuild || now_primary->endpoints.postgres.empty()) {
        auto again = failover::RebuildSite(**plan, *now_primary, *target, hooks);
        old_state = again.ok() ? "now follows '" + fb->to + "'"
                               : "not rebuilt: " + again.status().message();
      }
      const auto& fig = out.journal.figures;
      if (ctx.opts.json) {
        nlohmann::json j = out.journal.ToJson();
        j["rebuilt"] = rebuilt->postgres;
        j["previous_primary"] = old_state;
        ctx.PrintJson(j);
      } else {
        ctx.Say("failback to '" + fb->to + "' completed (journal " + out.journal.id + ")");
        ctx.Say("RTO (switchover start to first write): " +
                FormatSeconds(fig.value("rto_seconds", 0.0)));
        if (fig.contains("rpo_wal_bytes")) {
          ctx.Say("RPO (not replicated at promotion): " + failover::DescribeRpo(fig));
        }
        ctx.Say("site '" + *current + "': " + old_state);
      }
      return kExitOk;
    };
  });

  // monitor --------------------------------------------------------------------------------
  struct MonitorFlags {
    std::string id, to;
    bool allow_no_quorum = false, exit_after_failover = false;
    int rounds = 0;
  };
  auto m = std::make_shared<MonitorFlags>();
  auto* mon = app.add_subcommand(
      "monitor",
      "watch the primary site and fail over after failover.monitor.failure_threshold failed "
      "rounds, only while holding the etcd leader lease; runs until SIGTERM/SIGINT");
  mon->add_option("--id", m->id, "this monitor's name in the election (default: hostname)");
  mon->add_option("--to", m->to, "site to fail over to (default: the first warm site)");
  mon->add_flag("--allow-no-quorum", m->allow_no_quorum,
                "without failover.monitor.quorum.etcd, let this single monitor fail over");
  mon->add_option("--rounds", m->rounds, "stop after N rounds (default: run until stopped)");
  mon->add_flag("--exit-after-failover", m->exit_after_failover,
                "stop after the first failover attempt");
  mon->callback([&ctx, run, m] {
    *run = [&ctx, m]() -> int {
      auto plan = NeedPlan(ctx, "monitor");
      if (!plan.ok()) return ctx.Fail(plan.status());
      if (!m->to.empty() && !(*plan)->FindSite(m->to)) {
        return ctx.Fail(InvalidArgument("site '" + m->to + "' is not defined in the plan"));
      }
      std::signal(SIGTERM, StopMonitor);
      std::signal(SIGINT, StopMonitor);
      failover::MonitorOptions options;
      options.candidate = m->id;
      options.to = m->to;
      options.allow_no_quorum = m->allow_no_quorum;
      options.max_rounds = m->rounds;
      options.exit_after_failover = m->exit_after_failover;
      options.crash_after_step = CrashHook();
      failover::FailoverHooks hooks = Hooks(ctx);
      hooks.log = [&ctx](const std::string& line) {
        if (!ctx.opts.quiet) std::cerr << line << "\n";
      };
      failover::MonitorReport report = failover::RunMonitor(**plan, options, hooks,
                                                            g_stop_monitor);
      if (ctx.opts.json) {
        ctx.PrintJson({{"rounds", report.rounds},
                       {"failovers", report.failovers},
                       {"last_failover_ok", report.last_failover.ok()}});
      }
      if (report.failovers > 0 && !report.last_failover.ok()) return kExitError;
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
