// A Qdrant contract server on 127.0.0.1 (cpp-httplib): the REST operations reprise and its
// tests use, each request validated against Qdrant's published OpenAPI description
// (tests/contract/qdrant/openapi-v1.19.json, see the README.md there). No real Qdrant runs in
// CI; this is what stands in for it.
//
// Served: GET / (version), GET /cluster, GET /collections, GET/PUT/DELETE
// /collections/{name}, PUT /collections/{name}/points (upsert), POST .../points/scroll and
// .../points/count (filter "must" of key/match.value conditions), collection snapshots
// (POST create with wait, GET list, GET download, DELETE, POST upload multipart with priority
// and checksum, PUT recover from a URL the server really fetches) and shard snapshot upload
// (POST /collections/{name}/shards/{id}/snapshots/upload: checksum verified, tar checked).
//
// A request that breaks the description is answered 400 (404 for an undescribed path or
// method) with Qdrant's error shape AND recorded in Violations(); JSON answers are checked
// against the documented response schema too (a mismatch is a violation: a bug here). Tests
// assert Violations() is empty.
//
// Snapshots are tar archives (libarchive): "config.json" (the collection's name and creation
// body), "points.json" (every point), and "0/shard.snapshot", the real Qdrant shard snapshot
// file (test-shard.snapshot); recovery checks that member is a readable tar holding
// shard_config.json, so a restore that damaged it fails. The checksum is the SHA-256 of the
// file, as Qdrant reports it.
//
// Thread-safety: all public methods may be called from any thread while serving.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "openapi_validator.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace reprise::testing {

class QdrantContract {
 public:
  struct Options {
    int port = 0;                 // 0: any free port
    std::string version = "1.19.0";
    std::string data_dir;         // snapshots live here; empty: a temp dir removed at the end
    // Holds openapi-v1.19.json and test-shard.snapshot.
    std::string reference_dir;
    std::string api_key;          // when set, requests without this api-key header get 401
    uint64_t peer_id = 1;
    std::string cluster_status = "disabled";  // "enabled": GET /cluster lists `peers`
    std::map<uint64_t, std::string> peers;    // peer id -> uri, for GET /cluster
    // How long an operation answered 202 takes to complete in the background.
    int async_delay_ms = 150;
  };

  explicit QdrantContract(Options options);
  ~QdrantContract();
  QdrantContract(const QdrantContract&) = delete;
  QdrantContract& operator=(const QdrantContract&) = delete;

  // False when the port could not be bound or the description not loaded (see error()).
  bool running() const { return running_; }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:PORT"

  // Faults and modes.
  // The next `n` create/upload/recover operations answer 202 and finish in the background,
  // whatever their wait parameter says.
  void AcceptNext(int n);
  // The next `n` snapshots are listed (and returned by create) with a wrong checksum.
  void CorruptNextChecksums(int n);
  void SetVersion(const std::string& version);

  // What tests look at.
  std::vector<std::string> Violations() const;
  // One line per request: "GET /collections/x/snapshots -> 200".
  std::vector<std::string> Log() const;
  bool HasCollection(const std::string& name) const;
  std::vector<std::string> Collections() const;
  // Every point of a collection sorted by id, as {"id", "vector", "payload"}.
  nlohmann::json Points(const std::string& name) const;
  // Snapshot files kept on the server for a collection.
  std::vector<std::string> SnapshotFiles(const std::string& collection) const;
  // Shard snapshots received through the shard upload: "collection/shard_id sha256".
  std::vector<std::string> ShardUploads() const;
  // Headers seen on requests (names lowercased), to check e.g. that api-key was sent.
  std::vector<std::string> HeaderValues(const std::string& lowercase_name) const;

 private:
  struct Collection {
    nlohmann::json create_body;  // CreateCollection as received
    std::map<std::string, nlohmann::json> points;  // sort key -> point
    bool recovering = false;  // hidden while a background recovery runs
  };
  struct Reply {
    int status = 200;
    nlohmann::json body;
    std::string file;         // when set: stream this file as application/octet-stream
  };
  struct Call {
    const httplib::Request* req;
    OpenApi::Match match;
    std::vector<std::pair<std::string, std::string>> query;
    std::string Query(const std::string& name, const std::string& def = "") const;
  };

  void Handle(const httplib::Request& req, httplib::Response& res);
  Reply Dispatch(const Call& c);
  Reply Ok(nlohmann::json result) const;
  Reply Accepted() const;
  Reply Error(int status, const std::string& message) const;

  Reply ListSnapshots(const std::string& collection);
  Reply CreateSnapshot(const std::string& collection, bool wait);
  Reply Recover(const std::string& collection, const std::string& file,
                const std::string& checksum, bool wait);
  Reply ShardUpload(const Call& c, const std::string& collection, const std::string& shard);
  Reply Scroll(const std::string& collection, const nlohmann::json& body);
  Reply Count(const std::string& collection, const nlohmann::json& body);
  Reply Upsert(const std::string& collection, const nlohmann::json& body);
  nlohmann::json CollectionInfo(const Collection& c) const;

  // Writes the snapshot of `state` (taken under mu_) to a file; returns its name.
  std::string WriteSnapshot(const std::string& collection, const Collection& state);
  // Parses a snapshot file into a collection; "" or an error message.
  std::string ReadSnapshot(const std::string& file, Collection* out) const;
  void Background(std::function<void()> fn);
  std::string SnapshotDir(const std::string& collection) const;
  bool TakeAccept();

  Options options_;
  std::optional<OpenApi> api_;
  std::string error_;
  bool running_ = false;
  int port_ = 0;
  bool own_data_dir_ = false;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Collection> collections_;
  std::map<std::string, std::map<std::string, std::string>> checksums_;  // coll -> file -> sum
  std::vector<std::string> violations_;
  std::vector<std::string> log_;
  std::vector<std::string> shard_uploads_;
  std::map<std::string, std::vector<std::string>> headers_;
  std::vector<std::thread> background_;
  int accept_next_ = 0;
  int corrupt_next_ = 0;
  int snapshot_counter_ = 0;
  bool stopping_ = false;
};

}  // namespace reprise::testing
