#include "etcd_env.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/bytes.h"
#include "pg_env.h"
#include "storage/s3/http.h"

extern char** environ;

namespace reprise::testing {

namespace {

constexpr char kEtcdBin[] = "/usr/bin/etcd";

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string PeerUrl(int port) { return "http://127.0.0.1:" + std::to_string(port); }

}  // namespace

bool EtcdAvailable() { return access(kEtcdBin, X_OK) == 0; }

std::unique_ptr<EtcdServer> EtcdServer::Create(const std::string& base_dir,
                                               const std::string& name) {
  auto members = CreateCluster(base_dir, 1, name);
  if (members.empty()) return nullptr;
  return std::move(members[0]);
}

std::vector<std::unique_ptr<EtcdServer>> EtcdServer::CreateCluster(const std::string& base_dir,
                                                                   int members,
                                                                   const std::string& name) {
  std::vector<std::unique_ptr<EtcdServer>> out;
  std::string abs_base = std::filesystem::absolute(base_dir).string();
  std::filesystem::create_directories(abs_base);
  std::string initial;
  for (int i = 0; i < members; ++i) {
    std::unique_ptr<EtcdServer> s(new EtcdServer());
    s->base_dir_ = abs_base;
    s->name_ = members == 1 ? name : name + std::to_string(i + 1);
    s->data_dir_ = abs_base + "/" + s->name_;
    s->client_port_ = FreePort();
    s->peer_port_ = FreePort();
    if (s->client_port_ == 0 || s->peer_port_ == 0) return {};
    if (!initial.empty()) initial += ",";
    initial += s->name_ + "=" + PeerUrl(s->peer_port_);
    out.push_back(std::move(s));
  }
  // Every member is started before any is waited for: a member alone has no quorum.
  for (auto& s : out) {
    s->initial_cluster_ = initial;
    if (!s->Spawn()) return {};
  }
  for (auto& s : out) {
    if (!s->WaitHealthy(30)) {
      std::cerr << "etcd_env: '" << s->name_ << "' did not become healthy:\n"
                << ReadFileText(s->log_file());
      return {};
    }
  }
  return out;
}

EtcdServer::~EtcdServer() {
  if (running()) Kill();
}

bool EtcdServer::Spawn() {
  if (running()) return true;
  // Short heartbeat and election timeout (as in recipes/services/etcd-start.sh): a member
  // elects itself in well under a second, and restarted clusters recover fast.
  // clang-format off
  std::vector<std::string> argv = {
      kEtcdBin,
      "--name", name_,
      "--data-dir", data_dir_,
      "--listen-client-urls", endpoint(),
      "--advertise-client-urls", endpoint(),
      "--listen-peer-urls", PeerUrl(peer_port_),
      "--initial-advertise-peer-urls", PeerUrl(peer_port_),
      "--initial-cluster", initial_cluster_,
      "--initial-cluster-state", "new",  // ignored once the data directory exists
      "--heartbeat-interval", "10",
      "--election-timeout", "100",
      "--logger", "zap",
      "--log-outputs", "stderr",
  };
  // clang-format on
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_file().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, kEtcdBin, &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    std::cerr << "etcd_env: cannot run '" << kEtcdBin << "': " << std::strerror(rc) << "\n";
    return false;
  }
  pid_ = pid;
  return true;
}

bool EtcdServer::Start(bool wait_healthy) {
  if (!Spawn()) return false;
  if (!wait_healthy) return true;
  if (!WaitHealthy(30)) {
    std::cerr << "etcd_env: '" << name_ << "' did not become healthy after a restart:\n"
              << ReadFileText(log_file());
    return false;
  }
  return true;
}

bool EtcdServer::running() const {
  if (pid_ == 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = 0;  // reaped: the process is gone
    return false;
  }
  return true;
}

void EtcdServer::Signal(int sig, int wait_seconds) {
  if (!running()) return;
  kill(pid_, sig);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      if (sig == SIGKILL) return;
      kill(pid_, SIGKILL);
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      sig = SIGKILL;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void EtcdServer::Stop() { Signal(SIGTERM, 10); }

void EtcdServer::Kill() { Signal(SIGKILL, 10); }

bool EtcdServer::Healthy() const {
  if (!running()) return false;
  s3::HttpOptions options;
  options.connect_timeout_seconds = 1;
  options.total_timeout_ms = 1000;
  s3::HttpClient http(options);
  auto resp = http.Send({.method = "GET", .url = endpoint() + "/health"});
  return resp.ok() && resp->status == 200 &&
         AsString(resp->body).find("\"health\":\"true\"") != std::string_view::npos;
}

bool EtcdServer::WaitHealthy(int seconds) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return false;
    if (Healthy()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace reprise::testing
