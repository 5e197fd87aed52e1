#include "openapi_validator.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

namespace reprise::testing {

namespace {

using nlohmann::json;

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Keywords that do not constrain a value.
bool Annotation(const std::string& k) {
  static const std::set<std::string> kAnn = {"description", "example", "default", "deprecated",
                                             "title", "format", "nullable"};
  return kAnn.count(k) > 0;
}

bool NullOnly(const json& schema) {
  if (!schema.is_object() || !schema.value("nullable", false)) return false;
  for (const auto& [k, v] : schema.items()) {
    if (!Annotation(k)) return false;
  }
  return true;
}

std::string TypeOf(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

bool IsUuid(const std::string& s) {
  if (s.size() == 32) {
    return std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(uint8_t(c)); });
  }
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

bool IsUri(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  for (size_t i = 0; i < colon; ++i) {
    char c = s[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return s.find(' ') == std::string::npos;
}

}  // namespace

std::optional<OpenApi> OpenApi::Load(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read '" + path + "'";
    return std::nullopt;
  }
  OpenApi api;
  api.doc_ = json::parse(in, nullptr, false);
  if (api.doc_.is_discarded() || !api.doc_.contains("paths")) {
    *error = "'" + path + "' is not an OpenAPI description";
    return std::nullopt;
  }
  return api;
}

const json* OpenApi::Resolve(const std::string& ref) const {
  if (ref.rfind("#/", 0) != 0) return nullptr;
  const json* cur = &doc_;
  for (const auto& part : Split(ref.substr(1))) {
    if (!cur->is_object() || !cur->contains(part)) return nullptr;
    cur = &(*cur)[part];
  }
  return cur;
}

std::optional<OpenApi::Match> OpenApi::Find(const std::string& method, const std::string& path,
                                            std::string* error) const {
  std::vector<std::string> segs = Split(path);
  std::string m = Lower(method);
  std::optional<Match> best;
  int best_literals = -1;
  bool path_known = false;
  for (const auto& [tmpl, item] : doc_["paths"].items()) {
    std::vector<std::string> t = Split(tmpl);
    if (t.size() != segs.size()) continue;
    std::map<std::string, std::string> params;
    int literals = 0;
    bool ok = true;
    for (size_t i = 0; i < t.size() && ok; ++i) {
      if (t[i].size() > 2 && t[i].front() == '{' && t[i].back() == '}') {
        params[t[i].substr(1, t[i].size() - 2)] = segs[i];
      } else if (t[i] == segs[i]) {
        ++literals;
      } else {
        ok = false;
      }
    }
    if (!ok) continue;
    path_known = true;
    if (!item.contains(m) || literals <= best_literals) continue;
    best_literals = literals;
    best = Match{tmpl, m, &item[m], std::move(params)};
  }
  if (!best) {
    *error = path_known ? "method " + method + " is not described for '" + path + "'"
                        : "path '" + path + "' is not described";
  }
  return best;
}

bool OpenApi::ParamValueValid(const json& schema, const std::string& value,
                              std::string* why) const {
  json parsed;
  std::vector<std::string> errs;
  // A query value is text; try it as each JSON type the schema may want.
  std::vector<json> candidates = {json(value)};
  if (value == "true" || value == "false") candidates.push_back(json(value == "true"));
  if (!value.empty() && std::all_of(value.begin() + (value[0] == '-' ? 1 : 0), value.end(),
                                    [](char c) { return std::isdigit(uint8_t(c)); })) {
    try {
      candidates.push_back(json(std::stoll(value)));
    } catch (...) {
    }
  }
  for (const auto& c : candidates) {
    errs.clear();
    Validate(schema, c, "", errs);
    if (errs.empty()) return true;
  }
  *why = errs.empty() ? "invalid" : errs.front();
  return false;
}

std::vector<std::string> OpenApi::CheckParameters(
    const Match& m, const std::vector<std::pair<std::string, std::string>>& query) const {
  std::vector<std::string> out;
  std::vector<json> params;
  const json& item = doc_["paths"][m.path_template];
  for (const json* src : {&item, m.operation}) {
    if (src->contains("parameters")) {
      for (const auto& p : (*src)["parameters"]) {
        if (p.contains("$ref")) {
          const json* r = Resolve(p["$ref"]);
          if (r) params.push_back(*r);
        } else {
          params.push_back(p);
        }
      }
    }
  }
  std::string op = m.method + " " + m.path_template;
  std::set<std::string> seen;
  for (const auto& [name, value] : query) {
    const json* decl = nullptr;
    for (const auto& p : params) {
      if (p.value("in", "") == "query" && p.value("name", "") == name) decl = &p;
    }
    if (!decl) {
      out.push_back(op + ": query parameter '" + name + "' is not declared");
      continue;
    }
    if (!seen.insert(name).second) {
      out.push_back(op + ": query parameter '" + name + "' is repeated");
    }
    std::string why;
    if (decl->contains("schema") && !ParamValueValid((*decl)["schema"], value, &why)) {
      out.push_back(op + ": query parameter '" + name + "' = '" + value + "': " + why);
    }
  }
  for (const auto& p : params) {
    std::string in = p.value("in", ""), name = p.value("name", "");
    if (in == "path") {
      auto it = m.path_params.find(name);
      std::string why;
      if (it == m.path_params.end()) {
        out.push_back(op + ": path parameter '" + name + "' is missing");
      } else if (p.contains("schema") && !ParamValueValid(p["schema"], it->second, &why)) {
        out.push_back(op + ": path parameter '" + name + "': " + why);
      }
    } else if (in == "query" && p.value("required", false) && !seen.count(name)) {
      out.push_back(op + ": required query parameter '" + name + "' is missing");
    }
  }
  return out;
}

std::vector<std::string> OpenApi::CheckBody(const Match& m, const std::string& content_type,
                                            const std::string& body,
                                            const std::vector<std::string>& form_fields) const {
  std::vector<std::string> out;
  std::string op = m.method + " " + m.path_template;
  std::string type = Lower(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  if (!m.operation->contains("requestBody")) {
    if (!body.empty()) out.push_back(op + ": takes no request body, got " +
                                     std::to_string(body.size()) + " bytes");
    return out;
  }
  const json& rb = (*m.operation)["requestBody"];
  const json& content = rb["content"];
  if (body.empty() && form_fields.empty()) {
    if (rb.value("required", false)) out.push_back(op + ": request body is required");
    return out;
  }
  if (!content.contains(type)) {
    std::string want;
    for (const auto& [k, v] : content.items()) want += (want.empty() ? "" : ", ") + k;
    out.push_back(op + ": content type '" + content_type + "' is not accepted (want " + want +
                  ")");
    return out;
  }
  const json& schema = content[type].value("schema", json::object());
  if (type == "application/json") {
    json v = json::parse(body, nullptr, false);
    if (v.is_discarded()) {
      out.push_back(op + ": request body is not valid JSON");
      return out;
    }
    Validate(schema, v, op + " $.body", out);
  } else if (type == "multipart/form-data") {
    const json* s = &schema;
    if (s->contains("$ref")) s = Resolve((*s)["$ref"]);
    for (const auto& f : form_fields) {
      if (!s || !s->contains("properties") || !(*s)["properties"].contains(f)) {
        out.push_back(op + ": multipart field '" + f + "' is not declared");
      }
    }
    if (s && s->contains("required")) {
      for (const auto& r : (*s)["required"]) {
        if (std::find(form_fields.begin(), form_fields.end(), r.get<std::string>()) ==
            form_fields.end()) {
          out.push_back(op + ": multipart field '" + r.get<std::string>() + "' is missing");
        }
      }
    }
  }
  return out;
}

std::vector<std::string> OpenApi::CheckResponse(const Match& m, int status,
                                                const json& body) const {
  std::vector<std::string> out;
  if (!m.operation->contains("responses")) return out;
  const json& rs = (*m.operation)["responses"];
  std::string code = std::to_string(status);
  std::string range = code.substr(0, 1) + "XX";
  const json* r = nullptr;
  for (const auto& key : {code, range, std::string("default")}) {
    if (rs.contains(key)) {
      r = &rs[key];
      break;
    }
  }
  std::string op = m.method + " " + m.path_template;
  if (!r) {
    out.push_back(op + ": response status " + code + " is not documented");
    return out;
  }
  if (!r->contains("content") || !(*r)["content"].contains("application/json")) return out;
  const json& c = (*r)["content"]["application/json"];
  if (c.contains("schema")) Validate(c["schema"], body, op + " response " + code + " $", out);
  return out;
}

void OpenApi::Validate(const json& schema, const json& v, const std::string& where,
                       std::vector<std::string>& out) const {
  if (schema.is_boolean()) {
    if (!schema.get<bool>()) out.push_back(where + ": no value is allowed here");
    return;
  }
  if (!schema.is_object()) return;
  if (schema.contains("$ref")) {
    const json* r = Resolve(schema["$ref"]);
    if (!r) {
      out.push_back(where + ": unresolvable $ref " + schema["$ref"].dump());
      return;
    }
    Validate(*r, v, where, out);
    // Siblings of $ref (rare) are checked too.
  }
  if (NullOnly(schema)) {
    if (!v.is_null()) out.push_back(where + ": expected null, got " + TypeOf(v));
    return;
  }
  if (v.is_null() && schema.value("nullable", false)) return;

  if (schema.contains("allOf")) {
    for (const auto& s : schema["allOf"]) Validate(s, v, where, out);
  }
  for (const char* kw : {"anyOf", "oneOf"}) {
    if (!schema.contains(kw)) continue;
    int matched = 0;
    std::vector<std::string> first_errors;
    for (const auto& s : schema[kw]) {
      std::vector<std::string> errs;
      Validate(s, v, where, errs);
      if (errs.empty()) {
        ++matched;
      } else if (first_errors.empty() || errs.size() < first_errors.size()) {
        first_errors = std::move(errs);
      }
    }
    if (matched == 0) {
      std::string detail = first_errors.empty() ? "" : " (closest: " + first_errors.front() + ")";
      out.push_back(where + ": matches none of " + kw + detail);
    } else if (std::string(kw) == "oneOf" && matched > 1) {
      out.push_back(where + ": matches " + std::to_string(matched) + " branches of oneOf");
    }
  }

  if (schema.contains("type")) {
    std::string t = schema["type"];
    std::string got = TypeOf(v);
    bool ok = t == got || (t == "number" && got == "integer");
    if (!ok) {
      out.push_back(where + ": expected " + t + ", got " + got);
      return;
    }
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == v;
    if (!found) out.push_back(where + ": " + v.dump() + " is not one of " + schema["enum"].dump());
  }
  if (v.is_number()) {
    double d = v.get<double>();
    if (schema.contains("minimum") && d < schema["minimum"].get<double>()) {
      out.push_back(where + ": " + v.dump() + " is below the minimum " +
                    schema["minimum"].dump());
    }
    if (schema.contains("maximum") && d > schema["maximum"].get<double>()) {
      out.push_back(where + ": " + v.dump() + " is above the maximum " +
                    schema["maximum"].dump());
    }
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (schema.contains("minLength") && s.size() < schema["minLength"].get<size_t>()) {
      out.push_back(where + ": string shorter than " + schema["minLength"].dump());
    }
    std::string format = schema.value("format", "");
    if (format == "uuid" && !IsUuid(s)) out.push_back(where + ": '" + s + "' is not a UUID");
    if (format == "uri" && !IsUri(s)) out.push_back(where + ": '" + s + "' is not a URI");
  }
  if (v.is_array()) {
    if (schema.contains("minItems") && v.size() < schema["minItems"].get<size_t>()) {
      out.push_back(where + ": fewer than " + schema["minItems"].dump() + " items");
    }
    if (schema.contains("items")) {
      for (size_t i = 0; i < v.size(); ++i) {
        Validate(schema["items"], v[i], where + "[" + std::to_string(i) + "]", out);
      }
    }
  }
  if (v.is_object()) {
    const json empty = json::object();
    const json& props = schema.contains("properties") ? schema["properties"] : empty;
    if (schema.contains("required")) {
      for (const auto& r : schema["required"]) {
        if (!v.contains(r.get<std::string>())) {
          out.push_back(where + ": required property '" + r.get<std::string>() + "' is missing");
        }
      }
    }
    for (const auto& [k, val] : v.items()) {
      if (props.contains(k)) {
        Validate(props[k], val, where + "." + k, out);
      } else if (schema.contains("additionalProperties")) {
        const json& ap = schema["additionalProperties"];
        if (ap.is_boolean() && !ap.get<bool>()) {
          out.push_back(where + ": property '" + k + "' is not allowed");
        } else if (ap.is_object()) {
          Validate(ap, val, where + "." + k, out);
        }
      }
    }
  }
}

}  // namespace reprise::testing
