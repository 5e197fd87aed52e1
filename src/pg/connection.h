// A libpq connection, normal or replication (replication=true in the conninfo), with errors
// as values. Messages carry the server's error text but never the conninfo's password.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <libpq-fe.h>

#include "common/result.h"

namespace reprise::pg {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// Rows of a query result, as text (NULL as nullopt).
struct Rows {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};

class Connection {
 public:
  // `conninfo` is a libpq connection string or URI. With `replication`, "replication=true" (a
  // physical walsender connection) is added. Connect timeout defaults to 10 s unless given.
  // `password`, when not empty, is passed as a separate keyword (never part of a message).
  static Result<std::unique_ptr<Connection>> Open(const std::string& conninfo, bool replication,
                                                  const std::string& password = "");
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PGconn* raw() { return conn_; }
  // Runs a simple-protocol command and returns its rows (empty for commands without rows).
  Result<Rows> Query(const std::string& sql);
  // Server version as PQserverVersion gives it (150018).
  int server_version() const;
  // "host:port" for messages (no user, no password).
  std::string Describe() const;

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  PGconn* conn_;
};

// A Status for a failed result (or, with res == nullptr, the connection's last error):
// "<what> on 'host:port': <server message>". The code follows the SQLSTATE: duplicate object
// -> kAlreadyExists, undefined object -> kNotFound, 28xxx -> kUnauthenticated, 42501 ->
// kPermissionDenied, connection failures / shutdown -> kUnavailable, else kFailedPrecondition.
Status ResultError(PGconn* conn, const PGresult* res, const std::string& what);

// A server setting (SHOW name; works on replication connections too).
Result<std::string> Show(Connection& conn, const std::string& name);
// A size setting in bytes: "8192", "16MB", "1GB", "64kB" as SHOW prints them.
Result<uint64_t> ShowBytes(Connection& conn, const std::string& name);

// Quotes a string literal for the replication grammar / SQL: 'it''s'.
std::string QuoteLiteral(const std::string& s);
// Hides password=... and user:password@ in a conninfo, for messages and records.
std::string RedactConninfo(const std::string& conninfo);

}  // namespace reprise::pg
