// Parsing of the plan's failover pieces: the per-site keys (endpoints, health, dns_value,
// monitoring, provision, fence_command) and the top-level failover and notifications
// sections. Internal to src/plan/; reports through the shared Reader like the rest of the
// parser, so every problem carries its file:line:col.
#pragma once

#include <string>
#include <vector>

#include "plan/plan.h"
#include "plan/yaml_reader.h"

namespace reprise::plan_internal {

// Keys of a site handled here.
extern const std::vector<std::string_view> kFailoverSiteKeys;

class FailoverParser {
 public:
  // `secrets`: every name declared under secrets (valid or not).
  FailoverParser(Reader& r, const std::vector<std::string>& secrets)
      : r_(r), secrets_(secrets) {}

  // One of kFailoverSiteKeys of a site. Returns false when the value was invalid.
  bool ParseSiteKey(const MapEntry& f, Site& site);
  void ParseFailover(const MapEntry& e, FailoverSpec& out);
  void ParseNotifications(const MapEntry& e, NotificationsSpec& out);
  // Checks that need the whole plan: routes naming channels, DNS values per site.
  void CheckPlan(const Plan& plan, const YAML::Node& root);
  // One health check (a site's or a tier's).
  std::optional<HealthCheckSpec> ParseHealthCheck(const YAML::Node& node,
                                                  const std::string& path);

 private:
  // A value that is either a literal string or {secret: name}: sets exactly one of the two.
  bool StringOrSecret(const MapEntry& e, std::string& literal, std::string& secret);
  bool SecretRef(const YAML::Node& node, const std::string& path, std::string& out);
  std::optional<uint64_t> Size(const YAML::Node& node, const std::string& path);

  Reader& r_;
  const std::vector<std::string>& secrets_;
  std::vector<std::pair<std::string, YAML::Node>> route_targets_;  // channel name, node
  std::vector<std::string> declared_channels_;  // valid or not
};

}  // namespace reprise::plan_internal
