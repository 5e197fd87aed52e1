#include "storage/s3/s3_url.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <vector>

namespace reprise::s3 {
namespace {

constexpr std::string_view kOptionsHint =
    "HINT: options are endpoint, region, path_style, ca_file, multipart_threshold, part_size, "
    "max_keys and connections, as in "
    "s3://bucket/prefix?endpoint=http://127.0.0.1:7480&path_style=1";

constexpr std::string_view kCredentialsHint =
    "credentials never go in the repository url (it is printed and stored in plans): "
    "HINT: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or use a "
    "profile of ~/.aws/credentials with AWS_PROFILE";

Status Bad(std::string_view display, std::string_view why) {
  return InvalidArgument("repository url '" + std::string(display) + "': " + std::string(why));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool ValidBucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(b.front()) || !alnum(b.back())) return false;
  return std::all_of(b.begin(), b.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '.' || c == '_'; });
}

bool LooksLikeCredential(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::array<std::string_view, 6> kWords = {"key",      "secret",     "token",
                                                         "password", "credential", "auth"};
  return std::any_of(kWords.begin(), kWords.end(),
                     [&](std::string_view w) { return name.find(w) != std::string::npos; });
}

Result<bool> ParseBool(std::string_view v) {
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "no") return false;
  return InvalidArgument("'" + std::string(v) + "' is not 0 or 1");
}

Status CheckEndpoint(std::string_view display, std::string& endpoint) {
  size_t scheme_end = endpoint.find("://");
  while (scheme_end != std::string::npos && endpoint.size() > scheme_end + 3 &&
         endpoint.back() == '/')
    endpoint.pop_back();
  std::string_view scheme =
      scheme_end == std::string::npos ? "" : std::string_view(endpoint).substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    return Bad(display, "endpoint '" + endpoint +
                            "' must start with http:// or https://, as in "
                            "endpoint=https://s3.example.com");
  std::string_view rest = std::string_view(endpoint).substr(scheme_end + 3);
  if (rest.empty()) return Bad(display, "endpoint '" + endpoint + "' has no host");
  if (rest.find('@') != std::string_view::npos) return Bad(display, kCredentialsHint);
  if (rest.find_first_of("/?#") != std::string_view::npos)
    return Bad(display, "endpoint '" + endpoint +
                            "' must be scheme://host[:port] without a path; the bucket and "
                            "prefix go in s3://bucket/prefix");
  return Status::Ok();
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - d) / 10)
      return InvalidArgument("size '" + std::string(text) + "' is too large");
    n = n * 10 + d;
    ++i;
  }
  if (i == 0) return InvalidArgument("size '" + std::string(text) + "' is not a number");
  std::string_view unit = text.substr(i);
  int shift = 0;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "K" || unit == "KiB") {
    shift = 10;
  } else if (unit == "M" || unit == "MiB") {
    shift = 20;
  } else if (unit == "G" || unit == "GiB") {
    shift = 30;
  } else {
    return InvalidArgument("size '" + std::string(text) +
                           "' has an unknown unit (use bytes or K, M, G / KiB, MiB, GiB)");
  }
  if (shift > 0 && n > (std::numeric_limits<uint64_t>::max() >> shift))
    return InvalidArgument("size '" + std::string(text) + "' is too large");
  return n << shift;
}

std::string DisplayUrl(const S3Url& url) {
  return "s3://" + url.bucket + (url.prefix.empty() ? "" : "/" + url.prefix);
}

Result<S3Url> ParseS3Url(std::string_view url) {
  if (!url.starts_with("s3://")) return InvalidArgument("not an s3:// url");
  std::string_view rest = url.substr(5);
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (rest.find('#') != std::string_view::npos)
    return InvalidArgument("repository url '" + std::string(rest) + "' must not contain '#'");

  S3Url out;
  size_t slash = rest.find('/');
  std::string_view bucket = rest.substr(0, slash);
  // Userinfo ("key:secret@bucket") would be a secret in the URL: refuse without echoing it.
  if (bucket.find('@') != std::string_view::npos || bucket.find(':') != std::string_view::npos)
    return InvalidArgument("repository url 's3://...': " + std::string(kCredentialsHint));
  out.bucket = std::string(bucket);
  std::string display = "s3://" + std::string(rest);
  if (!ValidBucket(out.bucket))
    return Bad(display, "bucket name '" + out.bucket +
                            "' is not valid: 3 to 63 letters, digits, '-', '.' or '_', "
                            "starting and ending with a letter or digit, as in s3://my-backups");

  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash + 1);
    while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
    size_t start = 0;
    while (!prefix.empty()) {
      size_t end = prefix.find('/', start);
      std::string_view part = prefix.substr(
          start, end == std::string_view::npos ? std::string_view::npos : end - start);
      if (part.empty() || part == "." || part == "..")
        return Bad(display, "the prefix must not have empty, '.' or '..' components");
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    if (prefix.find('\0') != std::string_view::npos)
      return Bad(display, "the prefix contains a NUL byte");
    out.prefix = std::string(prefix);
  }
  display = DisplayUrl(out);

  std::vector<std::string> seen;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string name(item.substr(0, eq));
    static const std::array<std::string_view, 8> kKnown = {
        "endpoint",  "region",   "path_style",  "ca_file", "multipart_threshold",
        "part_size", "max_keys", "connections"};
    bool known = std::find(kKnown.begin(), kKnown.end(), name) != kKnown.end();
    if (!known && LooksLikeCredential(name)) return Bad(display, kCredentialsHint);
    auto value = PercentDecode(eq == std::string_view::npos ? "" : item.substr(eq + 1));
    if (!value) return Bad(display, "option '" + name + "' has a bad %-escape");
    if (std::find(seen.begin(), seen.end(), name) != seen.end())
      return Bad(display, "option '" + name + "' is given twice");
    seen.push_back(name);

    auto option_error = [&](const Status& st) {
      return Bad(display, "option '" + name + "': " + st.message());
    };
    if (name == "endpoint") {
      out.endpoint = *value;
      RETURN_IF_ERROR(CheckEndpoint(display, out.endpoint));
    } else if (name == "region") {
      if (value->empty() || value->find_first_of("/ ") != std::string::npos)
        return Bad(display, "option 'region' must be a region name such as eu-west-1");
      out.region = *value;
    } else if (name == "path_style") {
      auto b = ParseBool(*value);
      if (!b.ok()) return option_error(b.status());
      out.path_style = *b;
    } else if (name == "ca_file") {
      if (value->empty()) return Bad(display, "option 'ca_file' is empty");
      out.ca_file = *value;
    } else if (name == "multipart_threshold" || name == "part_size") {
      auto size = ParseSize(*value);
      if (!size.ok()) return option_error(size.status());
      if (name == "part_size" && *size < kMinPartSize)
        return Bad(display, "option 'part_size' must be at least 5MiB (the S3 minimum)");
      if (name == "part_size" && *size > (5ull << 30))
        return Bad(display, "option 'part_size' must be at most 5GiB (the S3 maximum)");
      if (*size == 0) return Bad(display, "option '" + name + "' must be more than 0");
      (name == "part_size" ? out.part_size : out.multipart_threshold) = *size;
    } else if (name == "max_keys") {
      auto n = ParseSize(*value);
      if (!n.ok() || *n < 1 || *n > 1000)
        return Bad(display, "option 'max_keys' must be a number from 1 to 1000");
      out.max_keys = static_cast<int>(*n);
    } else if (name == "connections") {
      bool digits = !value->empty() && value->size() <= 6 &&
                    std::all_of(value->begin(), value->end(),
                                [](char c) { return c >= '0' && c <= '9'; });
      int n = digits ? std::stoi(*value) : 0;
      if (n < 1 || n > kMaxConnections)
        return Bad(display, "option 'connections' must be a number from 1 to " +
                                std::to_string(kMaxConnections));
      out.connections = n;
    } else {
      return Bad(display, "unknown option '" + name + "': " + std::string(kOptionsHint));
    }
  }
  return out;
}

Result<EndpointParts> NormalizeEndpoint(std::string& endpoint, const std::string& region) {
  if (endpoint.empty()) endpoint = "https://s3." + region + ".amazonaws.com";
  size_t sep = endpoint.find("://");
  while (sep != std::string::npos && endpoint.size() > sep + 3 && endpoint.back() == '/')
    endpoint.pop_back();
  EndpointParts parts;
  if (sep != std::string::npos) {
    parts.scheme = endpoint.substr(0, sep);
    parts.host_port = endpoint.substr(sep + 3);
  }
  if ((parts.scheme != "http" && parts.scheme != "https") || parts.host_port.empty() ||
      parts.host_port.find_first_of("/?#@") != std::string::npos) {
    return InvalidArgument("s3 endpoint '" + endpoint +
                           "' is not scheme://host[:port] with scheme http or https");
  }
  return parts;
}

}  // namespace reprise::s3
