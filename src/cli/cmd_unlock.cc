#include "cli/commands.h"
#include "repo/lock.h"

namespace reprise::cli {

void AddUnlockCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("unlock", "remove stale locks (all locks with --force)");
  auto force = std::make_shared<bool>(false);
  cmd->add_flag("--force", *force, "remove live locks too (only when you know they are dead)");
  cmd->callback([&ctx, run, force] {
    *run = [&ctx, force]() -> int {
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      auto removed = RemoveLocks(**repo, *force, ctx.clock);
      if (!removed.ok()) return ctx.Fail(removed.status());
      for (const auto& r : *removed) ctx.Say("removed " + r);
      if (removed->empty()) ctx.Say("no stale locks");
      if (ctx.opts.json) ctx.PrintJson({{"removed", *removed}});
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
