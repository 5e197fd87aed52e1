#include "dns/route53.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <thread>

#include <fmt/format.h>

#include "common/bytes.h"
#include "storage/s3/credentials.h"
#include "storage/s3/http.h"
#include "storage/s3/xml.h"

namespace reprise::dns {

namespace {

using Clock = std::chrono::steady_clock;
using QueryParams = std::vector<std::pair<std::string, std::string>>;

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Absolute(std::string name) {
  if (name.empty() || name.back() != '.') name += '.';
  return name;
}

bool SameName(const std::string& a, const std::string& b) {
  return Lower(Absolute(a)) == Lower(Absolute(b));
}

// "Z0123..." from "Z0123..." or "/hostedzone/Z0123..." (the form the API prints).
Result<std::string> ZoneId(const std::string& given) {
  std::string id = Trim(given);
  if (size_t slash = id.rfind('/'); slash != std::string::npos) {
    if (id.substr(0, slash + 1) != "/hostedzone/") {
      return InvalidArgument(fmt::format(
          "route53 hosted zone id '{}' is not 'Z...' or '/hostedzone/Z...'", given));
    }
    id = id.substr(slash + 1);
  }
  // ResourceId is at most 32 characters; zone ids are upper-case letters and digits, so the
  // path needs no encoding (other services' double encoding of paths cannot differ).
  bool ok = !id.empty() && id.size() <= 32 &&
            std::all_of(id.begin(), id.end(),
                        [](unsigned char c) { return std::isalnum(c) != 0; });
  if (!ok) {
    return InvalidArgument(fmt::format(
        "route53 hosted zone id '{}' is not 1 to 32 letters and digits: HINT: copy it from "
        "'aws route53 list-hosted-zones' (e.g. Z0123456789ABCDEFGHIJ)",
        given));
  }
  return id;
}

struct Endpoint {
  std::string base;       // "https://route53.amazonaws.com"
  std::string host_port;  // "route53.amazonaws.com" (Host header; port kept when given)
};

Result<Endpoint> ParseEndpoint(const std::string& given) {
  std::string e = Trim(given);
  while (!e.empty() && e.back() == '/') e.pop_back();
  size_t sep = e.find("://");
  std::string scheme = sep == std::string::npos ? "" : Lower(e.substr(0, sep));
  std::string host = sep == std::string::npos ? "" : e.substr(sep + 3);
  if ((scheme != "http" && scheme != "https") || host.empty() ||
      host.find_first_of("/?#@ ") != std::string::npos) {
    return InvalidArgument(fmt::format(
        "route53 endpoint '{}' is not scheme://host[:port] with scheme http or https: HINT: "
        "leave it out for {}",
        given, kRoute53Endpoint));
  }
  return Endpoint{.base = scheme + "://" + host, .host_port = host};
}

bool IsAddress(int family, const std::string& text) {
  unsigned char buf[16];
  return inet_pton(family, text.c_str(), buf) == 1;
}

std::string Shorten(std::string s, size_t max = 400) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

// What to do with an answer that is not a success.
struct Failure {
  Status status;
  bool retry = false;
};

class Route53Provider : public DnsProvider {
 public:
  Route53Provider(Route53Options options, DnsSpec spec, std::string zone_id, Endpoint endpoint)
      : options_(std::move(options)),
        spec_(std::move(spec)),
        zone_id_(std::move(zone_id)),
        endpoint_(std::move(endpoint)),
        http_(HttpOptionsFor(options_)) {
    spec_.record = Absolute(spec_.record);
  }

  Status Replace(const std::string& value) override {
    std::string v = Trim(value);
    std::string what = fmt::format("setting '{}' {} to '{}'", spec_.record, spec_.type, v);
    if (spec_.type == "A" && !IsAddress(AF_INET, v)) {
      return InvalidArgument(fmt::format("{}: not an IPv4 address", what));
    }
    if (spec_.type == "AAAA" && !IsAddress(AF_INET6, v)) {
      return InvalidArgument(fmt::format("{}: not an IPv6 address", what));
    }
    if (spec_.type == "CNAME") {
      if (v.empty()) return InvalidArgument(fmt::format("{}: empty target name", what));
      v = Absolute(v);
    }
    auto deadline = Clock::now() + spec_.propagation_timeout;
    Route53Change change{.action = "UPSERT",
                         .name = spec_.record,
                         .type = spec_.type,
                         .ttl = spec_.ttl,
                         .values = {v},
                         .comment = "reprise failover"};
    std::string body = ChangeRequestXml(change);
    Result<s3::HttpResponse> resp =
        Call("POST", fmt::format("/2013-04-01/hostedzone/{}/rrset/", zone_id_), {}, body, what);
    if (!resp.ok()) return resp.status();
    Result<Route53ChangeInfo> info = ParseChangeInfo(AsString(resp->body));
    if (!info.ok()) return info.status().WithContext(Where() + ": " + what);

    // The change is accepted; now wait until every Route 53 name server of the zone has it.
    std::string change_id = info->id.substr(info->id.rfind('/') + 1);
    std::string status = info->status;
    while (status != "INSYNC") {
      auto now = Clock::now();
      if (now >= deadline) {
        return Unavailable(fmt::format(
            "{}: {}: change '{}' is still {} after {} s: HINT: Route 53 accepted it and will "
            "apply it; raise failover.dns.propagation_timeout if this is common",
            Where(), what, info->id, status, spec_.propagation_timeout.count()));
      }
      std::this_thread::sleep_for(std::min<Clock::duration>(options_.poll_interval,
                                                            deadline - now));
      Result<s3::HttpResponse> got =
          Call("GET", "/2013-04-01/change/" + change_id, {}, "", what + ": GetChange");
      if (!got.ok()) return got.status();
      Result<Route53ChangeInfo> polled = ParseChangeInfo(AsString(got->body));
      if (!polled.ok()) return polled.status().WithContext(Where() + ": " + what);
      status = polled->status;
    }
    return Status::Ok();
  }

  // `server` is ignored: see route53.h.
  Result<std::vector<std::string>> Query(const std::string& /*server*/) override {
    std::string what = fmt::format("listing '{}' {}", spec_.record, spec_.type);
    QueryParams q = {{"name", spec_.record}, {"type", spec_.type}, {"maxitems", "1"}};
    Result<s3::HttpResponse> resp =
        Call("GET", fmt::format("/2013-04-01/hostedzone/{}/rrset", zone_id_), q, "", what);
    if (!resp.ok()) return resp.status();
    Result<std::vector<Route53RecordSet>> sets = ParseRecordSets(AsString(resp->body));
    if (!sets.ok()) return sets.status().WithContext(Where() + ": " + what);
    // The list starts at the first set >= (name, type): the first one is ours or there is none.
    if (sets->empty()) return std::vector<std::string>{};
    const Route53RecordSet& first = sets->front();
    if (!SameName(first.name, spec_.record) || first.type != spec_.type) {
      return std::vector<std::string>{};
    }
    if (first.alias || !first.set_identifier.empty()) {
      return FailedPrecondition(fmt::format(
          "{}: '{}' {} is an alias or routing-policy record (set '{}'): HINT: reprise manages "
          "simple records only; delete it or point failover.dns.record elsewhere",
          Where(), spec_.record, spec_.type, first.set_identifier));
    }
    std::vector<std::string> values = first.values;
    if (spec_.type == "CNAME") {
      for (auto& v : values) v = Absolute(v);
    }
    return values;
  }

  std::string Describe() const override {
    return fmt::format("route53 {} {}", zone_id_, spec_.record);
  }

 private:
  static s3::HttpOptions HttpOptionsFor(const Route53Options& o) {
    s3::HttpOptions h;
    h.connect_timeout_seconds = 10;
    h.total_timeout_ms = o.request_timeout_ms;
    h.ca_file = o.ca_file;
    return h;
  }

  std::string Where() const {
    std::string where = fmt::format("route53 hosted zone '{}'", zone_id_);
    if (endpoint_.base != kRoute53Endpoint) where += " at " + endpoint_.base;
    return where;
  }

  int64_t Now() const {
    return options_.clock ? options_.clock() : static_cast<int64_t>(std::time(nullptr));
  }

  // One signed request, sent again while the failure is transient.
  Result<s3::HttpResponse> Call(const std::string& method, const std::string& path,
                                const QueryParams& query, const std::string& body,
                                const std::string& what) {
    auto pause = options_.backoff;
    int attempts = std::max(1, options_.max_attempts);
    Status last;
    for (int attempt = 1; attempt <= attempts; ++attempt) {
      if (attempt > 1) {
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, options_.max_backoff);
      }
      s3::SigV4Request sreq{.method = method,
                            .path = path,
                            .query = query,
                            .headers = {{"Host", endpoint_.host_port}},
                            .payload_hash = s3::PayloadHash(AsBytes(body))};
      if (method == "POST") sreq.headers.emplace_back("Content-Type", "application/xml");
      std::string amz_date = s3::AmzDate(Now());
      sreq.headers.emplace_back("X-Amz-Date", amz_date);
      if (!options_.credentials.session_token.empty()) {
        sreq.headers.emplace_back("X-Amz-Security-Token", options_.credentials.session_token);
      }
      s3::SigV4Signature sig = s3::ComputeSignature(sreq, options_.credentials, options_.region,
                                                    "route53", amz_date);
      sreq.headers.emplace_back("Authorization", sig.authorization);

      std::string url = endpoint_.base + s3::EncodePath(path);
      if (!query.empty()) url += "?" + s3::CanonicalQuery(query);
      s3::HttpRequest hreq{
          .method = method, .url = url, .headers = sreq.headers, .body = AsBytes(body)};
      Result<s3::HttpResponse> resp = http_.Send(hreq);
      if (!resp.ok()) {
        // The transport's message names the URL (no credential is ever in it).
        last = Status(resp.status().code(),
                      fmt::format("{}: {}: {}", Where(), what, resp.status().message()));
        if (resp.status().code() == Code::kUnavailable) continue;
        return last;
      }
      if (resp->status >= 200 && resp->status < 300) return resp;
      Failure f = Classify(*resp, what);
      last = f.status;
      if (!f.retry) return last;
    }
    return Status(Code::kUnavailable,
                  fmt::format("{} (gave up after {} attempts)", last.message(), attempts));
  }

  Failure Classify(const s3::HttpResponse& resp, const std::string& what) const {
    std::optional<Route53Error> err = ParseRoute53Error(AsString(resp.body));
    std::string code = err ? err->code : "";
    std::string detail = err ? fmt::format("{}: {}", code, Shorten(err->message))
                             : fmt::format("HTTP {}", resp.status);
    std::string msg = fmt::format("{}: {}: {}", Where(), what, detail);
    if (code == "Throttling" || code == "ThrottlingException" ||
        code == "PriorRequestNotComplete" || code == "ServiceUnavailable" ||
        code == "InternalFailure" || resp.status == 429 || resp.status >= 500) {
      return {Unavailable(msg), true};
    }
    if (code == "InvalidChangeBatch" || code == "InvalidInput") {
      return {InvalidArgument(msg), false};
    }
    if (code == "NoSuchHostedZone") {
      return {NotFound(msg + ": HINT: check failover.dns.hosted_zone_id and that the "
                             "credentials belong to the zone's AWS account"),
              false};
    }
    if (code == "NoSuchChange") return {NotFound(msg), false};
    bool stale = err && (err->message.find("Signature expired") != std::string::npos ||
                         err->message.find("Signature not yet current") != std::string::npos);
    if (code == "RequestExpired" || stale) {
      return {FailedPrecondition(msg + ": HINT: this host's clock is off; run NTP"), false};
    }
    if (code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" ||
        code == "IncompleteSignature" || code == "MissingAuthenticationToken" ||
        code == "UnrecognizedClientException" || code == "InvalidSignatureException") {
      return {Unauthenticated(msg + ": HINT: check the access key id and secret in "
                                    "failover.dns.credentials_secret"),
              false};
    }
    if (code == "AccessDenied" || code == "AccessDeniedException" || resp.status == 403) {
      return {PermissionDenied(msg + ": HINT: the IAM policy must allow "
                                     "route53:ChangeResourceRecordSets, route53:GetChange and "
                                     "route53:ListResourceRecordSets on this zone"),
              false};
    }
    if (resp.status == 404) return {NotFound(msg), false};
    if (resp.status == 400) return {InvalidArgument(msg), false};
    return {FailedPrecondition(msg), false};
  }

  Route53Options options_;
  DnsSpec spec_;
  std::string zone_id_;
  Endpoint endpoint_;
  s3::HttpClient http_;
};

}  // namespace

Result<s3::Credentials> ParseRoute53Credentials(const std::string& text) {
  const std::string hint = "HINT: write 'ACCESS_KEY_ID:SECRET_ACCESS_KEY' (or "
                           "'ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN')";
  std::string t = Trim(text);
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t colon; (colon = t.find(':', start)) != std::string::npos; start = colon + 1) {
    parts.push_back(t.substr(start, colon - start));
  }
  parts.push_back(t.substr(start));
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidArgument(fmt::format(
        "route53 credentials: expected 2 or 3 fields separated by ':', found {}: {}",
        parts.size(), hint));
  }
  s3::Credentials c{.access_key_id = Trim(parts[0]),
                    .secret_access_key = Trim(parts[1]),
                    .session_token = parts.size() == 3 ? Trim(parts[2]) : ""};
  auto clean = [](const std::string& s) {
    return !s.empty() && std::none_of(s.begin(), s.end(), [](unsigned char ch) {
      return std::isspace(ch) || std::iscntrl(ch);
    });
  };
  if (!clean(c.access_key_id) || !clean(c.secret_access_key) ||
      (parts.size() == 3 && !clean(c.session_token))) {
    return InvalidArgument("route53 credentials: a field is empty or holds spaces: " + hint);
  }
  return c;
}

Result<Route53Options> Route53OptionsFor(const std::string& hosted_zone_id,
                                         const std::string& endpoint,
                                         const std::string& credentials_secret,
                                         const SecretLookup& secrets) {
  Route53Options o;
  o.hosted_zone_id = hosted_zone_id;
  if (!endpoint.empty()) o.endpoint = endpoint;
  if (!credentials_secret.empty()) {
    std::string ctx = fmt::format("route53 credentials secret '{}'", credentials_secret);
    if (!secrets) return FailedPrecondition(ctx + ": no secrets available");
    Result<std::string> text = secrets(credentials_secret);
    if (!text.ok()) return text.status().WithContext(ctx);
    Result<s3::Credentials> c = ParseRoute53Credentials(*text);
    if (!c.ok()) return c.status().WithContext(ctx);
    o.credentials = std::move(*c);
  } else {
    Result<s3::Credentials> c = s3::ResolveCredentials(s3::ProcessEnv());
    if (!c.ok()) {
      return c.status().WithContext(
          "route53: no credentials_secret given and none in the AWS environment");
    }
    o.credentials = std::move(*c);
  }
  return o;
}

Result<std::unique_ptr<DnsProvider>> MakeRoute53Provider(const Route53Options& options,
                                                         const DnsSpec& spec) {
  ASSIGN_OR_RETURN(std::string zone_id, ZoneId(options.hosted_zone_id));
  ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(options.endpoint));
  if (options.credentials.access_key_id.empty() || options.credentials.secret_access_key.empty()) {
    return InvalidArgument(fmt::format("route53 hosted zone '{}': no credentials", zone_id));
  }
  if (options.region.empty()) {
    return InvalidArgument(fmt::format("route53 hosted zone '{}': no signing region", zone_id));
  }
  if (spec.record.empty()) return InvalidArgument("failover.dns: no record given");
  if (spec.record.size() > 1024) {
    return InvalidArgument(fmt::format("record '{}...' is longer than Route 53's 1024 "
                                       "characters",
                                       spec.record.substr(0, 40)));
  }
  if (spec.type != "A" && spec.type != "AAAA" && spec.type != "CNAME") {
    return InvalidArgument(fmt::format(
        "failover.dns for '{}': type '{}' is not A, AAAA or CNAME", spec.record, spec.type));
  }
  if (spec.ttl < 0) {
    return InvalidArgument(fmt::format("failover.dns for '{}': ttl {} is negative",
                                       spec.record, spec.ttl));
  }
  return std::unique_ptr<DnsProvider>(
      std::make_unique<Route53Provider>(options, spec, zone_id, std::move(endpoint)));
}

std::string ChangeRequestXml(const Route53Change& c) {
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += fmt::format("<ChangeResourceRecordSetsRequest xmlns=\"{}\">", kRoute53Namespace);
  x += "<ChangeBatch>";
  if (!c.comment.empty()) x += "<Comment>" + s3::XmlEscape(c.comment) + "</Comment>";
  x += "<Changes><Change>";
  x += "<Action>" + s3::XmlEscape(c.action) + "</Action>";
  // Members in the order the API defines them: Name, Type, TTL, ResourceRecords.
  x += "<ResourceRecordSet>";
  x += "<Name>" + s3::XmlEscape(c.name) + "</Name>";
  x += "<Type>" + s3::XmlEscape(c.type) + "</Type>";
  x += "<TTL>" + std::to_string(c.ttl) + "</TTL>";
  x += "<ResourceRecords>";
  for (const auto& v : c.values) {
    x += "<ResourceRecord><Value>" + s3::XmlEscape(v) + "</Value></ResourceRecord>";
  }
  x += "</ResourceRecords>";
  x += "</ResourceRecordSet></Change></Changes></ChangeBatch>";
  x += "</ChangeResourceRecordSetsRequest>";
  return x;
}

Result<Route53ChangeInfo> ParseChangeInfo(std::string_view xml) {
  std::vector<std::string_view> infos = s3::XmlElements(xml, "ChangeInfo");
  if (infos.empty()) return Unavailable("route53 answer has no ChangeInfo");
  Route53ChangeInfo info;
  info.id = s3::XmlText(infos[0], "Id").value_or("");
  info.status = s3::XmlText(infos[0], "Status").value_or("");
  if (info.id.empty()) return Unavailable("route53 ChangeInfo has no Id");
  if (info.status != "PENDING" && info.status != "INSYNC") {
    return Unavailable(fmt::format("route53 change '{}' has unknown status '{}'", info.id,
                                   Shorten(info.status, 40)));
  }
  return info;
}

std::optional<Route53Error> ParseRoute53Error(std::string_view xml) {
  std::vector<std::string_view> errors = s3::XmlElements(xml, "Error");
  if (!errors.empty()) {
    Route53Error e;
    e.type = s3::XmlText(errors[0], "Type").value_or("");
    e.code = s3::XmlText(errors[0], "Code").value_or("");
    e.message = s3::XmlText(errors[0], "Message").value_or("");
    if (!e.code.empty()) return e;
  }
  // <InvalidChangeBatch><Messages><Message>...</Message>...</Messages></InvalidChangeBatch>
  std::vector<std::string_view> batch = s3::XmlElements(xml, "InvalidChangeBatch");
  if (!batch.empty()) {
    Route53Error e{.type = "Sender", .code = "InvalidChangeBatch", .message = ""};
    for (std::string_view m : s3::XmlElements(batch[0], "Message")) {
      if (!e.message.empty()) e.message += "; ";
      e.message += s3::XmlUnescape(m);
    }
    return e;
  }
  return std::nullopt;
}

std::string DecodeRoute53Name(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '\\' && i + 3 < name.size() &&
        std::isdigit(static_cast<unsigned char>(name[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(name[i + 2])) &&
        std::isdigit(static_cast<unsigned char>(name[i + 3]))) {
      int v = (name[i + 1] - '0') * 64 + (name[i + 2] - '0') * 8 + (name[i + 3] - '0');
      if (v < 256 && name[i + 1] <= '7' && name[i + 2] <= '7' && name[i + 3] <= '7') {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(name[i]);
  }
  return out;
}

Result<std::vector<Route53RecordSet>> ParseRecordSets(std::string_view xml) {
  std::vector<std::string_view> lists = s3::XmlElements(xml, "ResourceRecordSets");
  if (lists.empty()) return Unavailable("route53 answer has no ResourceRecordSets");
  std::vector<Route53RecordSet> out;
  for (std::string_view set : s3::XmlElements(lists[0], "ResourceRecordSet")) {
    Route53RecordSet r;
    // AliasTarget holds a DNSName and a HostedZoneId: neither matches "Name" or "Type".
    r.name = DecodeRoute53Name(s3::XmlText(set, "Name").value_or(""));
    r.type = s3::XmlText(set, "Type").value_or("");
    r.set_identifier = s3::XmlText(set, "SetIdentifier").value_or("");
    r.alias = !s3::XmlElements(set, "AliasTarget").empty();
    if (std::optional<std::string> ttl = s3::XmlText(set, "TTL")) {
      try {
        size_t used = 0;
        long long t = std::stoll(*ttl, &used);
        if (used != ttl->size()) throw std::invalid_argument("trailing text");
        r.ttl = t;
      } catch (const std::exception&) {
        return Unavailable(fmt::format("route53 record set '{}' has a bad TTL '{}'", r.name,
                                       Shorten(*ttl, 40)));
      }
    }
    for (std::string_view rec : s3::XmlElements(set, "ResourceRecord")) {
      if (std::optional<std::string> v = s3::XmlText(rec, "Value")) r.values.push_back(*v);
    }
    if (r.name.empty() || r.type.empty()) {
      return Unavailable("route53 answer has a ResourceRecordSet without Name or Type");
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace reprise::dns
