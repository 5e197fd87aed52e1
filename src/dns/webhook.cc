// The generic webhook DNS provider: a POST to a service that changes the record for us
// (a provider's API behind a small adapter). Checking what resolvers serve is still DNS.
#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "common/bytes.h"
#include "dns/rfc2136.h"
#include "storage/s3/http.h"

namespace reprise::dns {

namespace {

// The part of an HTTP client error worth showing, with the URL taken out: webhook URLs often
// carry a token. HttpClient says "<request> '<url>' failed: <reason>"; the reason (curl's
// words) names at most the host.
std::string TransportReason(const Status& st, const std::string& url) {
  std::string msg = st.message();
  if (size_t at = msg.find("failed: "); at != std::string::npos) msg = msg.substr(at + 8);
  for (size_t at = msg.find(url); !url.empty() && at != std::string::npos; at = msg.find(url)) {
    msg.replace(at, url.size(), "<url>");
  }
  return msg;
}

// scheme://host/path of a URL written in the plan: the query string may hold a token.
std::string ShownUrl(const std::string& url) {
  return url.substr(0, url.find_first_of("?#"));
}

s3::HttpOptions TimedHttpOptions(long total_timeout_ms) {
  s3::HttpOptions o;
  o.connect_timeout_seconds = 10;
  o.total_timeout_ms = total_timeout_ms;
  return o;
}

class WebhookDnsProvider : public DnsProvider {
 public:
  WebhookDnsProvider(DnsSpec spec, std::string url, bool url_from_secret)
      : spec_(std::move(spec)),
        url_(std::move(url)),
        url_from_secret_(url_from_secret),
        http_(TimedHttpOptions(10000)) {}

  Status Replace(const std::string& value) override {
    nlohmann::json body = {
        {"record", spec_.record}, {"type", spec_.type}, {"value", value}, {"ttl", spec_.ttl}};
    std::string text = body.dump();
    s3::HttpRequest req{.method = "POST",
                        .url = url_,
                        .headers = {{"Content-Type", "application/json"}},
                        .body = AsBytes(text)};
    std::string what = fmt::format("dns webhook {} for '{}' {}", Where(), spec_.record, spec_.type);
    Result<s3::HttpResponse> resp = http_.Send(req);
    if (!resp.ok()) {
      return Status(resp.status().code(),
                    fmt::format("{}: {}", what, TransportReason(resp.status(), url_)));
    }
    long code = resp->status;
    if (code >= 200 && code < 300) return Status::Ok();
    std::string msg = fmt::format("{}: HTTP {}", what, code);
    if (code == 401 || code == 403) {
      return PermissionDenied(msg + ": HINT: check the webhook's credentials");
    }
    if (code == 408 || code == 429 || code >= 500) return Unavailable(msg);
    return FailedPrecondition(msg);
  }

  Result<std::vector<std::string>> Query(const std::string& server) override {
    return QueryRecord(server, spec_.record, spec_.type);
  }

  std::string Describe() const override {
    std::string record = spec_.record;
    if (record.empty() || record.back() != '.') record += '.';
    return fmt::format("webhook {} {}", Where(), record);
  }

 private:
  std::string Where() const {
    if (url_from_secret_) return fmt::format("(url in secret '{}')", spec_.url_secret);
    return ShownUrl(url_);
  }

  DnsSpec spec_;
  std::string url_;
  bool url_from_secret_;
  s3::HttpClient http_;
};

}  // namespace

std::unique_ptr<DnsProvider> MakeWebhookDnsProvider(const DnsSpec& spec, std::string url,
                                                    bool url_from_secret) {
  return std::make_unique<WebhookDnsProvider>(spec, std::move(url), url_from_secret);
}

}  // namespace reprise::dns
