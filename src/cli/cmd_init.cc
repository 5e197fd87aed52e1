#include "cli/commands.h"
#include "storage/storage.h"

namespace reprise::cli {

namespace {

struct InitFlags {
  uint32_t pack_mib = 0;  // 0: 16, or the source's with --copy-keys-from
  int compression_level = 0;  // 0: the default (2), or the source's with --copy-keys-from
  std::string copy_keys_from, from_password_file;
};

// With --copy-keys-from: the source's master key, chunker and compression, so that points can
// be copied between the two without re-encryption (`reprise copy`).
Status CopyKeysFrom(Context& ctx, const InitFlags& f, const std::string& pass,
                    InitOptions& options, std::unique_ptr<Repository>& source) {
  if (f.from_password_file.empty()) {
    ASSIGN_OR_RETURN(std::string url, ResolveSiteOrUrl(ctx, f.copy_keys_from));
    // A site of the plan opens with that site's credentials.
    const Site* site = nullptr;
    if (auto plan = ctx.LoadPlanIfAny(); plan.ok() && *plan) {
      site = (*plan)->FindSite(f.copy_keys_from);
    }
    auto opened = ctx.OpenRepoAt(url, site, pass);
    if (!opened.ok()) return opened.status().WithContext("opening '" + url + "'");
    source = std::move(*opened);
  } else {
    ASSIGN_OR_RETURN(source, OpenOtherRepo(ctx, f.copy_keys_from, f.from_password_file));
  }
  options.master = &source->key();
  options.chunker = source->config().chunker;
  if (f.compression_level == 0) options.compression_level = source->config().compression_level;
  if (f.pack_mib == 0) options.pack_size = source->config().pack_size;
  return Status::Ok();
}

int RunInit(Context& ctx, const InitFlags& f) {
  auto url = ctx.RepositoryUrl();
  if (!url.ok()) return ctx.Fail(url.status());
  auto pass = ctx.Passphrase(/*confirm_new=*/true);
  if (!pass.ok()) return ctx.Fail(pass.status());
  InitOptions options;
  if (f.pack_mib != 0) options.pack_size = f.pack_mib * 1024 * 1024;
  if (f.compression_level != 0) options.compression_level = f.compression_level;
  std::unique_ptr<Repository> source;
  if (!f.copy_keys_from.empty())
    if (Status st = CopyKeysFrom(ctx, f, *pass, options, source); !st.ok()) return ctx.Fail(st);
  auto storage = ctx.OpenRepoStorage();
  if (!storage.ok()) return ctx.Fail(storage.status());
  auto repo = Repository::Init(std::move(*storage), *pass, options, ctx.clock);
  if (!repo.ok()) return ctx.Fail(repo.status());
  if (ctx.opts.json) {
    ctx.PrintJson({{"repository", *url}, {"id", (*repo)->config().id.Hex()},
                   {"key", (*repo)->key_id().Hex()},
                   {"keys_copied_from", f.copy_keys_from}});
  } else {
    ctx.Say("created repository " + (*repo)->config().id.Short() + " at " + *url);
    if (source)
      ctx.Say("it shares the master key of " + source->storage().Location() +
              ": 'reprise copy' moves points between them");
    ctx.Say("keep the passphrase safe: without it the data cannot be recovered");
  }
  return kExitOk;
}

}  // namespace

void AddInitCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("init", "create a new repository");
  auto f = std::make_shared<InitFlags>();
  cmd->add_option("--pack-size", f->pack_mib, "target pack size in MiB (default 16)")
      ->check(CLI::Range(1, 512));
  cmd->add_option("--compression-level", f->compression_level,
                  "zstd level for new data, 1 (fastest) to 19 (default 2: as small as restic's "
                  "repositories, about 15% slower than 1)")
      ->check(CLI::Range(1, 19));
  cmd->add_option("--copy-keys-from", f->copy_keys_from,
                  "share the master key (and chunker) of this repository (site or URL), so "
                  "'reprise copy' can copy points between them");
  cmd->add_option("--from-password-file", f->from_password_file,
                  "with --copy-keys-from: file holding the source's passphrase (default: the "
                  "same passphrase)");
  cmd->callback([&ctx, run, f] { *run = [&ctx, f]() -> int { return RunInit(ctx, *f); }; });
}

}  // namespace reprise::cli
