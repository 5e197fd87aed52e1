// A throw-away Knot DNS server for the DNS tests (Debian knot 3.2): authoritative for
// "test.reprise." on 127.0.0.1:FreePort() (UDP and TCP), with its own rundir, storage and
// zone file in a directory of the test. Dynamic updates (RFC 2136) are allowed only when
// signed with a fresh random hmac-sha256 TSIG key. Killed by the destructor.
//
// Zone at start: SOA, NS ns1, ns1 A 127.0.0.1, api A 10.0.0.1.
//
// Also: Daemon, a background process for test servers (stdin /dev/null, output to a log).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace reprise::testing {

// A server program run in the background; the destructor stops it (SIGTERM, then SIGKILL
// after 5 s) and reaps it.
class Daemon {
 public:
  // stdout and stderr go to `log_file`; nullptr when the program cannot be started.
  static std::unique_ptr<Daemon> Start(const std::vector<std::string>& argv,
                                       const std::string& log_file);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  pid_t pid() const { return pid_; }
  bool running();  // not exited (a zombie counts as gone)
  void Stop();
  std::string log() const;  // the log file's contents

 private:
  Daemon() = default;
  pid_t pid_ = -1;
  std::string log_file_;
};

bool KnotAvailable();
inline constexpr char kKnotSkipReason[] =
    "Knot DNS is not installed (apt-get install knot knot-dnsutils, or bash scripts/setup.sh "
    "--with-services)";

class KnotServer {
 public:
  static constexpr char kZone[] = "test.reprise.";
  static constexpr char kRecord[] = "api.test.reprise.";
  static constexpr char kInitialValue[] = "10.0.0.1";

  // Writes knot.conf and the zone under `dir`, starts knotd and waits (up to 10 s) until it
  // answers a query. nullptr on failure, after printing knotd's log.
  static std::unique_ptr<KnotServer> Start(const std::string& dir);
  ~KnotServer();

  int port() const { return port_; }
  std::string server() const;  // "127.0.0.1:<port>"
  const std::string& key_name() const { return key_name_; }
  const std::string& secret() const { return secret_; }
  std::string tsig_key_text() const;  // "hmac-sha256:<name>:<secret>", as a secret holds it
  std::string log() const;

 private:
  KnotServer() = default;
  std::string dir_, key_name_, secret_;
  int port_ = 0;
  std::unique_ptr<Daemon> daemon_;
};

// A fresh random 256-bit key, base64.
std::string RandomTsigSecret();

// Whether something answers a DNS query on 127.0.0.1:port (UDP) within `timeout_ms`.
bool DnsAnswers(int port, int timeout_ms);

}  // namespace reprise::testing
