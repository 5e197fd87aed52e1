#include "cli/commands.h"
#include "repo/format.h"

namespace reprise::cli {

void AddStatsCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("stats", "sizes: logical, unique, stored; dedup ratio");
  cmd->callback([&ctx, run] {
    *run = [&ctx]() -> int {
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      if (auto st = (*repo)->LoadIndex(); !st.ok()) return ctx.Fail(st);
      auto points = (*repo)->ListPoints();
      if (!points.ok()) return ctx.Fail(points.status());
      uint64_t logical = 0;
      for (const auto& p : *points) logical += p.stats.value("bytes", uint64_t{0});
      uint64_t unique = 0, blobs = 0;
      for (const auto& [id, entries] : (*repo)->index().Packs())
        for (const auto& e : entries) {
          unique += e.raw_length;
          ++blobs;
        }
      auto packs = (*repo)->storage().List(std::string(kDataDir));
      if (!packs.ok()) return ctx.Fail(packs.status());
      uint64_t stored = 0;
      for (const auto& o : *packs) stored += o.size;
      double dedup = unique ? static_cast<double>(logical) / static_cast<double>(unique) : 0;
      double compression = stored ? static_cast<double>(unique) / static_cast<double>(stored) : 0;
      if (ctx.opts.json) {
        ctx.PrintJson({{"points", points->size()}, {"logical_bytes", logical},
                       {"unique_bytes", unique}, {"stored_bytes", stored}, {"blobs", blobs},
                       {"packs", packs->size()}, {"dedup_ratio", dedup},
                       {"compression_ratio", compression}});
      } else {
        char line[128];
        ctx.Say("points:        " + std::to_string(points->size()));
        ctx.Say("logical size:  " + FormatBytes(logical) + " (what restoring every point gives)");
        ctx.Say("unique data:   " + FormatBytes(unique) + " in " + std::to_string(blobs) +
                " blobs");
        ctx.Say("stored size:   " + FormatBytes(stored) + " in " + std::to_string(packs->size()) +
                " packs");
        std::snprintf(line, sizeof line, "dedup ratio:   %.2fx   compression ratio: %.2fx", dedup,
                      compression);
        ctx.Say(line);
      }
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
