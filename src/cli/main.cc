// reprise: the command-line front door. Global flags, then one subcommand.
#include <csignal>
#include <iostream>

#include "cli/commands.h"
#include "cli/malloc_tuning.h"

int main(int argc, char** argv) {
  using namespace reprise::cli;
  // A write to a closed pipe (`reprise points | head`) must not kill us mid-write.
  std::signal(SIGPIPE, SIG_IGN);
  TuneMalloc();

  CLI::App app{
      "reprise: disaster recovery for a RAG platform. Backs up components into one encrypted,\n"
      "compressed, deduplicated repository; restores, checks and prunes it."};
  app.set_version_flag("--version", "reprise 0.1.0");
  app.require_subcommand(1);
  app.footer(
      "Passphrase: --password-file, REPRISE_PASSWORD_FILE, REPRISE_PASSWORD, the plan's\n"
      "secrets.repository_password, or a prompt on a terminal; never an argument.\n"
      "Exit codes: 0 ok, 1 error, 2 usage or bad plan, 3 backup partial or with warnings,\n"
      "10 repository locked, 11 wrong passphrase, 12 damage (check) or orphans (verify-stack)\n"
      "found. Docs: docs/commands/.");
  app.fallthrough();
  Context ctx;
  app.add_option("-r,--repo", ctx.opts.repo,
                 "repository URL: a path, file:///path or s3://bucket/prefix?endpoint=...&region=... "
                 "(env REPRISE_REPOSITORY; default: the plan's primary site)");
  app.add_option("--password-file", ctx.opts.password_file,
                 "file holding the repository passphrase (env REPRISE_PASSWORD_FILE)");
  app.add_option("--plan", ctx.opts.plan, "plan file (default: ./reprise.yaml when present)");
  app.add_option("--site", ctx.opts.site, "site of the plan whose repository to use");
  app.add_flag("--json", ctx.opts.json, "machine-readable output on stdout");
  app.add_flag("-q,--quiet", ctx.opts.quiet, "print only errors");
  app.add_flag("-v,--verbose", ctx.opts.verbose, "print more (repeat for more)");

  Action run;
  AddInitCommand(app, ctx, &run);
  AddBackupCommand(app, ctx, &run);
  AddPointsCommand(app, ctx, &run);
  AddRestoreCommand(app, ctx, &run);
  AddCheckCommand(app, ctx, &run);
  AddForgetCommand(app, ctx, &run);
  AddPruneCommand(app, ctx, &run);
  AddKeyCommand(app, ctx, &run);
  AddUnlockCommand(app, ctx, &run);
  AddStatsCommand(app, ctx, &run);
  AddPlanCommand(app, ctx, &run);
  AddCopyCommand(app, ctx, &run);
  AddWalCommands(app, ctx, &run);
  AddStatusCommand(app, ctx, &run);
  AddFailoverCommands(app, ctx, &run);
  AddVerifyStackCommand(app, ctx, &run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (!run) return kExitUsage;
  // May re-execute the binary (cli/malloc_tuning.h): after parsing, which names the command,
  // before it runs.
  AskForHugePages(argv, app.get_subcommands().front()->get_name());
  try {
    return run();
  } catch (const std::exception& e) {
    std::cerr << "reprise: internal error: " << e.what() << "\n";
    return kExitError;
  }
}
