#include "plan/failover_parse.h"

#include <algorithm>
#include <limits>
#include <regex>

#include <fmt/format.h>

#include "common/duration.h"

namespace reprise::plan_internal {

const std::vector<std::string_view> kFailoverSiteKeys = {
    "endpoints", "health", "dns_value", "monitoring", "provision", "fence_command", "rebuild"};

namespace {

const std::vector<std::string_view> kEndpointKeys = {
    "postgres", "postgres_password", "redis", "redis_password", "qdrant", "documents"};
const std::vector<std::string_view> kHealthKinds = {"http", "tcp", "postgres", "redis",
                                                    "command"};
const std::vector<std::string_view> kHealthKeys = {
    "http",    "tcp",           "postgres", "redis",           "command", "name",
    "timeout", "expect_status", "expect_body", "ca_file",     "role",    "max_lag",
    "max_lag_seconds", "password"};
const std::vector<std::string_view> kFailoverKeys = {
    "dns", "max_lag", "catchup_timeout", "monitoring_file", "state_dir", "monitor", "confirm"};
const std::vector<std::string_view> kDnsKeys = {
    "provider", "server", "zone", "record", "type", "ttl", "tsig", "url", "resolvers",
    "propagation_timeout", "hosted_zone_id", "endpoint", "credentials"};
const std::vector<std::string_view> kMonitorKeys = {"interval", "failure_threshold", "quorum",
                                                    "lease_ttl", "election_key"};
const std::vector<std::string_view> kChannelKeys = {"slack", "webhook", "smtp", "from", "to",
                                                    "credentials"};
const std::vector<std::string_view> kRouteKeys = {"on", "to"};

bool Has(const std::vector<std::string_view>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

std::string Absolute(std::string name) {
  if (!name.empty() && name.back() != '.') name += '.';
  return name;
}

bool HasPassword(const std::string& url) {
  // scheme://user:password@host or a conninfo "password=..."
  static const std::regex kUserInfo("[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@.*");
  return std::regex_match(url, kUserInfo) || url.find("password=") != std::string::npos;
}

}  // namespace

bool FailoverParser::SecretRef(const YAML::Node& node, const std::string& path,
                              std::string& out) {
  std::optional<std::string> name = SecretName(r_, node, path, secrets_);
  if (name) out = *name;
  return name.has_value();
}

bool FailoverParser::StringOrSecret(const MapEntry& e, std::string& literal,
                                    std::string& secret) {
  if (e.value.IsMap()) {
    bool ok = false;
    bool seen = false;
    for (const MapEntry& s : r_.Entries(e.value, e.path, {"secret"})) {
      seen = true;
      ok = SecretRef(s.value, s.path, secret);
    }
    if (!seen) r_.Error(e.value, e.path, "expected a string or {secret: NAME}");
    return ok;
  }
  std::optional<std::string> s = r_.NonEmptyString(e.value, e.path);
  if (!s) return false;
  literal = *s;
  return true;
}

std::optional<uint64_t> FailoverParser::Size(const YAML::Node& node, const std::string& path) {
  std::optional<std::string> s = r_.String(node, path);
  if (!s) return std::nullopt;
  Result<uint64_t> n = ParseSize(*s);
  if (!n.ok()) {
    r_.Error(node, path, n.status().message());
    return std::nullopt;
  }
  return *n;
}

bool FailoverParser::ParseSiteKey(const MapEntry& f, Site& site) {
  if (f.key == "endpoints") {
    bool ok = f.value.IsMap();
    for (const MapEntry& p : r_.Entries(f.value, f.path, kEndpointKeys)) {
      if (p.key == "postgres_password" || p.key == "redis_password") {
        std::string& out =
            p.key == "postgres_password" ? site.endpoints.postgres_password
                                         : site.endpoints.redis_password;
        ok = SecretRef(p.value, p.path, out) && ok;
        continue;
      }
      std::optional<std::string> v = r_.NonEmptyString(p.value, p.path);
      if (!v) {
        ok = false;
      } else if (HasPassword(*v)) {
        r_.Error(p.value, p.path,
                 fmt::format("passwords may not be written in the plan; HINT: remove it and "
                             "name a secret in {}_password",
                             p.key));
        ok = false;
      } else if (p.key == "postgres") {
        site.endpoints.postgres = *v;
      } else if (p.key == "redis") {
        site.endpoints.redis = *v;
      } else {
        (p.key == "qdrant" ? site.endpoints.qdrant : site.endpoints.documents) = *v;
        r_.Warn(p.key_node, p.path, "accepted but not used yet (the whole-stack restore to "
                                    "another site is not built)");
      }
    }
    return ok;
  }
  if (f.key == "health") {
    if (!r_.ExpectList(f.value, f.path)) return false;
    bool ok = true;
    for (size_t i = 0; i < f.value.size(); ++i) {
      std::optional<HealthCheckSpec> c = ParseHealthCheck(f.value[i], Index(f.path, i));
      if (c) {
        site.health.push_back(std::move(*c));
      } else {
        ok = false;
      }
    }
    return ok;
  }
  if (f.key == "dns_value") {
    std::optional<std::string> v = r_.NonEmptyString(f.value, f.path);
    if (v) site.dns_value = *v;
    return v.has_value();
  }
  if (f.key == "monitoring") {
    std::optional<std::vector<std::string>> v = r_.StringList(f.value, f.path, true);
    if (v) site.monitoring = *v;
    return v.has_value();
  }
  if (f.key == "provision") {
    std::optional<std::vector<std::string>> v = r_.StringList(f.value, f.path, true);
    if (v) site.provision = *v;
    return v.has_value();
  }
  if (f.key == "rebuild") {
    RebuildSpec spec;
    bool ok = f.value.IsMap();
    bool has_dir = false;
    for (const MapEntry& k : r_.Entries(f.value, f.path,
                                        {"data_directory", "bin_dir", "os_user", "start_command",
                                         "stop_command", "primary_conninfo"})) {
      std::optional<std::string> v = r_.NonEmptyString(k.value, k.path);
      if (!v) {
        ok = false;
        continue;
      }
      if ((k.key == "data_directory" || k.key == "bin_dir") && (*v)[0] != '/') {
        r_.Error(k.value, k.path, fmt::format("'{}' is not an absolute path", *v));
        ok = false;
        continue;
      }
      if (k.key == "primary_conninfo" && HasPassword(*v)) {
        r_.Error(k.value, k.path, "passwords may not be written in the plan; HINT: use a "
                                  ".pgpass file of the server's user");
        ok = false;
        continue;
      }
      if (k.key == "data_directory") {
        spec.data_directory = *v;
        has_dir = true;
      }
      if (k.key == "bin_dir") spec.bin_dir = *v;
      if (k.key == "os_user") spec.os_user = *v;
      if (k.key == "start_command") spec.start_command = *v;
      if (k.key == "stop_command") spec.stop_command = *v;
      if (k.key == "primary_conninfo") spec.primary_conninfo = *v;
    }
    if (f.value.IsMap() && !has_dir) {
      r_.Error(f.value, Field(f.path, "data_directory"), "required key is missing");
      ok = false;
    }
    if (ok) site.rebuild = spec;
    return ok;
  }
  if (f.key == "fence_command") {
    std::optional<std::string> v = r_.NonEmptyString(f.value, f.path);
    if (v) site.fence_command = *v;
    return v.has_value();
  }
  return true;
}

std::optional<HealthCheckSpec> FailoverParser::ParseHealthCheck(const YAML::Node& node,
                                                                const std::string& path) {
  if (!r_.ExpectMap(node, path)) return std::nullopt;
  HealthCheckSpec spec;
  spec.at = LocationOf(node);
  bool ok = true;
  int kinds = 0;
  std::optional<std::string> role;
  for (const MapEntry& k : r_.Entries(node, path, kHealthKeys)) {
    if (Has(kHealthKinds, k.key)) {
      ++kinds;
      std::optional<std::string> target = r_.NonEmptyString(k.value, k.path);
      if (!target) {
        ok = false;
        continue;
      }
      if (k.key != "command" && HasPassword(*target)) {
        r_.Error(k.value, k.path,
                 "passwords may not be written in the plan; HINT: remove it and name a secret "
                 "in 'password'");
        ok = false;
        continue;
      }
      spec.target = *target;
      if (k.key == "http") {
        spec.kind = HealthCheckSpec::Kind::kHttp;
        if (target->rfind("http://", 0) != 0 && target->rfind("https://", 0) != 0) {
          r_.Error(k.value, k.path,
                   fmt::format("'{}' is not an http:// or https:// URL", *target));
          ok = false;
        }
      } else if (k.key == "tcp") {
        spec.kind = HealthCheckSpec::Kind::kTcp;
        static const std::regex kHostPort("(\\[[0-9a-fA-F:]+\\]|[^:\\s]+):[0-9]{1,5}");
        if (!std::regex_match(*target, kHostPort)) {
          r_.Error(k.value, k.path, fmt::format("expected host:port, got '{}'", *target));
          ok = false;
        }
      } else if (k.key == "postgres") {
        spec.kind = HealthCheckSpec::Kind::kPostgres;
      } else if (k.key == "redis") {
        spec.kind = HealthCheckSpec::Kind::kRedis;
      } else {
        spec.kind = HealthCheckSpec::Kind::kCommand;
      }
    } else if (k.key == "name") {
      if (auto s = r_.NonEmptyString(k.value, k.path)) spec.name = *s; else ok = false;
    } else if (k.key == "timeout") {
      std::optional<std::chrono::seconds> d = r_.Duration(k.value, k.path);
      if (d && d->count() > 0) {
        spec.timeout = *d;
      } else {
        if (d) r_.Error(k.value, k.path, "must be longer than 0s");
        ok = false;
      }
    } else if (k.key == "expect_status") {
      if (auto n = r_.Int(k.value, k.path, 100, 599)) spec.expect_status = static_cast<int>(*n);
      else ok = false;
    } else if (k.key == "expect_body") {
      if (auto s = r_.String(k.value, k.path)) spec.expect_body = *s; else ok = false;
    } else if (k.key == "ca_file") {
      if (auto s = r_.NonEmptyString(k.value, k.path)) spec.ca_file = *s; else ok = false;
    } else if (k.key == "role") {
      role = r_.Choice(k.value, k.path, "role", {"primary", "replica", "any"});
      if (!role) ok = false;
      if (role == "primary") spec.expect_primary = true;
      if (role == "replica") spec.expect_primary = false;
    } else if (k.key == "max_lag") {
      if (auto n = Size(k.value, k.path)) spec.max_lag_bytes = *n; else ok = false;
    } else if (k.key == "max_lag_seconds") {
      if (auto d = r_.Duration(k.value, k.path)) spec.max_lag_seconds = *d; else ok = false;
    } else if (k.key == "password") {
      ok = SecretRef(k.value, k.path, spec.password) && ok;
    }
  }
  if (kinds != 1) {
    r_.Error(node, path,
             kinds == 0 ? "a health check needs one of: http, tcp, postgres, redis, command"
                        : "a health check has exactly one of: http, tcp, postgres, redis, "
                          "command");
    return std::nullopt;
  }
  bool db = spec.kind == HealthCheckSpec::Kind::kPostgres ||
            spec.kind == HealthCheckSpec::Kind::kRedis;
  if (!db && (role || spec.max_lag_bytes || spec.max_lag_seconds || !spec.password.empty())) {
    r_.Error(node, path, "role, max_lag, max_lag_seconds and password apply to postgres and "
                         "redis checks only");
    ok = false;
  }
  if (spec.kind != HealthCheckSpec::Kind::kHttp &&
      (spec.expect_body.size() || spec.ca_file.size() || spec.expect_status != 200)) {
    r_.Error(node, path, "expect_status, expect_body and ca_file apply to http checks only");
    ok = false;
  }
  if (!ok) return std::nullopt;
  if (spec.name.empty()) {
    spec.name = fmt::format("{} {}", HealthCheckKindName(spec.kind), spec.target);
  }
  return spec;
}

void FailoverParser::ParseFailover(const MapEntry& e, FailoverSpec& out) {
  out.present = true;
  out.at = LocationOf(e.key_node);
  for (const MapEntry& f : r_.Entries(e.value, e.path, kFailoverKeys)) {
    if (f.key == "dns") {
      DnsSpec dns;
      dns.at = LocationOf(f.key_node);
      bool ok = f.value.IsMap();
      bool webhook = false;
      bool route53 = false;
      for (const MapEntry& d : r_.Entries(f.value, f.path, kDnsKeys)) {
        if (d.key == "provider") {
          std::optional<std::string> p =
              r_.Choice(d.value, d.path, "provider", {"rfc2136", "webhook", "route53"});
          if (p == "route53") {
            dns.provider = DnsSpec::Provider::kRoute53;
            route53 = true;
          } else if (p == "webhook") {
            dns.provider = DnsSpec::Provider::kWebhook;
            webhook = true;
          } else if (!p) {
            ok = false;
          }
        } else if (d.key == "server") {
          if (auto s = r_.NonEmptyString(d.value, d.path)) dns.server = *s; else ok = false;
        } else if (d.key == "zone") {
          if (auto s = r_.NonEmptyString(d.value, d.path)) dns.zone = Absolute(*s); else ok = false;
        } else if (d.key == "record") {
          if (auto s = r_.NonEmptyString(d.value, d.path)) dns.record = Absolute(*s);
          else ok = false;
        } else if (d.key == "type") {
          if (auto s = r_.Choice(d.value, d.path, "record type", {"A", "AAAA", "CNAME"})) {
            dns.type = *s;
          } else {
            ok = false;
          }
        } else if (d.key == "ttl") {
          if (auto n = r_.Int(d.value, d.path, 0, 86400)) dns.ttl = static_cast<int>(*n);
          else ok = false;
        } else if (d.key == "tsig") {
          if (!d.value.IsMap()) {
            r_.Error(d.value, d.path, "expected {secret: NAME} (the secret holds "
                                      "'[algorithm:]keyname:base64secret')");
            ok = false;
          } else {
            for (const MapEntry& s : r_.Entries(d.value, d.path, {"secret"})) {
              ok = SecretRef(s.value, s.path, dns.tsig_secret) && ok;
            }
          }
        } else if (d.key == "url") {
          ok = StringOrSecret(d, dns.url, dns.url_secret) && ok;
        } else if (d.key == "resolvers") {
          if (auto v = r_.StringList(d.value, d.path, true)) dns.resolvers = *v; else ok = false;
        } else if (d.key == "hosted_zone_id") {
          if (auto s = r_.NonEmptyString(d.value, d.path)) dns.hosted_zone_id = *s; else ok = false;
        } else if (d.key == "endpoint") {
          if (auto s = r_.NonEmptyString(d.value, d.path)) dns.endpoint = *s; else ok = false;
        } else if (d.key == "credentials") {
          ok = SecretRef(d.value, d.path, dns.credentials_secret) && ok;
        } else if (d.key == "propagation_timeout") {
          if (auto t = r_.Duration(d.value, d.path)) dns.propagation_timeout = *t; else ok = false;
        }
      }
      if (!f.value.IsMap()) continue;
      if (dns.record.empty()) {
        r_.Error(f.value, Field(f.path, "record"), "required key is missing");
        ok = false;
      }
      if (route53 && dns.hosted_zone_id.empty()) {
        r_.Error(f.value, Field(f.path, "hosted_zone_id"),
                 "the route53 provider needs the hosted zone's id, e.g. 'Z0123456789ABC'");
        ok = false;
      }
      if (!webhook && !route53 && (dns.server.empty() || dns.zone.empty())) {
        r_.Error(f.value, f.path, "rfc2136 needs 'server' (host:port) and 'zone'");
        ok = false;
      }
      if (webhook && dns.url.empty() && dns.url_secret.empty()) {
        r_.Error(f.value, Field(f.path, "url"), "the webhook provider needs a url");
        ok = false;
      }
      if (!dns.zone.empty() && !dns.record.empty() && dns.record != dns.zone &&
          (dns.record.size() <= dns.zone.size() ||
           dns.record.compare(dns.record.size() - dns.zone.size() - 1, std::string::npos,
                              "." + dns.zone) != 0)) {
        r_.Error(f.value, Field(f.path, "record"),
                 fmt::format("'{}' is not inside zone '{}'", dns.record, dns.zone));
        ok = false;
      }
      if (ok) out.dns = std::move(dns);
    } else if (f.key == "max_lag") {
      if (auto n = Size(f.value, f.path)) out.max_lag_bytes = *n;
    } else if (f.key == "catchup_timeout") {
      if (auto d = r_.Duration(f.value, f.path)) out.catchup_timeout = *d;
    } else if (f.key == "monitoring_file") {
      std::optional<std::string> s = r_.NonEmptyString(f.value, f.path);
      if (s && (*s)[0] != '/') {
        r_.Error(f.value, f.path, fmt::format("'{}' is not an absolute path", *s));
      } else if (s) {
        out.monitoring_file = *s;
      }
    } else if (f.key == "state_dir") {
      std::optional<std::string> s = r_.NonEmptyString(f.value, f.path);
      if (s && (*s)[0] != '/') {
        r_.Error(f.value, f.path, fmt::format("'{}' is not an absolute path", *s));
      } else if (s) {
        out.state_dir = *s;
      }
    } else if (f.key == "confirm") {
      // The only confirmation there is: the operator types the target site's name.
      (void)r_.Choice(f.value, f.path, "confirmation", {"typed-site-name"});
    } else if (f.key == "monitor") {
      for (const MapEntry& m : r_.Entries(f.value, f.path, kMonitorKeys)) {
        if (m.key == "interval" || m.key == "lease_ttl") {
          std::optional<std::chrono::seconds> d = r_.Duration(m.value, m.path);
          if (d && d->count() == 0) {
            r_.Error(m.value, m.path, "must be longer than 0s");
          } else if (d) {
            (m.key == "interval" ? out.monitor.interval : out.monitor.lease_ttl) = *d;
          }
        } else if (m.key == "failure_threshold") {
          if (auto n = r_.Int(m.value, m.path, 1, 1000)) {
            out.monitor.failure_threshold = static_cast<int>(*n);
          }
        } else if (m.key == "election_key") {
          if (auto s = r_.NonEmptyString(m.value, m.path)) out.monitor.election_key = *s;
        } else if (m.key == "quorum") {
          for (const MapEntry& q : r_.Entries(m.value, m.path, {"etcd"})) {
            if (auto v = r_.StringList(q.value, q.path, true)) out.monitor.etcd = *v;
          }
        }
      }
    }
  }
}

void FailoverParser::ParseNotifications(const MapEntry& e, NotificationsSpec& out) {
  for (const MapEntry& f : r_.Entries(e.value, e.path, {"channels", "routes"})) {
    if (f.key == "channels") {
      for (const MapEntry& c : r_.Entries(f.value, f.path)) {
        std::optional<std::string> name = r_.Name(c.key_node, c.path, "channel");
        declared_channels_.push_back(c.key);
        NotifyChannel ch;
        ch.at = LocationOf(c.key_node);
        bool ok = c.value.IsMap();
        int kinds = 0;
        for (const MapEntry& k : r_.Entries(c.value, c.path, kChannelKeys)) {
          if (k.key == "slack" || k.key == "webhook" || k.key == "smtp") {
            ++kinds;
            ch.kind = k.key == "slack"     ? NotifyChannel::Kind::kSlack
                      : k.key == "webhook" ? NotifyChannel::Kind::kWebhook
                                           : NotifyChannel::Kind::kSmtp;
            ok = StringOrSecret(k, ch.url, ch.url_secret) && ok;
            if (k.key == "smtp" && !ch.url.empty() && ch.url.rfind("smtp://", 0) != 0 &&
                ch.url.rfind("smtps://", 0) != 0) {
              r_.Error(k.value, k.path,
                       fmt::format("'{}' is not an smtp:// or smtps:// URL", ch.url));
              ok = false;
            }
          } else if (k.key == "from") {
            if (auto s = r_.NonEmptyString(k.value, k.path)) ch.from = *s; else ok = false;
          } else if (k.key == "to") {
            if (auto v = r_.StringList(k.value, k.path, true)) ch.to = *v; else ok = false;
          } else if (k.key == "credentials") {
            ok = SecretRef(k.value, k.path, ch.credentials) && ok;
          }
        }
        if (!c.value.IsMap()) continue;
        if (kinds != 1) {
          r_.Error(c.value, c.path, "a channel has exactly one of: slack, webhook, smtp");
          ok = false;
        } else if (ch.kind == NotifyChannel::Kind::kSmtp && (ch.from.empty() || ch.to.empty())) {
          r_.Error(c.value, c.path, "an smtp channel needs 'from' and 'to'");
          ok = false;
        }
        if (ok && name) {
          ch.name = *name;
          out.channels.push_back(std::move(ch));
        }
      }
    } else if (f.key == "routes") {
      if (!r_.ExpectList(f.value, f.path)) continue;
      for (size_t i = 0; i < f.value.size(); ++i) {
        std::string path = Index(f.path, i);
        NotifyRoute route;
        for (const MapEntry& k : r_.Entries(f.value[i], path, kRouteKeys)) {
          std::optional<std::vector<std::string>> v = r_.StringList(k.value, k.path, true);
          if (!v) continue;
          if (k.key == "on") route.on = *v;
          if (k.key == "to") {
            route.to = *v;
            for (size_t j = 0; j < v->size(); ++j) {
              route_targets_.emplace_back((*v)[j],
                                          k.value.IsSequence() ? k.value[j] : k.value);
            }
          }
        }
        if (f.value[i].IsMap() && (route.on.empty() || route.to.empty())) {
          r_.Error(f.value[i], path, "a route needs 'on' (event patterns) and 'to' (channels)");
        }
        out.routes.push_back(std::move(route));
      }
    }
  }
}

void FailoverParser::CheckPlan(const Plan& plan, const YAML::Node& root) {
  std::vector<std::string_view> names;
  for (const NotifyChannel& c : plan.notifications.channels) names.push_back(c.name);
  for (const auto& [name, node] : route_targets_) {
    if (std::find(declared_channels_.begin(), declared_channels_.end(), name) !=
        declared_channels_.end()) {
      continue;
    }
    std::string message = fmt::format("channel '{}' is not defined in notifications.channels",
                                      name);
    if (auto guess = Suggest(name, names)) message += fmt::format(" (did you mean '{}'?)", *guess);
    r_.Error(node, "notifications.routes", message);
  }
  if (plan.failover.dns) {
    for (const Site& s : plan.sites) {
      if (s.dns_value.empty()) {
        r_.Warn(s.at, Field(Field("sites", s.name), "dns_value"),
                "failover.dns is set but this site has no dns_value: failing over to it "
                "will not switch DNS");
      }
    }
  }
}

}  // namespace reprise::plan_internal
