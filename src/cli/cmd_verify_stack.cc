// reprise verify-stack (docs/commands/verify-stack.md): runs the plan's consistency checks on
// the live stack, or with --site on that site's endpoints, and lists the orphans. The work is
// in src/stackcheck/; this file parses flags and prints.
#include <iostream>
#include <set>

#include "cli/commands.h"
#include "stackcheck/stack_check.h"

namespace reprise::cli {

namespace {

struct VerifyStackFlags {
  std::vector<std::string> checks;
  size_t max_orphans = 20;
};

// libpq's messages span lines ("...refused\n\tIs the server running..."): one line here.
std::string OneLine(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\t' || c == '\r') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string SideText(const ConsistencyCheck::Side& side) {
  std::string s = side.component + ": " + side.query;
  if (!side.field.empty()) s += " (payload " + side.field + ")";
  return s;
}

int Run(Context& ctx, const VerifyStackFlags& flags) {
  auto loaded = ctx.LoadPlanIfAny();
  if (!loaded.ok()) return ctx.Fail(loaded.status());
  const Plan* plan = *loaded;
  if (!plan) {
    return ctx.Fail(InvalidArgument("verify-stack needs a plan (--plan or ./reprise.yaml)"));
  }
  const Site* site = nullptr;
  if (!ctx.opts.site.empty()) {
    site = plan->FindSite(ctx.opts.site);
    if (!site) {
      return ctx.Fail(InvalidArgument("site '" + ctx.opts.site + "' is not defined in the plan"));
    }
  }
  if (plan->consistency.empty()) {
    return ctx.Fail(InvalidArgument(
        "the plan '" + plan->file + "' has no consistency checks: HINT: add a 'consistency' "
        "section (docs/plan-reference.md)"));
  }
  std::vector<const ConsistencyCheck*> selected;
  std::set<std::string> wanted(flags.checks.begin(), flags.checks.end());
  for (const ConsistencyCheck& c : plan->consistency) {
    if (wanted.empty() || wanted.contains(c.name)) selected.push_back(&c);
  }
  for (const std::string& name : wanted) {
    bool known = false;
    for (const ConsistencyCheck& c : plan->consistency) known = known || c.name == name;
    if (!known) {
      std::string names;
      for (const ConsistencyCheck& c : plan->consistency) {
        names += (names.empty() ? "'" : ", '") + c.name + "'";
      }
      return ctx.Fail(InvalidArgument("the plan has no consistency check '" + name +
                                      "': HINT: its checks are " + names));
    }
  }

  stackcheck::CheckOptions options;
  options.max_orphans = flags.max_orphans;
  options.progress = [&ctx](const std::string& check, uint64_t examined) {
    ctx.Progress("verify-stack: " + check + ": " + std::to_string(examined) + " values");
  };
  auto secrets = [&ctx](const std::string& name) { return ctx.SecretValue(name); };

  nlohmann::json out = nlohmann::json::array();
  int passed = 0, with_orphans = 0, not_run = 0;
  for (const ConsistencyCheck* check : selected) {
    stackcheck::CheckResult r = stackcheck::RunPlanCheck(*plan, *check, site, secrets, options);
    ctx.EndProgress();
    out.push_back(r.ToJson());
    if (!r.error.ok()) {
      ++not_run;
    } else if (r.orphans > 0) {
      ++with_orphans;
    } else {
      ++passed;
    }
    if (!ctx.human()) continue;
    const std::string counts = std::to_string(r.examined) + " values, " +
                               std::to_string(r.orphans) + (r.orphans_approximate ? "+" : "") +
                               " orphans (" + FormatSeconds(r.seconds) + ")";
    if (!r.error.ok()) {
      std::cerr << "ERROR   " << r.name << ": could not run: " << OneLine(r.error.message())
                << "\n";
      if (r.examined > 0) std::cerr << "        before that: " << counts << "\n";
    } else if (r.orphans > 0) {
      std::cout << "ORPHANS " << r.name << ": " << counts << "\n"
                << "        each " << SideText(r.each) << "\n"
                << "        not in " << SideText(r.exists_in) << "\n";
      for (const std::string& o : r.first_orphans) std::cout << "          " << o << "\n";
      if (r.orphans > r.first_orphans.size()) {
        std::cout << "          ... and " << (r.orphans - r.first_orphans.size())
                  << " more (--max-orphans)\n";
      }
    } else {
      ctx.Say("ok      " + r.name + ": " + counts);
    }
  }
  if (ctx.opts.json) {
    ctx.PrintJson({{"ok", not_run == 0 && with_orphans == 0},
                   {"site", site ? nlohmann::json(site->name) : nlohmann::json(nullptr)},
                   {"checks", out}});
  } else {
    std::string summary = std::to_string(passed) + " of " + std::to_string(selected.size()) +
                          " checks passed";
    if (with_orphans) summary += ", " + std::to_string(with_orphans) + " found orphans";
    if (not_run) summary += ", " + std::to_string(not_run) + " could not run";
    if (not_run || with_orphans) {
      std::cerr << "verify-stack FAILED: " << summary << "\n";
    } else {
      ctx.Say(summary);
    }
  }
  if (not_run) return kExitError;
  if (with_orphans) return kExitDamage;
  return kExitOk;
}

}  // namespace

void AddVerifyStackCommand(CLI::App& app, Context& ctx, Action* run) {
  auto flags = std::make_shared<VerifyStackFlags>();
  auto* cmd = app.add_subcommand(
      "verify-stack",
      "run the plan's consistency checks on the live stack (or --site S) and list the orphans; "
      "exit 12 when orphans are found, 1 when a check could not run");
  cmd->add_option("--check", flags->checks, "run only this check (by name; repeatable)");
  cmd->add_option("--max-orphans", flags->max_orphans, "orphans listed per check (default 20)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([&ctx, run, flags] {
    *run = [&ctx, flags]() -> int { return Run(ctx, *flags); };
  });
}

}  // namespace reprise::cli
