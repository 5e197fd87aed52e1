// A repository in an S3 bucket (AWS S3 or a compatible server: Ceph RGW, MinIO, ...), under
// an optional key prefix. See docs/storage-s3.md.
//
// - Put is one PUT (atomic on the server) signed with the payload's SHA-256, which the
//   server checks; objects of `multipart_threshold` bytes or more go up as a multipart upload
//   in `part_size` parts and become visible only when completed; a failed multipart upload
//   is aborted.
// - GetRange is a ranged GET; List is ListObjectsV2, following continuation tokens. A GET
//   whose body is cut mid-way asks for the rest (Range + If-Match on the ETag) instead of
//   starting again, as long as each attempt brings bytes.
// - Errors map as in storage/s3/errors.h; this class never retries (wrap it in RetryStorage).
// - Thread-safe: all state is immutable after construction except the HTTP handle pool.
//   At most `connections` requests are in flight at once; callers beyond that wait for a
//   free slot (the repository decides how many threads call; this bounds what they cost).
// - The bucket must exist: CreateBucket is for tests and tooling, not called by Put.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <semaphore>
#include <string>

#include "common/clock.h"
#include "storage/s3/credentials.h"
#include "storage/s3/http.h"
#include "storage/s3/s3_url.h"
#include "storage/s3/sigv4.h"
#include "storage/storage.h"

namespace reprise {

struct S3Options {
  std::string bucket;
  std::string prefix;    // "" or "a/b" (see s3::ParseS3Url)
  std::string endpoint;  // "" = https://s3.REGION.amazonaws.com
  std::string region = "us-east-1";
  bool path_style = false;  // true: http://host/bucket/key; false: http://bucket.host/key
  std::string ca_file;
  s3::Credentials credentials;
  // Where `credentials` came from when the caller gave them ("secret 's3_dr' of site 'dr'");
  // "" when found in the environment. Refusals of the credentials then name it in their hint.
  std::string credentials_origin;
  uint64_t multipart_threshold = 64ull << 20;
  uint64_t part_size = 16ull << 20;  // raised when an object would need > 10000 parts
  int max_keys = 1000;               // per ListObjectsV2 page
  int connections = 16;              // requests in flight at once, 1..s3::kMaxConnections
  long connect_timeout_seconds = 10;
  long low_speed_bytes = 1024;   // a transfer slower than this for low_speed_seconds is
  long low_speed_seconds = 60;   // abandoned as stalled (kUnavailable)
  const Clock* clock = nullptr;  // signing time; null = the system clock. Not owned.
};

class S3Storage final : public Storage {
 public:
  // kInvalidArgument for an unusable endpoint or sizes; does no I/O.
  static Result<std::unique_ptr<S3Storage>> Create(S3Options options);

  std::string Location() const override;  // "s3://bucket/prefix"
  Result<Bytes> Get(const std::string& key) override;
  Result<Bytes> GetRange(const std::string& key, uint64_t offset, uint64_t length) override;
  Status Put(const std::string& key, ByteView data) override;
  Status Delete(const std::string& key) override;
  Result<ObjectInfo> Stat(const std::string& key) override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;

  // Creates the bucket (in options.region); OK when this account already owns it.
  Status CreateBucket();
  // Deletes the (empty) bucket; OK when it does not exist.
  Status DeleteBucket();

 private:
  struct Call;
  explicit S3Storage(S3Options options);

  std::string ObjectKey(const std::string& key) const;
  Result<s3::HttpResponse> Send(const Call& call);
  Status PutMultipart(const std::string& object_key, ByteView data);
  // GET of the object (length nullopt: from offset 0 to its end), resuming a cut body.
  Result<Bytes> Read(const std::string& object_key, uint64_t offset,
                     std::optional<uint64_t> length);
  // s3::StatusFromResponse, with the hint of a credentials refusal naming credentials_origin.
  Status Refusal(const s3::HttpResponse& response, const std::string& method,
                 const std::string& key) const;

  S3Options options_;
  std::string scheme_;     // "http" / "https"
  std::string host_port_;  // "127.0.0.1:7480", "s3.eu-west-1.amazonaws.com"
  SystemClock system_clock_;
  std::unique_ptr<s3::HttpClient> http_;
  std::unique_ptr<std::counting_semaphore<s3::kMaxConnections>> slots_;  // `connections` of them
};

// Opens "s3://..." (s3::ParseS3Url): region from the URL, else AWS_REGION /
// AWS_DEFAULT_REGION, else us-east-1. Credentials: `given` when not null (a plan site's
// secret; `origin` says which, for messages), and then the environment and the credentials
// file are not looked at; else as storage/s3/credentials.h says.
Result<std::unique_ptr<S3Storage>> OpenS3Storage(const std::string& url, const s3::EnvLookup& env,
                                                 const s3::Credentials* given = nullptr,
                                                 const std::string& origin = "");

}  // namespace reprise
