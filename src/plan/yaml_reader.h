// Reading typed fields out of a yaml-cpp tree while collecting every problem with its place.
// Internal to src/plan/; the rest of reprise sees only plan.h.
//
// Every reader takes the node and its field path ("sites.dr.retention.keep_daily",
// "tiers[0].components[2]"), reports a problem as "file:line:col: path: message", and returns
// std::nullopt on error so the caller can go on and find the next one.
// Nothing here throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "plan/plan.h"

namespace reprise::plan_internal {

// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string Field(std::string_view path, std::string_view key);
// "tiers" + 2 -> "tiers[2]".
std::string Index(std::string_view path, size_t i);

// Levenshtein distance, ASCII case-insensitive.
size_t EditDistance(std::string_view a, std::string_view b);
// The candidate closest to `word` when close enough to be a likely typo, else nullopt.
std::optional<std::string> Suggest(std::string_view word,
                                   const std::vector<std::string_view>& candidates);
// "a, b, c"
std::string JoinNames(const std::vector<std::string_view>& names);
std::string JoinNames(const std::vector<std::string>& names);

// Names of plan objects (components, sites, tiers, classes, secrets): [a-z0-9][a-z0-9_-]*,
// at most 63 characters.
bool IsValidName(std::string_view name);

class Reader;
// The name of a secret written at `node`, when it is one of `declared` (every name written
// under secrets); otherwise reports "secret 'x' is not defined in secrets (did you mean ...)".
std::optional<std::string> SecretName(Reader& r, const YAML::Node& node, std::string_view path,
                                      const std::vector<std::string>& declared);

PlanLocation LocationOf(const YAML::Mark& mark);
PlanLocation LocationOf(const YAML::Node& node);

// One key/value pair of a YAML map, in document order.
struct MapEntry {
  std::string key;
  std::string path;  // field path of the value
  YAML::Node key_node;
  YAML::Node value;
};

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  void Error(PlanLocation at, std::string_view path, std::string message);
  void Error(const YAML::Node& at, std::string_view path, std::string message) {
    Error(LocationOf(at), path, std::move(message));
  }
  void Warn(PlanLocation at, std::string_view path, std::string message);
  void Warn(const YAML::Node& at, std::string_view path, std::string message) {
    Warn(LocationOf(at), path, std::move(message));
  }
  bool has_errors() const { return !errors_.empty(); }
  // OK, or kInvalidArgument listing every error one per line, sorted by position.
  Status ToStatus() const;
  // Warnings sorted by position.
  std::vector<PlanWarning> TakeWarnings();

  // Type checks that report "expected a map, got a list" and the like.
  bool ExpectMap(const YAML::Node& node, std::string_view path);
  bool ExpectList(const YAML::Node& node, std::string_view path);

  // The entries of a map in document order. Reports non-scalar and duplicate keys (and skips
  // them). Keys not in `known` are reported as unknown, with a "did you mean" suggestion, and
  // skipped. An empty `known` accepts any key (for maps keyed by user-chosen names).
  std::vector<MapEntry> Entries(const YAML::Node& map, std::string_view path,
                                const std::vector<std::string_view>& known = {});
  // Reports `entry` as an unknown key, suggesting the closest of `known`.
  void UnknownKey(const MapEntry& entry, const std::vector<std::string_view>& known);

  std::optional<std::string> String(const YAML::Node& node, std::string_view path);
  // A string that must be non-empty.
  std::optional<std::string> NonEmptyString(const YAML::Node& node, std::string_view path);
  // A string that names a plan object (see IsValidName); `what` is e.g. "component".
  std::optional<std::string> Name(const YAML::Node& node, std::string_view path,
                                  std::string_view what);
  std::optional<int64_t> Int(const YAML::Node& node, std::string_view path, int64_t min,
                             int64_t max);
  std::optional<bool> Bool(const YAML::Node& node, std::string_view path);
  std::optional<std::chrono::seconds> Duration(const YAML::Node& node, std::string_view path);
  // A list of strings; a lone scalar is accepted as a one-element list when `allow_scalar`.
  std::optional<std::vector<std::string>> StringList(const YAML::Node& node, std::string_view path,
                                                     bool allow_scalar = false);
  // One of `choices`; suggests the closest one otherwise.
  std::optional<std::string> Choice(const YAML::Node& node, std::string_view path,
                                    std::string_view what,
                                    const std::vector<std::string_view>& choices);

  // The node as JSON for sections kept raw. Scalars follow the YAML 1.2 core schema (null,
  // true/false, integers, floats), quoted scalars stay strings; map keys become strings.
  // Reports (and returns null) for trees too deep or too large (alias bombs).
  nlohmann::json ToJson(const YAML::Node& node, std::string_view path);

 private:
  struct Diagnostic {
    PlanLocation at;
    std::string text;
  };
  bool ToJsonInner(const YAML::Node& node, int depth, size_t& budget, nlohmann::json& out);

  std::string file_;
  std::vector<Diagnostic> errors_;
  std::vector<PlanWarning> warnings_;
};

}  // namespace reprise::plan_internal
