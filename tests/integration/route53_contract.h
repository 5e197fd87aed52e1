// A contract server for the three Amazon Route 53 operations reprise uses, on 127.0.0.1:
// ChangeResourceRecordSets, GetChange and ListResourceRecordSets.
//
// Built from the API description botocore ships: boto/botocore,
// botocore/data/route53/2013-04-01/service-2.json (apiVersion 2013-04-01, protocol rest-xml,
// signatureVersion v4) at commit 0e6e2404b85dc336dd2889814e089bde7d1a4c55, and its
// examples-1.json (ChangeInfo, e.g. Id "/change/C2682N5HXP0BZ4"). From it: the request URIs,
// the root element and namespace of the request, the members of each shape in their order
// (the operation's documentation says the elements must appear in that order), required
// members, enums (ChangeAction, RRType, ChangeStatus), limits (ResourceId <= 32, DNSName
// <= 1024, TTL 0..2147483647, RData <= 4000, ResourceDescription <= 256, lists min 1), the
// error shapes and their HTTP statuses (NoSuchHostedZone/NoSuchChange 404, InvalidInput,
// InvalidChangeBatch, PriorRequestNotComplete 400), and ListResourceRecordSets' ordering
// rules (labels reversed, then type; type without name is InvalidInput). The ErrorResponse
// envelope (Error/Type/Code/Message, RequestId) is the one botocore's rest-xml parser reads
// for route53. Not in the model and taken from AWS's common errors: the SigV4 failures
// (MissingAuthenticationToken, IncompleteSignature, InvalidClientTokenId 403,
// SignatureDoesNotMatch 403) and Throttling (400, "Rate exceeded").
//
// Every request is validated: its SigV4 signature is recomputed with the known secret
// (service route53, region us-east-1, 5 minutes of clock skew allowed), the XML is parsed
// strictly (well-formed, namespace, element names and order, no unknown or repeated
// members), and only simple records (Name, Type, TTL, ResourceRecords) are implemented:
// other ResourceRecordSet members are refused with InvalidInput saying so.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace reprise::testing {

struct Route53Rrset {
  std::string name;  // lowercase, absolute: "api.example.com."
  std::string type;
  int64_t ttl = 0;
  std::vector<std::string> values;
};

class Route53Contract {
 public:
  struct Options {
    std::string access_key_id = "AKIDREPRISE0TEST0001";
    std::string secret_access_key;
    // GetChange answers PENDING this many times for a change, then INSYNC.
    int polls_until_insync = 2;
  };

  explicit Route53Contract(Options options);
  ~Route53Contract();
  Route53Contract(const Route53Contract&) = delete;
  Route53Contract& operator=(const Route53Contract&) = delete;

  bool running() const { return bound_; }
  std::string endpoint() const;  // "http://127.0.0.1:PORT"

  // A hosted zone `id` ("Z...") for `origin` ("example.com."), with its SOA and NS records.
  void AddZone(const std::string& id, const std::string& origin);
  // The zone's record sets in ListResourceRecordSets order.
  std::vector<Route53Rrset> Records(const std::string& zone_id) const;
  std::optional<Route53Rrset> Find(const std::string& zone_id, const std::string& name,
                                   const std::string& type) const;

  // The next `times` authenticated requests get this error instead of being served.
  void FailNext(int times, int http_status, const std::string& code, const std::string& message);

  struct Counters {
    int change_requests = 0;   // ChangeResourceRecordSets received (any outcome)
    int changes_applied = 0;   // change batches applied
    int get_change = 0;        // GetChange served
    int list = 0;              // ListResourceRecordSets served
    int insync_answers = 0;    // GetChange answers that said INSYNC
  };
  Counters counters() const;
  // One line per request: "POST /2013-04-01/... -> 200" or "-> 403 SignatureDoesNotMatch: ...".
  std::vector<std::string> Log() const;

 private:
  struct Zone {
    std::string origin;
    std::map<std::pair<std::string, std::string>, Route53Rrset> sets;  // (name, type)
  };
  struct Change {
    int polls = 0;
    std::string submitted_at;
  };
  struct Reply {
    int status = 200;
    std::string body;
  };

  void Handle(const httplib::Request& req, httplib::Response& res);
  Reply Dispatch(const httplib::Request& req, const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& query);
  std::optional<Reply> CheckSignature(const httplib::Request& req, const std::string& path,
                                      const std::vector<std::pair<std::string, std::string>>& q);
  Reply ChangeRecordSets(const std::string& zone_id, const std::string& body);
  Reply GetChange(const std::string& id);
  Reply ListRecordSets(const std::string& zone_id,
                       const std::vector<std::pair<std::string, std::string>>& query);
  Reply Error(int status, const std::string& code, const std::string& message) const;

  Options options_;
  int port_ = 0;
  bool bound_ = false;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::map<std::string, Zone> zones_;
  std::map<std::string, Change> changes_;
  int next_change_ = 0;
  int next_request_ = 0;
  int fail_times_ = 0;
  int fail_status_ = 0;
  std::string fail_code_, fail_message_;
  Counters counters_;
  std::vector<std::string> log_;
};

}  // namespace reprise::testing
