// Leader election on etcd v3 (its JSON gateway, /v3/..., over libcurl): several monitors, one
// per site, campaign for one key; only the holder of the key may fail over. The key is bound
// to a lease, so a monitor that dies or loses etcd loses leadership when the lease expires.
//
// Without a reachable etcd quorum every call fails with kUnavailable and nobody is leader:
// the caller must then do nothing (never promote without the lease).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace reprise::quorum {

struct ElectionOptions {
  // http://127.0.0.1:2379 ...; on a transport failure or a member that cannot serve (no
  // leader, timeout) the next one is tried, in order, starting with the last that answered.
  std::vector<std::string> endpoints;
  std::string key = "/reprise/failover/leader";
  std::string candidate;         // this monitor's id (e.g. site name + host), the value
  std::chrono::seconds ttl{10};  // lease TTL (etcd may raise it to its minimum)
  std::chrono::milliseconds request_timeout{2000};  // per request and endpoint
};

// Thread-safe: calls are serialised, except IsLeader, which never waits for a request.
class Election {
 public:
  explicit Election(ElectionOptions options);
  ~Election();  // does not resign: the lease simply expires (use Resign to step down now)
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // One round: grants a lease when there is none (or it expired), keeps it alive, and
  // creates the key with it if nobody holds it (transaction: create_revision == 0).
  // Returns whether this candidate holds the key (its value is `candidate` and it is bound to
  // our lease) after the round. Any error (kUnavailable when no endpoint answers) also ends
  // leadership: IsLeader is false until a later round confirms it again.
  Result<bool> Campaign();
  // Who holds the key now ("" when nobody), read from etcd.
  Result<std::string> Leader();
  // Deletes the key if we hold it and revokes the lease.
  Status Resign();
  // Publishes `value` under `key` bound to this candidate's lease (it vanishes when the lease
  // expires); call after a successful Campaign, which keeps the lease alive. Monitors publish
  // their view of the primary this way so that the leader acts only on a majority's view.
  Status Publish(const std::string& key, const std::string& value);
  // Every key under `prefix` with its value.
  Result<std::map<std::string, std::string>> ReadPrefix(const std::string& prefix);
  // A key without lease (e.g. the site that is primary now), and reading one back.
  Status Put(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> Get(const std::string& key);
  // Whether the last Campaign made us leader and the lease has not passed its TTL since
  // (steady local clock, counted from before the keepalive: conservative, ttl - 1 s).
  bool IsLeader() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace reprise::quorum
