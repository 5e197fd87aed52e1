#include "orchestrate/stack_restore.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "common/thread_pool.h"
#include "orchestrate/pg_restore_steps.h"
#include "repo/content.h"

namespace reprise {

namespace {

using Steady = std::chrono::steady_clock;

double SecondsSince(Steady::time_point t0) {
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// One component of the point, placed.
struct Planned {
  const PointComponent* pc = nullptr;
  const ComponentSpec* spec = nullptr;
  std::string tier;
  std::string target;  // RestoreOptions::target
  std::string place;   // for people and the report
  std::optional<PgRestoreStep> pg;
  bool logical_pg = false;
};

// say/warn from several threads, one line at a time.
class Lines {
 public:
  explicit Lines(const StackRestoreOptions& o) : say_(o.say), warn_(o.warn) {}
  void Say(const std::string& line) {
    if (!say_) return;
    std::lock_guard lk(mu_);
    say_(line);
  }
  void Warn(const std::string& line) {
    std::lock_guard lk(mu_);
    if (warn_) warn_(line);
  }

 private:
  std::mutex mu_;
  std::function<void(const std::string&)> say_, warn_;
};

Status NoPlace(const std::string& name, const std::string& key, const std::string& what) {
  return InvalidArgument("component '" + name + "': the plan does not say where " + what +
                         " goes. HINT: set components." + name + "." + key +
                         " in the plan, or restore it alone with --component " + name +
                         " --target ...");
}

// Where the plan puts `pc` (no --target). Errors name the key to set.
Status Place(const PointComponent& pc, const ComponentSpec& spec, Planned* out) {
  std::string plan_kind(ComponentKindName(spec.kind));
  if (plan_kind != pc.kind)
    return InvalidArgument("component '" + pc.name + "' is of kind " + pc.kind +
                           " in the point but of kind " + plan_kind +
                           " in the plan. HINT: restore it with --component " + pc.name +
                           " --target ...");
  switch (spec.kind) {
    case ComponentKind::kPostgres:
      if (IsPhysicalPostgres(pc)) {
        if (spec.postgres.data_directory.empty())
          return NoPlace(pc.name, "data_directory", "its data directory");
        out->target = out->place = spec.postgres.data_directory;
      } else {
        if (spec.postgres.connection.empty())
          return NoPlace(pc.name, "connection", "the logical dump");
        out->logical_pg = true;
        out->place = "the plan's connection";
      }
      return Status::Ok();
    case ComponentKind::kRedis:
      if (spec.redis.restore_rdb_path.empty())
        return NoPlace(pc.name, "restore.rdb_path", "dump.rdb");
      out->place = spec.redis.restore_rdb_path;
      return Status::Ok();
    case ComponentKind::kCommand:
      if (spec.command.restore.empty()) return NoPlace(pc.name, "restore", "the saved output");
      out->place = "its restore command";
      return Status::Ok();
    case ComponentKind::kQdrant:
      if (spec.qdrant.url.empty()) return NoPlace(pc.name, "url", "the snapshot");
      out->place = spec.qdrant.url;
      return Status::Ok();
    case ComponentKind::kS3:
      if (spec.s3.url.empty()) return NoPlace(pc.name, "url", "the objects");
      out->place = spec.s3.url;
      return Status::Ok();
    case ComponentKind::kFiles:
      out->target = out->place = "/";
      return Status::Ok();
  }
  return Internal("component '" + pc.name + "': unknown kind");
}

void RestoreOne(Repository& repo, ThreadPool& pool, const Planned& p,
                const StackRestoreOptions& o, const SecretLookup& secrets, Lines& lines,
                Steady::time_point t_start, StackComponentReport& r) {
  auto t0 = Steady::now();
  r.started = std::chrono::duration<double>(t0 - t_start).count();
  auto fail = [&](const Status& st) {
    r.status = "failed";
    r.code = st.code();
    r.error = st.message();
    r.seconds = SecondsSince(t0);
    lines.Say(r.name + ": FAILED after " + Fixed(r.seconds, 1) + " s: " + r.error);
  };
  Result<std::unique_ptr<Component>> made =
      p.logical_pg ? MakeComponent(*p.spec, secrets)
                   : MakeComponentForRestore(p.pc->kind, p.spec, secrets);
  if (!made.ok()) return fail(made.status());
  RestoreOptions ro;
  ro.target = p.target;
  ro.overwrite = o.overwrite;
  if (o.params.is_object()) ro.params = o.params;
  if (p.pc->kind == "files") ro.include = o.include;
  ro.warn = [&lines, name = r.name](const std::string& m) {
    lines.Warn("warning: " + name + ": " + m);
  };
  if (p.pc->kind == "postgres") {
    std::string user = p.pg ? p.pg->os_user : PgOsUser(o.os_user, p.spec);
    if (!user.empty()) ro.params["os_user"] = user;
    if (p.pg && o.pg_delta) ro.params["delta"] = true;
    if (p.logical_pg) ro.params["jobs"] = p.spec->postgres.jobs;
  }
  RepoRestoreSource source(repo, *p.pc, pool);
  Status st = (*made)->Restore(p.pc->info, source, ro);
  r.bytes = source.bytes_read();
  if (!st.ok()) return fail(st);
  if (p.pg) {
    PgFinishOptions fo{.port = o.pg_port,
                       .archive_off = o.pg_archive_off,
                       .start = o.start_postgres,
                       .bin_dir = p.spec->postgres.bin_dir,
                       .start_command = p.spec->postgres.start_command,
                       .keep_spool = o.keep_wal_spool};
    auto recovered = FinishPgRestore(*p.pg, fo);
    if (!recovered.ok()) return fail(recovered.status());
    r.recovery_seconds = *recovered;
  }
  r.status = "ok";
  r.seconds = SecondsSince(t0);
  std::string line = r.name + ": restored to " + r.target + " in " + Fixed(r.seconds, 1) + " s";
  if (p.pg && o.start_postgres)
    line += " (recovery " + Fixed(r.recovery_seconds, 1) + " s)";
  lines.Say(line);
}

// The tier's checks, failing ones again every second until all pass or `timeout` is over.
std::vector<health::HealthResult> RunTierChecks(const Tier& tier, const SecretLookup& secrets,
                                                std::chrono::milliseconds timeout) {
  auto deadline = Steady::now() + timeout;
  std::vector<health::HealthResult> results = health::RunChecks(tier.health, secrets);
  for (;;) {
    std::vector<size_t> failing;
    for (size_t i = 0; i < results.size(); ++i)
      if (!results[i].ok) failing.push_back(i);
    if (failing.empty() || Steady::now() >= deadline) return results;
    auto pause = std::min<Steady::duration>(std::chrono::seconds(1), deadline - Steady::now());
    std::this_thread::sleep_for(pause);
    std::vector<HealthCheckSpec> again;
    for (size_t i : failing) again.push_back(tier.health[i]);
    auto rerun = health::RunChecks(again, secrets);
    for (size_t k = 0; k < failing.size(); ++k) results[failing[k]] = std::move(rerun[k]);
  }
}

}  // namespace


nlohmann::json StackRestoreReport::ToJson() const {
  nlohmann::json t = nlohmann::json::array();
  for (const auto& tier : tiers) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : tier.checks) checks.push_back(c.ToJson());
    t.push_back({{"name", tier.name},
                 {"status", tier.status},
                 {"ok", tier.ok},
                 {"started", tier.started},
                 {"seconds", tier.seconds},
                 {"checks", checks}});
  }
  nlohmann::json c = nlohmann::json::array();
  for (const auto& r : components)
    c.push_back({{"name", r.name},
                 {"kind", r.kind},
                 {"tier", r.tier},
                 {"status", r.status},
                 {"error", r.error},
                 {"target", r.target},
                 {"started", r.started},
                 {"seconds", r.seconds},
                 {"wal_seconds", r.wal_seconds},
                 {"recovery_seconds", r.recovery_seconds},
                 {"bytes", r.bytes}});
  return {{"ok", ok}, {"seconds", seconds}, {"bytes", bytes}, {"tiers", t}, {"components", c}};
}

Result<StackRestoreReport> RestoreStack(Repository& repo, const Point& point, const Plan& plan,
                                        const SecretLookup& secrets,
                                        const StackRestoreOptions& options) {
  const auto t_start = Steady::now();
  SystemClock system_clock;
  const Clock& clock = options.clock ? *options.clock : system_clock;
  Lines lines(options);

  // What to restore: the named components, or every one that succeeded in the point.
  for (const auto& name : options.components) {
    const PointComponent* pc = point.Find(name);
    if (!pc) return NotFound("point '" + point.id.Short() + "' has no component '" + name + "'");
    if (pc->status != "ok")
      return FailedPrecondition("component '" + name + "' failed in point '" + point.id.Short() +
                                "' (" + pc->error + "): nothing to restore");
  }
  auto wanted = [&](const std::string& name) {
    return options.components.empty() ||
           std::find(options.components.begin(), options.components.end(), name) !=
               options.components.end();
  };

  // Place every component before anything is written.
  std::map<std::string, Planned> planned;    // by name
  std::map<std::string, std::string> lost;  // failed during the backup: name -> error
  for (const auto& pc : point.components) {
    if (!wanted(pc.name)) continue;
    const ComponentSpec* spec = plan.FindComponent(pc.name);
    if (!spec)
      return InvalidArgument("component '" + pc.name + "' of point '" + point.id.Short() +
                             "' is not in the plan '" + plan.file +
                             "', so it has no place to go. HINT: restore it alone with "
                             "--component " + pc.name + " --target ...");
    if (pc.status != "ok") {
      lost[pc.name] = pc.error;
      continue;
    }
    Planned p;
    p.pc = &pc;
    p.spec = spec;
    RETURN_IF_ERROR(Place(pc, *spec, &p));
    planned[pc.name] = std::move(p);
  }
  for (const auto& spec : plan.components)
    if (wanted(spec.name) && !point.Find(spec.name))
      lines.Warn("warning: component '" + spec.name + "' of the plan is not in point '" +
                 point.id.Short() + "': it is not restored");

  // Physical postgres: the WAL of each is planned (a gap is refused), its data directory
  // checked, then every WAL file fetched and authenticated, all before any tier starts.
  std::vector<Planned*> pgs;
  for (auto& [name, p] : planned) {
    if (!IsPhysicalPostgres(*p.pc)) continue;
    ASSIGN_OR_RETURN(PgRestoreStep step,
                     PlanPgRestore(repo, *p.pc, p.target, PgOsUser(options.os_user, p.spec),
                                   options.pg_target, clock));
    RETURN_IF_ERROR(CheckPgDataDir(p.target, options.pg_delta));
    p.pg = std::move(step);
    pgs.push_back(&p);
  }
  for (size_t i = 0; i < pgs.size(); ++i) {
    PgRestoreStep& step = *pgs[i]->pg;
    lines.Say(step.component + ": fetching " + std::to_string(step.needs.files.size()) +
              " WAL file(s) (" + step.needs.first + " .. " + step.needs.last + ")");
    Status st = FetchPgWal(repo, step, clock, nullptr);
    if (!st.ok()) {
      for (size_t k = 0; k < i; ++k) {
        std::error_code ec;
        std::filesystem::remove_all(pgs[k]->pg->spool_dir(), ec);
      }
      return st;
    }
  }

  StackRestoreReport report;
  size_t tier_count = 0;
  for (const auto& tier : plan.tiers)
    for (const auto& name : tier.components)
      if (planned.count(name) || lost.count(name)) {
        ++tier_count;
        break;
      }
  lines.Say("restoring point " + point.id.Short() + ": " + std::to_string(planned.size()) +
            " component(s) in " + std::to_string(tier_count) + " tier(s)");

  ThreadPool pool(ReadThreads(), 4 * ReadThreads());
  bool stopped = false;  // a tier failed: later tiers are skipped
  bool all_ok = lost.empty();
  for (const auto& tier : plan.tiers) {
    std::vector<const Planned*> members;
    StackTierReport tr;
    tr.name = tier.name;
    size_t first = report.components.size();
    for (const auto& name : tier.components) {
      StackComponentReport r;
      r.name = name;
      r.tier = tier.name;
      if (auto it = planned.find(name); it != planned.end()) {
        r.kind = it->second.pc->kind;
        r.target = it->second.place;
        if (it->second.pg) r.wal_seconds = it->second.pg->wal_seconds;
        r.status = "skipped";
        members.push_back(&it->second);
      } else if (auto l = lost.find(name); l != lost.end()) {
        const PointComponent* pc = point.Find(name);
        r.kind = pc ? pc->kind : "";
        r.status = "skipped";
        r.error = "failed during the backup, nothing to restore: " + l->second;
        lines.Warn("warning: component '" + name + "' is not restored: it " + r.error);
      } else {
        continue;
      }
      report.components.push_back(std::move(r));
    }
    if (report.components.size() == first) continue;  // nothing of this tier in the point
    tr.started = SecondsSince(t_start);
    if (stopped) {
      tr.status = "skipped";
      for (size_t i = first; i < report.components.size(); ++i)
        if (report.components[i].error.empty())
          report.components[i].error = "not started: an earlier tier failed";
      report.tiers.push_back(std::move(tr));
      continue;
    }
    auto t_tier = Steady::now();
    lines.Say("tier '" + tier.name + "': " + std::to_string(members.size()) + " component(s)");

    // The tier's components, `parallel` at a time; each writes only its own report.
    std::vector<StackComponentReport*> slots;
    for (size_t i = first; i < report.components.size(); ++i)
      if (planned.count(report.components[i].name)) slots.push_back(&report.components[i]);
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t k = next++; k < members.size(); k = next++)
        RestoreOne(repo, pool, *members[k], options, secrets, lines, t_start, *slots[k]);
    };
    size_t n = std::min<size_t>(std::max(options.parallel, 1), members.size());
    std::vector<std::thread> threads;
    for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
    if (n > 0) worker();
    for (auto& t : threads) t.join();

    bool components_ok = true;
    for (auto* r : slots) {
      components_ok = components_ok && r->status == "ok";
      report.bytes += r->bytes;
    }
    bool checks_ok = true;
    if (components_ok && options.run_health && !tier.health.empty()) {
      tr.checks = RunTierChecks(tier, secrets, options.health_timeout);
      for (const auto& c : tr.checks) {
        checks_ok = checks_ok && c.ok;
        lines.Say("tier '" + tier.name + "': check '" + c.name + "' " +
                  (c.ok ? "passed" : "FAILED") + (c.detail.empty() ? "" : ": " + c.detail));
      }
    }
    tr.ok = components_ok && checks_ok;
    tr.status = tr.ok ? "ok" : "failed";
    tr.seconds = SecondsSince(t_tier);
    if (!tr.ok) {
      stopped = true;
      all_ok = false;
      lines.Say("tier '" + tier.name + "' FAILED (" +
                (components_ok ? std::string("health checks") : std::string("a component")) +
                "): later tiers are not started");
    } else {
      lines.Say("tier '" + tier.name + "' restored in " + Fixed(tr.seconds, 1) + " s");
    }
    report.tiers.push_back(std::move(tr));
  }
  report.seconds = SecondsSince(t_start);
  report.ok = all_ok;
  return report;
}

}  // namespace reprise
