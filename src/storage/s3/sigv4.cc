#include "storage/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>

#include "repo/crypto.h"

namespace reprise::s3 {
namespace {

bool Unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Header values are signed trimmed, with runs of spaces folded to one (SigV4 "Trimall").
std::string TrimAll(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

std::string Hex(const std::array<uint8_t, 32>& b) {
  return HexEncode(ByteView(b.data(), b.size()));
}

std::array<uint8_t, 32> Hmac(const std::array<uint8_t, 32>& key, std::string_view data) {
  return HmacSha256Any(ByteView(key.data(), key.size()), AsBytes(data));
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (Unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string EncodePath(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  return UriEncode(raw_path, /*keep_slash=*/true);
}

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

std::array<uint8_t, 32> HmacSha256Any(ByteView key, ByteView data) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  // One-shot HMAC() is thread-safe and not deprecated in OpenSSL 3 (only HMAC_CTX is).
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(),
           out.data(), &len) == nullptr ||
      len != out.size()) {
    std::fprintf(stderr, "reprise: fatal: HMAC-SHA256 failed\n");
    std::abort();
  }
  return out;
}

std::array<uint8_t, 32> DeriveSigningKey(std::string_view secret, std::string_view date,
                                         std::string_view region, std::string_view service) {
  std::string first = "AWS4" + std::string(secret);
  auto k_date = HmacSha256Any(AsBytes(first), AsBytes(date));
  // Wipe the copy of the secret: it should live in one place only.
  std::fill(first.begin(), first.end(), '\0');
  auto k_region = Hmac(k_date, region);
  auto k_service = Hmac(k_region, service);
  return Hmac(k_service, "aws4_request");
}

std::string AmzDate(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string PayloadHash(ByteView data) { return Sha256(data).Hex(); }

SigV4Signature ComputeSignature(const SigV4Request& request, const Credentials& credentials,
                                std::string_view region, std::string_view service,
                                std::string_view amz_date) {
  // Same-named headers are joined with ',' in the order given; names sort bytewise.
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    std::string n = Lower(TrimAll(name));
    std::string v = TrimAll(value);
    auto [it, inserted] = headers.emplace(n, v);
    if (!inserted) it->second += "," + v;
  }
  std::string canonical_headers, signed_headers;
  for (const auto& [n, v] : headers) {
    canonical_headers += n + ":" + v + "\n";
    if (!signed_headers.empty()) signed_headers.push_back(';');
    signed_headers += n;
  }

  SigV4Signature sig;
  sig.signed_headers = signed_headers;
  sig.canonical_request = request.method + "\n" + EncodePath(request.path) + "\n" +
                          CanonicalQuery(request.query) + "\n" + canonical_headers + "\n" +
                          signed_headers + "\n" + request.payload_hash;

  std::string date(amz_date.substr(0, 8));
  std::string scope =
      date + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  sig.string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + scope + "\n" +
                       Sha256(AsBytes(sig.canonical_request)).Hex();

  auto key = DeriveSigningKey(credentials.secret_access_key, date, region, service);
  sig.signature = Hex(Hmac(key, sig.string_to_sign));
  sig.authorization = "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope +
                      ",SignedHeaders=" + signed_headers + ",Signature=" + sig.signature;
  return sig;
}

SigV4Signature SignRequest(SigV4Request& request, const Credentials& credentials,
                           std::string_view region, int64_t unix_seconds) {
  std::string amz_date = AmzDate(unix_seconds);
  request.headers.emplace_back("x-amz-date", amz_date);
  request.headers.emplace_back("x-amz-content-sha256", request.payload_hash);
  if (!credentials.session_token.empty())
    request.headers.emplace_back("x-amz-security-token", credentials.session_token);
  SigV4Signature sig = ComputeSignature(request, credentials, region, "s3", amz_date);
  request.headers.emplace_back("Authorization", sig.authorization);
  return sig;
}

}  // namespace reprise::s3
