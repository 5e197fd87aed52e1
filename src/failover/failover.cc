#include "failover/failover.h"

#include <unistd.h>

#include <chrono>
#include <ctime>

#include <fmt/format.h>

#include "common/duration.h"
#include "common/subprocess.h"
#include "dns/dns_provider.h"
#include "failover/file_sd.h"
#include "failover/nodes.h"
#include "health/health.h"
#include "notify/notifier.h"
#include "pg/wal_names.h"
#include "quorum/etcd_election.h"

namespace reprise::failover {

namespace {

using std::chrono::milliseconds;

const std::vector<std::string> kSteps = {
    "check-target", "fence",      "catch-up", "provision",  "restore", "promote",
    "first-write",  "demote-old", "dns",      "monitoring", "notify"};

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewId(const std::string& to) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return fmt::format("{}-{}", buf, to);
}


// One run of the state machine over a journal.
class Machine {
 public:
  Machine(const Plan& plan, const FailoverOptions& options, const FailoverHooks& hooks,
          JournalStore& store, Journal& journal)
      : plan_(plan), o_(options), hooks_(hooks), store_(store), j_(journal) {}

  Status Run();

 private:
  double Elapsed() const { return (NowUnixMs() - j_.started_unix_ms) / 1000.0; }
  void Log(const std::string& line) {
    if (hooks_.log) hooks_.log(line);
  }
  // Records a step and saves the journal; exits the process afterwards for the test hook.
  Status Record(const std::string& name, const std::string& status, const std::string& detail,
                nlohmann::json facts = nlohmann::json::object());
  Status Refuse(const std::string& step, const std::string& why);

  Status CheckTarget();
  Status Fence();
  Status CatchUp();
  Status Provision();
  Status Restore();
  Status Promote();
  bool cold() const { return to_->role == SiteRole::kCold; }
  Status CheckColdTarget();
  Status ArchiveForCold();
  Status FirstWrite();
  Status DemoteOld();
  Status Dns();
  Status Monitoring();
  Status Notify();

  Result<PgNode> Pg(const Site& site);
  Result<RedisNode> Redis(const Site& site);
  nlohmann::json Facts(const std::string& step) const {
    const StepRecord* s = j_.Find(step);
    return s ? s->facts : nlohmann::json::object();
  }

  const Plan& plan_;
  const FailoverOptions& o_;
  const FailoverHooks& hooks_;
  JournalStore& store_;
  Journal& j_;
  const Site* from_ = nullptr;
  const Site* to_ = nullptr;
};

Result<PgNode> Machine::Pg(const Site& site) {
  ASSIGN_OR_RETURN(std::string password, LookupSecret(hooks_.secrets, site.endpoints.postgres_password));
  return PgNode{site.endpoints.postgres, password};
}

Result<RedisNode> Machine::Redis(const Site& site) {
  ASSIGN_OR_RETURN(std::string password, LookupSecret(hooks_.secrets, site.endpoints.redis_password));
  return RedisNode{site.endpoints.redis, password};
}

Status Machine::Record(const std::string& name, const std::string& status,
                       const std::string& detail, nlohmann::json facts) {
  StepRecord rec{name, status, Elapsed(), detail, std::move(facts)};
  bool replaced = false;
  for (StepRecord& s : j_.steps) {
    if (s.name == name) {
      s = rec;
      replaced = true;
    }
  }
  if (!replaced) j_.steps.push_back(rec);
  size_t index = 0;
  while (index < kSteps.size() && kSteps[index] != name) ++index;
  Log(fmt::format("[{}/{}] {:<12} {:<7} {}", index + 1, kSteps.size(), name, status, detail));
  RETURN_IF_ERROR(store_.Save(j_));
  if (!o_.crash_after_step.empty() && o_.crash_after_step == name && status != "failed") {
    _exit(137);
  }
  return Status::Ok();
}

Status Machine::Refuse(const std::string& step, const std::string& why) {
  j_.state = "refused";
  RETURN_IF_ERROR(Record(step, "failed", why));
  return FailedPrecondition(fmt::format("failover to '{}' refused at {}: {}", j_.to, step, why));
}

Status Machine::CheckColdTarget() {
  if (!hooks_.cold.latest_point || !hooks_.cold.restore) {
    return Refuse("check-target", fmt::format("site '{}' is cold: failing over to it restores "
                                              "its repository, which this caller cannot open",
                                              to_->name));
  }
  Result<nlohmann::json> point = hooks_.cold.latest_point(*to_);
  if (!point.ok()) {
    std::string why = fmt::format("site '{}' is cold and its repository has no restorable "
                                  "point: {}",
                                  to_->name, point.status().message());
    return Refuse("check-target", why);
  }
  double age = (NowUnixMs() - point->value("time_unix_ms", int64_t{0})) / 1000.0;
  nlohmann::json facts = {{"cold", true}, {"point", *point}, {"point_age_seconds", age}};
  return Record("check-target", "done",
                fmt::format("cold site: newest point {} ({}, {} old){}",
                            point->value("id", std::string("?")),
                            point->value("status", std::string("?")),
                            FormatDuration(std::chrono::seconds(static_cast<int64_t>(age))),
                            to_->provision.empty()
                                ? ""
                                : fmt::format("; {} provision command(s) to run",
                                              to_->provision.size())),
                facts);
}

Status Machine::CheckTarget() {
  if (cold()) return CheckColdTarget();
  bool primary_down = o_.unplanned;
  if (!primary_down && !from_->endpoints.postgres.empty()) {
    ASSIGN_OR_RETURN(PgNode old, Pg(*from_));
    primary_down =
        !health::ProbePostgres(old.conninfo, old.password, milliseconds(3000)).ok();
  }
  std::vector<HealthCheckSpec> specs = to_->health;
  for (HealthCheckSpec& spec : specs) {
    spec.expect_primary.reset();
    if (primary_down) spec.max_lag_seconds.reset();
  }
  std::vector<health::HealthResult> results = health::RunChecks(specs, hooks_.secrets);
  if (primary_down) {
    for (health::HealthResult& r : results) {
      if (!r.ok && r.kind == HealthCheckSpec::Kind::kRedis && r.facts.value("link_up", true) ==
                                                                  false) {
        r.ok = true;
        r.detail += " (expected: the old primary is down)";
      }
    }
  }
  nlohmann::json facts = nlohmann::json::array();
  std::vector<std::string> failed;
  for (const auto& r : results) {
    facts.push_back(r.ToJson());
    if (!r.ok) failed.push_back(fmt::format("{}: {}", r.name, r.detail));
  }
  // The database endpoints must answer whatever the checks say.
  if (!to_->endpoints.postgres.empty()) {
    ASSIGN_OR_RETURN(PgNode node, Pg(*to_));
    Result<health::PgState> st = health::ProbePostgres(node.conninfo, node.password,
                                                       milliseconds(5000));
    if (!st.ok()) failed.push_back(fmt::format("postgres endpoint: {}", st.status().message()));
  }
  if (!to_->endpoints.redis.empty()) {
    ASSIGN_OR_RETURN(RedisNode node, Redis(*to_));
    Result<uint64_t> off = RedisOffset(node);
    if (!off.ok()) failed.push_back(fmt::format("redis endpoint: {}", off.status().message()));
  }
  if (to_->health.empty() && to_->endpoints.postgres.empty() && to_->endpoints.redis.empty()) {
    failed.push_back(fmt::format("site '{}' has no health checks and no endpoints", to_->name));
  }
  nlohmann::json wrapped = {{"checks", facts}, {"old_primary_down", primary_down}};
  if (!failed.empty()) {
    std::string why = fmt::format("target unhealthy: {}", Join(failed, "; "));
    if (!o_.force) {
      j_.state = "refused";
      RETURN_IF_ERROR(Record("check-target", "failed", why + " (HINT: --force goes on anyway)",
                             wrapped));
      return FailedPrecondition(
          fmt::format("failover to '{}' refused: {}; HINT: fix the site, or pass --force",
                      j_.to, why));
    }
    return Record("check-target", "done", "forced past: " + why, wrapped);
  }
  return Record("check-target", "done", fmt::format("{} check(s) passed", results.size()),
                wrapped);
}

Status Machine::Fence() {
  nlohmann::json facts = nlohmann::json::object();
  std::vector<std::string> done;
  if (!from_->fence_command.empty()) {
    ASSIGN_OR_RETURN(SubprocessResult r, RunSubprocess({.argv = {"/bin/sh", "-c",
                                                                 from_->fence_command},
                                                        .timeout = milliseconds(60000)}));
    if (!r.success()) {
      facts["fence_command"] = r.Describe();
      done.push_back(fmt::format("fence_command {}", r.Describe()));
    } else {
      done.push_back("fence_command ok");
    }
  }
  if (!from_->endpoints.postgres.empty()) {
    ASSIGN_OR_RETURN(PgNode node, Pg(*from_));
    Result<uint64_t> lsn = from_->fence_command.empty() ? FencePostgres(node) : PostgresLsn(node);
    if (lsn.ok()) {
      facts["pg_lsn"] = *lsn;
      facts["pg_fenced"] = true;
      done.push_back(fmt::format("postgres fenced at {}", pg::FormatLsn(*lsn)));
    } else {
      facts["pg_fenced"] = false;
      facts["pg_error"] = lsn.status().message();
      if (o_.last_known_pg_lsn) facts["pg_lsn"] = *o_.last_known_pg_lsn;
      done.push_back(fmt::format("postgres unreachable ({})", lsn.status().message()));
    }
  }
  if (!from_->endpoints.redis.empty()) {
    ASSIGN_OR_RETURN(RedisNode node, Redis(*from_));
    milliseconds pause = std::chrono::duration_cast<milliseconds>(
        plan_.failover.catchup_timeout + std::chrono::seconds(120));
    Result<uint64_t> off = FenceRedis(node, pause);
    if (off.ok()) {
      facts["redis_offset"] = *off;
      facts["redis_fenced"] = true;
      done.push_back(fmt::format("redis paused at offset {}", *off));
    } else {
      facts["redis_fenced"] = false;
      if (o_.last_known_redis_offset) facts["redis_offset"] = *o_.last_known_redis_offset;
      done.push_back(fmt::format("redis unreachable ({})", off.status().message()));
    }
  }
  if (done.empty()) return Record("fence", "skipped", "the old primary has no endpoints");
  return Record("fence", "done", Join(done, "; "), facts);
}

Status Machine::ArchiveForCold() {
  nlohmann::json fence = Facts("fence");
  if (!fence.value("pg_fenced", false) || !fence.contains("pg_lsn")) {
    return Record("catch-up", "skipped",
                  "cold site: the old PostgreSQL was not fenced; the restore replays what "
                  "was archived before it went away");
  }
  ASSIGN_OR_RETURN(PgNode old, Pg(*from_));
  uint64_t lsn = fence["pg_lsn"].get<uint64_t>();
  milliseconds timeout =
      std::chrono::duration_cast<milliseconds>(plan_.failover.catchup_timeout);
  Result<bool> archived = AwaitPostgresArchived(old, lsn, timeout);
  if (archived.ok() && !*archived) {
    return Record("catch-up", "done",
                  "cold site: the old primary does not archive (archive_mode off); the "
                  "restore has the WAL that wal-stream saved",
                  {{"archived", nullptr}});
  }
  if (!archived.ok()) {
    if (!o_.force) {
      std::vector<std::string> unfenced;
      if (from_->fence_command.empty()) {
        Status s = UnfencePostgres(old);
        unfenced.push_back(s.ok() ? "postgres unfenced" : "postgres unfence failed: " +
                                                              s.message());
      }
      if (fence.value("redis_fenced", false)) {
        ASSIGN_OR_RETURN(RedisNode r, Redis(*from_));
        Status s = UnfenceRedis(r);
        unfenced.push_back(s.ok() ? "redis unpaused" : "redis unpause failed: " + s.message());
      }
      j_.state = "refused";
      std::string why = fmt::format("the old primary's WAL up to {} is not archived: {}; {}",
                                    pg::FormatLsn(lsn), archived.status().message(),
                                    unfenced.empty() ? "old primary untouched"
                                                     : Join(unfenced, ", "));
      RETURN_IF_ERROR(Record("catch-up", "failed", why));
      return FailedPrecondition(fmt::format(
          "failover to '{}' refused: {}; HINT: fix archiving and retry, or pass --force to "
          "accept the loss",
          j_.to, why));
    }
    return Record("catch-up", "done",
                  fmt::format("forced past: {}", archived.status().message()),
                  {{"archived", false}});
  }
  return Record("catch-up", "done",
                fmt::format("cold site: the old primary's WAL is archived up to {}",
                            pg::FormatLsn(lsn)),
                {{"archived", true}, {"pg_lsn", lsn}});
}

Status Machine::Provision() {
  if (!cold()) return Record("provision", "skipped", "not a cold site");
  if (to_->provision.empty()) {
    return Record("provision", "skipped", "the site has no provision commands");
  }
  nlohmann::json ran = nlohmann::json::array();
  for (size_t i = 0; i < to_->provision.size(); ++i) {
    Log(fmt::format("provision {}/{}: {}", i + 1, to_->provision.size(), to_->provision[i]));
    ASSIGN_OR_RETURN(SubprocessResult r,
                     RunSubprocess({.argv = {"/bin/sh", "-c", to_->provision[i]},
                                    .timeout = std::chrono::hours(2)}));
    if (!r.success()) {
      return Unavailable(fmt::format("provision command {} of site '{}' failed: {}", i + 1,
                                     to_->name, r.Describe()));
    }
    ran.push_back(to_->provision[i]);
  }
  return Record("provision", "done", fmt::format("{} command(s) ran", ran.size()),
                {{"commands", ran}});
}

Status Machine::Restore() {
  if (!cold()) return Record("restore", "skipped", "not a cold site");
  Log(fmt::format("restoring the stack from the repository of '{}'", to_->name));
  ASSIGN_OR_RETURN(nlohmann::json report, hooks_.cold.restore(*to_));
  if (!report.value("ok", false)) {
    std::string why = "the whole-stack restore did not complete";
    for (const auto& c : report.value("components", nlohmann::json::array())) {
      if (c.value("status", "") == "failed") {
        why += fmt::format("; {}: {}", c.value("name", "?"), c.value("error", "?"));
      }
    }
    return Unavailable(why);
  }
  std::vector<health::HealthResult> results = health::RunChecks(to_->health, hooks_.secrets);
  std::vector<std::string> failed;
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& r : results) {
    checks.push_back(r.ToJson());
    if (!r.ok) failed.push_back(fmt::format("{}: {}", r.name, r.detail));
  }
  nlohmann::json facts = {{"report", report}, {"checks", checks}};
  if (!failed.empty() && !o_.force) {
    return Unavailable(fmt::format("restored, but site '{}' is unhealthy: {}", to_->name,
                                   Join(failed, "; ")));
  }
  return Record("restore", "done",
                fmt::format("restored in {:.2f} s; {} health check(s) {}",
                            report.value("seconds", 0.0), results.size(),
                            failed.empty() ? "passed" : "failed (forced past)"),
                facts);
}

Status Machine::CatchUp() {
  if (cold()) return ArchiveForCold();
  nlohmann::json fence = Facts("fence");
  nlohmann::json facts = nlohmann::json::object();
  std::vector<std::string> lines;
  std::vector<std::string> too_far;
  milliseconds timeout =
      std::chrono::duration_cast<milliseconds>(plan_.failover.catchup_timeout);
  if (!to_->endpoints.postgres.empty()) {
    ASSIGN_OR_RETURN(PgNode node, Pg(*to_));
    if (fence.contains("pg_lsn")) {
      uint64_t want = fence["pg_lsn"].get<uint64_t>();
      // A fenced primary stops moving: wait for everything. Unfenced (down): what arrived.
      ASSIGN_OR_RETURN(uint64_t reached,
                       fence.value("pg_fenced", false)
                           ? WaitPostgresReplay(node, want, timeout)
                           : WaitPostgresReplay(node, want, milliseconds(2000)));
      uint64_t lag = reached >= want ? 0 : want - reached;
      facts["pg_replay_lsn"] = reached;
      facts["pg_lag_bytes"] = lag;
      lines.push_back(fmt::format("postgres at {} ({} behind)", pg::FormatLsn(reached),
                                  FormatSize(lag)));
      if (lag > plan_.failover.max_lag_bytes) {
        too_far.push_back(fmt::format("postgres {} behind", FormatSize(lag)));
      }
    } else {
      ASSIGN_OR_RETURN(uint64_t reached, PostgresReplicaLsn(node));
      facts["pg_replay_lsn"] = reached;
      lines.push_back(fmt::format("postgres at {} (old primary's position unknown)",
                                  pg::FormatLsn(reached)));
    }
  }
  if (!to_->endpoints.redis.empty()) {
    ASSIGN_OR_RETURN(RedisNode node, Redis(*to_));
    if (fence.contains("redis_offset")) {
      uint64_t want = fence["redis_offset"].get<uint64_t>();
      ASSIGN_OR_RETURN(uint64_t reached,
                       WaitRedisOffset(node, want,
                                       fence.value("redis_fenced", false) ? timeout
                                                                          : milliseconds(1000)));
      uint64_t lag = reached >= want ? 0 : want - reached;
      facts["redis_offset"] = reached;
      facts["redis_lag_bytes"] = lag;
      lines.push_back(fmt::format("redis at offset {} ({} behind)", reached, lag));
      if (lag > plan_.failover.max_lag_bytes) {
        too_far.push_back(fmt::format("redis {} bytes behind", lag));
      }
    } else {
      ASSIGN_OR_RETURN(uint64_t reached, RedisOffset(node));
      facts["redis_offset"] = reached;
      lines.push_back(fmt::format("redis at offset {}", reached));
    }
  }
  if (lines.empty()) return Record("catch-up", "skipped", "the target has no endpoints");
  if (!too_far.empty() && !o_.force) {
    // Nothing may change on a refusal: lift the fence again.
    std::vector<std::string> unfenced;
    if (fence.value("pg_fenced", false) && from_->fence_command.empty()) {
      ASSIGN_OR_RETURN(PgNode old, Pg(*from_));
      Status s = UnfencePostgres(old);
      unfenced.push_back(s.ok() ? "postgres unfenced" : "postgres unfence failed: " + s.message());
    }
    if (fence.value("redis_fenced", false)) {
      ASSIGN_OR_RETURN(RedisNode old, Redis(*from_));
      Status s = UnfenceRedis(old);
      unfenced.push_back(s.ok() ? "redis unpaused" : "redis unpause failed: " + s.message());
    }
    j_.state = "refused";
    std::string why = fmt::format("{} (max_lag {}); {}", Join(too_far, ", "),
                                  FormatSize(plan_.failover.max_lag_bytes),
                                  unfenced.empty() ? "old primary untouched"
                                                   : Join(unfenced, ", "));
    RETURN_IF_ERROR(Record("catch-up", "failed", why, facts));
    return FailedPrecondition(fmt::format(
        "failover to '{}' refused: the target is too far behind: {}; HINT: wait and retry, "
        "or pass --force to accept the loss",
        j_.to, why));
  }
  return Record("catch-up", "done", Join(lines, "; "), facts);
}

Status Machine::Promote() {
  std::vector<std::string> lines;
  nlohmann::json facts = nlohmann::json::object();
  if (!to_->endpoints.postgres.empty()) {
    ASSIGN_OR_RETURN(PgNode node, Pg(*to_));
    // The replica's position right before promotion: what the new timeline starts from. A
    // restored cold site is a primary already: its position is where its replay ended.
    Result<uint64_t> before = cold() ? PostgresLsn(node) : PostgresReplicaLsn(node);
    if (before.ok()) facts["pg_lsn_at_promotion"] = *before;
    RETURN_IF_ERROR(PromotePostgres(node).WithContext("promoting postgres"));
    lines.push_back("postgres promoted");
  }
  if (!to_->endpoints.redis.empty()) {
    ASSIGN_OR_RETURN(RedisNode node, Redis(*to_));
    Result<uint64_t> before = RedisOffset(node);
    if (before.ok()) facts["redis_offset_at_promotion"] = *before;
    RETURN_IF_ERROR(PromoteRedis(node).WithContext("promoting redis"));
    lines.push_back("redis promoted");
  }
  if (lines.empty()) {
    return Record("promote", "skipped", "the target has no database endpoints");
  }
  return Record("promote", "done", Join(lines, "; "), facts);
}

Status Machine::FirstWrite() {
  std::vector<std::string> lines;
  if (!to_->endpoints.postgres.empty()) {
    ASSIGN_OR_RETURN(PgNode node, Pg(*to_));
    RETURN_IF_ERROR(AwaitPostgresWrite(node, milliseconds(60000)));
    lines.push_back("postgres writable");
  }
  if (!to_->endpoints.redis.empty()) {
    ASSIGN_OR_RETURN(RedisNode node, Redis(*to_));
    RETURN_IF_ERROR(AwaitRedisWrite(node, milliseconds(30000)));
    lines.push_back("redis writable");
  }
  double rto = Elapsed();
  j_.figures["rto_seconds"] = rto;
  // RPO: what the old primary had that the new one did not have when it was promoted.
  nlohmann::json fence = Facts("fence");
  nlohmann::json promote = Facts("promote");
  if (fence.contains("pg_lsn") && promote.contains("pg_lsn_at_promotion")) {
    uint64_t old_lsn = fence["pg_lsn"].get<uint64_t>();
    uint64_t new_lsn = promote["pg_lsn_at_promotion"].get<uint64_t>();
    j_.figures["rpo_wal_bytes"] = old_lsn > new_lsn ? old_lsn - new_lsn : 0;
    // Exact only when the primary was fenced and a replica measured its own position; from a
    // position seen earlier (down primary) or after a restore, it is a lower bound.
    j_.figures["rpo_exact"] = fence.value("pg_fenced", false) && !cold();
  } else if (!to_->endpoints.postgres.empty()) {
    j_.figures["rpo_wal_bytes"] = nullptr;  // the old primary's position is not known
  }
  if (fence.contains("redis_offset") && promote.contains("redis_offset_at_promotion")) {
    uint64_t old_off = fence["redis_offset"].get<uint64_t>();
    uint64_t new_off = promote["redis_offset_at_promotion"].get<uint64_t>();
    j_.figures["rpo_redis_bytes"] = old_off > new_off ? old_off - new_off : 0;
  }
  if (cold()) {
    nlohmann::json check = Facts("check-target");
    if (check.contains("point_age_seconds")) {
      j_.figures["point_age_seconds"] = check["point_age_seconds"];
    }
  }
  if (lines.empty()) return Record("first-write", "skipped", "no database endpoints");
  return Record("first-write", "done",
                fmt::format("{} after {:.2f} s", Join(lines, ", "), rto),
                {{"rto_seconds", rto}});
}

Status Machine::DemoteOld() {
  if (from_->endpoints.redis.empty() || to_->endpoints.redis.empty() ||
      !Facts("fence").value("redis_fenced", false)) {
    return Record("demote-old", "skipped", "no reachable old Redis primary");
  }
  ASSIGN_OR_RETURN(RedisNode old, Redis(*from_));
  Status s = DemoteRedis(old, to_->endpoints.redis);
  if (!s.ok()) {
    return Record("demote-old", "skipped",
                  fmt::format("old Redis primary not demoted: {}", s.message()));
  }
  return Record("demote-old", "done",
                fmt::format("old Redis primary replicates from '{}'", to_->endpoints.redis));
}

Status Machine::Dns() {
  if (!plan_.failover.dns || to_->dns_value.empty()) {
    return Record("dns", "skipped",
                  !plan_.failover.dns ? "no failover.dns in the plan"
                                      : fmt::format("site '{}' has no dns_value", to_->name));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<dns::DnsProvider> provider,
                   dns::MakeDnsProvider(*plan_.failover.dns, hooks_.secrets));
  RETURN_IF_ERROR(provider->Replace(to_->dns_value).WithContext("switching DNS"));
  RETURN_IF_ERROR(dns::AwaitPropagation(*provider, *plan_.failover.dns, to_->dns_value));
  return Record("dns", "done",
                fmt::format("{} -> {} (served)", plan_.failover.dns->record, to_->dns_value),
                {{"value", to_->dns_value}});
}

Status Machine::Monitoring() {
  if (plan_.failover.monitoring_file.empty()) {
    return Record("monitoring", "skipped", "no failover.monitoring_file in the plan");
  }
  RETURN_IF_ERROR(WriteFileSd(plan_.failover.monitoring_file, to_->monitoring,
                              {{"site", to_->name}, {"role", "primary"}}));
  return Record("monitoring", "done",
                fmt::format("{} target(s) of '{}' in '{}'", to_->monitoring.size(), to_->name,
                            plan_.failover.monitoring_file));
}

Status Machine::Notify() {
  notify::Event event;
  event.type = "failover.completed";
  double rto = j_.figures.value("rto_seconds", Elapsed());
  event.title = fmt::format("failover from '{}' to '{}' completed, RTO {:.2f} s", j_.from, j_.to,
                            rto);
  event.text = fmt::format(
      "site: {}\nfrom: {}\nreason: {}\nRTO (start to first write): {:.2f} s\nRPO (not "
      "replicated at promotion): {}\njournal: {}",
      j_.to, j_.from, j_.reason, rto, DescribeRpo(j_.figures), j_.id);
  event.data = j_.figures;
  event.data["site"] = j_.to;
  event.data["from"] = j_.from;
  event.data["reason"] = j_.reason;
  notify::DispatchReport report = notify::Dispatch(plan_.notifications, hooks_.secrets, event);
  nlohmann::json facts = {{"sent", report.sent}, {"failed", report.failed}};
  if (report.sent.empty() && report.failed.empty()) {
    return Record("notify", "skipped", "no channel routed for failover.completed", facts);
  }
  return Record("notify", "done",
                fmt::format("sent to {}{}", report.sent.empty() ? "none" : Join(report.sent, ", "),
                            report.failed.empty() ? ""
                                                  : fmt::format("; failed: {}",
                                                                Join(report.failed, "; "))),
                facts);
}

Status Machine::Run() {
  from_ = plan_.FindSite(j_.from);
  to_ = plan_.FindSite(j_.to);
  if (!from_ || !to_) {
    return InvalidArgument(fmt::format("the journal names sites '{}' and '{}' that the plan "
                                       "does not define",
                                       j_.from, j_.to));
  }
  using StepFn = Status (Machine::*)();
  const std::vector<std::pair<std::string, StepFn>> steps = {
      {"check-target", &Machine::CheckTarget}, {"fence", &Machine::Fence},
      {"catch-up", &Machine::CatchUp},         {"provision", &Machine::Provision},
      {"restore", &Machine::Restore},          {"promote", &Machine::Promote},
      {"first-write", &Machine::FirstWrite},   {"demote-old", &Machine::DemoteOld},
      {"dns", &Machine::Dns},                  {"monitoring", &Machine::Monitoring},
      {"notify", &Machine::Notify}};
  for (const auto& [name, fn] : steps) {
    if (j_.Done(name)) {
      Log(fmt::format("{:<12} already done", name));
      continue;
    }
    Status s = (this->*fn)();
    if (!s.ok()) {
      if (j_.state == "running") {
        // A failure (not a refusal): the journal stays "running" so that a rerun resumes.
        Status rec = Record(name, "failed", s.message());
        if (!rec.ok()) return rec;
      }
      return s;
    }
    if (name == "first-write") {
      // From here on the target is the primary, whatever happens to the remaining steps.
      RETURN_IF_ERROR(store_.SetActiveSite(j_.to));
      if (!plan_.failover.monitor.etcd.empty()) {
        // Monitors on other hosts follow the primary recorded in etcd.
        quorum::Election etcd({.endpoints = plan_.failover.monitor.etcd,
                               .key = plan_.failover.monitor.election_key,
                               .candidate = "failover"});
        Status put = etcd.Put(plan_.failover.monitor.election_key + "/active", j_.to);
        if (!put.ok()) Log(fmt::format("warning: the new primary is not recorded in etcd: {}",
                                       put.message()));
      }
    }
  }
  j_.state = "completed";
  return store_.Save(j_);
}

}  // namespace

Result<std::string> LookupSecret(const SecretLookup& secrets, const std::string& name) {
  if (name.empty()) return std::string();
  if (!secrets) return FailedPrecondition(fmt::format("secret '{}' is not available", name));
  return secrets(name);
}

std::string DescribeRpo(const nlohmann::json& fig) {
  std::string rpo;
  if (!fig.contains("rpo_wal_bytes")) {
    rpo = "-";
  } else if (fig["rpo_wal_bytes"].is_null()) {
    rpo = "unknown (the old primary's last position was never seen)";
  } else {
    bool exact = fig.value("rpo_exact", false);
    rpo = fmt::format("{}{} bytes of WAL", exact ? "" : "at least ",
                      fig["rpo_wal_bytes"].get<uint64_t>());
    if (!exact) {
      rpo += fig.contains("point_age_seconds")
                 ? " (against the restored server's position after its recovery)"
                 : " (from the old primary's last position seen, not a fenced one)";
    }
  }
  if (fig.contains("rpo_redis_bytes")) {
    rpo += fmt::format(", Redis {} bytes", fig["rpo_redis_bytes"].get<uint64_t>());
  }
  if (fig.contains("point_age_seconds")) {
    rpo += fmt::format("; restored from a point {:.0f} s old (plus the WAL archived after it)",
                       fig["point_age_seconds"].get<double>());
  }
  return rpo;
}

Result<std::string> CurrentPrimary(const Plan& plan) {
  JournalStore store(plan.failover.state_dir);
  ASSIGN_OR_RETURN(std::string active, store.ActiveSite());
  if (!active.empty() && plan.FindSite(active)) return active;
  const Site* primary = plan.PrimarySite();
  if (!primary) return FailedPrecondition("the plan has no primary site");
  return primary->name;
}

Result<std::vector<std::string>> DescribeFailover(const Plan& plan, const FailoverOptions& o) {
  ASSIGN_OR_RETURN(std::string from, CurrentPrimary(plan));
  const Site* to = plan.FindSite(o.to);
  if (!to) return InvalidArgument(fmt::format("site '{}' is not defined in the plan", o.to));
  const Site* old = plan.FindSite(from);
  std::vector<std::string> out;
  out.push_back(fmt::format("failover from '{}' to '{}'", from, o.to));
  out.push_back(fmt::format("1. check-target: {} health check(s) of '{}'{}", to->health.size(),
                            o.to, o.force ? " (forced: failures do not stop it)" : ""));
  out.push_back(fmt::format(
      "2. fence: {}", !old->fence_command.empty() ? "run fence_command of '" + from + "'"
                      : old->endpoints.postgres.empty() && old->endpoints.redis.empty()
                          ? std::string("nothing (no endpoints)")
                          : "make the old PostgreSQL read-only and end its sessions; pause "
                            "Redis writes"));
  out.push_back(fmt::format("3. catch-up: wait up to {} for the replicas; refuse beyond {}",
                            FormatDuration(plan.failover.catchup_timeout),
                            FormatSize(plan.failover.max_lag_bytes)));
  bool cold = to->role == SiteRole::kCold;
  if (cold) {
    out[1] = fmt::format("1. check-target: '{}' is cold: its repository must hold a point",
                         o.to);
    out[3] = "3. catch-up: switch and archive the fenced primary's last WAL segment";
  }
  out.push_back(cold ? fmt::format("4. provision: {} command(s) of '{}'", to->provision.size(),
                                   o.to)
                     : "4. provision: nothing (not a cold site)");
  out.push_back(cold ? fmt::format("5. restore: the whole stack from '{}' ({}), tier by tier, "
                                   "then its {} health check(s)",
                                   o.to, to->repository, to->health.size())
                     : "5. restore: nothing (not a cold site)");
  out.push_back(fmt::format("6. promote: {}{}",
                            to->endpoints.postgres.empty() ? "" : "pg_promote() ",
                            to->endpoints.redis.empty() ? "" : "REPLICAOF NO ONE"));
  out.push_back("7. first-write: wait until the new primaries accept a write (RTO)");
  out.push_back("8. demote-old: the old Redis primary replicates from the new one");
  out.push_back(plan.failover.dns
                    ? fmt::format("9. dns: {} -> {}", plan.failover.dns->record, to->dns_value)
                    : "9. dns: nothing (no failover.dns)");
  out.push_back(plan.failover.monitoring_file.empty()
                    ? "10. monitoring: nothing (no failover.monitoring_file)"
                    : fmt::format("10. monitoring: rewrite '{}'", plan.failover.monitoring_file));
  out.push_back(fmt::format("11. notify: {} channel(s)", plan.notifications.channels.size()));
  return out;
}

FailoverOutcome RunFailover(const Plan& plan, const FailoverOptions& options,
                            const FailoverHooks& hooks) {
  FailoverOutcome out;
  JournalStore store(plan.failover.state_dir);
  Result<std::optional<Journal>> running = store.Running();
  if (!running.ok()) {
    out.status = running.status();
    return out;
  }
  if (*running) {
    if ((*running)->to != options.to) {
      out.journal = **running;
      out.status = FailedPrecondition(fmt::format(
          "a failover to '{}' is in progress (journal '{}'); HINT: run 'reprise failover --to "
          "{}' to finish it first",
          (*running)->to, (*running)->id, (*running)->to));
      return out;
    }
    out.journal = std::move(**running);
    if (hooks.log) hooks.log(fmt::format("resuming failover '{}'", out.journal.id));
  } else {
    Result<std::string> from =
        options.from.empty() ? CurrentPrimary(plan) : Result<std::string>(options.from);
    if (!from.ok()) {
      out.status = from.status();
      return out;
    }
    if (!plan.FindSite(options.to)) {
      out.status = InvalidArgument(fmt::format("site '{}' is not defined in the plan", options.to));
      return out;
    }
    if (*from == options.to) {
      out.status = FailedPrecondition(
          fmt::format("site '{}' is already the primary; nothing to do", options.to));
      return out;
    }
    out.journal.id = NewId(options.to);
    out.journal.kind = "failover";
    out.journal.from = *from;
    out.journal.to = options.to;
    out.journal.reason = options.reason;
    out.journal.state = "running";
    out.journal.started_unix_ms = NowUnixMs();
    if (Status s = store.Save(out.journal); !s.ok()) {
      out.status = s;
      return out;
    }
  }
  Machine machine(plan, options, hooks, store, out.journal);
  out.status = machine.Run();
  if (!out.status.ok() && out.journal.state == "refused") {
    notify::Event event;
    event.type = "failover.refused";
    event.title = fmt::format("failover from '{}' to '{}' refused", out.journal.from,
                              out.journal.to);
    event.text = out.status.message();
    event.data = {{"site", out.journal.to}, {"from", out.journal.from}};
    (void)notify::Dispatch(plan.notifications, hooks.secrets, event);
  }
  return out;
}

}  // namespace reprise::failover
