// Checks HTTP requests (and JSON responses) against an OpenAPI 3.0 description, for contract
// servers: the operation exists (path template + method), path and query parameters are
// declared and typed, required ones are present, and a JSON body is valid against the
// operation's schema; a multipart body only names fields the schema declares.
//
// The JSON-Schema subset: type (object array string integer number boolean), nullable,
// properties, required, additionalProperties (false or a schema), items, enum, $ref (local
// "#/..." only), anyOf, oneOf (exactly one branch), allOf, minimum, maximum, minItems,
// minLength, format uuid and uri. A schema holding nothing but "nullable": true (how Qdrant's
// description writes "or null" inside anyOf) matches null only. description, example,
// default, deprecated and other formats are ignored.
//
// Thread-safety: const methods may be called from many threads.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace reprise::testing {

class OpenApi {
 public:
  // Parses the description; on failure returns nullopt and says why in `error`.
  static std::optional<OpenApi> Load(const std::string& path, std::string* error);

  struct Match {
    std::string path_template;  // "/collections/{collection_name}"
    std::string method;         // lowercase: "get"
    const nlohmann::json* operation = nullptr;
    std::map<std::string, std::string> path_params;
  };
  // The operation serving `method` (any case) on `path` (no query); literal segments win over
  // templated ones. nullopt and a message when the path or the method is not described.
  std::optional<Match> Find(const std::string& method, const std::string& path,
                            std::string* error) const;

  // Violations of the operation's parameters: `query` as decoded name/value pairs.
  std::vector<std::string> CheckParameters(
      const Match& m, const std::vector<std::pair<std::string, std::string>>& query) const;
  // Violations of the request body. `content_type` as sent (parameters allowed); for
  // multipart, `form_fields` are the names of the parts.
  std::vector<std::string> CheckBody(const Match& m, const std::string& content_type,
                                     const std::string& body,
                                     const std::vector<std::string>& form_fields) const;
  // Violations of a JSON response with this status against the documented one (by exact
  // status, then "4XX"-style, then "default"). Non-JSON responses are not checked.
  std::vector<std::string> CheckResponse(const Match& m, int status,
                                         const nlohmann::json& body) const;

  // Violations of `value` against `schema`, each prefixed by `where` ("$.body.points[2].id").
  void Validate(const nlohmann::json& schema, const nlohmann::json& value,
                const std::string& where, std::vector<std::string>& out) const;

 private:
  const nlohmann::json* Resolve(const std::string& ref) const;
  bool ParamValueValid(const nlohmann::json& schema, const std::string& value,
                       std::string* why) const;

  nlohmann::json doc_;
};

}  // namespace reprise::testing
