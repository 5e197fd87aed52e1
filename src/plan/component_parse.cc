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

}  // namespace reprise::plan_internal
