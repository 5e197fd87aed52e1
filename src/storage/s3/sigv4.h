// AWS Signature Version 4 for S3 requests (Authorization header, single-chunk payload).
//
// SignRequest adds x-amz-date, x-amz-content-sha256, x-amz-security-token (when there is a
// session token) and Authorization to a request's headers. The request's `path` and `query`
// hold raw (decoded) text: the signer encodes them exactly as the URL on the wire must be
// encoded, and EncodePath/CanonicalQuery are what the HTTP layer uses to build that URL, so
// the signed and the sent forms cannot drift apart.
//
// Pure functions of their arguments (the time is passed in): thread-safe, no I/O. Secrets
// appear only in the Authorization value's signature, never in the returned texts.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"

namespace reprise::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct SigV4Request {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // raw, starting with '/': "/bucket/a key/x" (encoded while signing)
  std::vector<std::pair<std::string, std::string>> query;  // raw names and values
  HeaderList headers;        // must contain "host" (with ":port" when not the scheme's default)
  std::string payload_hash;  // lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

// What went into the signature, for tests and for debugging signature mismatches.
struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;range;x-amz-content-sha256;x-amz-date"
  std::string signature;       // 64 lowercase hex digits
  std::string authorization;   // the Authorization header value
};

inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

// RFC 3986 encoding as SigV4 wants it: A-Z a-z 0-9 - _ . ~ kept, every other byte as %XX
// (uppercase hex); '/' kept only when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);
// The canonical URI of a raw path: each '/'-separated segment encoded once.
std::string EncodePath(std::string_view raw_path);
// "a=1&b=x%20y&uploads=": names and values encoded, sorted by name then value.
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);

// HMAC-SHA256 with a key of any length (SigV4's first key, "AWS4" + secret, is not 32 bytes).
std::array<uint8_t, 32> HmacSha256Any(ByteView key, ByteView data);
// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
std::array<uint8_t, 32> DeriveSigningKey(std::string_view secret, std::string_view date,
                                         std::string_view region, std::string_view service);
// "20130524T000000Z" for a Unix time in seconds (UTC).
std::string AmzDate(int64_t unix_seconds);
// Lowercase hex SHA-256 of `data` (x-amz-content-sha256 of a signed payload).
std::string PayloadHash(ByteView data);

// Computes the signature of `request` as it is: the x-amz-* headers must already be present
// when they are to be signed. `amz_date` is "YYYYMMDDTHHMMSSZ".
SigV4Signature ComputeSignature(const SigV4Request& request, const Credentials& credentials,
                                std::string_view region, std::string_view service,
                                std::string_view amz_date);

// Adds x-amz-date, x-amz-content-sha256, x-amz-security-token (if any) and Authorization to
// `request.headers` for service "s3", and returns what was signed.
SigV4Signature SignRequest(SigV4Request& request, const Credentials& credentials,
                           std::string_view region, int64_t unix_seconds);

}  // namespace reprise::s3
