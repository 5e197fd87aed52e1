// Amazon Route 53 as the failover DNS provider (plan: failover.dns, provider route53), over
// its REST/XML API (version 2013-04-01) signed with SigV4 (service "route53", region
// us-east-1: Route 53 is a global service whose API is signed for that region).
//
// Replace(value) sends one ChangeResourceRecordSets with a single UPSERT of spec.record /
// spec.type / spec.ttl, then polls GetChange until the change is INSYNC (on every Route 53
// name server of the zone) or spec.propagation_timeout passes. UPSERT is idempotent, so a
// request whose answer was lost is simply sent again.
//
// Query(server) answers from the API (ListResourceRecordSets), not from DNS: Route 53 is the
// authoritative server, its name servers are anycast and serve what the API holds once a
// change is INSYNC, so `server` is ignored. (To check what public resolvers say, query them
// over DNS with dns::QueryRecord.)
//
// Errors (ErrorResponse Code -> Status), messages naming the hosted zone and the record:
//   InvalidChangeBatch, InvalidInput              -> kInvalidArgument
//   NoSuchHostedZone                              -> kNotFound (HINT: check hosted_zone_id)
//   AccessDenied                                  -> kPermissionDenied (HINT: IAM policy)
//   InvalidClientTokenId, SignatureDoesNotMatch, IncompleteSignature,
//   MissingAuthenticationToken, UnrecognizedClient-> kUnauthenticated (HINT: the credentials)
//   Throttling, PriorRequestNotComplete, 429, 5xx, no answer
//                                                 -> retried with backoff, then kUnavailable
//   RequestExpired, "Signature expired"           -> kFailedPrecondition (HINT: the clock)
// Credentials never appear in messages. Thread-compatible: one provider, one caller at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "dns/dns_provider.h"
#include "plan/plan.h"
#include "storage/s3/sigv4.h"

namespace reprise::dns {

inline constexpr char kRoute53Endpoint[] = "https://route53.amazonaws.com";
inline constexpr char kRoute53Namespace[] = "https://route53.amazonaws.com/doc/2013-04-01/";

struct Route53Options {
  // "Z0123456789ABCDEFGHIJ" or "/hostedzone/Z0123456789ABCDEFGHIJ" (as the API prints it).
  std::string hosted_zone_id;
  std::string endpoint = kRoute53Endpoint;  // scheme://host[:port]
  s3::Credentials credentials;
  std::string region = "us-east-1";  // the signing region of the global endpoint
  std::string ca_file;               // empty: the system's CA store
  // Each API call is tried this many times when the answer says "later" (Throttling,
  // PriorRequestNotComplete, 429, 5xx) or no answer came; pauses start at `backoff` and double.
  int max_attempts = 5;
  std::chrono::milliseconds backoff{500};
  std::chrono::milliseconds max_backoff{8000};
  std::chrono::milliseconds poll_interval{2000};  // GetChange while the change is PENDING
  long request_timeout_ms = 30000;                // one HTTP request, whole
  // Unix seconds used to sign requests; empty: the system clock.
  std::function<int64_t()> clock;
};

// Credentials as kept in a secret: "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]",
// surrounding whitespace ignored. Messages never contain the secret parts.
Result<s3::Credentials> ParseRoute53Credentials(const std::string& text);

// Options from the plan's fields. With `credentials_secret` set, the credentials come from
// that secret (ParseRoute53Credentials); without, from AWS_ACCESS_KEY_ID/... or the shared
// credentials file, as for the S3 backend. An empty endpoint means kRoute53Endpoint.
Result<Route53Options> Route53OptionsFor(const std::string& hosted_zone_id,
                                         const std::string& endpoint,
                                         const std::string& credentials_secret,
                                         const SecretLookup& secrets);

// Checks the options (zone id, endpoint, credentials present) and the spec (record, type
// A/AAAA/CNAME, ttl >= 0); kInvalidArgument naming what is wrong.
Result<std::unique_ptr<DnsProvider>> MakeRoute53Provider(const Route53Options& options,
                                                         const DnsSpec& spec);

// ---- The wire format, exposed for tests. ----

// A ChangeResourceRecordSetsRequest document holding one change.
struct Route53Change {
  std::string action = "UPSERT";  // CREATE | DELETE | UPSERT
  std::string name;               // "api.example.com."
  std::string type;               // "A"
  int64_t ttl = 60;
  std::vector<std::string> values;
  std::string comment;  // optional, at most 256 characters
};
std::string ChangeRequestXml(const Route53Change& change);

// ChangeInfo of a ChangeResourceRecordSets or GetChange answer.
struct Route53ChangeInfo {
  std::string id;      // "/change/C2682N5HXP0BZ4"
  std::string status;  // PENDING | INSYNC
};
Result<Route53ChangeInfo> ParseChangeInfo(std::string_view xml);

// The Error of an ErrorResponse (or the root-level InvalidChangeBatch form, whose Messages
// are joined); nullopt when the body is neither.
struct Route53Error {
  std::string type;  // Sender | Receiver
  std::string code;  // "InvalidChangeBatch"
  std::string message;
};
std::optional<Route53Error> ParseRoute53Error(std::string_view xml);

// The ResourceRecordSets of a ListResourceRecordSets answer, in the order given. Names are
// as Route 53 prints them (octal escapes such as "\052" decoded).
struct Route53RecordSet {
  std::string name;
  std::string type;
  std::optional<int64_t> ttl;
  std::vector<std::string> values;
  std::string set_identifier;  // non-empty for weighted, latency, failover ... records
  bool alias = false;
};
Result<std::vector<Route53RecordSet>> ParseRecordSets(std::string_view xml);

// Route 53's text form of a name: "\ddd" octal escapes decoded.
std::string DecodeRoute53Name(std::string_view name);

}  // namespace reprise::dns
