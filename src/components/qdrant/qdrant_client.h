// A small client for Qdrant's REST API on libcurl: JSON calls, a streamed download and a
// multipart file upload. One curl handle per call; calls may run on many threads at once.
//
// The api key, when given, goes in the "api-key" header of every request and nowhere else:
// never in a URL, a message or a log. TLS peers are always verified (ca_file or the system
// store). Every request is bounded by `timeout` as a whole.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/result.h"

namespace reprise::qdrant {

struct ClientOptions {
  std::string url;  // "http://host:6333", no trailing slash
  std::string api_key;
  std::string ca_file;
  std::chrono::seconds timeout{3600};
  std::chrono::seconds connect_timeout{10};
};

struct Reply {
  long status = 0;
  nlohmann::json body;  // parsed JSON; null when the body was empty or not JSON
};

class Client {
 public:
  explicit Client(ClientOptions options) : o_(std::move(options)) {}
  const std::string& url() const { return o_.url; }

  // `method` GET POST PUT DELETE on `path_query` ("/collections/a?wait=true"), with a JSON
  // body when `body` is not null (POST and PUT always send a body, empty if none). Any HTTP
  // status is a reply; fails (kUnavailable) only when no response arrived.
  Result<Reply> Call(const std::string& method, const std::string& path_query,
                     const nlohmann::json* body = nullptr) const;
  // GET whose answer must be 200: the "result" of Qdrant's envelope (the whole body when it
  // has none, as GET / does). Other statuses become errors (ErrorFrom).
  Result<nlohmann::json> Get(const std::string& path_query) const;
  // Streams a 200 answer's body into `sink`; another status is an error with its message.
  Status Download(const std::string& path_query,
                  const std::function<Status(ByteView)>& sink) const;
  // POST multipart/form-data with one part `field` holding the file at `file_path`.
  Result<Reply> UploadFile(const std::string& path_query, const std::string& field,
                           const std::string& file_path) const;

  // The error a non-success reply means: Qdrant's status.error text, with `what` in front;
  // 401/403 kPermissionDenied (with a hint about api_key), 404 kNotFound, 5xx and 429
  // kUnavailable, other 4xx kFailedPrecondition.
  Status ErrorFrom(const Reply& reply, const std::string& what) const;

 private:
  ClientOptions o_;
};

// Percent-encodes one path segment or query value.
std::string UrlEncode(std::string_view s);
// "1.19.0" -> "1.19"; "" when not a version.
std::string MajorMinor(const std::string& version);

}  // namespace reprise::qdrant
