#include <cstdio>

#include "cli/commands.h"

namespace reprise::cli {

nlohmann::json PointSummaryJson(const Point& p) {
  nlohmann::json comps = nlohmann::json::array();
  for (const auto& c : p.components)
    comps.push_back({{"name", c.name}, {"kind", c.kind}, {"status", c.status},
                     {"entries", c.entries}, {"bytes", c.stats.value("bytes", uint64_t{0})},
                     {"info", c.info}});
  nlohmann::json j = {{"id", p.id.Hex()},     {"short_id", p.id.Short()},
          {"time", FormatRfc3339(p.time_ns)}, {"host", p.host},
          {"plan", p.plan},       {"site", p.site},
          {"tags", p.tags},       {"status", p.status},
          {"components", comps},  {"stats", p.stats}};
  if (!p.copied_from.empty()) j["copied_from"] = p.copied_from;
  return j;
}

void AddPointsCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("points", "list the recovery points, oldest first");
  auto component = std::make_shared<std::string>();
  cmd->add_option("--component", *component, "only points that hold this component");
  cmd->callback([&ctx, run, component] {
    *run = [&ctx, component]() -> int {
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      std::vector<std::string> damaged;
      auto points = (*repo)->ListPoints(&damaged);
      if (!points.ok()) return ctx.Fail(points.status());
      for (const auto& d : damaged) ctx.Warn("warning: " + d);
      nlohmann::json out = nlohmann::json::array();
      if (!ctx.opts.json)
        ctx.Say("ID        TIME                  STATUS    HOST            COMPONENTS");
      for (const auto& p : *points) {
        if (!component->empty() && !p.Find(*component)) continue;
        if (ctx.opts.json) {
          out.push_back(PointSummaryJson(p));
          continue;
        }
        std::string comps;
        for (const auto& c : p.components)
          comps += (comps.empty() ? "" : ",") + c.name + (c.status == "ok" ? "" : "(failed)");
        char line[512];
        std::snprintf(line, sizeof line, "%-8s  %-20s  %-8s  %-14s  %s", p.id.Short().c_str(),
                      FormatRfc3339(p.time_ns).substr(0, 19).c_str(), p.status.c_str(),
                      p.host.substr(0, 14).c_str(), comps.c_str());
        ctx.Say(line);
      }
      if (ctx.opts.json) ctx.PrintJson(out);
      return damaged.empty() ? kExitOk : kExitDamage;
    };
  });
}

}  // namespace reprise::cli
