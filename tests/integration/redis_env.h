// Throw-away Redis servers for the tests (Debian redis-server 7): one process per server on
// 127.0.0.1 and a free port, its dir and log file under the test's base directory, killed by
// the destructor. No persistence unless asked for; replicas attach with replicaof from the
// start, so a restarted replica attaches again by itself.
//
// Without /usr/bin/redis-server, RedisAvailable() is false and the tests skip, saying
// kRedisSkipReason.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace reprise::testing {

bool RedisAvailable();
inline constexpr char kRedisSkipReason[] =
    "redis-server is not installed (apt-get install redis-server, or bash scripts/setup.sh "
    "--with-services)";

struct RedisServerOptions {
  bool persistence = false;  // appendonly yes (survives Stop/Start); otherwise nothing on disk
  std::string password;      // requirepass and masterauth; empty: none
  std::vector<std::string> args;  // more "--name value" arguments
};

class RedisServer {
 public:
  // Starts redis-server in base_dir/name (log base_dir/name.log) and waits until it answers
  // PING. nullptr (with the reason on stderr) when it does not start.
  static std::unique_ptr<RedisServer> Create(const std::string& base_dir, const std::string& name,
                                             const RedisServerOptions& options = {});
  // A replica of `primary` (same password), started and waited for until
  // master_link_status:up.
  static std::unique_ptr<RedisServer> CreateReplica(const RedisServer& primary,
                                                    const std::string& name);
  ~RedisServer();  // SIGKILL when it runs
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }
  std::string log_file() const;

  bool Start();  // same port, dir and arguments; waits for PING; false when it does not answer
  // Shell commands (for sh -c) that start this server (same port, dir and arguments) as a
  // daemon writing pid_file(), returning at once, and stop that daemon (SIGTERM, SIGKILL after
  // 20 s; waits until it is gone; does nothing when no pid file is there; also stops a server
  // that Start() ran, which writes the same pid file). For components
  // that restart a server through a controller command. Kill() and the destructor also kill
  // a server started this way.
  std::string StartCommand() const;
  std::string StopCommand() const;
  std::string pid_file() const { return dir_ + ".pid"; }
  void Stop();   // SIGTERM (shutdown-on-sigterm now), SIGKILL after 10 s
  void Kill();   // SIGKILL
  bool running() const;
  // redis-cli -h 127.0.0.1 -p PORT [auth] args...: stdout without its trailing newline, or
  // nullopt when redis-cli fails or the reply is an error.
  std::optional<std::string> Cli(const std::vector<std::string>& args) const;
  // Polls INFO replication until it contains `line` (e.g. "master_link_status:up").
  bool WaitForInfo(const std::string& line, int timeout_ms = 10000) const;

 private:
  RedisServer() = default;
  std::string dir_, name_, base_dir_;
  int port_ = 0;
  std::string password_;
  std::vector<std::string> args_;  // full argv after the program
  mutable pid_t pid_ = -1;  // cleared by running() once the process is reaped
};

}  // namespace reprise::testing
