// A small blocking HTTP/1.1 client on libcurl for the S3 backend.
//
// Thread-safe: Send may be called from many threads at once. Each call borrows a CURL easy
// handle from a pool and gives it back, so a thread doing one request after another reuses
// a kept-alive connection. Curl never raises signals (CURLOPT_NOSIGNAL).
//
// Send fails only when no HTTP response arrived: connection refused or reset, DNS failure,
// connect timeout, a stalled transfer (below `low_speed_bytes` per second for
// `low_speed_seconds`) are kUnavailable; a TLS certificate that does not verify is
// kFailedPrecondition; a malformed URL kInvalidArgument. Any HTTP status, 500 included, is a
// response: the caller maps it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "storage/s3/sigv4.h"

namespace reprise::s3 {

struct HttpOptions {
  long connect_timeout_seconds = 10;
  long low_speed_bytes = 1024;
  long low_speed_seconds = 60;
  long total_timeout_ms = 0;  // whole request, 0: none (health checks, webhooks set one)
  std::string ca_file;  // empty: the system's CA store; TLS peer verification is always on
  size_t max_idle_handles = 16;
};

struct HttpResponse;

struct HttpRequest {
  std::string method;  // GET HEAD PUT POST DELETE
  std::string url;     // already encoded: scheme://host[:port]/path?query
  HeaderList headers;  // sent as given (Host included); curl adds Content-Length
  ByteView body;       // PUT and POST bodies
  // When not null and the transfer fails after the response began (a body cut mid-way),
  // the status, headers and the part of the body received are moved here, so that a caller
  // can ask for the rest with a Range instead of starting again.
  HttpResponse* partial = nullptr;
};

// Where requests go: path-style ("/bucket/key" on host_port) or virtual-hosted ("/key" on
// "bucket.host_port").
struct BucketAddress {
  std::string scheme;     // http or https
  std::string host_port;  // host[:port], as signed in Host
  std::string bucket;
  bool path_style = false;
};

// The request for `key` ("" for the bucket itself), addressed, with its Host header, signed
// with SigV4 at `now`, its URL encoded as signed. The caller sets `partial` if it wants it.
HttpRequest SignedRequest(const BucketAddress& address, const std::string& method,
                          const std::string& key,
                          const std::vector<std::pair<std::string, std::string>>& query,
                          HeaderList headers, ByteView body, const Credentials& credentials,
                          const std::string& region, int64_t now);

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lowercased; last value wins
  Bytes body;

  // The header's value, or "" when absent.
  std::string Header(const std::string& lowercase_name) const;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> Send(const HttpRequest& request);

 private:
  void* Acquire();
  void Release(void* handle);

  HttpOptions options_;
  std::mutex mu_;
  std::vector<void*> idle_;  // CURL* handles, guarded by mu_
};

}  // namespace reprise::s3
