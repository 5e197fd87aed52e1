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

}  // namespace reprise::cli
