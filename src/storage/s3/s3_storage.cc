#include "storage/s3/s3_storage.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <utility>

#include "storage/s3/errors.h"
#include "storage/s3/xml.h"

namespace reprise {
namespace {

constexpr uint64_t kMaxParts = 10000;

// Temp files of other backends' unfinished Puts; refused as keys everywhere so that a
// repository can move between backends and keep one key space.

// "bytes 100-299/4096" -> 4096; nullopt when absent or "*".
std::optional<uint64_t> ContentRangeTotal(const std::string& content_range) {
  size_t slash = content_range.rfind('/');
  if (slash == std::string::npos || slash + 1 >= content_range.size()) return std::nullopt;
  char* end = nullptr;
  unsigned long long v = std::strtoull(content_range.c_str() + slash + 1, &end, 10);
  if (end == content_range.c_str() + slash + 1) return std::nullopt;
  return static_cast<uint64_t>(v);
}

}  // namespace

struct S3Storage::Call {
  std::string method;
  std::string key{};  // full object key in the bucket; "" for bucket requests
  std::vector<std::pair<std::string, std::string>> query{};
  s3::HeaderList headers{};
  ByteView body{};
  s3::HttpResponse* partial = nullptr;  // see s3::HttpRequest::partial
};

S3Storage::S3Storage(S3Options options) : options_(std::move(options)) {}

Result<std::unique_ptr<S3Storage>> S3Storage::Create(S3Options options) {
  if (options.region.empty()) options.region = "us-east-1";
  ASSIGN_OR_RETURN(s3::EndpointParts endpoint,
                   s3::NormalizeEndpoint(options.endpoint, options.region));
  if (options.bucket.empty()) return InvalidArgument("s3 bucket name is empty");
  if (options.part_size < s3::kMinPartSize)
    return InvalidArgument("s3 part size must be at least 5MiB (the S3 minimum)");
  if (options.multipart_threshold == 0)
    return InvalidArgument("s3 multipart threshold must be more than 0");
  if (options.max_keys < 1 || options.max_keys > 1000)
    return InvalidArgument("s3 max_keys must be from 1 to 1000");
  if (options.connections < 1 || options.connections > s3::kMaxConnections)
    return InvalidArgument("s3 connections must be from 1 to " +
                           std::to_string(s3::kMaxConnections));

  std::unique_ptr<S3Storage> s(new S3Storage(std::move(options)));
  s->scheme_ = endpoint.scheme;
  s->host_port_ = endpoint.host_port;
  s->http_ = std::make_unique<s3::HttpClient>(
      s3::HttpOptions{.connect_timeout_seconds = s->options_.connect_timeout_seconds,
                      .low_speed_bytes = s->options_.low_speed_bytes,
                      .low_speed_seconds = s->options_.low_speed_seconds,
                      .ca_file = s->options_.ca_file,
                      .max_idle_handles = static_cast<size_t>(s->options_.connections)});
  s->slots_ =
      std::make_unique<std::counting_semaphore<s3::kMaxConnections>>(s->options_.connections);
  return s;
}

std::string S3Storage::Location() const {
  return "s3://" + options_.bucket + (options_.prefix.empty() ? "" : "/" + options_.prefix);
}

std::string S3Storage::ObjectKey(const std::string& key) const {
  return options_.prefix.empty() ? key : options_.prefix + "/" + key;
}

Result<s3::HttpResponse> S3Storage::Send(const Call& call) {
  // Wait for a slot before signing: the signature's time must be close to the sending's
  // (S3 allows 15 minutes), and a wait behind slow uploads could be longer than that.
  slots_->acquire();
  struct Release {
    std::counting_semaphore<s3::kMaxConnections>* s;
    ~Release() { s->release(); }
  } release{slots_.get()};
  const Clock& clock = options_.clock ? *options_.clock : system_clock_;
  s3::HttpRequest request = s3::SignedRequest(
      s3::BucketAddress{.scheme = scheme_, .host_port = host_port_, .bucket = options_.bucket,
                        .path_style = options_.path_style},
      call.method, call.key, call.query, call.headers, call.body, options_.credentials,
      options_.region, clock.NowUnix());
  request.partial = call.partial;
  return http_->Send(request);
}

namespace {

s3::ErrorContext Context(const S3Options& o, const std::string& method, const std::string& key) {
  return {
      .method = method, .bucket = o.bucket, .key = key, .endpoint = o.endpoint, .region = o.region};
}

}  // namespace

Status S3Storage::Refusal(const s3::HttpResponse& response, const std::string& method,
                          const std::string& key) const {
  return s3::StatusFromResponse(response, Context(options_, method, key),
                                options_.credentials_origin);
}

Result<Bytes> S3Storage::Get(const std::string& key) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  return Read(ObjectKey(key), 0, std::nullopt);
}

Result<Bytes> S3Storage::GetRange(const std::string& key, uint64_t offset, uint64_t length) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  std::string ok = ObjectKey(key);
  if (length > std::numeric_limits<uint64_t>::max() - offset) {
    return InvalidArgument("range of " + std::to_string(length) + " bytes at " +
                           std::to_string(offset) + " is past the end of 's3://" +
                           options_.bucket + "/" + ok + "'");
  }
  if (length == 0) {
    // HTTP cannot ask for zero bytes; the object's size says whether the range is valid.
    ASSIGN_OR_RETURN(ObjectInfo info, Stat(key));
    if (offset > info.size) {
      return InvalidArgument("range of 0 bytes at " + std::to_string(offset) +
                             " is past the end of 's3://" + options_.bucket + "/" + ok + "' (" +
                             std::to_string(info.size) + " bytes)");
    }
    return Bytes{};
  }
  return Read(ok, offset, length);
}

Result<Bytes> S3Storage::Read(const std::string& ok, uint64_t offset,
                              std::optional<uint64_t> length) {
  auto past_end = [&](std::optional<uint64_t> size) {
    return InvalidArgument("range of " + std::to_string(length.value_or(0)) + " bytes at " +
                           std::to_string(offset) + " is past the end of 's3://" +
                           options_.bucket + "/" + ok + "'" +
                           (size ? " (" + std::to_string(*size) + " bytes)" : ""));
  };
  // A body cut mid-way is resumed from where it stopped, with If-Match on the ETag the first
  // response carried, so that the pieces are of one version of the object. Each resumption
  // must bring bytes; kMaxResumes bounds a link that cuts everything.
  constexpr int kMaxResumes = 64;
  Bytes out;
  std::string etag;
  for (int resumes = 0;; ++resumes) {
    const uint64_t from = offset + out.size();
    s3::HeaderList headers;
    bool ranged = length.has_value() || !out.empty();
    if (ranged) {
      std::string range = "bytes=" + std::to_string(from) + "-";
      if (length) range += std::to_string(offset + *length - 1);
      headers.emplace_back("Range", range);
    }
    if (!etag.empty()) headers.emplace_back("If-Match", etag);
    s3::HttpResponse partial;
    Result<s3::HttpResponse> sent =
        Send({.method = "GET", .key = ok, .headers = headers, .partial = &partial});
    if (!sent.ok()) {
      bool resumable = sent.status().code() == Code::kUnavailable && !partial.body.empty() &&
                       (partial.status == 206 || (partial.status == 200 && !ranged)) &&
                       resumes < kMaxResumes;
      if (!resumable) return sent.status();
      if (etag.empty()) etag = partial.Header("etag");
      if (etag.empty()) return sent.status();  // nothing to pin the object's version with
      out.insert(out.end(), partial.body.begin(), partial.body.end());
      continue;
    }
    s3::HttpResponse& resp = *sent;
    if (resp.status == 206) {
      if (length) {
        // A range that starts inside the object but ends past it comes back shortened.
        if (out.size() + resp.body.size() != *length) {
          return past_end(ContentRangeTotal(resp.Header("content-range")));
        }
      }
      if (out.empty()) return std::move(resp.body);
      out.insert(out.end(), resp.body.begin(), resp.body.end());
      return out;
    }
    if (resp.status == 200) {
      if (!ranged) return std::move(resp.body);
      // A server that ignores Range sends the whole object.
      uint64_t want_end = length ? offset + *length : resp.body.size();
      if (resp.body.size() < want_end) return past_end(resp.body.size());
      return Bytes(resp.body.begin() + static_cast<ptrdiff_t>(offset),
                   resp.body.begin() + static_cast<ptrdiff_t>(want_end));
    }
    if (resp.status == 416) return past_end(ContentRangeTotal(resp.Header("content-range")));
    if (resp.status == 412) {
      return Aborted("'s3://" + options_.bucket + "/" + ok +
                     "' changed while it was being read (ETag " + etag + " no longer matches)");
    }
    return Refusal(resp, "GET", ok);
  }
}

Status S3Storage::Put(const std::string& key, ByteView data) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  std::string ok = ObjectKey(key);
  if (data.size() >= options_.multipart_threshold) return PutMultipart(ok, data);
  ASSIGN_OR_RETURN(s3::HttpResponse resp, Send({.method = "PUT", .key = ok, .body = data}));
  if (resp.status == 200) return Status::Ok();
  return Refusal(resp, "PUT", ok);
}

Status S3Storage::PutMultipart(const std::string& ok, ByteView data) {
  ASSIGN_OR_RETURN(s3::HttpResponse init,
                   Send({.method = "POST", .key = ok, .query = {{"uploads", ""}}}));
  if (init.status != 200) return Refusal(init, "POST", ok);
  std::string upload_id = s3::XmlText(AsString(init.body), "UploadId").value_or("");
  if (upload_id.empty()) {
    return Unavailable("s3 at " + options_.endpoint + " started a multipart upload of 's3://" +
                       options_.bucket + "/" + ok + "' without an UploadId");
  }

  // From here on, a failure aborts the upload so its parts do not linger (and cost).
  auto abort = [&](Status st) {
    auto r = Send({.method = "DELETE", .key = ok, .query = {{"uploadId", upload_id}}});
    (void)r;  // the original error matters; a lingering upload is cleaned by lifecycle rules
    return st;
  };

  uint64_t part_size =
      std::max<uint64_t>(options_.part_size, (data.size() + kMaxParts - 1) / kMaxParts);
  std::string complete = "<CompleteMultipartUpload>";
  uint64_t part = 0;
  for (uint64_t off = 0; off < data.size(); off += part_size) {
    ++part;
    ByteView chunk = data.subspan(off, std::min<uint64_t>(part_size, data.size() - off));
    auto resp = Send({.method = "PUT",
                      .key = ok,
                      .query = {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}},
                      .body = chunk});
    if (!resp.ok()) return abort(resp.status());
    if (resp->status != 200)
      return abort(Refusal(*resp, "PUT", ok));
    std::string etag = resp->Header("etag");
    if (etag.empty()) {
      return abort(Unavailable("s3 at " + options_.endpoint + " sent no ETag for part " +
                               std::to_string(part) + " of 's3://" + options_.bucket + "/" + ok +
                               "'"));
    }
    complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" +
                s3::XmlEscape(etag) + "</ETag></Part>";
  }
  complete += "</CompleteMultipartUpload>";

  auto done = Send({.method = "POST",
                    .key = ok,
                    .query = {{"uploadId", upload_id}},
                    .headers = {{"Content-Type", "application/xml"}},
                    .body = AsBytes(complete)});
  if (!done.ok()) return abort(done.status());
  // CompleteMultipartUpload can fail after "200 OK" has been sent: the error is in the body.
  if (done->status != 200 || AsString(done->body).find("<Error>") != std::string_view::npos)
    return abort(Refusal(*done, "POST", ok));
  return Status::Ok();
}

Status S3Storage::Delete(const std::string& key) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  std::string ok = ObjectKey(key);
  ASSIGN_OR_RETURN(s3::HttpResponse resp, Send({.method = "DELETE", .key = ok}));
  if (resp.status == 204 || resp.status == 200) return Status::Ok();
  // Deleting what is not there is done; a missing bucket is not.
  if (resp.status == 404 && s3::XmlText(AsString(resp.body), "Code").value_or("") != "NoSuchBucket")
    return Status::Ok();
  return Refusal(resp, "DELETE", ok);
}

Result<ObjectInfo> S3Storage::Stat(const std::string& key) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  std::string ok = ObjectKey(key);
  ASSIGN_OR_RETURN(s3::HttpResponse resp, Send({.method = "HEAD", .key = ok}));
  if (resp.status != 200 && resp.status != 404 && resp.status < 500) {
    // A HEAD error has no body to say why (a wrong secret and a denied key are both a bare
    // 403): ask again with a one-byte GET, whose error body names the S3 error code.
    auto probe = Send({.method = "GET", .key = ok, .headers = {{"Range", "bytes=0-0"}}});
    if (probe.ok() && probe->status >= 300 && !probe->body.empty())
      return Refusal(*probe, "HEAD", ok);
  }
  if (resp.status != 200) return Refusal(resp, "HEAD", ok);
  std::string len = resp.Header("content-length");
  char* end = nullptr;
  unsigned long long size = std::strtoull(len.c_str(), &end, 10);
  if (len.empty() || *end != '\0') {
    return Unavailable("s3 at " + options_.endpoint + " sent no Content-Length for 's3://" +
                       options_.bucket + "/" + ok + "'");
  }
  return ObjectInfo{.key = key, .size = static_cast<uint64_t>(size)};
}

Result<std::vector<ObjectInfo>> S3Storage::List(const std::string& prefix) {
  RETURN_IF_ERROR(ValidateStorageKey(prefix, true));
  std::string strip = options_.prefix.empty() ? "" : options_.prefix + "/";
  std::string full = strip + prefix;
  std::vector<ObjectInfo> out;
  std::string token;
  while (true) {
    Call call{
        .method = "GET",
        .query = {
            {"list-type", "2"}, {"prefix", full}, {"max-keys", std::to_string(options_.max_keys)}}};
    if (!token.empty()) call.query.emplace_back("continuation-token", token);
    ASSIGN_OR_RETURN(s3::HttpResponse resp, Send(call));
    if (resp.status != 200) return Refusal(resp, "GET", full);
    std::string_view doc = AsString(resp.body);
    for (std::string_view contents : s3::XmlElements(doc, "Contents")) {
      std::string key = s3::XmlText(contents, "Key").value_or("");
      if (!key.starts_with(strip)) continue;
      key.erase(0, strip.size());
      // Folder markers ("dir/") and other non-repository names are not objects here.
      if (!ValidateStorageKey(key, false).ok()) continue;
      std::string size = s3::XmlText(contents, "Size").value_or("0");
      out.push_back({.key = std::move(key), .size = std::strtoull(size.c_str(), nullptr, 10)});
    }
    if (s3::XmlText(doc, "IsTruncated").value_or("false") != "true") break;
    token = s3::XmlText(doc, "NextContinuationToken").value_or("");
    if (token.empty()) {
      return Unavailable("s3 at " + options_.endpoint + " sent a truncated listing of '" +
                         Location() + "' without a continuation token");
    }
  }
  return out;
}

Status S3Storage::CreateBucket() {
  std::string body;
  if (options_.region != "us-east-1") {
    body =
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>" +
        s3::XmlEscape(options_.region) + "</LocationConstraint></CreateBucketConfiguration>";
  }
  ASSIGN_OR_RETURN(s3::HttpResponse resp,
                   Send({.method = "PUT", .key = "", .body = AsBytes(body)}));
  if (resp.status == 200) return Status::Ok();
  std::string code = s3::XmlText(AsString(resp.body), "Code").value_or("");
  if (code == "BucketAlreadyOwnedByYou") return Status::Ok();
  if (code == "BucketAlreadyExists")
    return AlreadyExists("bucket '" + options_.bucket +
                         "' already exists and belongs to "
                         "another account: HINT: bucket names are global; pick another");
  return Refusal(resp, "PUT", "");
}

Status S3Storage::DeleteBucket() {
  ASSIGN_OR_RETURN(s3::HttpResponse resp, Send({.method = "DELETE", .key = ""}));
  if (resp.status == 204 || resp.status == 200 || resp.status == 404) return Status::Ok();
  return Refusal(resp, "DELETE", "");
}

Result<std::unique_ptr<S3Storage>> OpenS3Storage(const std::string& url, const s3::EnvLookup& env,
                                                 const s3::Credentials* given,
                                                 const std::string& origin) {
  ASSIGN_OR_RETURN(s3::S3Url u, s3::ParseS3Url(url));
  Result<s3::Credentials> creds = given ? Result<s3::Credentials>(*given)
                                        : s3::ResolveCredentials(env);
  if (!creds.ok()) return creds.status().WithContext("opening '" + s3::DisplayUrl(u) + "'");
  if (creds->access_key_id.empty() || creds->secret_access_key.empty()) {
    return Unauthenticated("opening '" + s3::DisplayUrl(u) + "': " +
                           (origin.empty() ? std::string("the credentials given") : origin) +
                           " lack an access key id or a secret access key");
  }
  S3Options o{.bucket = u.bucket,
              .prefix = u.prefix,
              .endpoint = u.endpoint,
              .region = u.region.empty() ? s3::DefaultRegion(env) : u.region,
              .path_style = u.path_style.value_or(!u.endpoint.empty()),
              .ca_file = u.ca_file,
              .credentials = std::move(*creds),
              .credentials_origin = given ? (origin.empty() ? "the credentials given" : origin)
                                          : ""};
  if (u.multipart_threshold) o.multipart_threshold = *u.multipart_threshold;
  if (u.part_size) o.part_size = *u.part_size;
  if (u.max_keys) o.max_keys = *u.max_keys;
  if (u.connections) o.connections = *u.connections;
  return S3Storage::Create(std::move(o));
}

}  // namespace reprise
