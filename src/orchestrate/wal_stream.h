// wal-stream: receives WAL continuously over the replication protocol (as pg_receivewal
// does, from a physical replication slot so the server keeps what was not received), and
// archives it into the repository, so the RPO is seconds, not archive_timeout.
//
// Durability, in order: bytes are appended to a local spool file <spool>/<segment>.partial
// and fsync'ed before the server is told they are flushed (which lets the slot advance);
// every `push_interval` the partial segment is archived as "<segment>.partial" (replacing the
// previous one; unchanged chunks dedup within the session); a completed segment is archived
// under its own name, then its spool file is removed. When the connection breaks (the server
// died), the partial is archived at once and the streamer reconnects with backoff; restore
// --to-end then recovers up to the last byte received.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "repo/repository.h"

namespace reprise {

struct WalStreamOptions {
  std::string conninfo, password;
  std::string component;
  std::string slot = "reprise";
  std::string spool_dir;
  int push_interval_ms = 1000;
  int status_interval_ms = 500;
  // Stop after the connection is lost once (tests), instead of reconnecting.
  bool exit_on_disconnect = false;
  // Takes a shared repository lock for the length of one archive write (so prune can run
  // between writes of a long-running stream); null: no locking.
  std::function<Result<std::shared_ptr<void>>()> lock;
};

struct WalStreamStats {
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> segments{0};
  std::atomic<uint64_t> partial_pushes{0};
  std::atomic<uint64_t> flushed_lsn{0};
};

// Runs until `stop` becomes true (then archives the partial and returns OK), or until a
// non-transient error. `log` receives one line per notable event.
Status RunWalStream(Repository& repo, const WalStreamOptions& options, const Clock& clock,
                    const std::atomic<bool>& stop, WalStreamStats& stats,
                    const std::function<void(const std::string&)>& log);

}  // namespace reprise
