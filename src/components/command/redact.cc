#include "components/command/redact.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <vector>

namespace reprise {
namespace {

constexpr const char* kRedacted = "REDACTED";
constexpr const char* kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

bool KeyIs(const YAML::Node& key, std::string_view name) {
  return key.IsScalar() && key.Scalar() == name;
}

// True when the map has an entry `kind: Secret`. Entries are scanned rather than looked up so
// that a map with duplicate keys cannot hide one from us.
bool IsSecret(const YAML::Node& map) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (KeyIs(it->first, "kind") && it->second.IsScalar() && it->second.Scalar() == "Secret") {
      return true;
    }
  }
  return false;
}

// Replaces a value (scalar, list or map) with the string "REDACTED"; null stays null (there is
// nothing to hide and "REDACTED" would claim a value existed).
void RedactValue(YAML::Node value) {
  if (!value.IsDefined() || value.IsNull()) return;
  value = kRedacted;
  value.SetTag("?");
}

// The values under `data` / `stringData`: each value of a map, each element of a list, or the
// whole thing when it is a scalar.
void RedactData(YAML::Node data) {
  if (data.IsMap()) {
    for (auto it = data.begin(); it != data.end(); ++it) RedactValue(it->second);
  } else if (data.IsSequence()) {
    for (auto it = data.begin(); it != data.end(); ++it) RedactValue(*it);
  } else {
    RedactValue(data);
  }
}

void RedactJson(nlohmann::json& j) {
  if (j.is_object()) {
    auto kind = j.find("kind");
    if (kind != j.end() && kind->is_string() && kind->get<std::string>() == "Secret") {
      for (const char* field : {"data", "stringData"}) {
        auto d = j.find(field);
        if (d == j.end() || d->is_null()) continue;
        if (d->is_object() || d->is_array()) {
          for (auto& v : *d) {
            if (!v.is_null()) v = kRedacted;
          }
        } else {
          *d = kRedacted;
        }
      }
    }
    for (auto& [k, v] : j.items()) RedactJson(v);
  } else if (j.is_array()) {
    for (auto& v : j) RedactJson(v);
  }
}

// The annotation holds the applied object as JSON: redact inside it so that it stays valid
// JSON for a later `kubectl apply`; anything else is replaced whole.
void RedactLastApplied(YAML::Node value) {
  if (!value.IsDefined() || value.IsNull()) return;
  if (value.IsScalar()) {
    nlohmann::json j = nlohmann::json::parse(value.Scalar(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.is_object()) {
      RedactJson(j);
      const bool newline = !value.Scalar().empty() && value.Scalar().back() == '\n';
      value = j.dump() + (newline ? "\n" : "");  // kubectl writes one; keep what was there
      value.SetTag("!");
      return;
    }
  }
  RedactValue(value);
}

void RedactSecret(YAML::Node secret) {
  for (auto it = secret.begin(); it != secret.end(); ++it) {
    if (KeyIs(it->first, "data") || KeyIs(it->first, "stringData")) {
      RedactData(it->second);
    } else if (KeyIs(it->first, "metadata") && it->second.IsMap()) {
      for (auto m = it->second.begin(); m != it->second.end(); ++m) {
        if (!KeyIs(m->first, "annotations") || !m->second.IsMap()) continue;
        for (auto a = m->second.begin(); a != m->second.end(); ++a) {
          if (KeyIs(a->first, kLastApplied)) RedactLastApplied(a->second);
        }
      }
    }
  }
}

// Visits every mapping (Lists' items, Templates' objects, anything) and redacts the Secrets.
void Walk(YAML::Node node, size_t& secrets) {
  if (node.IsMap()) {
    if (IsSecret(node)) {
      RedactSecret(node);
      ++secrets;
    }
    for (auto it = node.begin(); it != node.end(); ++it) Walk(it->second, secrets);
  } else if (node.IsSequence()) {
    for (auto it = node.begin(); it != node.end(); ++it) Walk(*it, secrets);
  }
}

// True when `s`, written plain, might be read back as something else than a string (null, a
// bool, a number, a merge key) under YAML 1.1 or 1.2. Errs on the side of quoting.
bool PlainWouldChangeType(const std::string& s) {
  if (s.empty()) return true;
  char c = s[0];
  if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == '~') return true;
  if (s.size() > 5) return false;
  std::string lower;
  for (char ch : s) lower += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  for (const char* word : {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "<<"}) {
    if (lower == word) return true;
  }
  return false;
}

// Writes a node back, keeping the type of every scalar: a scalar quoted in the input (tag "!")
// that would read as null, a bool or a number when plain ("123", "true") is double-quoted
// (yaml-cpp would print it plain and change its type); others are written plain when the
// emitter can, else quoted by it. Multi-line strings come out double-quoted, which keeps their
// exact bytes (yaml-cpp's literal style would add a final newline).
void Emit(YAML::Emitter& out, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out << YAML::Null;
      return;
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      if (tag == "!" && PlainWouldChangeType(node.Scalar())) {
        out << YAML::DoubleQuoted << node.Scalar();
      } else if (tag == "!") {
        out << node.Scalar();
      } else if (tag.empty() || tag == "?") {
        out << node.Scalar();
      } else {
        out << YAML::VerbatimTag(tag) << node.Scalar();
      }
      return;
    }
    case YAML::NodeType::Sequence:
      out << YAML::BeginSeq;
      for (auto it = node.begin(); it != node.end(); ++it) Emit(out, *it);
      out << YAML::EndSeq;
      return;
    case YAML::NodeType::Map:
      out << YAML::BeginMap;
      for (auto it = node.begin(); it != node.end(); ++it) {
        out << YAML::Key;
        Emit(out, it->first);
        out << YAML::Value;
        Emit(out, it->second);
      }
      out << YAML::EndMap;
      return;
  }
}

}  // namespace

Result<std::string> RedactKubernetesSecrets(std::string_view yaml, size_t* secrets) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    // The mark and yaml-cpp's message only; never the text, which may hold a secret.
    return InvalidArgument(fmt::format(
        "the command output is not YAML (line {}, column {}: {}): HINT: redact: "
        "kubernetes-secrets needs YAML or JSON output, e.g. `kubectl get ... -o yaml`",
        e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  size_t count = 0;
  try {
    YAML::Emitter out;
    out.SetIndent(2);
    for (size_t i = 0; i < docs.size(); ++i) {
      Walk(docs[i], count);
      if (i > 0) out << YAML::BeginDoc;
      Emit(out, docs[i]);
      if (!out.good()) {
        return Internal(fmt::format("writing redacted YAML: {}", out.GetLastError()));
      }
    }
    if (secrets != nullptr) *secrets = count;
    std::string text = out.c_str();
    if (!text.empty() && text.back() != '\n') text += '\n';
    return text;
  } catch (const YAML::Exception& e) {
    return Internal(fmt::format("redacting YAML: {}", e.msg));
  }
}

}  // namespace reprise
