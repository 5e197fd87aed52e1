#include "plan/yaml_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "common/duration.h"

namespace reprise::plan_internal {
namespace {

std::string_view TypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// Quoted scalars carry the non-specific tag "!"; plain ones "?".
bool IsQuotedOrStr(const YAML::Node& node) {
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
}

std::string Describe(const YAML::Node& node) {
  if (node.IsScalar()) return fmt::format("'{}'", node.Scalar());
  return std::string(TypeName(node));
}

std::string Format(const std::string& file, PlanLocation at, std::string_view path,
                   std::string_view message) {
  std::string out = file;
  if (at.line > 0) out += fmt::format(":{}:{}", at.line, at.column);
  out += ": ";
  if (!path.empty()) out += fmt::format("{}: ", path);
  out += message;
  return out;
}

bool Before(PlanLocation a, PlanLocation b) {
  return a.line != b.line ? a.line < b.line : a.column < b.column;
}

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

}  // namespace

std::string Field(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string Index(std::string_view path, size_t i) { return fmt::format("{}[{}]", path, i); }

size_t EditDistance(std::string_view a, std::string_view b) {
  // Optimal string alignment: insertions, deletions, substitutions and transpositions of two
  // neighbours ("ect" -> "etc") each cost 1.
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = Lower(a[i - 1]) == Lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && Lower(a[i - 1]) == Lower(b[j - 2]) &&
          Lower(a[i - 2]) == Lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::optional<std::string> Suggest(std::string_view word,
                                   const std::vector<std::string_view>& candidates) {
  // One edit per three letters, between 1 and 3: "filez" -> "files", "retension" ->
  // "retention", but "db" does not become "s3".
  size_t max_distance = std::clamp<size_t>(word.size() / 3, 1, 3);
  std::optional<std::string> best;
  size_t best_distance = max_distance + 1;
  for (std::string_view c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(c);
    }
  }
  return best;
}

std::string JoinNames(const std::vector<std::string_view>& names) {
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string JoinNames(const std::vector<std::string>& names) {
  return fmt::format("{}", fmt::join(names, ", "));
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return lower_or_digit(c) || c == '_' || c == '-'; });
}

PlanLocation LocationOf(const YAML::Mark& mark) {
  if (mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

PlanLocation LocationOf(const YAML::Node& node) {
  if (!node.IsDefined()) return {};
  return LocationOf(node.Mark());
}

void Reader::Error(PlanLocation at, std::string_view path, std::string message) {
  errors_.push_back({at, Format(file_, at, path, message)});
}

void Reader::Warn(PlanLocation at, std::string_view path, std::string message) {
  warnings_.push_back(PlanWarning{file_, at, std::string(path), std::move(message)});
}

Status Reader::ToStatus() const {
  if (errors_.empty()) return Status::Ok();
  std::vector<Diagnostic> sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Diagnostic& a, const Diagnostic& b) { return Before(a.at, b.at); });
  std::string message;
  for (const auto& d : sorted) {
    if (!message.empty()) message += '\n';
    message += d.text;
  }
  return InvalidArgument(std::move(message));
}

std::vector<PlanWarning> Reader::TakeWarnings() {
  std::stable_sort(warnings_.begin(), warnings_.end(),
                   [](const PlanWarning& a, const PlanWarning& b) { return Before(a.at, b.at); });
  return std::move(warnings_);
}

bool Reader::ExpectMap(const YAML::Node& node, std::string_view path) {
  if (node.IsMap()) return true;
  Error(node, path, fmt::format("expected a map (key: value), got {}", Describe(node)));
  return false;
}

bool Reader::ExpectList(const YAML::Node& node, std::string_view path) {
  if (node.IsSequence()) return true;
  Error(node, path, fmt::format("expected a list, got {}", Describe(node)));
  return false;
}

std::vector<MapEntry> Reader::Entries(const YAML::Node& map, std::string_view path,
                                      const std::vector<std::string_view>& known) {
  std::vector<MapEntry> entries;
  if (!ExpectMap(map, path)) return entries;
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node& key = it->first;
    if (!key.IsScalar()) {
      Error(key, path, fmt::format("keys must be plain strings, got {}", Describe(key)));
      continue;
    }
    std::string name = key.Scalar();
    std::string field = Field(path, name);
    if (!seen.insert(name).second) {
      Error(key, field, "duplicate key; each key may appear once");
      continue;
    }
    MapEntry entry{std::move(name), std::move(field), key, it->second};
    if (!known.empty() && std::find(known.begin(), known.end(), entry.key) == known.end()) {
      UnknownKey(entry, known);
      continue;
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

void Reader::UnknownKey(const MapEntry& entry, const std::vector<std::string_view>& known) {
  std::optional<std::string> guess = Suggest(entry.key, known);
  if (guess) {
    Error(entry.key_node, entry.path,
          fmt::format("unknown key '{}' (did you mean '{}'?)", entry.key, *guess));
  } else {
    Error(entry.key_node, entry.path,
          fmt::format("unknown key '{}' (expected one of: {})", entry.key, JoinNames(known)));
  }
}

std::optional<std::string> Reader::String(const YAML::Node& node, std::string_view path) {
  if (node.IsScalar()) return node.Scalar();
  Error(node, path, fmt::format("expected a string, got {}", TypeName(node)));
  return std::nullopt;
}

std::optional<std::string> Reader::NonEmptyString(const YAML::Node& node, std::string_view path) {
  std::optional<std::string> s = String(node, path);
  if (s && s->empty()) {
    Error(node, path, "must not be empty");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Reader::Name(const YAML::Node& node, std::string_view path,
                                        std::string_view what) {
  std::optional<std::string> s = String(node, path);
  if (s && !IsValidName(*s)) {
    Error(node, path,
          fmt::format("invalid {} name '{}'; HINT: use lowercase letters, digits, '-' and '_', "
                      "starting with a letter or digit (at most 63 characters)",
                      what, *s));
    return std::nullopt;
  }
  return s;
}

std::optional<int64_t> Reader::Int(const YAML::Node& node, std::string_view path, int64_t min,
                                   int64_t max) {
  if (!node.IsScalar() || IsQuotedOrStr(node)) {
    Error(node, path, fmt::format("expected a whole number, got {}", Describe(node)));
    return std::nullopt;
  }
  std::string_view text = node.Scalar();
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    Error(node, path, fmt::format("{} is out of range ({} to {})", Describe(node), min, max));
    return std::nullopt;
  }
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    Error(node, path, fmt::format("expected a whole number, got {}", Describe(node)));
    return std::nullopt;
  }
  if (value < min || value > max) {
    Error(node, path, fmt::format("{} is out of range ({} to {})", value, min, max));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> Reader::Bool(const YAML::Node& node, std::string_view path) {
  if (node.IsScalar() && !IsQuotedOrStr(node)) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  Error(node, path, fmt::format("expected true or false, got {}", Describe(node)));
  return std::nullopt;
}

std::optional<std::chrono::seconds> Reader::Duration(const YAML::Node& node,
                                                     std::string_view path) {
  std::optional<std::string> s = String(node, path);
  if (!s) return std::nullopt;
  Result<std::chrono::seconds> d = ParseDuration(*s);
  if (!d.ok()) {
    Error(node, path, d.status().message());
    return std::nullopt;
  }
  return *d;
}

std::optional<std::vector<std::string>> Reader::StringList(const YAML::Node& node,
                                                           std::string_view path,
                                                           bool allow_scalar) {
  if (allow_scalar && node.IsScalar()) return std::vector<std::string>{node.Scalar()};
  if (!ExpectList(node, path)) return std::nullopt;
  std::vector<std::string> out;
  bool ok = true;
  for (size_t i = 0; i < node.size(); ++i) {
    std::optional<std::string> s = String(node[i], Index(path, i));
    if (s) {
      out.push_back(std::move(*s));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string> Reader::Choice(const YAML::Node& node, std::string_view path,
                                          std::string_view what,
                                          const std::vector<std::string_view>& choices) {
  std::optional<std::string> s = String(node, path);
  if (!s) return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *s) != choices.end()) return s;
  std::optional<std::string> guess = Suggest(*s, choices);
  std::string message = fmt::format("unknown {} '{}' (", what, *s);
  if (guess) message += fmt::format("did you mean '{}'? ", *guess);
  message += fmt::format("expected one of: {})", JoinNames(choices));
  Error(node, path, std::move(message));
  return std::nullopt;
}

nlohmann::json Reader::ToJson(const YAML::Node& node, std::string_view path) {
  // Generous for any hand-written section; small enough that an alias bomb stops quickly.
  size_t budget = 100000;
  nlohmann::json out;
  if (!ToJsonInner(node, 0, budget, out)) {
    Error(node, path, "too deeply nested or too large (more than 64 levels or 100000 values)");
    return nullptr;
  }
  return out;
}

bool Reader::ToJsonInner(const YAML::Node& node, int depth, size_t& budget, nlohmann::json& out) {
  if (depth > 64 || budget == 0) return false;
  --budget;
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out = nullptr;
      return true;
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (IsQuotedOrStr(node)) {
        out = s;
        return true;
      }
      // YAML 1.2 core schema.
      static const std::regex kInt("[-+]?[0-9]+");
      static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
      if (s == "true" || s == "True" || s == "TRUE") {
        out = true;
      } else if (s == "false" || s == "False" || s == "FALSE") {
        out = false;
      } else if (s == "null" || s == "Null" || s == "NULL" || s == "~") {
        out = nullptr;
      } else if (std::regex_match(s, kInt)) {
        int64_t v = 0;
        std::string_view text = s;
        if (text[0] == '+') text.remove_prefix(1);
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc() && end == text.data() + text.size()) {
          out = v;
        } else {
          out = s;  // too large for int64: keep the digits
        }
      } else if (std::regex_match(s, kFloat)) {
        out = std::strtod(s.c_str(), nullptr);
      } else {
        out = s;
      }
      return true;
    }
    case YAML::NodeType::Sequence:
      out = nlohmann::json::array();
      for (const auto& item : node) {
        nlohmann::json j;
        if (!ToJsonInner(item, depth + 1, budget, j)) return false;
        out.push_back(std::move(j));
      }
      return true;
    case YAML::NodeType::Map:
      out = nlohmann::json::object();
      for (auto it = node.begin(); it != node.end(); ++it) {
        std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
        nlohmann::json j;
        if (!ToJsonInner(it->second, depth + 1, budget, j)) return false;
        out[key] = std::move(j);
      }
      return true;
  }
  out = nullptr;
  return true;
}

std::optional<std::string> SecretName(Reader& r, const YAML::Node& node, std::string_view path,
                                      const std::vector<std::string>& declared) {
  std::optional<std::string> name = r.String(node, path);
  if (!name) return std::nullopt;
  if (std::find(declared.begin(), declared.end(), *name) != declared.end()) return name;
  std::vector<std::string_view> views(declared.begin(), declared.end());
  std::string message = fmt::format("secret '{}' is not defined in secrets", *name);
  if (auto guess = Suggest(*name, views)) message += fmt::format(" (did you mean '{}'?)", *guess);
  r.Error(node, path, message);
  return std::nullopt;
}

}  // namespace reprise::plan_internal
