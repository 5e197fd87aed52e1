// Parsing of the component kinds beyond files and postgres (redis, command, qdrant, s3) and of
// the consistency checks between components. Internal to
// src/plan/; reports through the shared Reader like the rest of the parser.
#pragma once

#include <string>
#include <vector>

#include "plan/plan.h"
#include "plan/yaml_reader.h"

namespace reprise::plan_internal {

class ComponentParser {
 public:
  ComponentParser(Reader& r, const std::vector<std::string>& secrets)
      : r_(r), secrets_(secrets) {}

  // `rest`: the component's keys other than kind and class.
  void ParseRedis(const MapEntry& e, const std::vector<MapEntry>& rest, ComponentSpec& c);
  void ParseCommand(const MapEntry& e, const std::vector<MapEntry>& rest, ComponentSpec& c);
  void ParseQdrant(const MapEntry& e, const std::vector<MapEntry>& rest, ComponentSpec& c);
  void ParseS3(const MapEntry& e, const std::vector<MapEntry>& rest, ComponentSpec& c);
  // The top-level `consistency` list; needs the components parsed already.
  void ParseConsistency(const MapEntry& e, Plan& plan);

 private:
  bool SecretRef(const YAML::Node& node, const std::string& path, std::string& out);
  std::optional<std::string> AbsolutePath(const MapEntry& f);

  Reader& r_;
  const std::vector<std::string>& secrets_;
};

}  // namespace reprise::plan_internal
