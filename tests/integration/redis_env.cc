#include "redis_env.h"

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

#include "harness.h"
#include "pg_env.h"

extern char** environ;

namespace reprise::testing {

namespace {

constexpr char kRedisServer[] = "/usr/bin/redis-server";
constexpr char kRedisCli[] = "/usr/bin/redis-cli";

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits for `pid` to exit, up to `timeout`; true when it was reaped.
bool ReapWithin(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Quotes one word for sh.
std::string ShQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// True while `pid` exists and is not a zombie (PID 1 here does not reap orphans).
bool Alive(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  if (!status) return false;
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("State:", 0) == 0) return line.find('Z') == std::string::npos;
  }
  return false;
}

// The redis-server daemon named by `pid_file`, or -1.
pid_t DaemonPid(const std::string& pid_file, int port) {
  std::ifstream in(pid_file);
  long pid = -1;
  if (!(in >> pid) || pid <= 1) return -1;
  // redis-server sets its title to "/usr/bin/redis-server 127.0.0.1:PORT".
  std::string cmdline = ReadFileText("/proc/" + std::to_string(pid) + "/cmdline");
  if (cmdline.find("redis-server") == std::string::npos ||
      cmdline.find(":" + std::to_string(port)) == std::string::npos)
    return -1;
  return static_cast<pid_t>(pid);
}

}  // namespace

bool RedisAvailable() {
  return access(kRedisServer, X_OK) == 0 && access(kRedisCli, X_OK) == 0;
}

std::unique_ptr<RedisServer> RedisServer::Create(const std::string& base_dir,
                                                 const std::string& name,
                                                 const RedisServerOptions& options) {
  std::unique_ptr<RedisServer> s(new RedisServer());
  s->base_dir_ = std::filesystem::absolute(base_dir).string();
  s->name_ = name;
  s->dir_ = s->base_dir_ + "/" + name;
  s->port_ = FreePort();
  s->password_ = options.password;
  std::error_code ec;
  std::filesystem::create_directories(s->dir_, ec);
  if (ec) {
    std::cerr << "redis_env: cannot create '" << s->dir_ << "': " << ec.message() << "\n";
    return nullptr;
  }
  // repl-diskless-sync-delay 0: Redis 7 otherwise waits 5 s before every full sync.
  s->args_ = {"--bind", "127.0.0.1",
              "--port", std::to_string(s->port_),
              "--dir", s->dir_,
              "--dbfilename", "dump.rdb",
              "--daemonize", "no",
              "--save", "",
              "--appendonly", options.persistence ? "yes" : "no",
              "--repl-diskless-sync-delay", "0",
              "--shutdown-on-sigterm", "now",
              "--pidfile", s->pid_file(),
              "--logfile", s->log_file()};
  if (!options.password.empty()) {
    s->args_.insert(s->args_.end(), {"--requirepass", options.password, "--masterauth",
                                     options.password});
  }
  s->args_.insert(s->args_.end(), options.args.begin(), options.args.end());
  if (!s->Start()) {
    std::cerr << "redis_env: server '" << name << "' did not start:\n"
              << ReadFileText(s->log_file()) << ReadFileText(s->dir_ + ".stdout");
    return nullptr;
  }
  return s;
}

std::unique_ptr<RedisServer> RedisServer::CreateReplica(const RedisServer& primary,
                                                        const std::string& name) {
  RedisServerOptions options;
  options.password = primary.password_;
  options.args = {"--replicaof", "127.0.0.1", std::to_string(primary.port())};
  auto s = Create(primary.base_dir_, name, options);
  if (!s) return nullptr;
  if (!s->WaitForInfo("master_link_status:up", 30000)) {
    std::cerr << "redis_env: replica '" << name << "' did not attach:\n"
              << ReadFileText(s->log_file());
    return nullptr;
  }
  return s;
}

RedisServer::~RedisServer() { Kill(); }

std::string RedisServer::log_file() const { return base_dir_ + "/" + name_ + ".log"; }

bool RedisServer::Start() {
  if (running()) return true;
  std::string out_path = dir_ + ".stdout";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  std::vector<std::string> argv = {kRedisServer};
  argv.insert(argv.end(), args_.begin(), args_.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, kRedisServer, &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    std::cerr << "redis_env: cannot run redis-server: " << std::strerror(rc) << "\n";
    return false;
  }
  pid_ = pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return false;  // it exited: the log says why
    auto pong = Cli({"PING"});
    if (pong && *pong == "PONG") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void RedisServer::Stop() {
  if (!running()) return;
  kill(pid_, SIGTERM);
  if (!ReapWithin(pid_, std::chrono::seconds(10))) {
    kill(pid_, SIGKILL);
    ReapWithin(pid_, std::chrono::seconds(10));
  }
  pid_ = -1;
}

std::string RedisServer::StartCommand() const {
  std::string cmd = "exec " + ShQuote(kRedisServer);
  for (const auto& a : args_) cmd += " " + ShQuote(a);
  cmd += " --daemonize yes --pidfile " + ShQuote(pid_file());
  cmd += " </dev/null >>" + ShQuote(dir_ + ".stdout") + " 2>&1";
  return cmd;
}

std::string RedisServer::StopCommand() const {
  std::string p = ShQuote(pid_file());
  return "[ -f " + p + " ] || exit 0; pid=$(cat " + p +
         "); kill -TERM \"$pid\" 2>/dev/null || { rm -f " + p +
         "; exit 0; }; i=0; while [ -d /proc/$pid ] && ! grep -q '^State:[[:space:]]*Z' "
         "/proc/$pid/status 2>/dev/null; do i=$((i+1)); [ $i -eq 400 ] && kill -KILL $pid; "
         "sleep 0.05; done; rm -f " +
         p;
}

void RedisServer::Kill() {
  if (pid_t daemon = DaemonPid(pid_file(), port_); daemon > 0) {
    kill(daemon, SIGKILL);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Alive(daemon) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    unlink(pid_file().c_str());
  }
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  ReapWithin(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

bool RedisServer::running() const {
  if (pid_ <= 0) return false;
  // Our own child: waitpid reaps it, so it never lingers as a zombie here.
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::optional<std::string> RedisServer::Cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {kRedisCli, "-e", "-h", "127.0.0.1", "-p",
                                   std::to_string(port_)};
  if (!password_.empty()) argv.insert(argv.end(), {"--no-auth-warning", "-a", password_});
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = RunCommand(argv);
  if (r.exit_code != 0) return std::nullopt;
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

bool RedisServer::WaitForInfo(const std::string& line, int timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto info = Cli({"INFO", "replication"});
    if (info && info->find(line) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace reprise::testing
