#include "dns/dns_provider.h"

#include <algorithm>
#include <cctype>
#include <thread>

#include <fmt/format.h>

#include "dns/rfc2136.h"
#include "dns/route53.h"

namespace reprise::dns {

namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool IsBase64(const std::string& s) {
  if (s.empty() || s.size() % 4 != 0) return false;
  size_t pad = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad > 0) return false;  // data after padding
    if (!std::isalnum(c) && c != '+' && c != '/') return false;
  }
  return pad <= 2;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Result<TsigKey> ParseTsigKey(const std::string& text) {
  // The secret is never echoed back: messages name only the part that is wrong.
  const std::string form = "HINT: write '[algorithm:]name:base64secret', e.g. "
                           "'hmac-sha256:ddns-key:<base64>'";
  std::string t = Trim(text);
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t colon; (colon = t.find(':', start)) != std::string::npos; start = colon + 1) {
    parts.push_back(t.substr(start, colon - start));
  }
  parts.push_back(t.substr(start));
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidArgument("tsig key: expected 2 or 3 fields separated by ':', found " +
                           std::to_string(parts.size()) + ": " + form);
  }
  TsigKey key;
  if (parts.size() == 3) {
    std::string alg = parts[0];
    std::transform(alg.begin(), alg.end(), alg.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!alg.empty() && alg.back() == '.') alg.pop_back();
    if (alg == "hmac-md5.sig-alg.reg.int") alg = "hmac-md5";
    if (alg == "hmac-sha384" || alg == "hmac-sha224") {
      return InvalidArgument(fmt::format(
          "tsig key: algorithm '{}' is not supported by ldns: HINT: use hmac-sha256 or "
          "hmac-sha512",
          alg));
    }
    if (alg != "hmac-sha256" && alg != "hmac-sha512" && alg != "hmac-sha1" && alg != "hmac-md5") {
      return InvalidArgument(fmt::format(
          "tsig key: unknown algorithm '{}': HINT: use hmac-sha256, hmac-sha512, hmac-sha1 or "
          "hmac-md5",
          alg));
    }
    key.algorithm = alg;
    parts.erase(parts.begin());
  }
  key.name = parts[0];
  key.secret_base64 = parts[1];
  if (key.name.empty() || key.name.find_first_of(" \t\"\\") != std::string::npos) {
    return InvalidArgument("tsig key: the key name is empty or holds spaces, quotes or "
                           "backslashes: " + form);
  }
  if (!IsBase64(key.secret_base64)) {
    return InvalidArgument(fmt::format("tsig key '{}': the secret is not base64: {}", key.name,
                                       form));
  }
  return key;
}

Result<std::unique_ptr<DnsProvider>> MakeDnsProvider(const DnsSpec& spec,
                                                     const SecretLookup& secrets) {
  std::string where = fmt::format("failover.dns for '{}'", spec.record);
  if (spec.record.empty()) return InvalidArgument("failover.dns: no record given");
  switch (spec.provider) {
    case DnsSpec::Provider::kRfc2136: {
      if (spec.zone.empty()) return InvalidArgument(where + ": no zone given");
      RETURN_IF_ERROR(ParseDnsServer(spec.server).status().WithContext(where));
      std::optional<TsigKey> key;
      if (!spec.tsig_secret.empty()) {
        std::string ctx = fmt::format("{}: secret '{}'", where, spec.tsig_secret);
        if (!secrets) return FailedPrecondition(ctx + ": no secrets available");
        Result<std::string> text = secrets(spec.tsig_secret);
        if (!text.ok()) return text.status().WithContext(ctx);
        Result<TsigKey> parsed = ParseTsigKey(*text);
        if (!parsed.ok()) return parsed.status().WithContext(ctx);
        key = std::move(*parsed);
      }
      return MakeRfc2136Provider(spec, std::move(key));
    }
    case DnsSpec::Provider::kRoute53: {
      Result<Route53Options> o = Route53OptionsFor(spec.hosted_zone_id, spec.endpoint,
                                                   spec.credentials_secret, secrets);
      if (!o.ok()) return o.status().WithContext(where);
      return MakeRoute53Provider(*o, spec);
    }
    case DnsSpec::Provider::kWebhook: {
      if (!spec.url.empty()) return MakeWebhookDnsProvider(spec, spec.url, false);
      if (spec.url_secret.empty()) {
        return InvalidArgument(where + ": the webhook provider needs url or url_secret");
      }
      std::string ctx = fmt::format("{}: secret '{}'", where, spec.url_secret);
      if (!secrets) return FailedPrecondition(ctx + ": no secrets available");
      Result<std::string> url = secrets(spec.url_secret);
      if (!url.ok()) return url.status().WithContext(ctx);
      std::string u = url.value();
      while (!u.empty() && std::isspace(static_cast<unsigned char>(u.back()))) u.pop_back();
      if (u.empty()) return InvalidArgument(ctx + ": the secret is empty");
      return MakeWebhookDnsProvider(spec, u, true);
    }
  }
  return Internal("unknown dns provider");
}

Status AwaitPropagation(DnsProvider& provider, const DnsSpec& spec, const std::string& value) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kPoll = std::chrono::milliseconds(200);
  std::vector<std::string> resolvers = spec.resolvers;
  // Route 53's Replace already waited until the change is INSYNC on its name servers.
  if (resolvers.empty() && spec.provider == DnsSpec::Provider::kRoute53) return Status::Ok();
  if (resolvers.empty() && !spec.server.empty()) resolvers.push_back(spec.server);
  if (resolvers.empty()) {
    return InvalidArgument(fmt::format(
        "cannot check that '{}' serves {}: no resolver to ask: HINT: set failover.dns."
        "resolvers",
        spec.record, value));
  }
  std::vector<bool> done(resolvers.size(), false);
  std::vector<std::string> last(resolvers.size(), "no answer yet");
  auto deadline = Clock::now() + spec.propagation_timeout;
  while (true) {
    bool all = true;
    for (size_t i = 0; i < resolvers.size(); ++i) {
      if (done[i]) continue;
      // Resolvers are asked over DNS whatever the provider (Route 53's Query asks its API).
      Result<std::vector<std::string>> got =
          spec.provider == DnsSpec::Provider::kRoute53
              ? QueryRecord(resolvers[i], spec.record, spec.type)
              : provider.Query(resolvers[i]);
      if (got.ok() && got->size() == 1 && SameValue(spec.type, got->front(), value)) {
        done[i] = true;
        continue;
      }
      all = false;
      last[i] = got.ok() ? (got->empty() ? "it has no such record"
                                         : "it answers " + Join(*got))
                         : got.status().message();
    }
    if (all) return Status::Ok();
    auto now = Clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(std::min<Clock::duration>(kPoll, deadline - now));
  }
  for (size_t i = 0; i < resolvers.size(); ++i) {
    if (done[i]) continue;
    return Unavailable(fmt::format(
        "'{}' {} is not {} at resolver '{}' after {} s: {}", spec.record, spec.type, value,
        resolvers[i], spec.propagation_timeout.count(), last[i]));
  }
  return Internal("propagation check ended without a result");
}

}  // namespace reprise::dns
