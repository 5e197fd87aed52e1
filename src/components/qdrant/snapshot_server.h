// Serves one local file over HTTP so that Qdrant can recover a collection from a URL
// (PUT /collections/{name}/snapshots/recover): the restore method "url". The file is served
// at an unguessable path (/snapshots/<32 random hex digits>/<name>) with GET only, for as
// long as the object lives; every other path is 404. Plain HTTP: bind it to an address only
// the Qdrant peers reach.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"

namespace httplib {
class Server;
}

namespace reprise::qdrant {

class SnapshotServer {
 public:
  // `address`: "host" or "host:port" to bind (port 0 or none: any free port).
  static Result<std::unique_ptr<SnapshotServer>> Start(const std::string& address,
                                                       const std::string& file,
                                                       const std::string& name);
  ~SnapshotServer();
  SnapshotServer(const SnapshotServer&) = delete;
  SnapshotServer& operator=(const SnapshotServer&) = delete;

  // "http://host:port/snapshots/<token>/<name>".
  const std::string& url() const { return url_; }
  // GET requests that were answered with the file.
  int downloads() const;

 private:
  SnapshotServer() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string url_;
  std::shared_ptr<std::atomic<int>> downloads_;
};

}  // namespace reprise::qdrant
