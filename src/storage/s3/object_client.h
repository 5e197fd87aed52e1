// S3 objects as an application sees them (the `s3` documents component, not the repository
// backend): listings with ETag and last-modified, GETs that return the content type, the user
// metadata (x-amz-meta-*) and the other headers an object keeps, and PUTs (single or
// multipart) that set them again.
//
// - Keys are full keys in the bucket; no prefix is added or removed here.
// - Errors map as in storage/s3/errors.h; this class never retries. Credentials refused while
//   `credentials_origin` is set get a hint naming that origin instead of the AWS_* variables.
// - Thread-safe: immutable after construction except the HTTP handle pool. At most
//   `connections` requests are in flight at once; callers beyond that wait for a slot.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <semaphore>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/result.h"
#include "storage/s3/credentials.h"
#include "storage/s3/http.h"
#include "storage/s3/s3_url.h"
#include "storage/s3/sigv4.h"

namespace reprise::s3 {

struct ObjectClientOptions {
  std::string bucket;
  std::string endpoint;  // "" = https://s3.REGION.amazonaws.com
  std::string region = "us-east-1";
  bool path_style = false;
  std::string ca_file;
  Credentials credentials;
  std::string credentials_origin;  // "secret 'docs_s3' of component 'docs'", or "" (env)
  int connections = 8;             // 1..kMaxConnections
  int max_keys = 1000;             // per ListObjectsV2 page
  long connect_timeout_seconds = 10;
  long low_speed_bytes = 1024;
  long low_speed_seconds = 60;
  const Clock* clock = nullptr;  // signing time; null = the system clock. Not owned.
};

// One object of a listing. `etag` is without its quotes; `last_modified` as the listing
// gives it ("2024-05-01T10:00:00.123Z").
struct ListedObject {
  std::string key;
  uint64_t size = 0;
  std::string etag;
  std::string last_modified;
};

// What an object carries besides its bytes, as GET and HEAD return it and PUT sets it.
struct ObjectAttributes {
  std::string content_type;  // "" when the server sent none
  // User metadata: NAME (lowercase, without "x-amz-meta-") -> value.
  std::map<std::string, std::string> metadata;
  // Those of cache-control, content-disposition, content-encoding, content-language and
  // expires that are set, by lowercase name.
  std::map<std::string, std::string> headers;
  bool operator==(const ObjectAttributes&) const = default;
};

// The names of ObjectAttributes::headers.
const std::vector<std::string>& KeptHeaders();

struct ObjectHead {
  std::string etag;           // without quotes
  uint64_t size = 0;          // of the whole object (also for a ranged GET)
  std::string last_modified;  // the Last-Modified header (RFC 1123)
  ObjectAttributes attributes;
};

struct ObjectData {
  ObjectHead head;
  Bytes data;
};

class ObjectClient {
 public:
  // kInvalidArgument for an unusable endpoint or option; does no I/O.
  static Result<std::unique_ptr<ObjectClient>> Create(ObjectClientOptions options);
  ~ObjectClient();

  const ObjectClientOptions& options() const { return options_; }
  // "s3://bucket/key" for messages.
  std::string Name(const std::string& key) const;

  // Every object whose key starts with `prefix`, in the server's order (ascending keys),
  // following continuation tokens. Stops at the first error `fn` returns.
  Status List(const std::string& prefix, const std::function<Status(ListedObject)>& fn);

  // GET of the whole object (length == 0) or of bytes [offset, offset + length), cut short
  // at the object's end. With `if_match` (an ETag without quotes), an object whose ETag is
  // now another is kAborted. nullopt: the object does not exist (the bucket does).
  Result<std::optional<ObjectData>> Get(const std::string& key, uint64_t offset = 0,
                                        uint64_t length = 0, const std::string& if_match = "");
  // nullopt: no such object (or no such bucket: HEAD cannot tell; List or Get can).
  Result<std::optional<ObjectHead>> Head(const std::string& key);

  // One PUT with the object's attributes; returns the new ETag.
  Result<std::string> Put(const std::string& key, ByteView data,
                          const ObjectAttributes& attributes);
  // Multipart upload: Start, then PutPart for parts 1, 2, ... (each >= 5 MiB but the last),
  // then Complete with their ETags; Abort on any failure so no parts linger.
  Result<std::string> StartMultipart(const std::string& key, const ObjectAttributes& attributes);
  Result<std::string> PutPart(const std::string& key, const std::string& upload_id, int part,
                              ByteView data);
  Status CompleteMultipart(const std::string& key, const std::string& upload_id,
                           const std::vector<std::string>& part_etags);
  void AbortMultipart(const std::string& key, const std::string& upload_id);

  // OK also when the object does not exist; a missing bucket is kNotFound.
  Status Delete(const std::string& key);
  // DeleteObjects: up to 1000 keys per request (more are sent in several). An object the
  // server could not delete fails the call, naming it; missing objects are not an error.
  Status DeleteMany(const std::vector<std::string>& keys);

 private:
  struct Call;
  explicit ObjectClient(ObjectClientOptions options);
  Result<HttpResponse> Send(const Call& call);
  Status Refusal(const HttpResponse& response, const std::string& method,
                 const std::string& key) const;

  ObjectClientOptions options_;
  std::string scheme_, host_port_;
  SystemClock system_clock_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<std::counting_semaphore<kMaxConnections>> slots_;
};

// Opens the bucket of an s3:// URL (s3::ParseS3Url; its prefix is the caller's business).
// Credentials: `given` when not null (`origin` names it for messages), else the environment
// and the credentials file (storage/s3/credentials.h). `connections` overrides the URL's.
Result<std::unique_ptr<ObjectClient>> OpenObjectClient(const S3Url& url, const EnvLookup& env,
                                                       const Credentials* given,
                                                       const std::string& origin,
                                                       int connections);

}  // namespace reprise::s3
