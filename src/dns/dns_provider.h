// Where failover switches the service's DNS record (plan: failover.dns). One interface, one
// implementation per provider: RFC 2136 dynamic update with TSIG (ldns) and a generic webhook.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "plan/plan.h"

namespace reprise::dns {

// TSIG key: algorithm ("hmac-sha256" by default), key name, base64 secret.
struct TsigKey {
  std::string algorithm = "hmac-sha256";
  std::string name;
  std::string secret_base64;
};
// "[algorithm:]name:base64" as kept in a secret (the form knotc/keymgr and BIND print).
// Algorithms: hmac-sha256, hmac-sha512, hmac-sha1, hmac-md5 (ldns 1.8 cannot do hmac-sha384).
// Surrounding whitespace is ignored; messages never contain the secret.
Result<TsigKey> ParseTsigKey(const std::string& text);

class DnsProvider {
 public:
  virtual ~DnsProvider() = default;
  // Makes `spec.record` (of type spec.type) hold exactly `value` with spec.ttl: the old
  // values of that name and type are replaced in one update. Errors name the server and the
  // record; a refused update (NOTAUTH, REFUSED, BADSIG ...) is kPermissionDenied, no answer
  // or SERVFAIL kUnavailable (rfc2136: over TCP, 5 s per step). When the update was signed,
  // an answer whose TSIG does not verify is kUnauthenticated: the outcome is unknown.
  // A/AAAA values must be addresses; a CNAME value is taken as an absolute name.
  virtual Status Replace(const std::string& value) = 0;
  // The values a resolver answers for the record now (queried from `server`, "host:port",
  // with RD off, over UDP and TCP when truncated), without caching. A: "10.0.0.1", CNAME:
  // "target.example.". An empty list when the name has no such record.
  virtual Result<std::vector<std::string>> Query(const std::string& server) = 0;
  // "rfc2136 127.0.0.1:5353 api.example." for logs.
  virtual std::string Describe() const = 0;
};

// Builds the provider of the plan. `secrets` resolves tsig_secret / url_secret.
using SecretLookup = std::function<Result<std::string>(const std::string& name)>;
Result<std::unique_ptr<DnsProvider>> MakeDnsProvider(const DnsSpec& spec,
                                                     const SecretLookup& secrets);

// Queries every resolver of `spec` (default: spec.server) every 200 ms until all answer
// exactly `value` (addresses compared as addresses, names without regard to case), or the
// spec's propagation_timeout passes (kUnavailable naming the resolver and what it said).
// kInvalidArgument when there is no resolver to ask.
Status AwaitPropagation(DnsProvider& provider, const DnsSpec& spec, const std::string& value);

}  // namespace reprise::dns
