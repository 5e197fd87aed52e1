#include "storage/s3/object_client.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "storage/s3/errors.h"
#include "storage/s3/xml.h"

namespace reprise::s3 {
namespace {

constexpr std::string_view kMetaPrefix = "x-amz-meta-";

std::string Unquote(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return etag;
}

std::optional<uint64_t> ParseU64(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (*end != '\0') return std::nullopt;
  return static_cast<uint64_t>(v);
}

// "bytes 100-299/4096" -> 4096.
std::optional<uint64_t> ContentRangeTotal(const std::string& content_range) {
  size_t slash = content_range.rfind('/');
  if (slash == std::string::npos) return std::nullopt;
  return ParseU64(content_range.substr(slash + 1));
}

ObjectHead HeadOf(const HttpResponse& resp) {
  ObjectHead h;
  h.etag = Unquote(resp.Header("etag"));
  h.last_modified = resp.Header("last-modified");
  h.size = ContentRangeTotal(resp.Header("content-range"))
               .value_or(ParseU64(resp.Header("content-length")).value_or(0));
  h.attributes.content_type = resp.Header("content-type");
  for (const auto& [name, value] : resp.headers) {
    if (name.size() > kMetaPrefix.size() && name.starts_with(kMetaPrefix))
      h.attributes.metadata[name.substr(kMetaPrefix.size())] = value;
  }
  for (const std::string& name : KeptHeaders()) {
    std::string v = resp.Header(name);
    if (!v.empty()) h.attributes.headers[name] = v;
  }
  return h;
}

void AddAttributes(const ObjectAttributes& a, HeaderList& headers) {
  if (!a.content_type.empty()) headers.emplace_back("Content-Type", a.content_type);
  for (const auto& [name, value] : a.metadata)
    headers.emplace_back(std::string(kMetaPrefix) + name, value);
  for (const auto& [name, value] : a.headers) headers.emplace_back(name, value);
}

}  // namespace

const std::vector<std::string>& KeptHeaders() {
  static const std::vector<std::string> names = {"cache-control", "content-disposition",
                                                 "content-encoding", "content-language",
                                                 "expires"};
  return names;
}

struct ObjectClient::Call {
  std::string method;
  std::string key{};  // "" for bucket requests
  std::vector<std::pair<std::string, std::string>> query{};
  HeaderList headers{};
  ByteView body{};
};

ObjectClient::ObjectClient(ObjectClientOptions options) : options_(std::move(options)) {}
ObjectClient::~ObjectClient() = default;

Result<std::unique_ptr<ObjectClient>> ObjectClient::Create(ObjectClientOptions options) {
  if (options.region.empty()) options.region = "us-east-1";
  ASSIGN_OR_RETURN(EndpointParts endpoint, NormalizeEndpoint(options.endpoint, options.region));
  if (options.bucket.empty()) return InvalidArgument("s3 bucket name is empty");
  if (options.max_keys < 1 || options.max_keys > 1000)
    return InvalidArgument("s3 max_keys must be from 1 to 1000");
  if (options.connections < 1 || options.connections > kMaxConnections)
    return InvalidArgument("s3 connections must be from 1 to " + std::to_string(kMaxConnections));
  std::unique_ptr<ObjectClient> c(new ObjectClient(std::move(options)));
  c->scheme_ = endpoint.scheme;
  c->host_port_ = endpoint.host_port;
  c->http_ = std::make_unique<HttpClient>(
      HttpOptions{.connect_timeout_seconds = c->options_.connect_timeout_seconds,
                  .low_speed_bytes = c->options_.low_speed_bytes,
                  .low_speed_seconds = c->options_.low_speed_seconds,
                  .ca_file = c->options_.ca_file,
                  .max_idle_handles = static_cast<size_t>(c->options_.connections)});
  c->slots_ = std::make_unique<std::counting_semaphore<kMaxConnections>>(c->options_.connections);
  return c;
}

std::string ObjectClient::Name(const std::string& key) const {
  return "s3://" + options_.bucket + (key.empty() ? "" : "/" + key);
}

Result<HttpResponse> ObjectClient::Send(const Call& call) {
  // The slot first, then the signature: a long wait must not age the signed time.
  slots_->acquire();
  struct Release {
    std::counting_semaphore<kMaxConnections>* s;
    ~Release() { s->release(); }
  } release{slots_.get()};
  const Clock& clock = options_.clock ? *options_.clock : system_clock_;
  return http_->Send(SignedRequest(
      BucketAddress{.scheme = scheme_, .host_port = host_port_, .bucket = options_.bucket,
                    .path_style = options_.path_style},
      call.method, call.key, call.query, call.headers, call.body, options_.credentials,
      options_.region, clock.NowUnix()));
}

Status ObjectClient::Refusal(const HttpResponse& response, const std::string& method,
                             const std::string& key) const {
  return StatusFromResponse(response,
                            ErrorContext{.method = method,
                                         .bucket = options_.bucket,
                                         .key = key,
                                         .endpoint = options_.endpoint,
                                         .region = options_.region},
                            options_.credentials_origin);
}

Status ObjectClient::List(const std::string& prefix,
                          const std::function<Status(ListedObject)>& fn) {
  std::string token;
  while (true) {
    Call call{.method = "GET",
              .query = {{"list-type", "2"},
                        {"prefix", prefix},
                        {"max-keys", std::to_string(options_.max_keys)}}};
    if (!token.empty()) call.query.emplace_back("continuation-token", token);
    ASSIGN_OR_RETURN(HttpResponse resp, Send(call));
    if (resp.status != 200) return Refusal(resp, "GET", prefix);
    std::string_view doc = AsString(resp.body);
    for (std::string_view contents : XmlElements(doc, "Contents")) {
      ListedObject o{.key = XmlText(contents, "Key").value_or(""),
                     .size = ParseU64(XmlText(contents, "Size").value_or("")).value_or(0),
                     .etag = Unquote(XmlText(contents, "ETag").value_or("")),
                     .last_modified = XmlText(contents, "LastModified").value_or("")};
      if (o.key.empty()) continue;
      RETURN_IF_ERROR(fn(std::move(o)));
    }
    if (XmlText(doc, "IsTruncated").value_or("false") != "true") return Status::Ok();
    token = XmlText(doc, "NextContinuationToken").value_or("");
    if (token.empty()) {
      return Unavailable("s3 at " + options_.endpoint + " sent a truncated listing of '" +
                         Name(prefix) + "' without a continuation token");
    }
  }
}

Result<std::optional<ObjectData>> ObjectClient::Get(const std::string& key, uint64_t offset,
                                                    uint64_t length,
                                                    const std::string& if_match) {
  Call call{.method = "GET", .key = key};
  bool ranged = offset > 0 || length > 0;
  if (ranged) {
    call.headers.emplace_back(
        "Range", "bytes=" + std::to_string(offset) + "-" +
                     (length > 0 ? std::to_string(offset + length - 1) : std::string()));
  }
  if (!if_match.empty()) call.headers.emplace_back("If-Match", "\"" + if_match + "\"");
  ASSIGN_OR_RETURN(HttpResponse resp, Send(call));
  if (resp.status == 200 || resp.status == 206) {
    ObjectData out{.head = HeadOf(resp), .data = std::move(resp.body)};
    if (resp.status == 200) {
      out.head.size = out.data.size();
      if (ranged) {  // a server that ignores Range sends everything
        uint64_t end = length > 0 ? std::min<uint64_t>(offset + length, out.data.size())
                                  : out.data.size();
        if (offset >= end) {
          out.data.clear();
        } else {
          out.data = Bytes(out.data.begin() + static_cast<ptrdiff_t>(offset),
                           out.data.begin() + static_cast<ptrdiff_t>(end));
        }
      }
    }
    return std::optional<ObjectData>(std::move(out));
  }
  if (resp.status == 412 || resp.status == 416) {
    return Aborted("object '" + Name(key) + "' changed while it was read");
  }
  if (resp.status == 404 && XmlText(AsString(resp.body), "Code").value_or("") != "NoSuchBucket")
    return std::optional<ObjectData>();
  return Refusal(resp, "GET", key);
}

Result<std::optional<ObjectHead>> ObjectClient::Head(const std::string& key) {
  ASSIGN_OR_RETURN(HttpResponse resp, Send({.method = "HEAD", .key = key}));
  if (resp.status == 200) return std::optional<ObjectHead>(HeadOf(resp));
  if (resp.status == 404) return std::optional<ObjectHead>();
  if (resp.status < 500) {
    // A HEAD error has no body to say why: a one-byte GET's error names the S3 error code.
    auto probe = Send({.method = "GET", .key = key, .headers = {{"Range", "bytes=0-0"}}});
    if (probe.ok() && probe->status >= 300 && !probe->body.empty())
      return Refusal(*probe, "HEAD", key);
  }
  return Refusal(resp, "HEAD", key);
}

Result<std::string> ObjectClient::Put(const std::string& key, ByteView data,
                                      const ObjectAttributes& attributes) {
  Call call{.method = "PUT", .key = key, .body = data};
  AddAttributes(attributes, call.headers);
  ASSIGN_OR_RETURN(HttpResponse resp, Send(call));
  if (resp.status == 200) return Unquote(resp.Header("etag"));
  return Refusal(resp, "PUT", key);
}

Result<std::string> ObjectClient::StartMultipart(const std::string& key,
                                                 const ObjectAttributes& attributes) {
  Call call{.method = "POST", .key = key, .query = {{"uploads", ""}}};
  ObjectAttributes a = attributes;
  // A POST without a type would get the HTTP client's form type; S3's own default instead.
  if (a.content_type.empty()) a.content_type = "binary/octet-stream";
  AddAttributes(a, call.headers);
  ASSIGN_OR_RETURN(HttpResponse resp, Send(call));
  if (resp.status != 200) return Refusal(resp, "POST", key);
  std::string upload_id = XmlText(AsString(resp.body), "UploadId").value_or("");
  if (upload_id.empty()) {
    return Unavailable("s3 at " + options_.endpoint + " started a multipart upload of '" +
                       Name(key) + "' without an UploadId");
  }
  return upload_id;
}

Result<std::string> ObjectClient::PutPart(const std::string& key, const std::string& upload_id,
                                          int part, ByteView data) {
  ASSIGN_OR_RETURN(
      HttpResponse resp,
      Send({.method = "PUT",
            .key = key,
            .query = {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}},
            .body = data}));
  if (resp.status != 200) return Refusal(resp, "PUT", key);
  std::string etag = resp.Header("etag");
  if (etag.empty()) {
    return Unavailable("s3 at " + options_.endpoint + " sent no ETag for part " +
                       std::to_string(part) + " of '" + Name(key) + "'");
  }
  return etag;
}

Status ObjectClient::CompleteMultipart(const std::string& key, const std::string& upload_id,
                                       const std::vector<std::string>& part_etags) {
  std::string body = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < part_etags.size(); ++i) {
    body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
            XmlEscape(part_etags[i]) + "</ETag></Part>";
  }
  body += "</CompleteMultipartUpload>";
  ASSIGN_OR_RETURN(HttpResponse resp, Send({.method = "POST",
                                            .key = key,
                                            .query = {{"uploadId", upload_id}},
                                            .headers = {{"Content-Type", "application/xml"}},
                                            .body = AsBytes(body)}));
  // It can fail after "200 OK" has been sent: the error is then in the body.
  if (resp.status != 200 || AsString(resp.body).find("<Error>") != std::string_view::npos)
    return Refusal(resp, "POST", key);
  return Status::Ok();
}

void ObjectClient::AbortMultipart(const std::string& key, const std::string& upload_id) {
  // Best effort: the original error matters; leftovers go with lifecycle rules.
  (void)Send({.method = "DELETE", .key = key, .query = {{"uploadId", upload_id}}});
}

Status ObjectClient::Delete(const std::string& key) {
  ASSIGN_OR_RETURN(HttpResponse resp, Send({.method = "DELETE", .key = key}));
  if (resp.status == 204 || resp.status == 200) return Status::Ok();
  if (resp.status == 404 && XmlText(AsString(resp.body), "Code").value_or("") != "NoSuchBucket")
    return Status::Ok();
  return Refusal(resp, "DELETE", key);
}

Status ObjectClient::DeleteMany(const std::vector<std::string>& keys) {
  constexpr size_t kBatch = 1000;  // the most DeleteObjects takes
  for (size_t start = 0; start < keys.size(); start += kBatch) {
    std::string body = "<Delete><Quiet>true</Quiet>";
    for (size_t i = start; i < std::min(keys.size(), start + kBatch); ++i)
      body += "<Object><Key>" + XmlEscape(keys[i]) + "</Key></Object>";
    body += "</Delete>";
    // S3 requires a checksum of this body; MD5 is the one every implementation takes.
    unsigned char md5[EVP_MAX_MD_SIZE];
    unsigned int md5_len = 0;
    if (EVP_Digest(body.data(), body.size(), md5, &md5_len, EVP_md5(), nullptr) != 1)
      return Internal("MD5 of a delete request failed");
    ASSIGN_OR_RETURN(
        HttpResponse resp,
        Send({.method = "POST",
              .query = {{"delete", ""}},
              .headers = {{"Content-Type", "application/xml"},
                          {"Content-MD5", Base64Encode(ByteView(md5, md5_len))}},
              .body = AsBytes(body)}));
    if (resp.status != 200) return Refusal(resp, "POST", keys[start]);
    std::string_view doc = AsString(resp.body);
    for (std::string_view error : XmlElements(doc, "Error")) {
      std::string key = XmlText(error, "Key").value_or("");
      std::string code = XmlText(error, "Code").value_or("");
      if (code == "NoSuchKey") continue;
      HttpResponse as_one{.status = code == "AccessDenied" ? 403 : 400,
                          .headers = {},
                          .body = ToBytes("<Error>" + std::string(error) + "</Error>")};
      return Refusal(as_one, "DELETE", key);
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<ObjectClient>> OpenObjectClient(const S3Url& url, const EnvLookup& env,
                                                       const Credentials* given,
                                                       const std::string& origin,
                                                       int connections) {
  Result<Credentials> creds = given ? Result<Credentials>(*given) : ResolveCredentials(env);
  if (!creds.ok()) return creds.status().WithContext("opening '" + DisplayUrl(url) + "'");
  if (creds->access_key_id.empty() || creds->secret_access_key.empty()) {
    return Unauthenticated("opening '" + DisplayUrl(url) + "': " +
                           (origin.empty() ? std::string("the credentials given") : origin) +
                           " lack an access key id or a secret access key");
  }
  ObjectClientOptions o{
      .bucket = url.bucket,
      .endpoint = url.endpoint,
      .region = url.region.empty() ? DefaultRegion(env) : url.region,
      .path_style = url.path_style.value_or(!url.endpoint.empty()),
      .ca_file = url.ca_file,
      .credentials = std::move(*creds),
      .credentials_origin = given ? (origin.empty() ? "the credentials given" : origin) : "",
      .connections = connections > 0 ? connections : url.connections.value_or(8)};
  if (url.max_keys) o.max_keys = *url.max_keys;
  return ObjectClient::Create(std::move(o));
}

}  // namespace reprise::s3
