#include "cli/commands.h"
#include "storage/storage.h"

namespace reprise::cli {

void AddInitCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("init", "create a new repository");
  auto pack_mib = std::make_shared<uint32_t>(16);
  cmd->add_option("--pack-size", *pack_mib, "target pack size in MiB (default 16)")
      ->check(CLI::Range(1, 512));
  cmd->callback([&ctx, run, pack_mib] {
    *run = [&ctx, pack_mib]() -> int {
      auto url = ctx.RepositoryUrl();
      if (!url.ok()) return ctx.Fail(url.status());
      auto pass = ctx.Passphrase(/*confirm_new=*/true);
      if (!pass.ok()) return ctx.Fail(pass.status());
      auto storage = OpenStorage(*url);
      if (!storage.ok()) return ctx.Fail(storage.status());
      InitOptions options;
      options.pack_size = *pack_mib * 1024 * 1024;
      auto repo = Repository::Init(std::move(*storage), *pass, options, ctx.clock);
      if (!repo.ok()) return ctx.Fail(repo.status());
      if (ctx.opts.json) {
        ctx.PrintJson({{"repository", *url}, {"id", (*repo)->config().id.Hex()},
                       {"key", (*repo)->key_id().Hex()}});
      } else {
        ctx.Say("created repository " + (*repo)->config().id.Short() + " at " + *url);
        ctx.Say("keep the passphrase safe: without it the data cannot be recovered");
      }
      return kExitOk;
    };
  });
}

}  // namespace reprise::cli
