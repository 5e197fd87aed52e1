// RetryStorage: retries the calls of another Storage that fail with kUnavailable (and only
// those: integrity, permission and not-found errors are answers, not accidents), with
// exponential backoff and jitter. Backends never retry inside themselves; OpenStorage wraps
// remote ones in this.
//
// Attempt n (1-based) that fails transiently is followed by a sleep of
// min(max_delay, base_delay * 2^(n-1)), shortened by a random fraction of up to `jitter` of
// itself, so that clients that failed together do not retry together. After max_attempts
// the last error is returned with "after N attempts" added.
//
// Every Storage method is retried: Put and Delete are idempotent by the Storage contract (a
// Put replaces the whole object). Thread-safe when the wrapped Storage is; `sleep` and
// `random` are called from the calling threads and must be thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "storage/storage.h"

namespace reprise {

// The defaults suit a backup tool, which would rather wait out a short outage (a restarting
// gateway, a failover, a flapping link) than fail a long backup: 12 attempts, waits of 0.2 s,
// 0.4 s, ... 12.8 s, then 20 s, 20 s, 20 s, 20 s: 105 s nominal, 53-105 s with jitter, before
// an operation gives up.
struct RetryPolicy {
  int max_attempts = 12;  // 1 = no retry
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{20000};
  double jitter = 0.5;  // 0: exact delays; 0.5: each delay is 50%..100% of nominal
  // Injected for tests; defaults: std::this_thread::sleep_for and a locked mt19937.
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<double()> random;  // uniform in [0, 1)
};

class RetryStorage final : public Storage {
 public:
  RetryStorage(std::unique_ptr<Storage> inner, RetryPolicy policy = {});

  std::string Location() const override;
  Result<Bytes> Get(const std::string& key) override;
  Result<Bytes> GetRange(const std::string& key, uint64_t offset, uint64_t length) override;
  Status Put(const std::string& key, ByteView data) override;
  Status Delete(const std::string& key) override;
  Result<ObjectInfo> Stat(const std::string& key) override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;

  // The delay after failed attempt `attempt` (1-based), before jitter.
  std::chrono::milliseconds NominalDelay(int attempt) const;
  Storage* inner() const { return inner_.get(); }

 private:
  template <typename F>
  auto Run(F&& f) -> decltype(f());

  std::unique_ptr<Storage> inner_;
  RetryPolicy policy_;
};

}  // namespace reprise
