#include "cli/commands.h"
#include "repo/copy.h"
#include "repo/lock.h"

namespace reprise::cli {

Result<std::string> ResolveSiteOrUrl(Context& ctx, const std::string& value) {
  ASSIGN_OR_RETURN(const Plan* plan, ctx.LoadPlanIfAny());
  if (plan)
    if (const Site* site = plan->FindSite(value)) return site->repository;
  return value;
}

Result<std::unique_ptr<Repository>> OpenOtherRepo(Context& ctx, const std::string& site_or_url,
                                                  const std::string& password_file) {
  ASSIGN_OR_RETURN(std::string url, ResolveSiteOrUrl(ctx, site_or_url));
  std::string pass;
  if (password_file.empty()) {
    ASSIGN_OR_RETURN(pass, ctx.Passphrase());
  } else {
    // Reuse the file reading of the global flag.
    GlobalOptions saved = ctx.opts;
    ctx.opts.password_file = password_file;
    auto p = ctx.Passphrase();
    ctx.opts = saved;
    if (!p.ok()) return p.status();
    pass = *p;
  }
  ASSIGN_OR_RETURN(const Plan* plan, ctx.LoadPlanIfAny());
  const Site* site = plan ? plan->FindSite(site_or_url) : nullptr;
  auto repo = ctx.OpenRepoAt(url, site, pass);
  if (!repo.ok()) return repo.status().WithContext("opening '" + url + "'");
  return repo;
}

namespace {

struct CopyFlags {
  std::string from, to, from_password_file;
  std::vector<std::string> points;
};

void PrintCopyReport(Context& ctx, const CopyReport& r) {
  if (ctx.opts.json) {
    nlohmann::json ids = nlohmann::json::array(), from = nlohmann::json::array();
    for (const Id& id : r.copied) ids.push_back(id.Hex());
    for (const Id& id : r.copied_from) from.push_back(id.Hex());
    nlohmann::json out = {{"points_copied", r.points_copied},
                          {"points_skipped", r.points_skipped},
                          {"blobs_copied", r.blobs_copied},
                          {"bytes_copied", r.bytes_copied},
                          {"packs_written", r.packs_written},
                          {"wal_files_copied", r.wal_files_copied},
                          {"copied", ids},
                          {"reencrypted", r.reencrypted}};
    if (r.reencrypted) out["copied_from"] = from;
    ctx.PrintJson(out);
    return;
  }
  for (size_t i = 0; i < r.copied.size(); ++i) {
    if (i < r.copied_from.size())
      ctx.Say("copied point " + r.copied_from[i].Short() + " as " + r.copied[i].Short());
    else
      ctx.Say("copied point " + r.copied[i].Short());
  }
  ctx.Say("copied " + std::to_string(r.points_copied) + " point(s), skipped " +
          std::to_string(r.points_skipped) + " already there; " +
          std::to_string(r.blobs_copied) + " blob(s), " + FormatBytes(r.bytes_copied) +
          " in " + std::to_string(r.packs_written) + " new pack(s)");
  if (r.wal_files_copied)
    ctx.Say("copied " + std::to_string(r.wal_files_copied) + " WAL file(s)");
  if (r.reencrypted)
    ctx.Say("re-encrypted: the repositories have different master keys, so every blob "
            "copied was decrypted and sealed again under the target's key (copies get new "
            "point ids)");
}

int RunCopy(Context& ctx, const CopyFlags& f) {
  auto from = OpenOtherRepo(ctx, f.from, f.from_password_file);
  if (!from.ok()) return ctx.Fail(from.status());
  auto to = OpenOtherRepo(ctx, f.to, "");
  if (!to.ok()) return ctx.Fail(to.status());
  auto warn = [&](std::string m) { ctx.Warn("warning: " + m); };
  auto from_lock = RepoLock::Acquire(**from, false, "copy", ctx.clock, warn);
  if (!from_lock.ok()) return ctx.Fail(from_lock.status());
  auto to_lock = RepoLock::Acquire(**to, false, "copy", ctx.clock, warn);
  if (!to_lock.ok()) return ctx.Fail(to_lock.status());
  auto report = CopyPoints(**from, **to, CopyOptions{.points = f.points},
                           [&](const std::string& phase, uint64_t done, uint64_t total) {
                             ctx.Progress("copy: " + phase + " " + std::to_string(done) + "/" +
                                          std::to_string(total));
                           });
  ctx.EndProgress();
  if (!report.ok()) return ctx.Fail(report.status());
  PrintCopyReport(ctx, *report);
  return kExitOk;
}

}  // namespace

void AddCopyCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand(
      "copy",
      "copy points to another repository (site); re-encrypts when the master keys differ");
  auto f = std::make_shared<CopyFlags>();
  cmd->add_option("--from", f->from, "source: a site of the plan or a repository URL")
      ->required();
  cmd->add_option("--to", f->to, "target: a site of the plan or a repository URL")->required();
  cmd->add_option("--point", f->points,
                  "copy this point (id, prefix or 'latest'; repeatable); default: every point "
                  "the target lacks");
  cmd->add_option("--from-password-file", f->from_password_file,
                  "file holding the source's passphrase (default: the same passphrase)");
  cmd->callback([&ctx, run, f] { *run = [&ctx, f]() -> int { return RunCopy(ctx, *f); }; });
}

}  // namespace reprise::cli
