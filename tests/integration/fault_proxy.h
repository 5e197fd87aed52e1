// A fault-injecting TCP proxy for tests: listens on 127.0.0.1 (a kernel-chosen free port) and
// forwards each accepted connection to target_host:target_port, one thread per connection.
//
// Per connection, a generator seeded from (seed, connection number) plans faults for each
// window of `max_fault_offset` bytes (so a kept-alive connection meets as many as fresh ones);
// in each window, independently, with its probability and at a uniform random byte:
// - reset:  (bytes counted both ways) the client socket is closed with SO_LINGER 0 and so is
//           the server's (the client sees ECONNRESET);
// - stall:  (bytes counted both ways) nothing moves for `stall`;
// - cut:    (bytes from the server) both sides are closed normally: the client sees a
//           response end early (a body cut mid-way).
// Counters say how many faults really happened (one planned past the end of a connection's
// traffic never does), so a test can assert that its faults fired.
//
// Pause() resets every live connection and resets each new one as soon as it is accepted
// (an outage) until Resume(). Everything stops in the destructor: threads wake at least every
// 50 ms to look at the stop flag, and are all joined. Loopback only; not for production.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace reprise::testing {

struct FaultProxyOptions {
  std::string target_host = "127.0.0.1";  // an IPv4 address
  uint16_t target_port = 0;
  uint64_t seed = 1;
  double reset_probability = 0;  // per connection, each in [0, 1]
  double stall_probability = 0;
  double cut_probability = 0;
  std::chrono::milliseconds stall{500};
  uint64_t max_fault_offset = 4u << 20;  // the window: at most one fault of a kind in each
};

struct FaultCounts {
  uint64_t connections = 0;  // accepted and forwarded
  uint64_t resets = 0;
  uint64_t stalls = 0;
  uint64_t cuts = 0;
  uint64_t refused = 0;  // accepted while paused and reset at once (or dropped by Pause)
  uint64_t faults() const { return resets + stalls + cuts; }
  std::string ToString() const;
};

class FaultProxy {
 public:
  // Binds and starts accepting; on failure port() is 0 and error() says why.
  explicit FaultProxy(FaultProxyOptions options);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const { return port_; }
  const std::string& error() const { return error_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void Pause();
  void Resume();
  FaultCounts counts() const;

 private:
  struct Conn {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void AcceptLoop();
  void Serve(int client, uint64_t number);
  void Reap(bool all);

  FaultProxyOptions options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::string error_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> pause_epoch_{0};  // bumped by Pause: live connections drop
  std::atomic<uint64_t> connections_{0}, resets_{0}, stalls_{0}, cuts_{0}, refused_{0};
  std::list<std::unique_ptr<Conn>> conns_;  // touched by the accept thread and the destructor
  std::thread acceptor_;
};

}  // namespace reprise::testing
