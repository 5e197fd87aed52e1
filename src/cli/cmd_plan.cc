#include <iostream>

#include "cli/commands.h"

namespace reprise::cli {

void AddPlanCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("plan", "work with the plan file");
  cmd->require_subcommand(1);
  auto* check = cmd->add_subcommand("check", "validate the plan; errors name file, line, field");
  check->callback([&ctx, run] {
    *run = [&ctx]() -> int {
      std::string path = ctx.opts.plan.empty() ? "reprise.yaml" : ctx.opts.plan;
      auto plan = LoadPlan(path);
      if (!plan.ok()) {
        if (ctx.opts.json) {
          ctx.PrintJson({{"ok", false}, {"file", path}, {"errors", plan.status().message()}});
          return ExitCodeFor(plan.status());
        }
        std::cerr << plan.status().message() << "\n";
        return ExitCodeFor(plan.status());
      }
      nlohmann::json warnings = nlohmann::json::array();
      for (const auto& w : plan->warnings) warnings.push_back(w.ToString());
      if (ctx.opts.json) {
        nlohmann::json comps = nlohmann::json::array();
        for (const auto& c : plan->components)
          comps.push_back({{"name", c.name}, {"kind", ComponentKindName(c.kind)},
                           {"class", c.data_class}, {"built", ComponentKindBuilt(c.kind)}});
        ctx.PrintJson({{"ok", true}, {"file", path}, {"warnings", warnings},
                       {"components", comps}});
        return kExitOk;
      }
      for (const auto& w : plan->warnings) ctx.Warn("warning: " + w.ToString());
      ctx.Say(path + ": ok (" + std::to_string(plan->components.size()) + " components, " +
              std::to_string(plan->sites.size()) + " sites, " +
              std::to_string(plan->tiers.size()) + " tiers)");
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
