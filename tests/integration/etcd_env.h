// Throw-away etcd 3.4 servers for the tests (Debian's etcd-server: /usr/bin/etcd): 127.0.0.1
// only, client and peer ports from FreePort(), data in the given directory, output in
// NAME.log there. Nothing is shared between tests, so a test may stop, kill and restart its
// servers freely.
//
// Most tests use a single-member cluster: for an election client, a member that stops is the
// same as a cluster that lost its quorum, and one member starts in a fraction of a second.
// CreateCluster makes a real 3-member cluster for tests of endpoint fail-over and quorum loss.
//
// Without /usr/bin/etcd, EtcdAvailable() is false and the tests skip, saying kEtcdSkipReason.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace reprise::testing {

bool EtcdAvailable();
inline constexpr char kEtcdSkipReason[] =
    "etcd is not installed (/usr/bin/etcd: apt-get install etcd-server, or bash "
    "scripts/setup.sh --with-services)";

class EtcdServer {
 public:
  // A single-member cluster in base_dir/NAME, started and healthy; nullptr on failure (the log
  // is printed to stderr).
  static std::unique_ptr<EtcdServer> Create(const std::string& base_dir,
                                            const std::string& name = "etcd");
  // `members` members (3: survives one loss) in base_dir/NAME1..., all started and healthy;
  // empty on failure.
  static std::vector<std::unique_ptr<EtcdServer>> CreateCluster(const std::string& base_dir,
                                                                int members,
                                                                const std::string& name = "etcd");
  ~EtcdServer();  // kills the server if it runs

  // Starts the member again on the same ports and data; waits until it answers /health
  // (which needs a quorum) unless wait_healthy is false. False on failure.
  bool Start(bool wait_healthy = true);
  void Stop();  // SIGTERM, waits for the exit (SIGKILL after 10 s)
  void Kill();  // SIGKILL, waits for the exit
  bool running() const;
  // Whether the member answers {"health":"true"} (it is up and the cluster has a leader).
  bool Healthy() const;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(client_port_); }
  int client_port() const { return client_port_; }
  int peer_port() const { return peer_port_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string log_file() const { return base_dir_ + "/" + name_ + ".log"; }

 private:
  EtcdServer() = default;
  bool Spawn();
  bool WaitHealthy(int seconds) const;
  void Signal(int sig, int wait_seconds);

  std::string base_dir_, name_, data_dir_;
  std::string initial_cluster_;  // "n1=http://127.0.0.1:P1,..."
  int client_port_ = 0, peer_port_ = 0;
  mutable pid_t pid_ = 0;  // 0: not started or exited (reaped)
};

}  // namespace reprise::testing
