// How an S3 error response becomes a Status (docs/storage-s3.md, "Errors"):
//
//   5xx, 429, SlowDown, ServiceUnavailable, InternalError, RequestTimeout  -> kUnavailable
//   NoSuchBucket                        -> kNotFound "bucket 'b' does not exist at <endpoint>"
//   NoSuchKey, other 404                -> kNotFound "object 's3://b/k' does not exist"
//   RequestTimeTooSkewed                -> kFailedPrecondition (fix this host's clock)
//   InvalidAccessKeyId, SignatureDoesNotMatch -> kUnauthenticated (fix the credentials)
//   other 403 (AccessDenied, ...)       -> kPermissionDenied "access denied to 's3://b/k'"
//                                          (a DELETE: "access denied to delete ..." with a hint
//                                          about append-only credentials)
//   AuthorizationHeaderMalformed, PermanentRedirect, wrong region
//                                       -> kInvalidArgument naming the bucket's region
//   416 InvalidRange                    -> kInvalidArgument
//   other 4xx                           -> kInvalidArgument (400) or kFailedPrecondition
// Messages carry the S3 error Code and Message, never a credential.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "storage/s3/http.h"

namespace reprise::s3 {

struct ErrorContext {
  std::string method;    // "GET"
  std::string bucket;    // "backups"
  std::string key;       // the full object key in the bucket, "" for bucket requests
  std::string endpoint;  // "https://s3.eu-west-1.amazonaws.com"
  std::string region;    // the region we signed with
};

// Never OK: call it for a response whose status is not the success the caller expected.
Status StatusFromResponse(const HttpResponse& response, const ErrorContext& context);
// StatusFromResponse, where a credentials refusal's hint names `credentials_origin` (a plan's
// secrets, a site's) instead of the AWS_* variables, which were not used. Empty: unchanged.
Status StatusFromResponse(const HttpResponse& response, const ErrorContext& context,
                          const std::string& credentials_origin);

}  // namespace reprise::s3
