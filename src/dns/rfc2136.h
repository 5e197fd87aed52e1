// Internal to src/dns: the providers behind MakeDnsProvider and the DNS query they share.
// Everything here talks to one server directly (no recursion, no cache), over ldns.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "dns/dns_provider.h"
#include "plan/plan.h"

namespace reprise::dns {

struct DnsTransport {
  // Per step: connecting (TCP) and waiting for the answer each get this long. No retries:
  // a lost UDP answer is reported as kUnavailable and the caller polls again.
  std::chrono::milliseconds timeout{5000};
  bool tcp = true;  // updates go over TCP by default: no truncation, a refused connect is quick
};

// "host:port", "host" (port 53), "[v6]:port" or a bare IPv6 address. Host names are resolved
// once with getaddrinfo (the first address wins).
struct DnsServer {
  std::string host;
  int port = 53;
  std::string ToString() const;
};
Result<DnsServer> ParseDnsServer(const std::string& text);

// A non-recursive query (RD off) for (record, type) sent to `server`; the rdata of the
// answers whose owner and type match, as text: A "10.0.0.1", AAAA "2001:db8::1", CNAME an
// absolute name. NXDOMAIN and NODATA are an empty list. Over UDP, retried over TCP when the
// answer is truncated.
Result<std::vector<std::string>> QueryRecord(const std::string& server, const std::string& record,
                                             const std::string& type,
                                             const DnsTransport& transport = {.tcp = false});

// Whether two values of `type` mean the same: A/AAAA compared as addresses, names without
// regard to case or a trailing dot.
bool SameValue(const std::string& type, const std::string& a, const std::string& b);

// RFC 2136 update of spec.record in spec.zone at spec.server, TSIG-signed with `key` when
// given (the answer's signature is then verified too).
std::unique_ptr<DnsProvider> MakeRfc2136Provider(const DnsSpec& spec, std::optional<TsigKey> key,
                                                 const DnsTransport& transport = {});

// POSTs {"record","type","value","ttl"} to `url`. `url_from_secret`: the URL is a credential
// and never appears in messages (Describe names the secret instead).
std::unique_ptr<DnsProvider> MakeWebhookDnsProvider(const DnsSpec& spec, std::string url,
                                                    bool url_from_secret);

}  // namespace reprise::dns
