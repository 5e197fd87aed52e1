#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "repo/check.h"
#include "repo/lock.h"

namespace reprise::cli {

namespace {
Result<double> ParseSubset(const std::string& s) {
  if (s.empty()) return 1.0;
  std::string num = s.back() == '%' ? s.substr(0, s.size() - 1) : s;
  char* end = nullptr;
  double v = std::strtod(num.c_str(), &end);
  if (end == num.c_str() || *end != '\0' || v <= 0 || v > 100)
    return InvalidArgument("--subset '" + s + "': give a percentage in (0, 100], e.g. 10%");
  return v / 100.0;
}
}  // namespace

void AddCheckCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand("check", "verify the repository can restore every point");
  auto read_data = std::make_shared<bool>(false);
  auto subset = std::make_shared<std::string>();
  cmd->add_flag("--read-data", *read_data, "also read and authenticate every pack");
  cmd->add_option("--subset", *subset, "with --read-data: read only this share of packs (N%)");
  cmd->callback([&ctx, run, read_data, subset] {
    *run = [&ctx, read_data, subset]() -> int {
      auto fraction = ParseSubset(*subset);
      if (!fraction.ok()) return ctx.Fail(fraction.status());
      if (!subset->empty() && !*read_data)
        return ctx.Fail(InvalidArgument("--subset goes with --read-data"));
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      auto lock = RepoLock::Acquire(**repo, false, "check", ctx.clock,
                                    [&](std::string) { /* reported by the check itself */ });
      if (!lock.ok()) return ctx.Fail(lock.status());
      CheckOptions options{.read_data = *read_data, .subset = *fraction};
      auto report = CheckRepository(**repo, options, ctx.clock,
                                    [&](const std::string& phase, uint64_t done, uint64_t total) {
                                      ctx.Progress("check: " + phase + " " +
                                                   std::to_string(done) + "/" +
                                                   std::to_string(total));
                                    });
      ctx.EndProgress();
      if (!report.ok()) return ctx.Fail(report.status());
      const CheckReport& r = *report;
      if (ctx.opts.json) {
        nlohmann::json affected = nlohmann::json::array(), damaged = nlohmann::json::array();
        for (const auto& p : r.affected_points)
          affected.push_back({{"id", p.id.Hex()}, {"time", FormatRfc3339(p.time_ns)}});
        for (const auto& d : r.damaged_packs) damaged.push_back(d.Hex());
        ctx.PrintJson({{"ok", r.ok()}, {"errors", r.errors}, {"warnings", r.warnings},
                       {"damaged_packs", damaged}, {"affected_points", affected},
                       {"packs", r.packs}, {"packs_read", r.packs_read},
                       {"bytes_read", r.bytes_read}, {"points", r.points}, {"blobs", r.blobs}});
      } else {
        for (const auto& w : r.warnings) ctx.Warn("warning: " + w);
        for (const auto& e : r.errors) std::cerr << "error: " << e << "\n";
        if (!r.affected_points.empty()) {
          std::cerr << "points affected:\n";
          for (const auto& p : r.affected_points)
            std::cerr << "  " << p.id.Hex() << "  " << FormatRfc3339(p.time_ns).substr(0, 19)
                      << "Z\n";
        }
        std::string summary = std::to_string(r.points) + " points, " + std::to_string(r.packs) +
                              " packs, " + std::to_string(r.blobs) + " blobs";
        if (*read_data)
          summary += "; read " + std::to_string(r.packs_read) + " packs (" +
                     FormatBytes(r.bytes_read) + ")";
        if (r.ok()) {
          ctx.Say("no errors: " + summary);
        } else {
          std::cerr << "check FAILED: " << r.errors.size() << " error(s); " << summary << "\n";
        }
      }
      return r.ok() ? kExitOk : kExitDamage;
    };
  });
}

}  // namespace reprise::cli
