#include "fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

namespace reprise::testing {
namespace {

constexpr int kTickMs = 50;  // how often every loop looks at the stop flag

void HardClose(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

// Writes all of `data` unless the peer is gone or `stop` is set; sockets have a send timeout,
// so this wakes regularly.
bool WriteAll(int fd, const char* data, size_t n, const std::atomic<bool>& stop) {
  while (n > 0) {
    if (stop) return false;
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void SetSendTimeout(int fd) {
  timeval tv{0, kTickMs * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

std::string FaultCounts::ToString() const {
  return "connections=" + std::to_string(connections) + " resets=" + std::to_string(resets) +
         " stalls=" + std::to_string(stalls) + " cuts=" + std::to_string(cuts) +
         " refused=" + std::to_string(refused);
}

FaultProxy::FaultProxy(FaultProxyOptions options) : options_(std::move(options)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 128) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    error_ = std::string("bind/listen on 127.0.0.1: ") + std::strerror(errno);
    close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  Reap(/*all=*/true);
  if (listen_fd_ >= 0) close(listen_fd_);
}

void FaultProxy::Pause() {
  paused_ = true;
  ++pause_epoch_;
}

void FaultProxy::Resume() { paused_ = false; }

FaultCounts FaultProxy::counts() const {
  return FaultCounts{.connections = connections_.load(),
                     .resets = resets_.load(),
                     .stalls = stalls_.load(),
                     .cuts = cuts_.load(),
                     .refused = refused_.load()};
}

void FaultProxy::Reap(bool all) {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (all || (*it)->done) {
      (*it)->thread.join();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void FaultProxy::AcceptLoop() {
  uint64_t number = 0;
  while (!stop_) {
    Reap(/*all=*/false);
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, kTickMs) <= 0) continue;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    if (paused_) {
      ++refused_;
      HardClose(client);
      continue;
    }
    ++connections_;
    auto conn = std::make_unique<Conn>();
    Conn* raw = conn.get();
    uint64_t n = number++;
    conn->thread = std::thread([this, client, n, raw] {
      Serve(client, n);
      raw->done = true;
    });
    conns_.push_back(std::move(conn));
  }
}

void FaultProxy::Serve(int client, uint64_t number) {
  uint64_t epoch = pause_epoch_.load();
  std::mt19937_64 rng(options_.seed * 1000003u + number);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  const uint64_t window = std::max<uint64_t>(options_.max_fault_offset, 1);
  std::uniform_int_distribution<uint64_t> offset(0, window - 1);
  // Plans one fault of probability p somewhere in the window of bytes that starts at `start`.
  // Both draws always happen, so one kind's probability does not shift another's offsets.
  auto plan = [&](double p, uint64_t start) -> std::optional<uint64_t> {
    bool yes = coin(rng) < p;
    uint64_t at = start + offset(rng);
    return yes ? std::optional<uint64_t>(at) : std::nullopt;
  };
  // Faults are planned per window of `window` bytes, so a long-lived (kept-alive) connection
  // meets them as often as a fresh one: resets and stalls count bytes both ways, cuts count
  // bytes from the server.
  uint64_t total_window = 0, down_window = 0;  // where the current windows start
  std::optional<uint64_t> reset_at = plan(options_.reset_probability, 0);
  std::optional<uint64_t> stall_at = plan(options_.stall_probability, 0);
  std::optional<uint64_t> cut_at = plan(options_.cut_probability, 0);

  int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(options_.target_port);
  inet_pton(AF_INET, options_.target_host.c_str(), &addr.sin_addr);
  if (server < 0 || connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (server >= 0) close(server);
    HardClose(client);
    return;
  }
  SetSendTimeout(client);
  SetSendTimeout(server);

  uint64_t total = 0, down = 0;  // bytes forwarded: both ways; server -> client
  std::vector<char> buf(64 * 1024);
  auto both_close = [&](bool hard) {
    if (hard) {
      HardClose(client);
      HardClose(server);
    } else {
      shutdown(client, SHUT_RDWR);
      close(client);
      close(server);
    }
  };
  while (true) {
    if (stop_) return both_close(true);
    if (pause_epoch_.load() != epoch) {
      ++refused_;
      return both_close(true);
    }
    while (total >= total_window + window) {  // past the window without a reset: plan anew
      total_window += window;
      reset_at = plan(options_.reset_probability, total_window);
      if (!stall_at || *stall_at < total_window)
        stall_at = plan(options_.stall_probability, total_window);
    }
    while (down >= down_window + window) {
      down_window += window;
      cut_at = plan(options_.cut_probability, down_window);
    }
    if (reset_at && total >= *reset_at) {
      ++resets_;
      return both_close(true);
    }
    if (cut_at && down >= *cut_at) {
      ++cuts_;
      return both_close(false);
    }
    if (stall_at && total >= *stall_at) {
      stall_at.reset();
      ++stalls_;
      auto until = std::chrono::steady_clock::now() + options_.stall;
      while (!stop_ && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (poll(p, 2, kTickMs) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      bool from_server = i == 1;
      // Read no further than the next planned fault, so it lands on its exact byte.
      auto left = [](uint64_t at, uint64_t pos) { return at > pos ? at - pos : 0; };
      uint64_t room = buf.size();
      if (reset_at) room = std::min(room, left(*reset_at, total));
      if (stall_at) room = std::min(room, left(*stall_at, total));
      if (cut_at && from_server) room = std::min(room, left(*cut_at, down));
      if (room == 0) break;  // a fault is due: the top of the loop injects it
      ssize_t n = recv(p[i].fd, buf.data(), static_cast<size_t>(room), 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return both_close(n < 0);  // EOF or error on one side ends both
      int to = from_server ? client : server;
      if (!WriteAll(to, buf.data(), static_cast<size_t>(n), stop_)) return both_close(true);
      total += static_cast<uint64_t>(n);
      if (from_server) down += static_cast<uint64_t>(n);
    }
  }
}

}  // namespace reprise::testing
