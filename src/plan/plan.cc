#include "plan/plan.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "common/duration.h"
#include "plan/component_parse.h"
#include "plan/failover_parse.h"
#include "plan/yaml_reader.h"

namespace reprise {

using plan_internal::Field;
using plan_internal::Index;
using plan_internal::JoinNames;
using plan_internal::LocationOf;
using plan_internal::MapEntry;
using plan_internal::Reader;
using plan_internal::Suggest;

namespace {

using std::chrono::seconds;

constexpr int kPlanVersion = 1;
constexpr size_t kMaxPlanBytes = 16 << 20;

const std::vector<std::string_view> kTopKeys = {
    "version",  "name",          "objectives", "tiers",       "secrets",
    "sites",    "components",    "retention",  "consistency", "schedules",
    "failover", "notifications", "escalation"};
const std::vector<std::string_view> kDeferredTopKeys = {"schedules", "escalation"};
const std::vector<std::string_view> kObjectivesKeys = {"rto", "rpo", "availability"};
const std::vector<std::string_view> kRtoKeys = {"minor", "major", "disaster"};
const std::vector<std::string_view> kSecretKeys = {"file", "env", "value"};
const std::vector<std::string_view> kRetentionKeys = {"keep_last",   "keep_hourly",  "keep_daily",
                                                      "keep_weekly", "keep_monthly", "keep_yearly",
                                                      "keep_within"};
const std::vector<std::string_view> kSiteKeys = {
    "repository", "role",      "region", "credentials", "retention",
    "endpoints",  "dns_value", "health", "provision",   "monitoring", "fence_command",
    "rebuild"};
const std::vector<std::string_view> kRoles = {"primary", "warm", "cold"};
const std::vector<std::string_view> kKinds = {"files",  "postgres", "redis",
                                              "qdrant", "s3",       "command"};
const std::vector<std::string_view> kPostgresKeys = {
    "kind",   "class", "mode",      "connection", "password", "data_directory", "bin_dir",
    "os_user", "slot", "wal_spool", "wal",        "databases", "jobs", "start_command",
    "controller"};
const std::vector<std::string_view> kFilesKeys = {"kind", "class", "paths", "excludes",
                                                  "one_file_system"};
const std::vector<std::string_view> kTierKeys = {"name", "components", "health"};

bool Contains(const std::vector<std::string_view>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

std::vector<DataClass> DefaultClasses() {
  return {{"transactional", seconds(5 * 60)},
          {"documents", seconds(3600)},
          {"embeddings", seconds(3600)},
          {"configuration", seconds(24 * 3600)}};
}

// The entries of a map, by key, for sections read in an order other than the document's.
std::map<std::string, MapEntry> ByKey(std::vector<MapEntry> entries) {
  std::map<std::string, MapEntry> out;
  for (auto& e : entries) out.emplace(e.key, std::move(e));
  return out;
}

const MapEntry* Lookup(const std::map<std::string, MapEntry>& m, std::string_view key) {
  auto it = m.find(std::string(key));
  return it == m.end() ? nullptr : &it->second;
}

class PlanParser {
 public:
  explicit PlanParser(std::string file) : r_(file) { plan_.file = std::move(file); }

  Result<Plan> Parse(const YAML::Node& root);

 private:
  void ParseVersion(const YAML::Node& root, const MapEntry* e);
  void ParseObjectives(const MapEntry& e);
  void ParseSecrets(const MapEntry& e);
  void ParseSecret(const MapEntry& e);
  std::optional<RetentionPolicy> ParseRetention(const YAML::Node& node, const std::string& path);
  void ParseSites(const MapEntry& e);
  void ParseSite(const MapEntry& e);
  void AssignRoles();
  void ParseComponents(const MapEntry& e);
  void ParseComponent(const MapEntry& e);
  void ParseFiles(const MapEntry& e, const std::vector<MapEntry>& rest, ComponentSpec& c);
  void ParsePostgres(const MapEntry& e, const std::vector<MapEntry>& rest, ComponentSpec& c);
  void ParseTiers(const MapEntry* e);
  // A duration that must be positive.
  std::optional<seconds> PositiveDuration(const MapEntry& e);
  // Checks that `name` (written at `node`) is one of `names`, where they are `what`s
  // defined under `where`; reports it with a suggestion otherwise.
  bool CheckReference(const YAML::Node& node, const std::string& path, const std::string& name,
                      std::string_view what, std::string_view where,
                      const std::vector<std::string>& names);

  Reader r_;
  Plan plan_;
  // Every name written under secrets, objectives.rpo and components, valid or not, so that a
  // reference to a broken definition is not reported a second time as "not defined".
  std::vector<std::string> declared_secrets_;
  std::vector<std::string> declared_classes_;
  std::vector<std::string> declared_components_;
  // Roles as written (sites without one get theirs in AssignRoles).
  std::vector<std::optional<SiteRole>> written_roles_;
  std::vector<YAML::Node> site_nodes_;
  plan_internal::FailoverParser failover_{r_, declared_secrets_};
  plan_internal::ComponentParser components_{r_, declared_secrets_};
};

Result<Plan> PlanParser::Parse(const YAML::Node& root) {
  if (!root.IsMap()) {
    r_.Error(root, "",
             root.IsNull() ? std::string("the plan is empty; HINT: start with 'version: 1'")
                           : "the plan must be a map of sections (version, name, components, "
                             "...)");
    return r_.ToStatus();
  }
  std::map<std::string, MapEntry> top = ByKey(r_.Entries(root, "", kTopKeys));

  ParseVersion(root, Lookup(top, "version"));
  if (const MapEntry* e = Lookup(top, "name")) {
    if (auto name = r_.Name(e->value, e->path, "plan")) plan_.name = *name;
  } else {
    r_.Error(root, "name", "required key is missing; HINT: add e.g. 'name: rag-enterprise'");
  }

  plan_.objectives.rpo = DefaultClasses();
  for (const DataClass& c : plan_.objectives.rpo) declared_classes_.push_back(c.name);
  if (const MapEntry* e = Lookup(top, "objectives")) ParseObjectives(*e);
  if (const MapEntry* e = Lookup(top, "secrets")) ParseSecrets(*e);
  if (const MapEntry* e = Lookup(top, "retention")) {
    plan_.retention = ParseRetention(e->value, e->path);
  }
  if (const MapEntry* e = Lookup(top, "sites")) ParseSites(*e);
  if (const MapEntry* e = Lookup(top, "components")) {
    ParseComponents(*e);
  } else {
    r_.Error(root, "components",
             "required key is missing; the plan must name at least one component to back up");
  }
  ParseTiers(Lookup(top, "tiers"));
  if (const MapEntry* e = Lookup(top, "failover")) failover_.ParseFailover(*e, plan_.failover);
  if (const MapEntry* e = Lookup(top, "notifications")) {
    failover_.ParseNotifications(*e, plan_.notifications);
  }
  failover_.CheckPlan(plan_, root);
  if (const MapEntry* e = Lookup(top, "consistency")) components_.ParseConsistency(*e, plan_);

  for (std::string_view key : kDeferredTopKeys) {
    const MapEntry* e = Lookup(top, key);
    if (!e) continue;
    plan_.deferred[e->key] = r_.ToJson(e->value, e->path);
    r_.Warn(e->key_node, e->path, "not built yet; ignored");
  }

  RETURN_IF_ERROR(r_.ToStatus());
  plan_.warnings = r_.TakeWarnings();
  return std::move(plan_);
}

void PlanParser::ParseVersion(const YAML::Node& root, const MapEntry* e) {
  if (!e) {
    r_.Error(root, "version",
             fmt::format("required key is missing; HINT: start the plan with 'version: {}'",
                         kPlanVersion));
    return;
  }
  std::optional<int64_t> v = r_.Int(e->value, e->path, 0, std::numeric_limits<int>::max());
  if (!v) return;
  if (*v != kPlanVersion) {
    r_.Error(e->value, e->path,
             fmt::format("unsupported plan version {}; this reprise reads version {}", *v,
                         kPlanVersion));
    return;
  }
  plan_.version = static_cast<int>(*v);
}

std::optional<seconds> PlanParser::PositiveDuration(const MapEntry& e) {
  std::optional<seconds> d = r_.Duration(e.value, e.path);
  if (d && d->count() == 0) {
    r_.Error(e.value, e.path, "must be longer than 0s");
    return std::nullopt;
  }
  return d;
}

void PlanParser::ParseObjectives(const MapEntry& e) {
  for (const MapEntry& o : r_.Entries(e.value, e.path, kObjectivesKeys)) {
    if (o.key == "rto") {
      Objectives::Rto& rto = plan_.objectives.rto;
      for (const MapEntry& level : r_.Entries(o.value, o.path, kRtoKeys)) {
        std::optional<seconds> d = PositiveDuration(level);
        if (!d) continue;
        if (level.key == "minor") rto.minor = *d;
        if (level.key == "major") rto.major = *d;
        if (level.key == "disaster") rto.disaster = *d;
      }
      if (rto.minor > rto.major || rto.major > rto.disaster) {
        r_.Warn(o.value, o.path,
                fmt::format("expected minor <= major <= disaster, got {} / {} / {}",
                            FormatDuration(rto.minor), FormatDuration(rto.major),
                            FormatDuration(rto.disaster)));
      }
    } else if (o.key == "rpo") {
      std::vector<DataClass> classes;
      declared_classes_.clear();
      for (const MapEntry& c : r_.Entries(o.value, o.path)) {
        declared_classes_.push_back(c.key);
        std::optional<std::string> name = r_.Name(c.key_node, c.path, "data class");
        std::optional<seconds> d = PositiveDuration(c);
        if (name && d) classes.push_back({*name, *d});
      }
      if (o.value.IsMap() && o.value.size() == 0) {
        r_.Error(o.value, o.path, "must name at least one data class, e.g. 'documents: 1h'");
      }
      plan_.objectives.rpo = std::move(classes);
    } else if (o.key == "availability") {
      std::optional<std::string> s = r_.String(o.value, o.path);
      static const std::regex kPercent("([0-9]+(\\.[0-9]+)?)%");
      std::smatch m;
      if (s && (!std::regex_match(*s, m, kPercent) || std::stod(m[1].str()) > 100.0)) {
        r_.Error(o.value, o.path,
                 fmt::format("expected a percentage such as '99.9%', got '{}'", *s));
      } else if (s) {
        plan_.objectives.availability = *s;
      }
    }
  }
}

void PlanParser::ParseSecrets(const MapEntry& e) {
  for (const MapEntry& s : r_.Entries(e.value, e.path)) ParseSecret(s);
}

void PlanParser::ParseSecret(const MapEntry& e) {
  static constexpr std::string_view kHint =
      "HINT: put the value in a file only reprise can read and write {file: /path/to/file}, "
      "or export it and write {env: VARIABLE}";
  std::optional<std::string> name = r_.Name(e.key_node, e.path, "secret");
  declared_secrets_.push_back(e.key);
  if (e.value.IsScalar()) {
    r_.Error(e.value, e.path,
             fmt::format("secret values may not be written in the plan; {}", kHint));
    return;
  }
  Secret secret;
  secret.at = LocationOf(e.key_node);
  bool has_file = false;
  bool has_env = false;
  bool ok = true;
  std::vector<MapEntry> entries = r_.Entries(e.value, e.path, kSecretKeys);
  if (!e.value.IsMap()) return;  // reported by Entries
  for (const MapEntry& f : entries) {
    if (f.key == "value") {
      r_.Error(f.key_node, f.path,
               fmt::format("secret values may not be written in the plan; {}", kHint));
      ok = false;
    } else if (f.key == "file") {
      has_file = true;
      std::optional<std::string> path = r_.NonEmptyString(f.value, f.path);
      if (path && (*path)[0] != '/') {
        r_.Error(f.value, f.path,
                 fmt::format("'{}' is not an absolute path; HINT: write the full path, "
                             "e.g. /etc/reprise/{}",
                             *path, *path));
        ok = false;
      } else if (path) {
        secret.source = Secret::Source::kFile;
        secret.file = *path;
      } else {
        ok = false;
      }
    } else if (f.key == "env") {
      has_env = true;
      std::optional<std::vector<std::string>> vars = r_.StringList(f.value, f.path, true);
      static const std::regex kVar("[A-Za-z_][A-Za-z0-9_]*");
      if (!vars) {
        ok = false;
      } else if (vars->empty()) {
        r_.Error(f.value, f.path, "must name at least one environment variable");
        ok = false;
      } else {
        for (size_t i = 0; i < vars->size(); ++i) {
          if (!std::regex_match((*vars)[i], kVar)) {
            r_.Error(f.value.IsSequence() ? f.value[i] : f.value,
                     f.value.IsSequence() ? Index(f.path, i) : f.path,
                     fmt::format("'{}' is not a valid environment variable name", (*vars)[i]));
            ok = false;
          }
        }
        secret.source = Secret::Source::kEnv;
        secret.env = std::move(*vars);
      }
    }
  }
  if (has_file && has_env) {
    r_.Error(e.value, e.path, "give either 'file' or 'env', not both");
    ok = false;
  } else if (!has_file && !has_env && ok) {
    r_.Error(e.value, e.path, fmt::format("missing 'file' or 'env'; {}", kHint));
    ok = false;
  }
  if (ok && name) {
    secret.name = *name;
    plan_.secrets.push_back(std::move(secret));
  }
}

std::optional<RetentionPolicy> PlanParser::ParseRetention(const YAML::Node& node,
                                                          const std::string& path) {
  RetentionPolicy policy;
  bool ok = node.IsMap();
  for (const MapEntry& k : r_.Entries(node, path, kRetentionKeys)) {
    if (k.key == "keep_within") {
      std::optional<seconds> d = r_.Duration(k.value, k.path);
      if (d) {
        policy.keep_within_seconds = d->count();
      } else {
        ok = false;
      }
      continue;
    }
    std::optional<int64_t> n = r_.Int(k.value, k.path, 0, std::numeric_limits<int>::max());
    if (!n) {
      ok = false;
      continue;
    }
    int v = static_cast<int>(*n);
    if (k.key == "keep_last") policy.keep_last = v;
    if (k.key == "keep_hourly") policy.keep_hourly = v;
    if (k.key == "keep_daily") policy.keep_daily = v;
    if (k.key == "keep_weekly") policy.keep_weekly = v;
    if (k.key == "keep_monthly") policy.keep_monthly = v;
    if (k.key == "keep_yearly") policy.keep_yearly = v;
  }
  if (!ok) return std::nullopt;
  if (policy.empty()) {
    r_.Warn(node, path, "the policy keeps nothing in particular; prune will refuse to use it");
  }
  return policy;
}

void PlanParser::ParseSites(const MapEntry& e) {
  for (const MapEntry& s : r_.Entries(e.value, e.path)) ParseSite(s);
  AssignRoles();
  std::map<std::string, std::string> by_repository;
  for (const Site& site : plan_.sites) {
    auto [it, inserted] = by_repository.emplace(site.repository, site.name);
    if (!inserted) {
      r_.Warn(site.at, Field(e.path, site.name),
              fmt::format("same repository as site '{}'", it->second));
    }
  }
}

void PlanParser::ParseSite(const MapEntry& e) {
  std::optional<std::string> name = r_.Name(e.key_node, e.path, "site");
  Site site;
  site.at = LocationOf(e.key_node);
  std::optional<SiteRole> role;
  bool ok = true;
  bool has_repository = false;
  std::vector<MapEntry> entries = r_.Entries(e.value, e.path, kSiteKeys);
  if (!e.value.IsMap()) return;
  for (const MapEntry& f : entries) {
    if (f.key == "repository") {
      has_repository = true;
      std::optional<std::string> url = r_.NonEmptyString(f.value, f.path);
      static const std::regex kUrl("[a-z][a-z0-9+.-]*://.+");
      if (url && (*url)[0] != '/' && !std::regex_match(*url, kUrl)) {
        r_.Error(f.value, f.path,
                 fmt::format("'{}' is neither a URL nor an absolute path; HINT: write e.g. "
                             "file:///backups/rag, s3://bucket/prefix or /backups/rag",
                             *url));
        ok = false;
      } else if (url) {
        site.repository = *url;
      } else {
        ok = false;
      }
    } else if (f.key == "role") {
      std::optional<std::string> r = r_.Choice(f.value, f.path, "role", kRoles);
      if (r == "primary") role = SiteRole::kPrimary;
      if (r == "warm") role = SiteRole::kWarm;
      if (r == "cold") role = SiteRole::kCold;
      if (!r) ok = false;
    } else if (f.key == "region") {
      if (auto s = r_.String(f.value, f.path)) site.region = *s;
    } else if (f.key == "credentials") {
      std::optional<std::string> s = r_.String(f.value, f.path);
      if (s && CheckReference(f.value, f.path, *s, "secret", "secrets", declared_secrets_)) {
        site.credentials = *s;
      } else {
        ok = false;
      }
    } else if (f.key == "retention") {
      site.retention = ParseRetention(f.value, f.path);
      if (!site.retention) ok = false;
    } else if (Contains(plan_internal::kFailoverSiteKeys, f.key)) {
      if (!failover_.ParseSiteKey(f, site)) ok = false;
    }
  }
  if (!has_repository) {
    r_.Error(e.value, Field(e.path, "repository"),
             "required key is missing; HINT: write e.g. 'repository: file:///backups/rag'");
    ok = false;
  }
  if (!ok || !name) return;
  site.name = *name;
  plan_.sites.push_back(std::move(site));
  written_roles_.push_back(role);
  site_nodes_.push_back(e.key_node);
}

void PlanParser::AssignRoles() {
  const Site* primary = nullptr;
  for (size_t i = 0; i < plan_.sites.size(); ++i) {
    if (written_roles_[i] != SiteRole::kPrimary) continue;
    if (primary) {
      r_.Error(site_nodes_[i], Field("sites", plan_.sites[i].name),
               fmt::format("site '{}' is already the primary; at most one site may have role "
                           "primary",
                           primary->name));
    } else {
      primary = &plan_.sites[i];
    }
  }
  for (size_t i = 0; i < plan_.sites.size(); ++i) {
    if (written_roles_[i]) {
      plan_.sites[i].role = *written_roles_[i];
    } else {
      // The first site is where backups go unless another claims it; the others hold copies.
      plan_.sites[i].role = (i == 0 && !primary) ? SiteRole::kPrimary : SiteRole::kCold;
    }
  }
}

bool PlanParser::CheckReference(const YAML::Node& node, const std::string& path,
                                const std::string& name, std::string_view what,
                                std::string_view where, const std::vector<std::string>& names) {
  if (std::find(names.begin(), names.end(), name) != names.end()) return true;
  std::vector<std::string_view> views(names.begin(), names.end());
  std::string message = fmt::format("{} '{}' is not defined in {}", what, name, where);
  if (auto guess = Suggest(name, views)) {
    message += fmt::format(" (did you mean '{}'?)", *guess);
  } else if (names.empty()) {
    message += fmt::format(" (it defines none)");
  } else {
    message += fmt::format(" (defined: {})", JoinNames(names));
  }
  r_.Error(node, path, std::move(message));
  return false;
}

void PlanParser::ParseComponents(const MapEntry& e) {
  for (const MapEntry& c : r_.Entries(e.value, e.path)) ParseComponent(c);
  if (e.value.IsMap() && e.value.size() == 0) {
    r_.Error(e.value, e.path, "the plan must name at least one component to back up");
  }
}

void PlanParser::ParseComponent(const MapEntry& e) {
  std::optional<std::string> name = r_.Name(e.key_node, e.path, "component");
  declared_components_.push_back(e.key);
  ComponentSpec c;
  c.at = LocationOf(e.key_node);
  std::vector<MapEntry> entries = r_.Entries(e.value, e.path);
  if (!e.value.IsMap()) return;
  bool ok = true;
  std::optional<ComponentKind> kind;
  bool has_class = false;
  std::vector<MapEntry> rest;
  for (const MapEntry& f : entries) {
    if (f.key == "kind") {
      std::optional<std::string> k = r_.Choice(f.value, f.path, "kind", kKinds);
      if (!k) continue;
      kind =
          static_cast<ComponentKind>(std::find(kKinds.begin(), kKinds.end(), *k) - kKinds.begin());
    } else if (f.key == "class") {
      has_class = true;
      std::optional<std::string> s = r_.String(f.value, f.path);
      if (s && CheckReference(f.value, f.path, *s, "class", "objectives.rpo", declared_classes_)) {
        c.data_class = *s;
      } else {
        ok = false;
      }
    } else {
      rest.push_back(f);
    }
  }
  if (!has_class) {
    std::vector<std::string> names;
    for (const DataClass& dc : plan_.objectives.rpo) names.push_back(dc.name);
    r_.Error(e.value, Field(e.path, "class"),
             fmt::format("required key is missing; HINT: name the data class whose RPO applies, "
                         "one of: {}",
                         JoinNames(names)));
    ok = false;
  }
  if (!kind) {
    if (std::none_of(entries.begin(), entries.end(),
                     [](const MapEntry& f) { return f.key == "kind"; })) {
      r_.Error(e.value, Field(e.path, "kind"),
               fmt::format("required key is missing (expected one of: {})", JoinNames(kKinds)));
    }
    return;  // the other keys depend on the kind: checking them would only add noise
  }
  c.kind = *kind;
  if (c.kind == ComponentKind::kFiles) {
    ParseFiles(e, rest, c);
  } else if (c.kind == ComponentKind::kPostgres) {
    ParsePostgres(e, rest, c);
  } else if (c.kind == ComponentKind::kRedis || c.kind == ComponentKind::kCommand ||
             c.kind == ComponentKind::kQdrant || c.kind == ComponentKind::kS3) {
    if (c.kind == ComponentKind::kRedis) components_.ParseRedis(e, rest, c);
    if (c.kind == ComponentKind::kCommand) components_.ParseCommand(e, rest, c);
    if (c.kind == ComponentKind::kQdrant) components_.ParseQdrant(e, rest, c);
    if (c.kind == ComponentKind::kS3) components_.ParseS3(e, rest, c);
    if (!ComponentKindBuilt(c.kind)) {
      r_.Warn(e.key_node, e.path,
              fmt::format("kind '{}' is not built yet; backups of it will fail",
                          ComponentKindName(c.kind)));
    }
  } else {
    for (const MapEntry& f : rest) c.settings[f.key] = r_.ToJson(f.value, f.path);
    r_.Warn(e.key_node, e.path,
            fmt::format("kind '{}' is not built yet; backups of it will fail",
                        ComponentKindName(c.kind)));
  }
  if (!ok || !name) return;
  c.name = *name;
  plan_.components.push_back(std::move(c));
}

void PlanParser::ParseFiles(const MapEntry& e, const std::vector<MapEntry>& rest,
                            ComponentSpec& c) {
  bool has_paths = false;
  for (const MapEntry& f : rest) {
    if (f.key == "paths") {
      has_paths = true;
      std::optional<std::vector<std::string>> paths = r_.StringList(f.value, f.path);
      if (!paths) continue;
      if (paths->empty()) {
        r_.Error(f.value, f.path, "must list at least one path");
        continue;
      }
      for (size_t i = 0; i < paths->size(); ++i) {
        const std::string& p = (*paths)[i];
        if (p.empty() || p[0] != '/') {
          r_.Error(f.value[i], Index(f.path, i),
                   fmt::format("'{}' is not an absolute path; HINT: write the full path, "
                               "starting with '/'",
                               p));
        }
      }
      c.files.paths = std::move(*paths);
    } else if (f.key == "excludes") {
      if (auto ex = r_.StringList(f.value, f.path)) c.files.excludes = std::move(*ex);
    } else if (f.key == "one_file_system") {
      if (auto b = r_.Bool(f.value, f.path)) c.files.one_file_system = *b;
    } else {
      r_.UnknownKey(f, kFilesKeys);
    }
  }
  if (!has_paths) {
    r_.Error(e.value, Field(e.path, "paths"),
             "required key is missing; HINT: list the directories to save, e.g. "
             "'paths: [/etc/rag-system]'");
  }
}

void PlanParser::ParsePostgres(const MapEntry& e, const std::vector<MapEntry>& rest,
                               ComponentSpec& c) {
  PostgresSpec& pg = c.postgres;
  bool has_connection = false;
  auto absolute = [&](const MapEntry& f, std::string* out) {
    auto v = r_.String(f.value, f.path);
    if (!v) return;
    if (v->empty() || (*v)[0] != '/') {
      r_.Error(f.value, f.path, fmt::format("'{}' is not an absolute path", *v));
      return;
    }
    *out = *v;
  };
  for (const MapEntry& f : rest) {
    if (f.key == "mode") {
      if (auto m = r_.Choice(f.value, f.path, "mode", {"physical", "logical"}))
        pg.mode = *m == "logical" ? PostgresSpec::Mode::kLogical : PostgresSpec::Mode::kPhysical;
    } else if (f.key == "connection") {
      has_connection = true;
      auto v = r_.String(f.value, f.path);
      if (!v) continue;
      std::string lower = *v;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      bool uri = lower.rfind("postgres://", 0) == 0 || lower.rfind("postgresql://", 0) == 0;
      size_t at = lower.find('@');
      if (lower.find("password=") != std::string::npos ||
          (uri && at != std::string::npos && lower.substr(0, at).find(':', 13) != std::string::npos)) {
        r_.Error(f.value, f.path,
                 "holds a password; HINT: never write secrets in the plan: name a secret with "
                 "'password: <secret>' or use a .pgpass file");
        continue;
      }
      pg.connection = *v;
    } else if (f.key == "password") {
      if (auto v = r_.String(f.value, f.path)) {
        if (CheckReference(f.value, f.path, *v, "secret", "secrets", declared_secrets_))
          pg.password = *v;
      }
    } else if (f.key == "data_directory") {
      absolute(f, &pg.data_directory);
    } else if (f.key == "bin_dir") {
      absolute(f, &pg.bin_dir);
    } else if (f.key == "wal_spool") {
      absolute(f, &pg.wal_spool);
    } else if (f.key == "os_user") {
      if (auto v = r_.String(f.value, f.path)) pg.os_user = *v;
    } else if (f.key == "slot") {
      auto v = r_.String(f.value, f.path);
      if (!v) continue;
      bool okname = !v->empty() && v->size() <= 63 &&
                    std::all_of(v->begin(), v->end(), [](char ch) {
                      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
                    });
      if (!okname) {
        r_.Error(f.value, f.path,
                 fmt::format("'{}' is not a valid replication slot name (lower-case letters, "
                             "digits and '_', at most 63)",
                             *v));
        continue;
      }
      pg.slot = *v;
    } else if (f.key == "wal") {
      if (auto m = r_.Choice(f.value, f.path, "wal", {"stream", "archive_command"})) pg.wal = *m;
    } else if (f.key == "databases") {
      if (auto v = r_.StringList(f.value, f.path)) pg.databases = std::move(*v);
    } else if (f.key == "jobs") {
      if (auto v = r_.Int(f.value, f.path, 1, 64)) pg.jobs = static_cast<int>(*v);
    } else if (f.key == "start_command") {
      if (auto v = r_.String(f.value, f.path)) pg.start_command = *v;
    } else if (f.key == "controller") {
      c.settings[f.key] = r_.ToJson(f.value, f.path);  // issue 5: restart controllers
    } else {
      r_.UnknownKey(f, kPostgresKeys);
    }
  }
  if (!has_connection) {
    r_.Error(e.value, Field(e.path, "connection"),
             "required key is missing; HINT: a libpq connection string without password, e.g. "
             "'host=127.0.0.1 port=5432 user=postgres'");
  }
}

void PlanParser::ParseTiers(const MapEntry* e) {
  if (!e) {
    Tier all{"all", {}, {}};
    for (const ComponentSpec& c : plan_.components) all.components.push_back(c.name);
    plan_.tiers.push_back(std::move(all));
    return;
  }
  if (!r_.ExpectList(e->value, e->path)) return;
  if (e->value.size() == 0) {
    r_.Error(e->value, e->path,
             "must list at least one tier; HINT: remove 'tiers' to restore everything at once");
    return;
  }
  std::map<std::string, std::string> tier_of;  // component -> tier
  for (size_t i = 0; i < e->value.size(); ++i) {
    const YAML::Node item = e->value[i];
    std::string path = Index(e->path, i);
    std::map<std::string, MapEntry> keys = ByKey(r_.Entries(item, path, kTierKeys));
    if (!item.IsMap()) continue;
    Tier tier;
    tier.at = LocationOf(item);
    if (const MapEntry* n = Lookup(keys, "name")) {
      if (auto name = r_.Name(n->value, n->path, "tier")) {
        if (plan_.FindTier(*name)) {
          r_.Error(n->value, n->path, fmt::format("tier '{}' is defined twice", *name));
        }
        tier.name = *name;
      }
    } else {
      r_.Error(item, Field(path, "name"), "required key is missing");
    }
    if (const MapEntry* list = Lookup(keys, "components")) {
      std::optional<std::vector<std::string>> names = r_.StringList(list->value, list->path);
      for (size_t j = 0; names && j < names->size(); ++j) {
        const std::string& c = (*names)[j];
        const YAML::Node at = list->value[j];
        std::string at_path = Index(list->path, j);
        if (!CheckReference(at, at_path, c, "component", "components", declared_components_)) {
          continue;
        }
        auto [it, inserted] = tier_of.emplace(c, tier.name);
        if (!inserted) {
          r_.Error(at, at_path,
                   it->second == tier.name
                       ? fmt::format("component '{}' is listed twice in this tier", c)
                       : fmt::format("component '{}' is already in tier '{}'; a component "
                                     "belongs to exactly one tier",
                                     c, it->second));
          continue;
        }
        // A component whose definition had errors is not in the plan; its error is enough.
        if (plan_.FindComponent(c)) tier.components.push_back(c);
      }
      if (names && names->empty()) r_.Warn(list->value, list->path, "the tier is empty");
    } else {
      r_.Error(item, Field(path, "components"), "required key is missing");
    }
    if (const MapEntry* h = Lookup(keys, "health")) {
      if (r_.ExpectList(h->value, h->path)) {
        for (size_t j = 0; j < h->value.size(); ++j) {
          std::optional<HealthCheckSpec> c =
              failover_.ParseHealthCheck(h->value[j], Index(h->path, j));
          if (c) tier.health.push_back(std::move(*c));
        }
      }
    }
    plan_.tiers.push_back(std::move(tier));
  }
  if (plan_.tiers.empty()) return;
  Tier& last = plan_.tiers.back();
  for (const ComponentSpec& c : plan_.components) {
    if (tier_of.count(c.name)) continue;
    last.components.push_back(c.name);
    r_.Warn(c.at, Field("components", c.name),
            fmt::format("not in any tier; added to the last tier '{}'", last.name));
  }
}

}  // namespace

std::string PlanWarning::ToString() const {
  std::string out = file;
  if (at.line > 0) out += fmt::format(":{}:{}", at.line, at.column);
  out += ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

const DataClass* Objectives::FindClass(std::string_view name) const {
  for (const DataClass& c : rpo) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string_view SiteRoleName(SiteRole role) {
  switch (role) {
    case SiteRole::kPrimary:
      return "primary";
    case SiteRole::kWarm:
      return "warm";
    case SiteRole::kCold:
      return "cold";
  }
  return "unknown";
}

std::string_view HealthCheckKindName(HealthCheckSpec::Kind kind) {
  switch (kind) {
    case HealthCheckSpec::Kind::kHttp:
      return "http";
    case HealthCheckSpec::Kind::kTcp:
      return "tcp";
    case HealthCheckSpec::Kind::kPostgres:
      return "postgres";
    case HealthCheckSpec::Kind::kRedis:
      return "redis";
    case HealthCheckSpec::Kind::kCommand:
      return "command";
  }
  return "unknown";
}

const NotifyChannel* NotificationsSpec::FindChannel(std::string_view n) const {
  for (const auto& c : channels) {
    if (c.name == n) return &c;
  }
  return nullptr;
}

std::string_view ComponentKindName(ComponentKind kind) {
  size_t i = static_cast<size_t>(kind);
  return i < kKinds.size() ? kKinds[i] : "unknown";
}

bool ComponentKindBuilt(ComponentKind kind) {
  return true;  // every kind of kKinds
}

const ComponentSpec* Plan::FindComponent(std::string_view n) const {
  for (const auto& c : components) {
    if (c.name == n) return &c;
  }
  return nullptr;
}

const Site* Plan::FindSite(std::string_view n) const {
  for (const auto& s : sites) {
    if (s.name == n) return &s;
  }
  return nullptr;
}

const Secret* Plan::FindSecret(std::string_view n) const {
  for (const auto& s : secrets) {
    if (s.name == n) return &s;
  }
  return nullptr;
}

const Tier* Plan::FindTier(std::string_view n) const {
  for (const auto& t : tiers) {
    if (t.name == n) return &t;
  }
  return nullptr;
}

const Site* Plan::PrimarySite() const {
  for (const auto& s : sites) {
    if (s.role == SiteRole::kPrimary) return &s;
  }
  return nullptr;
}

RetentionPolicy Plan::RetentionFor(const Site& site) const {
  if (site.retention) return *site.retention;
  if (retention) return *retention;
  return RetentionPolicy{};
}

Result<Plan> ParsePlan(std::string_view text, std::string filename) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    PlanLocation at = LocationOf(e.mark);
    std::string where = filename;
    if (at.line > 0) where += fmt::format(":{}:{}", at.line, at.column);
    return InvalidArgument(fmt::format("{}: invalid YAML: {}", where, e.msg));
  }
  if (docs.size() > 1) {
    PlanLocation at = LocationOf(docs[1]);
    return InvalidArgument(fmt::format(
        "{}:{}:{}: the plan must be one YAML document; HINT: remove the '---' separator", filename,
        at.line, at.column));
  }
  YAML::Node root = docs.empty() ? YAML::Node() : docs[0];
  try {
    PlanParser parser(std::move(filename));
    return parser.Parse(root);
  } catch (const YAML::Exception& e) {
    // Reading a well-formed tree should not throw; if yaml-cpp does, say where.
    PlanLocation at = LocationOf(e.mark);
    return Internal(fmt::format("reading the plan at {}:{}: {}", at.line, at.column, e.msg));
  }
}

Result<Plan> LoadPlan(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return ErrnoError("open", path, errno);
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxPlanBytes) {
      std::fclose(f);
      return InvalidArgument(fmt::format("plan '{}' is larger than {}; is it the right file?", path,
                                         FormatSize(kMaxPlanBytes)));
    }
  }
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) return ErrnoError("read", path, err);
  return ParsePlan(text, path);
}

}  // namespace reprise
