// Throw-away PostgreSQL 15 clusters for the tests, one set per test: initdb into a fresh
// directory, free ports from a search, 127.0.0.1 only, trust auth, servers run as the Debian
// "postgres" user when the tests run as root (initdb refuses root). Nothing is shared between
// tests, so a test may kill, promote or corrupt its servers freely.
//
// Without PostgreSQL 15 installed (/usr/lib/postgresql/15/bin), PgAvailable() is false and the
// tests skip, saying kPgSkipReason.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace reprise::testing {

bool PgAvailable();
// chown -R to the server user (what archive_command and restored servers run as); a no-op
// when not root. Symlinks are not followed.
void ChownToPostgres(const std::string& path);

// What an archive_command run by the server user needs, under `base`: a copy of the reprise
// binary it may run (the build dir may not be traversable), a repository made with
// `passphrase`, and a generated key file; all owned by the server user when root. On failure
// `error` says why and the paths are empty.
struct ArchivingRepo {
  std::string bin, repo, key;
  std::string error;
};
ArchivingRepo MakeArchivingRepo(const std::string& base, const std::string& passphrase);
inline constexpr char kPgSkipReason[] =
    "PostgreSQL 15 is not installed (apt-get install postgresql-15 postgresql-contrib, or "
    "bash scripts/setup.sh --with-services)";

// A port nobody listens on, not handed out before by this process.
int FreePort();

struct PgServerOptions {
  // Extra postgresql.conf lines (archive_command, archive_timeout ...).
  std::vector<std::string> conf;
  bool start = true;
};

class PgServer {
 public:
  // initdb + configure (wal_level=replica, max_wal_senders=10, max_replication_slots=10,
  // fsync=off, listen 127.0.0.1:port, unix socket in the base dir) + start.
  static std::unique_ptr<PgServer> Create(const std::string& base_dir, const std::string& name,
                                          const PgServerOptions& options = {});
  // A streaming replica of `primary` made with pg_basebackup -R, started.
  static std::unique_ptr<PgServer> CreateReplica(const PgServer& primary, const std::string& name);
  // Wraps an existing data directory (e.g. one reprise restored) on a new port, not started.
  // The directory is chowned to the server user first when running as root.
  static std::unique_ptr<PgServer> Adopt(const std::string& data_dir, const std::string& name);
  ~PgServer();  // stops the server (immediate mode) if it runs

  const std::string& data_dir() const { return data_dir_; }
  int port() const { return port_; }
  // "host=127.0.0.1 port=N user=postgres dbname=postgres"
  std::string conninfo(const std::string& dbname = "postgres") const;
  // Absolute path of a PostgreSQL program (pg_ctl, pgbench, psql ...).
  static std::string Bin(const std::string& program);
  // Argument prefix that runs a command as the server's user ({"runuser","-u","postgres","--"}
  // as root, empty otherwise).
  static std::vector<std::string> AsServerUser();

  bool Start();                 // pg_ctl start -w; false on failure (log in log_file())
  void Stop();                  // pg_ctl stop -m fast
  void Kill();                  // SIGKILL the postmaster and its children
  bool Promote();               // pg_ctl promote -w
  bool running() const;
  std::string log_file() const;
  // Runs SQL through psql -Atq (stops at the first error); returns stdout without its trailing
  // newlines, or nullopt on error (with stderr appended to *error when given).
  std::optional<std::string> Sql(const std::string& sql, const std::string& dbname = "postgres",
                                 std::string* error = nullptr) const;
  // pgbench with these arguments against this server (e.g. {"-i","-s","1"} or
  // {"-T","5","-c","2"}); returns its exit status.
  int Pgbench(const std::vector<std::string>& args, const std::string& dbname = "postgres") const;
  // Postgres stays up but this object no longer stops it on destruction.
  void Detach() { detached_ = true; }

 private:
  PgServer() = default;
  std::string data_dir_, name_, base_dir_;
  int port_ = 0;
  bool detached_ = false;
};

}  // namespace reprise::testing
