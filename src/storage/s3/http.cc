#include "storage/s3/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>

namespace reprise::s3 {
namespace {

// SHA-256 of nothing: the payload hash of a request without a body.
constexpr char kEmptySha256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// curl_global_init must run once before any handle exists. It is the library's own process
// state, not ours; call_once makes the first client do it from whatever thread.
void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Upload {
  ByteView data;
  size_t offset = 0;
};

size_t ReadBody(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* up = static_cast<Upload*>(userdata);
  size_t n = std::min(size * nitems, up->data.size() - up->offset);
  if (n > 0) std::memcpy(buffer, up->data.data() + up->offset, n);
  up->offset += n;
  return n;
}

// Curl rewinds the body when it resends a request on a fresh connection (a kept-alive one
// the server had closed).
int SeekBody(void* userdata, curl_off_t offset, int origin) {
  auto* up = static_cast<Upload*>(userdata);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > up->data.size())
    return CURL_SEEKFUNC_FAIL;
  up->offset = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* resp = static_cast<HttpResponse*>(userdata);
  size_t n = size * nmemb;
  resp->body.insert(resp->body.end(), reinterpret_cast<uint8_t*>(ptr),
                    reinterpret_cast<uint8_t*>(ptr) + n);
  return n;
}

size_t HeaderLine(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* resp = static_cast<HttpResponse*>(userdata);
  size_t n = size * nitems;
  std::string_view line(buffer, n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new status line (after "100 Continue", say): forget the interim response's headers.
    resp->headers.clear();
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (name == "content-length") {
    // Reserve up front: a 64 MiB pack should not be grown by doubling.
    unsigned long long len = std::strtoull(std::string(value).c_str(), nullptr, 10);
    if (len > 0 && len < (1ull << 34)) resp->body.reserve(static_cast<size_t>(len));
  }
  resp->headers[name] = std::string(value);
  return n;
}

Status CurlError(const HttpRequest& req, CURLcode code, const char* detail) {
  std::string what = "s3 request " + req.method + " '" + req.url +
                     "' failed: " + curl_easy_strerror(code) +
                     (detail[0] ? std::string(" (") + detail + ")" : "");
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return FailedPrecondition(what +
                                ": HINT: the server's TLS certificate does not verify; if it is "
                                "signed by a private CA, add ca_file=/path/to/ca.pem to the "
                                "repository url");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return InvalidArgument(what);
    case CURLE_OUT_OF_MEMORY:
      return Internal(what);
    default:
      // Connect/resolve failures, resets, timeouts and stalls: the network may come back.
      return Unavailable(what);
  }
}

}  // namespace

std::string HttpResponse::Header(const std::string& lowercase_name) const {
  auto it = headers.find(lowercase_name);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) { GlobalInitOnce(); }

HttpClient::~HttpClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* HttpClient::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::Release(void* handle) {
  // curl_easy_reset keeps the handle's live connections and DNS cache: that is the point.
  curl_easy_reset(static_cast<CURL*>(handle));
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < options_.max_idle_handles) {
    idle_.push_back(handle);
  } else {
    curl_easy_cleanup(static_cast<CURL*>(handle));
  }
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& req) {
  CURL* curl = static_cast<CURL*>(Acquire());
  if (curl == nullptr) return Internal("curl_easy_init failed");
  struct Returner {
    HttpClient* client;
    CURL* curl;
    ~Returner() { client->Release(curl); }
  } returner{this, curl};

  HttpResponse resp;
  Upload upload{req.body, 0};
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_slist* headers = nullptr;
  for (const auto& [name, value] : req.headers) {
    std::string line = name + ": " + value;
    headers = curl_slist_append(headers, line.c_str());
  }
  // No "Expect: 100-continue" round trip; a refused upload is answered when it is sent.
  headers = curl_slist_append(headers, "Expect:");
  struct SlistFree {
    curl_slist* l;
    ~SlistFree() { curl_slist_free_all(l); }
  } free_headers{headers};

  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_seconds);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options_.low_speed_seconds);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, options_.total_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, HeaderLine);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &resp);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);

  if (req.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT" || req.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, SeekBody);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &upload);
    if (req.method == "PUT") {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    }
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    if (req.partial) {
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
      *req.partial = std::move(resp);
    }
    return CurlError(req, rc, errbuf);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

HttpRequest SignedRequest(const BucketAddress& address, const std::string& method,
                          const std::string& key,
                          const std::vector<std::pair<std::string, std::string>>& query,
                          HeaderList headers, ByteView body, const Credentials& credentials,
                          const std::string& region, int64_t now) {
  std::string path, host;
  if (address.path_style) {
    path = "/" + address.bucket + (key.empty() ? "" : "/" + key);
    host = address.host_port;
  } else {
    path = "/" + key;
    host = address.bucket + "." + address.host_port;
  }
  SigV4Request req{.method = method,
                   .path = path,
                   .query = query,
                   .headers = std::move(headers),
                   .payload_hash = body.empty() ? std::string(kEmptySha256) : PayloadHash(body)};
  req.headers.emplace_back("Host", host);
  SignRequest(req, credentials, region, now);
  std::string url = address.scheme + "://" + host + EncodePath(path);
  if (!query.empty()) url += "?" + CanonicalQuery(query);
  return HttpRequest{.method = method, .url = url, .headers = std::move(req.headers), .body = body};
}

}  // namespace reprise::s3
