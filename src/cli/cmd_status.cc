// reprise status: per component of the plan, the newest restorable moment and its age next to
// the RPO of its data class; for postgres components, the WAL archive's health (newest
// segment, partial segment from wal-stream, gaps after the newest point).
#include <cstdio>

#include "cli/commands.h"
#include "common/duration.h"
#include "orchestrate/pg_recovery.h"
#include "repo/wal_store.h"

namespace reprise::cli {

namespace {

std::string Age(int64_t ns) {
  if (ns < 0) ns = 0;
  int64_t s = ns / 1000000000;
  char buf[32];
  if (s < 120) snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 7200) snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(s / 60));
  else if (s < 172800) snprintf(buf, sizeof buf, "%lldh", static_cast<long long>(s / 3600));
  else snprintf(buf, sizeof buf, "%lldd", static_cast<long long>(s / 86400));
  return buf;
}

}  // namespace

void AddStatusCommand(CLI::App& app, Context& ctx, Action* run) {
  auto* cmd = app.add_subcommand(
      "status", "newest restorable moment of each component against its RPO, and WAL health");
  auto check = std::make_shared<bool>(false);
  cmd->add_flag("--check", *check, "exit 1 when a component misses its RPO or its WAL has a gap");
  cmd->callback([&ctx, run, check] {
    *run = [&ctx, check]() -> int {
      auto plan = ctx.LoadPlanIfAny();
      if (!plan.ok()) return ctx.Fail(plan.status());
      if (!*plan) return ctx.Fail(InvalidArgument("status needs a plan (--plan or ./reprise.yaml)"));
      auto repo = ctx.OpenRepo();
      if (!repo.ok()) return ctx.Fail(repo.status());
      std::vector<std::string> damaged;
      auto points = (*repo)->ListPoints(&damaged);
      if (!points.ok()) return ctx.Fail(points.status());
      for (const auto& d : damaged) ctx.Warn("warning: " + d);
      const int64_t now = ctx.clock.NowUnixNanos();
      bool all_ok = true;
      nlohmann::json out = nlohmann::json::array();
      if (ctx.human())
        ctx.Say("COMPONENT        KIND      CLASS           RPO     NEWEST RESTORABLE     AGE    "
                "STATE  WAL");
      for (const auto& spec : (*plan)->components) {
        const Point* newest = nullptr;
        const PointComponent* pc = nullptr;
        for (const auto& p : *points) {
          const PointComponent* c = p.Find(spec.name);
          if (c && c->status == "ok") {
            newest = &p;
            pc = c;
          }
        }
        const DataClass* dc = (*plan)->objectives.FindClass(spec.data_class);
        int64_t rpo_ns = dc ? std::chrono::duration_cast<std::chrono::nanoseconds>(dc->rpo).count() : 0;
        int64_t restorable = newest ? (pc->finished_ns ? pc->finished_ns : newest->time_ns) : 0;
        nlohmann::json wal_json;
        std::string wal_text = "-";
        if (spec.kind == ComponentKind::kPostgres) {
          WalStore wal(**repo, spec.name, ctx.clock);
          auto names = wal.List();
          if (names.ok() && !names->empty()) {
            std::string last_seg, last_partial;
            for (const auto& n : *names) {
              if (n.size() == 24) last_seg = n;
              if (n.size() == 32 && n.substr(24) == ".partial") last_partial = n;
            }
            wal_json = {{"files", names->size()}, {"last_segment", last_seg},
                        {"partial", last_partial}};
            wal_text = last_seg.empty() ? "no segments" : "last " + last_seg;
            if (!last_partial.empty()) wal_text += " +partial";
            if (pc && pc->info.value("mode", "") == "physical") {
              nlohmann::json info = pc->info;
              info["component"] = spec.name;
              auto needs = PlanRecoveryWal(wal, info, RecoveryTarget{.kind = RecoveryTarget::Kind::kEnd});
              if (!needs.ok()) {
                wal_json["gap"] = needs.status().message();
                wal_text += ", GAP";
                all_ok = false;
              } else if (!needs->files.empty()) {
                auto rec = wal.Load(needs->files.back());
                if (rec.ok()) restorable = std::max(restorable, rec->time_ns);
              }
            }
          } else {
            wal_text = "no WAL archived";
          }
        }
        bool late = !newest || (rpo_ns > 0 && now - restorable > rpo_ns);
        if (late) all_ok = false;
        nlohmann::json j = {{"component", spec.name},
                            {"kind", std::string(ComponentKindName(spec.kind))},
                            {"class", spec.data_class},
                            {"rpo_seconds", rpo_ns / 1000000000},
                            {"newest_restorable", newest ? FormatRfc3339(restorable) : ""},
                            {"age_seconds", newest ? (now - restorable) / 1000000000 : -1},
                            {"within_rpo", !late},
                            {"point", newest ? newest->id.Hex() : ""}};
        if (!wal_json.is_null()) j["wal"] = wal_json;
        out.push_back(j);
        if (ctx.human()) {
          char line[512];
          snprintf(line, sizeof line, "%-16s %-9s %-15s %-7s %-21s %-6s %-6s %s",
                   spec.name.substr(0, 16).c_str(),
                   std::string(ComponentKindName(spec.kind)).c_str(),
                   spec.data_class.substr(0, 15).c_str(),
                   dc ? FormatDuration(dc->rpo).c_str() : "-",
                   newest ? FormatRfc3339(restorable).substr(0, 19).c_str() : "never",
                   newest ? Age(now - restorable).c_str() : "-", late ? "LATE" : "ok",
                   wal_text.c_str());
          ctx.Say(line);
        }
      }
      if (ctx.opts.json) ctx.PrintJson(out);
      return (*check && !all_ok) ? kExitError : kExitOk;
    };
  });
}

}  // namespace reprise::cli
