#include "knot_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "common/bytes.h"
#include "harness.h"
#include "pg_env.h"

extern char** environ;

namespace reprise::testing {

namespace {

constexpr char kKnotd[] = "/usr/sbin/knotd";

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::unique_ptr<Daemon> Daemon::Start(const std::vector<std::string>& argv,
                                      const std::string& log_file) {
  int log_fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    std::cerr << "daemon: cannot open log '" << log_file << "': " << std::strerror(errno) << "\n";
    return nullptr;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(log_fd);
  if (rc != 0) {
    std::cerr << "daemon: cannot run '" << argv[0] << "': " << std::strerror(rc) << "\n";
    return nullptr;
  }
  std::unique_ptr<Daemon> d(new Daemon());
  d->pid_ = pid;
  d->log_file_ = log_file;
  return d;
}

Daemon::~Daemon() { Stop(); }

bool Daemon::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;  // exited and reaped
    return false;
  }
  return true;
}

void Daemon::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
}

std::string Daemon::log() const { return ReadText(log_file_); }

bool KnotAvailable() { return access(kKnotd, X_OK) == 0; }

std::string RandomTsigSecret() {
  std::random_device rd;
  uint8_t key[32];
  for (auto& b : key) b = static_cast<uint8_t>(rd());
  return Base64Encode(ByteView(key, sizeof key));
}

bool DnsAnswers(int port, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A plain query for "test.reprise." SOA, written by hand so that the harness does not rely
  // on the code under test.
  const uint8_t query[] = {0x12, 0x34, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                           0x00, 4,    't',  'e',  's',  't',  7,    'r',  'e',  'p',  'r',
                           'i',  's',  'e',  0,    0x00, 0x06, 0x00, 0x01};
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, query, sizeof query, 0) == static_cast<ssize_t>(sizeof query)) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN)) {
      uint8_t buf[512];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      ok = n >= 12 && buf[0] == 0x12 && buf[1] == 0x34;
    }
  }
  close(fd);
  return ok;
}

std::unique_ptr<KnotServer> KnotServer::Start(const std::string& dir_in) {
  namespace fs = std::filesystem;
  std::unique_ptr<KnotServer> k(new KnotServer());
  k->dir_ = fs::absolute(dir_in).string();
  k->port_ = FreePort();
  k->key_name_ = "reprise-test-key";
  k->secret_ = RandomTsigSecret();
  std::error_code ec;
  for (const char* sub : {"run", "db", "zones"}) fs::create_directories(k->dir_ + "/" + sub, ec);

  WriteFile(k->dir_ + "/zones/test.reprise.zone",
            "$ORIGIN test.reprise.\n"
            "$TTL 60\n"
            "@    SOA ns1 hostmaster 1 3600 600 86400 60\n"
            "@    NS  ns1\n"
            "ns1  A   127.0.0.1\n"
            "api  A   10.0.0.1\n");
  std::string conf =
      "server:\n"
      "    rundir: \"" + k->dir_ + "/run\"\n"
      "    listen: 127.0.0.1@" + std::to_string(k->port_) + "\n"
      "    background-workers: 1\n"
      "    udp-workers: 1\n"
      "    tcp-workers: 1\n"
      "database:\n"
      "    storage: \"" + k->dir_ + "/db\"\n"
      "log:\n"
      "  - target: stderr\n"
      "    any: info\n"
      "key:\n"
      "  - id: " + k->key_name_ + "\n"
      "    algorithm: hmac-sha256\n"
      "    secret: " + k->secret_ + "\n"
      "acl:\n"
      "  - id: update-with-key\n"
      "    key: " + k->key_name_ + "\n"
      "    action: update\n"
      "template:\n"
      "  - id: default\n"
      "    storage: \"" + k->dir_ + "/zones\"\n"
      "    file: \"%s.zone\"\n"
      "    zonefile-sync: 0\n"
      "    journal-content: none\n"
      "zone:\n"
      "  - domain: test.reprise\n"
      "    acl: update-with-key\n";
  WriteFile(k->dir_ + "/knot.conf", conf);

  k->daemon_ = Daemon::Start(
      {kKnotd, "-c", k->dir_ + "/knot.conf", "-s", k->dir_ + "/run/knot.sock"},
      k->dir_ + "/knotd.log");
  if (!k->daemon_) return nullptr;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (DnsAnswers(k->port_, 100)) return k;
    if (!k->daemon_->running()) break;
  }
  std::cerr << "knot_env: knotd did not answer on 127.0.0.1:" << k->port_ << ":\n" << k->log();
  return nullptr;
}

KnotServer::~KnotServer() = default;  // the Daemon stops knotd

std::string KnotServer::server() const { return "127.0.0.1:" + std::to_string(port_); }

std::string KnotServer::tsig_key_text() const {
  return "hmac-sha256:" + key_name_ + ":" + secret_;
}

std::string KnotServer::log() const { return daemon_ ? daemon_->log() : ""; }

}  // namespace reprise::testing
