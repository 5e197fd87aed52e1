#include "components/qdrant/qdrant_client.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>

namespace reprise::qdrant {

namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// What a transfer collects: the body (unless streamed) and the first sink error.
struct Transfer {
  CURL* curl = nullptr;
  std::string body;
  const std::function<Status(ByteView)>* sink = nullptr;
  Status sink_status;
  bool streaming = false;  // decided on the first byte: only a 200 streams
  bool decided = false;
};

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (!t->decided) {
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    t->streaming = t->sink && status == 200;
    t->decided = true;
  }
  if (t->streaming) {
    Status st = (*t->sink)(ByteView(reinterpret_cast<const uint8_t*>(data), len));
    if (!st.ok()) {
      t->sink_status = st;
      return 0;  // aborts the transfer
    }
    return len;
  }
  if (t->body.size() < (16u << 20)) t->body.append(data, len);
  return len;
}

// Sets what every request shares; returns the header list to keep alive.
SlistPtr Common(CURL* c, const ClientOptions& o, const std::string& url, Transfer* t,
                bool json_body) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(o.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(o.timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!o.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());
  curl_slist* h = nullptr;
  if (!o.api_key.empty()) h = curl_slist_append(h, ("api-key: " + o.api_key).c_str());
  if (json_body) h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "Expect:");
  h = curl_slist_append(h, "Accept: application/json");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  return SlistPtr(h);
}

// A reply's status and its JSON body (null when empty or not JSON).
Reply ReplyFrom(long status, const std::string& body) {
  Reply r;
  r.status = status;
  if (!body.empty()) {
    r.body = nlohmann::json::parse(body, nullptr, false);
    if (r.body.is_discarded()) r.body = nullptr;
  }
  return r;
}

Result<long> Perform(CURL* c, Transfer& t, const std::string& method, const std::string& url) {
  CURLcode rc = curl_easy_perform(c);
  if (!t.sink_status.ok()) return t.sink_status;
  if (rc != CURLE_OK) {
    std::string what = method + " '" + url + "': " + curl_easy_strerror(rc);
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
      return FailedPrecondition(what + "; HINT: set the component's ca_file");
    }
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) return InvalidArgument(what);
    return Unavailable(what);
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

}  // namespace

std::string UrlEncode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(hex[ch >> 4]);
      out.push_back(hex[ch & 15]);
    }
  }
  return out;
}

std::string MajorMinor(const std::string& version) {
  std::string v = version;
  if (!v.empty() && (v[0] == 'v' || v[0] == 'V')) v = v.substr(1);
  size_t first = v.find('.');
  if (first == std::string::npos || first == 0) return "";
  size_t second = v.find('.', first + 1);
  std::string mm = v.substr(0, second);
  for (char c : mm)
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return "";
  return mm;
}

Result<Reply> Client::Call(const std::string& method, const std::string& path_query,
                           const nlohmann::json* body) const {
  CurlPtr c(curl_easy_init());
  if (!c) return Internal("curl_easy_init failed");
  Transfer t;
  t.curl = c.get();
  std::string url = o_.url + path_query;
  bool sends = method == "POST" || method == "PUT" || body;
  SlistPtr headers = Common(c.get(), o_, url, &t, body != nullptr);
  std::string payload = body ? body->dump() : "";
  if (method != "GET") curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  if (sends) {
    // POSTFIELDS with an explicit size: a Content-Length is sent even for an empty body.
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, payload.c_str());
  }
  ASSIGN_OR_RETURN(long status, Perform(c.get(), t, method, o_.url + path_query));
  return ReplyFrom(status, t.body);
}

Status Client::ErrorFrom(const Reply& reply, const std::string& what) const {
  std::string msg;
  if (reply.body.is_object() && reply.body.contains("status") &&
      reply.body["status"].is_object()) {
    msg = reply.body["status"].value("error", "");
  }
  std::string text = what + ": Qdrant at '" + o_.url + "' answered HTTP " +
                     std::to_string(reply.status) + (msg.empty() ? "" : ": " + msg);
  long s = reply.status;
  if (s == 401 || s == 403) {
    return PermissionDenied(text + "; HINT: check the component's api_key secret");
  }
  if (s == 404) return NotFound(text);
  if (s >= 500 || s == 429) return Unavailable(text);
  return FailedPrecondition(text);
}

Result<nlohmann::json> Client::Get(const std::string& path_query) const {
  ASSIGN_OR_RETURN(Reply r, Call("GET", path_query));
  if (r.status != 200) return ErrorFrom(r, "GET " + path_query);
  if (r.body.is_object() && r.body.contains("result")) return r.body["result"];
  if (r.body.is_null()) {
    return FailedPrecondition("GET " + path_query + ": '" + o_.url +
                              "' did not answer JSON; HINT: is this Qdrant's REST port (6333)?");
  }
  return r.body;
}

Status Client::Download(const std::string& path_query,
                        const std::function<Status(ByteView)>& sink) const {
  CurlPtr c(curl_easy_init());
  if (!c) return Internal("curl_easy_init failed");
  Transfer t;
  t.curl = c.get();
  t.sink = &sink;
  SlistPtr headers = Common(c.get(), o_, o_.url + path_query, &t, false);
  ASSIGN_OR_RETURN(long status, Perform(c.get(), t, "GET", o_.url + path_query));
  if (status != 200) return ErrorFrom(ReplyFrom(status, t.body), "downloading '" + path_query + "'");
  return Status::Ok();
}

Result<Reply> Client::UploadFile(const std::string& path_query, const std::string& field,
                                 const std::string& file_path) const {
  CurlPtr c(curl_easy_init());
  if (!c) return Internal("curl_easy_init failed");
  Transfer t;
  t.curl = c.get();
  SlistPtr headers = Common(c.get(), o_, o_.url + path_query, &t, false);
  curl_mime* mime = curl_mime_init(c.get());
  std::unique_ptr<curl_mime, void (*)(curl_mime*)> mime_owner(mime, curl_mime_free);
  curl_mimepart* part = curl_mime_addpart(mime);
  curl_mime_name(part, field.c_str());
  if (curl_mime_filedata(part, file_path.c_str()) != CURLE_OK) {
    return IOError("cannot read '" + file_path + "' to upload it");
  }
  std::string base = file_path.substr(file_path.find_last_of('/') + 1);
  curl_mime_filename(part, base.c_str());
  curl_mime_type(part, "application/octet-stream");
  curl_easy_setopt(c.get(), CURLOPT_MIMEPOST, mime);
  ASSIGN_OR_RETURN(long status, Perform(c.get(), t, "POST", o_.url + path_query));
  return ReplyFrom(status, t.body);
}

}  // namespace reprise::qdrant
