// A writer for failover and restore tests: inserts one row per transaction into table `acks`
// (id bigint primary key) on whatever answers at a conninfo, reconnecting after failures, and
// keeps the ids the server acknowledged as committed, so a test can count what was lost.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "pg/connection.h"

namespace reprise::testing {

// Inserts one row per transaction into `acks` on whatever answers at `conninfo`, and keeps
// the ids the server acknowledged as committed.
class AckWriter {
 public:
  explicit AckWriter(std::string conninfo) : conninfo_(std::move(conninfo)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~AckWriter() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<int64_t> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  int64_t failures() const { return failures_; }

 private:
  void Loop() {
    int64_t next = 1;
    std::unique_ptr<pg::Connection> conn;
    while (!stop_) {
      if (!conn) {
        auto c = pg::Connection::Open(conninfo_, false);
        if (!c.ok()) {
          ++failures_;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          continue;
        }
        conn = std::move(*c);
      }
      int64_t id = next++;
      auto r = conn->Query(fmt::format("INSERT INTO acks VALUES ({})", id));
      if (r.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        acked_.push_back(id);
      } else {
        ++failures_;
        conn.reset();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  std::string conninfo_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> failures_{0};
  std::mutex mu_;
  std::vector<int64_t> acked_;
  std::thread thread_;
};

}  // namespace reprise::testing
