#include "failover/monitor.h"

#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "failover/nodes.h"
#include "health/health.h"
#include "quorum/etcd_election.h"

namespace reprise::failover {

namespace {

using std::chrono::milliseconds;

struct Observation {
  bool ok = true;
  std::vector<std::string> problems;
  std::optional<uint64_t> pg_lsn;
  std::optional<uint64_t> redis_offset;
};

Observation Observe(const Plan& plan, const Site& site, const FailoverHooks& hooks) {
  Observation obs;
  for (const health::HealthResult& r : health::RunChecks(site.health, hooks.secrets)) {
    if (!r.ok) obs.problems.push_back(fmt::format("{}: {}", r.name, r.detail));
  }
  if (!site.endpoints.postgres.empty()) {
    Result<std::string> pw = LookupSecret(hooks.secrets, site.endpoints.postgres_password);
    Result<health::PgState> st =
        pw.ok() ? health::ProbePostgres(site.endpoints.postgres, *pw, milliseconds(5000))
                : Result<health::PgState>(pw.status());
    if (!st.ok()) {
      obs.problems.push_back(fmt::format("postgres: {}", st.status().message()));
    } else if (st->in_recovery) {
      obs.problems.push_back("postgres: in recovery, not a primary");
    } else {
      obs.pg_lsn = st->lsn;
    }
  }
  if (!site.endpoints.redis.empty()) {
    Result<std::string> pw = LookupSecret(hooks.secrets, site.endpoints.redis_password);
    Result<uint64_t> off = pw.ok() ? RedisOffset({site.endpoints.redis, *pw})
                                   : Result<uint64_t>(pw.status());
    if (!off.ok()) {
      obs.problems.push_back(fmt::format("redis: {}", off.status().message()));
    } else {
      obs.redis_offset = *off;
    }
  }
  obs.ok = obs.problems.empty();
  return obs;
}

std::string Hostname() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "monitor";
  return buf;
}

}  // namespace

MonitorReport RunMonitor(const Plan& plan, const MonitorOptions& options,
                         const FailoverHooks& hooks, const std::atomic<bool>& stop) {
  MonitorReport report;
  auto log = [&](const std::string& line) {
    if (hooks.log) hooks.log(line);
  };
  const MonitorSpec& spec = plan.failover.monitor;
  std::unique_ptr<quorum::Election> election;
  std::string candidate = options.candidate.empty() ? Hostname() : options.candidate;
  if (!spec.etcd.empty()) {
    election = std::make_unique<quorum::Election>(quorum::ElectionOptions{
        .endpoints = spec.etcd, .key = spec.election_key, .candidate = candidate,
        .ttl = spec.lease_ttl});
  } else if (!options.allow_no_quorum) {
    log("monitor: no failover.monitor.quorum.etcd in the plan: this monitor will only watch "
        "(HINT: --allow-no-quorum lets a single monitor fail over)");
  }
  int failures = 0;
  std::optional<uint64_t> last_pg_lsn, last_redis_offset;
  std::string watched;
  while (!stop.load()) {
    if (options.max_rounds > 0 && report.rounds >= options.max_rounds) break;
    ++report.rounds;
    auto round_start = std::chrono::steady_clock::now();
    Result<std::string> primary = CurrentPrimary(plan);
    if (election) {
      // The site etcd records as primary wins over this host's own journal.
      Result<std::optional<std::string>> active = election->Get(spec.election_key + "/active");
      if (active.ok() && *active && plan.FindSite(**active)) primary = **active;
    }
    if (!primary.ok()) {
      log(fmt::format("monitor: {}", primary.status().message()));
    } else {
      if (*primary != watched) {
        watched = *primary;
        failures = 0;
        last_pg_lsn.reset();
        last_redis_offset.reset();
        log(fmt::format("monitor '{}': watching primary site '{}'", candidate, watched));
      }
      const Site* site = plan.FindSite(watched);
      Observation obs = Observe(plan, *site, hooks);
      if (obs.ok) {
        if (failures > 0) log(fmt::format("monitor: '{}' healthy again", watched));
        failures = 0;
        if (obs.pg_lsn) last_pg_lsn = obs.pg_lsn;
        if (obs.redis_offset) last_redis_offset = obs.redis_offset;
      } else {
        ++failures;
        log(fmt::format("monitor: '{}' failed check {}/{}: {}", watched, failures,
                        spec.failure_threshold, fmt::join(obs.problems, "; ")));
      }
      bool leader = false;
      bool majority = true;
      std::string votes;
      if (election) {
        Result<bool> won = election->Campaign();
        leader = won.ok() && *won && election->IsLeader();
        if (!won.ok()) {
          log(fmt::format("monitor: no quorum: {}", won.status().message()));
        } else {
          bool down = failures >= spec.failure_threshold;
          nlohmann::json view = {{"primary", watched}, {"down", down}, {"failures", failures}};
          Status published =
              election->Publish(spec.election_key + "/views/" + candidate, view.dump());
          if (!published.ok()) leader = false;
          if (leader && down) {
            Result<std::map<std::string, std::string>> views =
                election->ReadPrefix(spec.election_key + "/views/");
            int total = 0, down_votes = 0;
            if (views.ok()) {
              for (const auto& [key, text] : *views) {
                nlohmann::json v = nlohmann::json::parse(text, nullptr, false);
                if (!v.is_object() || v.value("primary", "") != watched) continue;
                ++total;
                if (v.value("down", false)) ++down_votes;
              }
            }
            majority = views.ok() && down_votes * 2 > total;
            votes = fmt::format("{} of {} monitor(s)", down_votes, total);
          }
        }
      } else {
        leader = options.allow_no_quorum;
      }
      if (failures >= spec.failure_threshold) {
        if (leader && !majority) {
          log(fmt::format("monitor: only {} see '{}' down: not acting", votes, watched));
        } else if (!leader) {
          log(fmt::format("monitor: '{}' is down but this monitor is not the leader: not acting",
                          watched));
        } else {
          std::string to = options.to;
          if (to.empty()) {
            for (const Site& s : plan.sites) {
              if (s.name != watched && s.role == SiteRole::kWarm) {
                to = s.name;
                break;
              }
            }
          }
          if (to.empty() || to == watched) {
            log("monitor: no warm site to fail over to (HINT: --to SITE)");
          } else {
            FailoverOptions fo;
            fo.to = to;
            fo.from = watched;
            fo.reason = fmt::format("monitor '{}': {} consecutive failed checks of '{}'",
                                    candidate, failures, watched);
            fo.unplanned = true;
            fo.last_known_pg_lsn = last_pg_lsn;
            fo.last_known_redis_offset = last_redis_offset;
            fo.crash_after_step = options.crash_after_step;
            log(fmt::format("monitor: failing over from '{}' to '{}'", watched, to));
            FailoverOutcome out = RunFailover(plan, fo, hooks);
            ++report.failovers;
            report.last_failover = out.status;
            if (out.status.ok()) {
              if (election) {
                Status put = election->Put(spec.election_key + "/active", to);
                if (!put.ok()) {
                  log(fmt::format("monitor: could not record '{}' as primary in etcd: {}", to,
                                  put.message()));
                }
              }
              log(fmt::format("monitor: failover to '{}' completed: RTO {:.2f} s, RPO {}", to,
                              out.journal.figures.value("rto_seconds", 0.0),
                              DescribeRpo(out.journal.figures)));
            } else {
              log(fmt::format("monitor: failover to '{}' failed: {}", to,
                              out.status.message()));
            }
            failures = 0;
            if (options.exit_after_failover) break;
          }
        }
      }
    }
    // Sleep out the interval in small steps so that a stop request is seen quickly.
    auto next = round_start + spec.interval;
    while (!stop.load() && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  if (election && election->IsLeader()) (void)election->Resign();
  return report;
}

}  // namespace reprise::failover
