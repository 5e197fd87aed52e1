#include "plan/component_parse.h"

#include <algorithm>
#include <regex>

#include <fmt/format.h>

namespace reprise::plan_internal {

bool ComponentParser::SecretRef(const YAML::Node& node, const std::string& path,
                               std::string& out) {
  std::optional<std::string> name = SecretName(r_, node, path, secrets_);
  if (name) out = *name;
  return name.has_value();
}

std::optional<std::string> ComponentParser::AbsolutePath(const MapEntry& f) {
  std::optional<std::string> s = r_.NonEmptyString(f.value, f.path);
  if (s && (*s)[0] != '/') {
    r_.Error(f.value, f.path, fmt::format("'{}' is not an absolute path", *s));
    return std::nullopt;
  }
  return s;
}

void ComponentParser::ParseRedis(const MapEntry& e, const std::vector<MapEntry>& rest,
                                 ComponentSpec& c) {
  static const std::vector<std::string_view> kKeys = {"connection", "password", "method",
                                                      "rdb_path",   "restore",  "controller"};
  bool has_connection = false;
  for (const MapEntry& f : rest) {
    if (std::find(kKeys.begin(), kKeys.end(), f.key) == kKeys.end()) {
      r_.UnknownKey(f, kKeys);
    } else if (f.key == "connection") {
      has_connection = true;
      std::optional<std::string> v = r_.NonEmptyString(f.value, f.path);
      static const std::regex kUserInfo("[a-z]+://[^/@]*@.*");
      if (v && std::regex_match(*v, kUserInfo)) {
        r_.Error(f.value, f.path, "passwords may not be written in the plan; HINT: remove it and "
                                  "name a secret in 'password'");
      } else if (v) {
        c.redis.connection = *v;
      }
    } else if (f.key == "password") {
      SecretRef(f.value, f.path, c.redis.password);
    } else if (f.key == "method") {
      std::optional<std::string> m =
          r_.Choice(f.value, f.path, "method", {"replication", "bgsave"});
      if (m == "bgsave") c.redis.method = RedisSpec::Method::kBgsave;
    } else if (f.key == "rdb_path") {
      if (auto p = AbsolutePath(f)) c.redis.rdb_path = *p;
    } else if (f.key == "controller") {
      // The sketch's shape: {command: "..."} restarts the server after a restore.
      for (const MapEntry& k : r_.Entries(f.value, f.path, {"command"})) {
        if (auto s = r_.NonEmptyString(k.value, k.path)) c.redis.start_command = *s;
      }
    } else if (f.key == "restore") {
      for (const MapEntry& k :
           r_.Entries(f.value, f.path, {"rdb_path", "stop_command", "start_command"})) {
        if (k.key == "rdb_path") {
          if (auto p = AbsolutePath(k)) c.redis.restore_rdb_path = *p;
        } else if (auto s = r_.NonEmptyString(k.value, k.path)) {
          (k.key == "stop_command" ? c.redis.stop_command : c.redis.start_command) = *s;
        }
      }
    }
  }
  if (!has_connection) {
    r_.Error(e.value, Field(e.path, "connection"),
             "required key is missing; HINT: write e.g. 'connection: redis://10.0.0.6:6379'");
  }
  if (c.redis.method == RedisSpec::Method::kBgsave && c.redis.rdb_path.empty()) {
    r_.Error(e.value, Field(e.path, "rdb_path"),
             "method bgsave reads the server's dump file: name it, e.g. "
             "'rdb_path: /var/lib/redis/dump.rdb'");
  }
}

void ComponentParser::ParseCommand(const MapEntry& e, const std::vector<MapEntry>& rest,
                                   ComponentSpec& c) {
  static const std::vector<std::string_view> kKeys = {"backup", "restore", "redact", "timeout",
                                                      "run_as", "env",     "secret_env"};
  bool has_backup = false;
  for (const MapEntry& f : rest) {
    if (std::find(kKeys.begin(), kKeys.end(), f.key) == kKeys.end()) {
      r_.UnknownKey(f, kKeys);
    } else if (f.key == "backup") {
      has_backup = true;
      if (auto s = r_.NonEmptyString(f.value, f.path)) c.command.backup = *s;
    } else if (f.key == "restore") {
      if (auto s = r_.NonEmptyString(f.value, f.path)) c.command.restore = *s;
    } else if (f.key == "redact") {
      if (auto s = r_.Choice(f.value, f.path, "redaction", {"kubernetes-secrets"})) {
        c.command.redact = *s;
      }
    } else if (f.key == "timeout") {
      if (auto d = r_.Duration(f.value, f.path)) c.command.timeout = *d;
    } else if (f.key == "env" || f.key == "secret_env") {
      static const std::regex kVar("[A-Za-z_][A-Za-z0-9_]*");
      for (const MapEntry& v : r_.Entries(f.value, f.path)) {
        if (!std::regex_match(v.key, kVar)) {
          r_.Error(v.key_node, v.path,
                   fmt::format("'{}' is not a valid environment variable name", v.key));
          continue;
        }
        if (f.key == "env") {
          if (auto s = r_.String(v.value, v.path)) c.command.env[v.key] = *s;
        } else {
          std::string secret;
          if (SecretRef(v.value, v.path, secret)) c.command.secret_env[v.key] = secret;
        }
      }
    } else if (f.key == "run_as") {
      if (auto s = r_.NonEmptyString(f.value, f.path)) c.command.run_as = *s;
    }
  }
  if (!has_backup) {
    r_.Error(e.value, Field(e.path, "backup"),
             "required key is missing; HINT: the command whose output is saved, e.g. "
             "'backup: kubectl get configmaps -n rag -o yaml'");
  }
}

namespace {

bool HttpUrl(const std::string& s) {
  static const std::regex kUrl("https?://[^/@\\s]+(/.*)?");
  return std::regex_match(s, kUrl);
}

}  // namespace

void ComponentParser::ParseQdrant(const MapEntry& e, const std::vector<MapEntry>& rest,
                                  ComponentSpec& c) {
  static const std::vector<std::string_view> kKeys = {
      "url", "api_key", "collections", "peers", "restore_method", "ca_file", "timeout"};
  bool has_url = false;
  auto url_value = [&](const YAML::Node& node, const std::string& path) -> std::optional<std::string> {
    std::optional<std::string> v = r_.NonEmptyString(node, path);
    if (v && !HttpUrl(*v)) {
      r_.Error(node, path,
               fmt::format("'{}' is not an http(s) URL without credentials, e.g. "
                           "'http://qdrant:6333'",
                           *v));
      return std::nullopt;
    }
    if (v) {
      while (!v->empty() && v->back() == '/') v->pop_back();
    }
    return v;
  };
  for (const MapEntry& f : rest) {
    if (std::find(kKeys.begin(), kKeys.end(), f.key) == kKeys.end()) {
      r_.UnknownKey(f, kKeys);
    } else if (f.key == "url") {
      has_url = true;
      if (auto v = url_value(f.value, f.path)) c.qdrant.url = *v;
    } else if (f.key == "api_key") {
      SecretRef(f.value, f.path, c.qdrant.api_key);
    } else if (f.key == "collections") {
      if (auto v = r_.StringList(f.value, f.path)) c.qdrant.collections = std::move(*v);
    } else if (f.key == "peers") {
      if (!r_.ExpectList(f.value, f.path)) continue;
      for (size_t i = 0; i < f.value.size(); ++i) {
        if (auto v = url_value(f.value[i], Index(f.path, i))) c.qdrant.peers.push_back(*v);
      }
    } else if (f.key == "restore_method") {
      if (auto m = r_.Choice(f.value, f.path, "restore method", {"upload", "url"})) {
        c.qdrant.restore_method = *m == "url" ? QdrantSpec::RestoreMethod::kUrl
                                              : QdrantSpec::RestoreMethod::kUpload;
      }
    } else if (f.key == "ca_file") {
      if (auto p = AbsolutePath(f)) c.qdrant.ca_file = *p;
    } else if (f.key == "timeout") {
      if (auto d = r_.Duration(f.value, f.path)) c.qdrant.timeout = *d;
    }
  }
  if (!has_url) {
    r_.Error(e.value, Field(e.path, "url"),
             "required key is missing; HINT: the REST API, e.g. 'url: http://qdrant:6333'");
  }
}

void ComponentParser::ParseS3(const MapEntry& e, const std::vector<MapEntry>& rest,
                              ComponentSpec& c) {
  static const std::vector<std::string_view> kKeys = {"url", "credentials", "incremental",
                                                      "connections"};
  bool has_url = false;
  for (const MapEntry& f : rest) {
    if (std::find(kKeys.begin(), kKeys.end(), f.key) == kKeys.end()) {
      r_.UnknownKey(f, kKeys);
    } else if (f.key == "url") {
      has_url = true;
      std::optional<std::string> v = r_.NonEmptyString(f.value, f.path);
      if (v && v->rfind("s3://", 0) != 0) {
        r_.Error(f.value, f.path,
                 "must be an s3:// URL, e.g. "
                 "'s3://rag-documents?endpoint=http://minio:9000&region=us-east-1'");
      } else if (v) {
        c.s3.url = *v;
      }
    } else if (f.key == "credentials") {
      SecretRef(f.value, f.path, c.s3.credentials);
    } else if (f.key == "incremental") {
      // The sketch's `incremental: etag`; `none` downloads every object each time.
      if (auto m = r_.Choice(f.value, f.path, "incremental mode", {"etag", "none"})) {
        c.s3.incremental = *m == "etag";
      }
    } else if (f.key == "connections") {
      if (auto v = r_.Int(f.value, f.path, 1, 64)) c.s3.connections = static_cast<int>(*v);
    }
  }
  if (!has_url) {
    r_.Error(e.value, Field(e.path, "url"),
             "required key is missing; HINT: the bucket, e.g. "
             "'url: s3://rag-documents?endpoint=http://minio:9000'");
  }
}

void ComponentParser::ParseConsistency(const MapEntry& e, Plan& plan) {
  if (!r_.ExpectList(e.value, e.path)) return;
  static const std::vector<std::string_view> kCheckKeys = {"name", "each", "exists_in"};
  for (size_t i = 0; i < e.value.size(); ++i) {
    const YAML::Node item = e.value[i];
    const std::string path = Index(e.path, i);
    std::vector<MapEntry> keys = r_.Entries(item, path, kCheckKeys);
    if (!item.IsMap()) continue;
    ConsistencyCheck check;
    check.at = LocationOf(item);
    bool ok = true, has_each = false, has_exists = false;
    for (const MapEntry& k : keys) {
      if (k.key == "name") {
        if (auto s = r_.NonEmptyString(k.value, k.path)) check.name = *s; else ok = false;
        continue;
      }
      const bool each = k.key == "each";
      (each ? has_each : has_exists) = true;
      ConsistencyCheck::Side& side = each ? check.each : check.exists_in;
      side.at = LocationOf(k.value);
      // One key naming a component (its value is the query), plus `payload`/`field`.
      int named = 0;
      for (const MapEntry& s : r_.Entries(k.value, k.path)) {
        if (s.key == "payload" || s.key == "field") {
          if (auto v = r_.NonEmptyString(s.value, s.path)) side.field = *v; else ok = false;
          continue;
        }
        ++named;
        const ComponentSpec* comp = plan.FindComponent(s.key);
        if (!comp) {
          r_.Error(s.key_node, s.path,
                   fmt::format("'{}' is not a component of the plan (or one with errors)",
                               s.key));
          ok = false;
          continue;
        }
        if (comp->kind != ComponentKind::kPostgres && comp->kind != ComponentKind::kQdrant &&
            comp->kind != ComponentKind::kS3 && comp->kind != ComponentKind::kRedis) {
          r_.Error(s.key_node, s.path,
                   fmt::format("component '{}' is of kind '{}'; checks read postgres, qdrant, "
                               "s3 and redis components",
                               s.key, ComponentKindName(comp->kind)));
          ok = false;
          continue;
        }
        side.component = s.key;
        if (auto v = r_.NonEmptyString(s.value, s.path)) side.query = *v; else ok = false;
      }
      if (named != 1) {
        r_.Error(k.value, k.path,
                 "must name exactly one component, e.g. '{postgres: \"select id from "
                 "documents\"}'");
        ok = false;
      }
    }
    if (!has_each) r_.Error(item, Field(path, "each"), "required key is missing");
    if (!has_exists) r_.Error(item, Field(path, "exists_in"), "required key is missing");
    if (check.name.empty() && ok) check.name = fmt::format("check {}", i + 1);
    for (const ConsistencyCheck::Side* side : {&check.each, &check.exists_in}) {
      const ComponentSpec* comp = plan.FindComponent(side->component);
      if (comp && comp->kind == ComponentKind::kQdrant && side->field.empty()) {
        r_.Error(item, path,
                 fmt::format("component '{}' is a qdrant collection: name the payload key "
                             "with 'payload:'",
                             side->component));
        ok = false;
      }
    }
    if (!ok || !has_each || !has_exists) continue;
    plan.consistency.push_back(std::move(check));
  }
}

}  // namespace reprise::plan_internal

