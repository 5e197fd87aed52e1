// One function per command; each adds its subcommand to the app and, when chosen, stores in
// `*run` the action that returns the exit code. See docs/commands/ for each command.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace reprise::cli {

using Action = std::function<int()>;

void AddInitCommand(CLI::App& app, Context& ctx, Action* run);
void AddBackupCommand(CLI::App& app, Context& ctx, Action* run);
void AddPointsCommand(CLI::App& app, Context& ctx, Action* run);
void AddRestoreCommand(CLI::App& app, Context& ctx, Action* run);
void AddCheckCommand(CLI::App& app, Context& ctx, Action* run);
void AddForgetCommand(CLI::App& app, Context& ctx, Action* run);
void AddPruneCommand(CLI::App& app, Context& ctx, Action* run);
void AddKeyCommand(CLI::App& app, Context& ctx, Action* run);
void AddUnlockCommand(CLI::App& app, Context& ctx, Action* run);
void AddStatsCommand(CLI::App& app, Context& ctx, Action* run);
void AddPlanCommand(CLI::App& app, Context& ctx, Action* run);
void AddCopyCommand(CLI::App& app, Context& ctx, Action* run);
void AddStatusCommand(CLI::App& app, Context& ctx, Action* run);
// health, failover, monitor (cmd_failover.cc)
void AddFailoverCommands(CLI::App& app, Context& ctx, Action* run);
void AddWalCommands(CLI::App& app, Context& ctx, Action* run);  // wal-push, wal-fetch
// verify-stack: the plan's consistency checks on a live or restored stack
void AddVerifyStackCommand(CLI::App& app, Context& ctx, Action* run);

// A site of the plan names its repository; any other value is a repository URL (cmd_copy.cc).
Result<std::string> ResolveSiteOrUrl(Context& ctx, const std::string& value);
// Opens the repository of a site or URL with the passphrase in `password_file`, or, when it
// is empty, the usual passphrase (Context::Passphrase).
Result<std::unique_ptr<Repository>> OpenOtherRepo(Context& ctx, const std::string& site_or_url,
                                                  const std::string& password_file);

}  // namespace reprise::cli
