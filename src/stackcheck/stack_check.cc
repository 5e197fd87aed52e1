#include "stackcheck/stack_check.h"

#include <chrono>
#include <unordered_set>

#include "components/s3/s3_documents.h"

namespace reprise::stackcheck {

namespace {

nlohmann::json SideJson(const ConsistencyCheck::Side& side) {
  nlohmann::json j = {{"component", side.component}, {"query", side.query}};
  if (!side.field.empty()) j["field"] = side.field;
  return j;
}

// Values already tested, bounded: cleared when full (a later repeat is then tested again,
// which costs a request, never a wrong answer).
class SeenCache {
 public:
  explicit SeenCache(size_t limit) : limit_(limit) {}
  bool Contains(const std::string& v) const { return set_.contains(v); }
  void Add(const std::string& v) {
    if (limit_ == 0) return;
    if (set_.size() >= limit_) set_.clear();
    set_.insert(v);
  }

 private:
  size_t limit_;
  std::unordered_set<std::string> set_;
};

Result<std::string> SecretOf(const SecretLookup& secrets, const std::string& name,
                             const std::string& component) {
  if (name.empty()) return std::string();
  if (!secrets) return FailedPrecondition("component '" + component + "': no secrets available");
  auto v = secrets(name);
  if (!v.ok()) return v.status().WithContext("component '" + component + "'");
  return *v;
}

}  // namespace

nlohmann::json CheckResult::ToJson() const {
  nlohmann::json j = {{"name", name},
                      {"each", SideJson(each)},
                      {"exists_in", SideJson(exists_in)},
                      {"ok", passed()},
                      {"examined", examined},
                      {"tested", tested},
                      {"orphans", orphans},
                      {"orphans_approximate", orphans_approximate},
                      {"first_orphans", first_orphans},
                      {"seconds", seconds},
                      {"error", nullptr}};
  if (!error.ok()) j["error"] = error.message();
  return j;
}

CheckResult RunCheck(const ConsistencyCheck& check, ValueSource& each, MembershipTest& exists_in,
                     const CheckOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  CheckResult r;
  r.name = check.name;
  r.each = check.each;
  r.exists_in = check.exists_in;
  SeenCache seen(options.cache_entries);
  std::unordered_set<std::string> orphan_set;
  const size_t batch_size = std::max<size_t>(1, options.batch_size);

  Status status = each.Each(batch_size, [&](std::vector<std::string> batch) -> Status {
    r.examined += batch.size();
    // Ask only for values not tested yet, each once per batch.
    std::vector<std::string> ask;
    std::unordered_set<std::string> in_batch;
    for (std::string& v : batch) {
      if (seen.Contains(v) || !in_batch.insert(v).second) continue;
      ask.push_back(std::move(v));
    }
    if (!ask.empty()) {
      ASSIGN_OR_RETURN(std::vector<bool> found, exists_in.Find(ask));
      if (found.size() != ask.size()) {
        return Internal("the membership test of component '" + check.exists_in.component +
                        "' answered " + std::to_string(found.size()) + " of " +
                        std::to_string(ask.size()) + " values");
      }
      r.tested += ask.size();
      for (size_t i = 0; i < ask.size(); ++i) {
        seen.Add(ask[i]);
        if (found[i]) continue;
        if (orphan_set.size() < kMaxDistinctOrphans) {
          if (!orphan_set.insert(ask[i]).second) continue;  // counted when first seen
        } else {
          r.orphans_approximate = true;
        }
        ++r.orphans;
        if (r.first_orphans.size() < options.max_orphans) r.first_orphans.push_back(ask[i]);
      }
    }
    if (options.progress) options.progress(check.name, r.examined);
    return Status::Ok();
  });
  r.error = status;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

Result<Endpoint> ResolveEndpoint(const Plan& plan, const std::string& component,
                                 const Site* site, const SecretLookup& secrets,
                                 const CheckOptions& options) {
  const ComponentSpec* spec = plan.FindComponent(component);
  if (!spec) return InvalidArgument("'" + component + "' is not a component of the plan");
  Endpoint e;
  e.component = component;
  e.kind = spec->kind;
  e.timeout = options.timeout;
  // The site's address for this kind, or "" to use the component's own.
  auto from_site = [&](const std::string& address, const char* key) -> Result<bool> {
    if (!site) return false;
    if (!address.empty()) return true;
    if (site->role == SiteRole::kPrimary) return false;
    return FailedPrecondition("site '" + site->name + "' has no endpoints." + key +
                              " to check component '" + component + "' on: HINT: add it to "
                              "sites." + site->name + ".endpoints, or run without --site");
  };
  switch (spec->kind) {
    case ComponentKind::kPostgres: {
      ASSIGN_OR_RETURN(bool use_site, from_site(site ? site->endpoints.postgres : "", "postgres"));
      e.address = use_site ? site->endpoints.postgres : spec->postgres.connection;
      const std::string& secret =
          use_site ? site->endpoints.postgres_password : spec->postgres.password;
      ASSIGN_OR_RETURN(e.password, SecretOf(secrets, secret, component));
      break;
    }
    case ComponentKind::kRedis: {
      ASSIGN_OR_RETURN(bool use_site, from_site(site ? site->endpoints.redis : "", "redis"));
      e.address = use_site ? site->endpoints.redis : spec->redis.connection;
      const std::string& secret = use_site ? site->endpoints.redis_password : spec->redis.password;
      ASSIGN_OR_RETURN(e.password, SecretOf(secrets, secret, component));
      break;
    }
    case ComponentKind::kQdrant: {
      ASSIGN_OR_RETURN(bool use_site, from_site(site ? site->endpoints.qdrant : "", "qdrant"));
      e.address = use_site ? site->endpoints.qdrant : spec->qdrant.url;
      e.ca_file = spec->qdrant.ca_file;
      ASSIGN_OR_RETURN(e.password, SecretOf(secrets, spec->qdrant.api_key, component));
      break;
    }
    case ComponentKind::kS3: {
      ASSIGN_OR_RETURN(bool use_site,
                       from_site(site ? site->endpoints.documents : "", "documents"));
      e.address = use_site ? site->endpoints.documents : spec->s3.url;
      if (!spec->s3.credentials.empty()) {
        ASSIGN_OR_RETURN(std::string text, SecretOf(secrets, spec->s3.credentials, component));
        ASSIGN_OR_RETURN(StorageCredentials c,
                         ParseCredentialsSecret(text, "secret '" + spec->s3.credentials +
                                                          "' of component '" + component + "'"));
        e.credentials = std::move(c);
      }
      break;
    }
    default:
      return InvalidArgument("component '" + component + "' is of kind '" +
                             std::string(ComponentKindName(spec->kind)) +
                             "'; checks read postgres, qdrant, s3 and redis components");
  }
  if (e.address.empty()) {
    return FailedPrecondition("component '" + component + "' has no address to check" +
                              (site ? " on site '" + site->name + "'" : std::string()));
  }
  return e;
}

CheckResult RunPlanCheck(const Plan& plan, const ConsistencyCheck& check, const Site* site,
                         const SecretLookup& secrets, const CheckOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto not_run = [&](const Status& s) {
    CheckResult r;
    r.name = check.name;
    r.each = check.each;
    r.exists_in = check.exists_in;
    r.error = s;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
  };
  auto each_ep = ResolveEndpoint(plan, check.each.component, site, secrets, options);
  if (!each_ep.ok()) return not_run(each_ep.status());
  auto exists_ep = ResolveEndpoint(plan, check.exists_in.component, site, secrets, options);
  if (!exists_ep.ok()) return not_run(exists_ep.status());
  // The membership side first: a test that cannot connect fails before any values stream.
  auto test = OpenMembershipTest(*exists_ep, check.exists_in);
  if (!test.ok()) return not_run(test.status());
  auto source = OpenValueSource(*each_ep, check.each);
  if (!source.ok()) return not_run(source.status());
  CheckResult r = RunCheck(check, **source, **test, options);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace reprise::stackcheck
