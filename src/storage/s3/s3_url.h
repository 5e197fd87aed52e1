// Repository URLs of the S3 backend:
//
//   s3://BUCKET[/PREFIX][?OPTION=VALUE&...]
//
// Options: endpoint=URL (http(s)://host[:port]; default https://s3.REGION.amazonaws.com),
// region=NAME, path_style=0|1 (default 1 with an endpoint, 0 without), ca_file=PATH,
// multipart_threshold=SIZE, part_size=SIZE (>= 5MiB), max_keys=N (1..1000),
// connections=N (1..kMaxConnections). SIZE is bytes or a number with K/KiB, M/MiB, G/GiB.
// Option values may be %-encoded.
//
// Credentials never go in the URL (it is printed and stored in plans): userinfo
// ("s3://key:secret@bucket") and credential-like options are refused with a hint, and such
// errors never echo the URL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace reprise::s3 {

struct S3Url {
  std::string bucket;
  std::string prefix;    // "" or "a/b": no leading, trailing or doubled '/'
  std::string endpoint;  // "scheme://host[:port]" without a trailing '/', or "" (AWS default)
  std::string region;    // "" when the URL does not say
  std::optional<bool> path_style;
  std::string ca_file;
  std::optional<uint64_t> multipart_threshold;
  std::optional<uint64_t> part_size;
  std::optional<int> max_keys;
  std::optional<int> connections;
};

inline constexpr uint64_t kMinPartSize = 5ull << 20;  // S3's minimum for all but the last part
inline constexpr int kMaxConnections = 256;  // the most `connections=` may ask for

Result<S3Url> ParseS3Url(std::string_view url);

// An endpoint split for requests.
struct EndpointParts {
  std::string scheme;     // "http" / "https"
  std::string host_port;  // "127.0.0.1:7480", "s3.eu-west-1.amazonaws.com"
};
// Makes `endpoint` usable: the AWS endpoint of `region` when empty, trailing '/' dropped; then
// splits it. kInvalidArgument unless it is scheme://host[:port] with http or https.
Result<EndpointParts> NormalizeEndpoint(std::string& endpoint, const std::string& region);

// "s3://bucket/prefix" (no options): how messages and Location() name the repository.
std::string DisplayUrl(const S3Url& url);

// Parses "1048576", "64MiB", "8M", "1G".
Result<uint64_t> ParseSize(std::string_view text);

}  // namespace reprise::s3
