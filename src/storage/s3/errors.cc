#include "storage/s3/errors.h"

#include "storage/s3/xml.h"

namespace reprise::s3 {
namespace {

std::string ObjectName(const ErrorContext& c) {
  return "'s3://" + c.bucket + (c.key.empty() ? "" : "/" + c.key) + "'";
}

}  // namespace

Status StatusFromResponse(const HttpResponse& response, const ErrorContext& c) {
  std::string_view body = AsString(response.body);
  std::string code = XmlText(body, "Code").value_or("");
  std::string message = XmlText(body, "Message").value_or("");
  long status = response.status;

  // "HTTP 403 AccessDenied: Access Denied" (HEAD responses have no body: "HTTP 403").
  std::string detail = "HTTP " + std::to_string(status);
  if (!code.empty()) detail += " " + code;
  if (!message.empty()) detail += ": " + message;
  std::string request = c.method + " " + ObjectName(c);

  if (status >= 500 || status == 429 || code == "SlowDown" || code == "ServiceUnavailable" ||
      code == "InternalError" || code == "RequestTimeout" || code == "OperationAborted") {
    return Unavailable("s3 at " + c.endpoint + " is unavailable for " + request + ": " + detail);
  }
  if (code == "RequestTimeTooSkewed") {
    return FailedPrecondition(
        "the clock of this host is off by more than 15 minutes from the server (" + c.endpoint +
        ", " + detail + "): HINT: synchronize the clock (chrony, systemd-timesyncd or ntpd)");
  }

  // A bucket in another region: S3 says which one in the body or a header.
  std::string bucket_region = XmlText(body, "Region").value_or("");
  if (bucket_region.empty()) bucket_region = response.Header("x-amz-bucket-region");
  if (code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" ||
      code == "IllegalLocationConstraintException" || status == 301 ||
      (!bucket_region.empty() && bucket_region != c.region && status == 400)) {
    if (!bucket_region.empty() && bucket_region != c.region) {
      return InvalidArgument("bucket '" + c.bucket + "' is in region '" + bucket_region +
                             "', not '" + c.region + "' (" + detail +
                             "): HINT: add region=" + bucket_region + " to the repository url");
    }
    std::string endpoint = XmlText(body, "Endpoint").value_or("");
    return InvalidArgument(
        "s3 refused " + request + " as sent to the wrong region or endpoint (" + detail + ")" +
        (endpoint.empty()
             ? std::string(": HINT: set region= in the url")
             : ": HINT: use endpoint=https://" + endpoint + " or the bucket's region in the url"));
  }

  if (code == "NoSuchBucket") {
    return NotFound("bucket '" + c.bucket + "' does not exist at " + c.endpoint +
                    ": HINT: create it first (for example `aws s3 mb s3://" + c.bucket +
                    "`), or fix the bucket name or the endpoint in the repository url");
  }
  if (status == 404) {
    if (code == "NoSuchUpload")
      return NotFound("multipart upload of " + ObjectName(c) + " no longer exists (" + detail +
                      ")");
    return NotFound("object " + ObjectName(c) + " does not exist");
  }
  if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "InvalidToken" ||
      code == "ExpiredToken" || code == "TokenRefreshRequired") {
    return Unauthenticated("s3 at " + c.endpoint + " refused the credentials for " + request +
                           ": " + detail +
                           ": HINT: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the "
                           "AWS_PROFILE in ~/.aws/credentials)" +
                           (code == "ExpiredToken" ? " and renew AWS_SESSION_TOKEN" : ""));
  }
  if (status == 403 && c.method == "DELETE" && !c.key.empty()) {
    // Append-only credentials (docs/storage-s3.md) may put but not delete: only forget,
    // prune and key removal delete objects other than locks.
    return PermissionDenied("access denied to delete " + ObjectName(c) + " (" + detail +
                            "): HINT: these credentials may not delete objects (an append-only "
                            "repository?); run forget and prune with the credentials that may");
  }
  if (status == 403) {
    return PermissionDenied("access denied to " + ObjectName(c) + " (" + c.method + ", " + detail +
                            "): HINT: check that these credentials may read and write the "
                            "bucket (bucket policy, IAM policy, ACL)");
  }
  if (status == 416 || code == "InvalidRange") {
    return InvalidArgument("range of " + ObjectName(c) + " is past its end (" + detail + ")");
  }
  if (status == 400) return InvalidArgument("s3 refused " + request + ": " + detail);
  return FailedPrecondition("s3 refused " + request + ": " + detail);
}

Status StatusFromResponse(const HttpResponse& response, const ErrorContext& context,
                          const std::string& credentials_origin) {
  Status st = StatusFromResponse(response, context);
  if (credentials_origin.empty() || st.code() != Code::kUnauthenticated) return st;
  std::string m = st.message();
  if (size_t h = m.find(": HINT:"); h != std::string::npos) m.erase(h);
  return Unauthenticated(m + ": HINT: check the access key id and secret access key of " +
                         credentials_origin + " (AWS_* variables are not used for it)");
}

}  // namespace reprise::s3
