// A Redis connection on hiredis, with errors as values. Used by health checks, fencing and
// promotion (failover) and, later, the redis component.
//
// Messages name the server as "host:port" and never contain the password (AUTH is sent as a
// command, never logged; messages name a command by its name only, never its arguments).
// Connection failures and timeouts are kUnavailable; an -ERR reply is kFailedPrecondition with
// the server's text, -NOAUTH / -WRONGPASS kUnauthenticated, -NOPERM kPermissionDenied, and the
// transient -LOADING / -BUSY / -MASTERDOWN / -TRYAGAIN kUnavailable. After a connection error
// the Client stays broken: every later Command fails (kUnavailable); connect again. Writing to
// a server that went away never raises SIGPIPE (it is blocked on the calling thread).
//
// Thread-safety: a Client is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace reprise::redis {

// redis://host[:port][/db] or host[:port] (IPv6 in brackets: [::1]:6379). Port defaults to
// 6379, db to 0. A user or password in the URL (user:pass@) is refused with kInvalidArgument
// (passwords live in secrets), as are rediss:// (no TLS) and query parameters.
struct Address {
  std::string host;
  int port = 6379;
  int db = 0;
};
Result<Address> ParseAddress(const std::string& url);

// A reply as hiredis gives it, flattened: nil, integer, string (status/bulk), array.
struct Reply {
  enum class Type { kNil, kInteger, kString, kStatus, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;
  std::vector<Reply> elements;
};

class Client {
 public:
  // Connects (with `timeout` for connect and every command), AUTHs when `password` is not
  // empty, SELECTs db when not 0.
  static Result<std::unique_ptr<Client>> Connect(const Address& address,
                                                 const std::string& password,
                                                 std::chrono::milliseconds timeout);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One command, arguments binary-safe. An error reply is a Status (see above).
  Result<Reply> Command(const std::vector<std::string>& argv);
  // "host:port"
  std::string Describe() const;

 private:
  Client() = default;
  void* ctx_ = nullptr;  // redisContext*
  Address address_;
};

// INFO <section> parsed into key -> value ("role" -> "master").
Result<std::map<std::string, std::string>> Info(Client& client, const std::string& section);

// What failover needs to know about a node, from INFO replication.
struct ReplicationState {
  bool primary = false;              // role:master
  uint64_t offset = 0;               // master_repl_offset (primary) or slave_repl_offset
  bool link_up = false;              // replica: master_link_status:up
  std::string primary_host;          // replica: master_host
  int primary_port = 0;              // replica: master_port
  std::vector<uint64_t> replica_offsets;  // primary: offset of each connected replica
};
Result<ReplicationState> GetReplicationState(Client& client);

}  // namespace reprise::redis
