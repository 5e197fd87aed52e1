#include "pg/connection.h"

#include <cstring>

namespace reprise::pg {

namespace {

std::string TrimMessage(const char* m) {
  std::string s = m ? m : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Code CodeForSqlState(const std::string& state) {
  if (state == "42710") return Code::kAlreadyExists;  // duplicate_object
  if (state == "42704") return Code::kNotFound;       // undefined_object
  if (state == "42501") return Code::kPermissionDenied;
  if (state.starts_with("28")) return Code::kUnauthenticated;
  if (state.starts_with("08") || state.starts_with("57P") || state == "53300") {
    return Code::kUnavailable;  // connection lost, shutting down, too many connections
  }
  return Code::kFailedPrecondition;
}

}  // namespace

Status ResultError(PGconn* conn, const PGresult* res, const std::string& what) {
  std::string where = conn ? std::string(PQhost(conn) ? PQhost(conn) : "?") + ":" +
                                 (PQport(conn) ? PQport(conn) : "?")
                           : "?";
  std::string message;
  Code code = Code::kFailedPrecondition;
  if (res) {
    message = TrimMessage(PQresultErrorMessage(res));
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state) code = CodeForSqlState(state);
    if (message.empty()) {
      message = std::string("unexpected result ") + PQresStatus(PQresultStatus(res));
      code = Code::kInternal;
    }
  } else {
    message = TrimMessage(conn ? PQerrorMessage(conn) : "no connection");
    if (conn && PQstatus(conn) == CONNECTION_BAD) code = Code::kUnavailable;
  }
  if (message.empty()) message = "unknown error";
  return Status(code, what + " on '" + where + "': " + message);
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo,
                                                     bool replication,
                                                     const std::string& password) {
  // Keywords are applied in order, later ones winning: the defaults come before the
  // expanded conninfo, "replication" after it so that it cannot be switched off.
  std::vector<const char*> keys = {"connect_timeout", "fallback_application_name", "dbname"};
  std::vector<const char*> values = {"10", "reprise", conninfo.c_str()};
  if (replication) {
    keys.push_back("replication");
    values.push_back("true");
  }
  if (!password.empty()) {
    keys.push_back("password");
    values.push_back(password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (!conn) return Unavailable("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = TrimMessage(PQerrorMessage(conn));
    bool auth = PQconnectionNeedsPassword(conn) ||
                message.find("authentication failed") != std::string::npos;
    bool denied = message.find("no pg_hba.conf entry") != std::string::npos ||
                  message.find("permission denied") != std::string::npos;
    PQfinish(conn);
    std::string text = "cannot connect to PostgreSQL '" + RedactConninfo(conninfo) + "'" +
                       (replication ? " for replication" : "") + ": " + message;
    if (auth) return Unauthenticated(text + ": HINT: check the user and password");
    if (denied) {
      return PermissionDenied(text + (replication ? ": HINT: the server's pg_hba.conf needs a "
                                                    "'replication' line for this user and host"
                                                  : ""));
    }
    return Unavailable(text);
  }
  return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

Result<Rows> Connection::Query(const std::string& sql) {
  PgResultPtr res(PQexec(conn_, sql.c_str()));
  ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  std::string what = "query '" + sql.substr(0, 60) + (sql.size() > 60 ? "...'" : "'");
  if (st == PGRES_COMMAND_OK || st == PGRES_EMPTY_QUERY) return Rows{};
  if (st != PGRES_TUPLES_OK) return ResultError(conn_, res.get(), what);
  Rows rows;
  int nf = PQnfields(res.get()), nt = PQntuples(res.get());
  for (int f = 0; f < nf; ++f) rows.columns.push_back(PQfname(res.get(), f));
  rows.rows.reserve(static_cast<size_t>(nt));
  for (int t = 0; t < nt; ++t) {
    std::vector<std::optional<std::string>> row;
    row.reserve(static_cast<size_t>(nf));
    for (int f = 0; f < nf; ++f) {
      if (PQgetisnull(res.get(), t, f)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(res.get(), t, f),
                                     static_cast<size_t>(PQgetlength(res.get(), t, f))));
      }
    }
    rows.rows.push_back(std::move(row));
  }
  return rows;
}

int Connection::server_version() const { return PQserverVersion(conn_); }

std::string Connection::Describe() const {
  const char* host = PQhost(conn_);
  const char* port = PQport(conn_);
  return std::string(host ? host : "?") + ":" + (port ? port : "?");
}

std::string QuoteLiteral(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

namespace {

std::string RedactUri(const std::string& uri) {
  size_t scheme_end = uri.find("://");
  std::string out = uri.substr(0, scheme_end + 3);
  std::string rest = uri.substr(scheme_end + 3);
  size_t auth_end = rest.find_first_of("/?");
  std::string authority = rest.substr(0, auth_end);
  std::string tail = auth_end == std::string::npos ? "" : rest.substr(auth_end);
  size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    std::string userinfo = authority.substr(0, at);
    size_t colon = userinfo.find(':');
    if (colon != std::string::npos) {
      authority = userinfo.substr(0, colon) + ":***" + authority.substr(at);
    }
  }
  // password=... among the query parameters
  size_t q = tail.find('?');
  if (q != std::string::npos) {
    size_t pos = q + 1;
    while (pos < tail.size()) {
      size_t amp = tail.find('&', pos);
      size_t end = amp == std::string::npos ? tail.size() : amp;
      if (tail.compare(pos, 9, "password=") == 0) {
        tail.replace(pos + 9, end - pos - 9, "***");
        end = pos + 12;
      }
      pos = end + 1;
    }
  }
  return out + authority + tail;
}

}  // namespace

std::string RedactConninfo(const std::string& conninfo) {
  if (conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://")) {
    return RedactUri(conninfo);
  }
  // key = value pairs; values may be 'quoted' with \' and \\ escapes.
  std::string out;
  size_t i = 0, n = conninfo.size();
  while (i < n) {
    while (i < n && isspace(static_cast<unsigned char>(conninfo[i]))) out += conninfo[i++];
    size_t key_start = i;
    while (i < n && conninfo[i] != '=' && !isspace(static_cast<unsigned char>(conninfo[i]))) ++i;
    std::string key = conninfo.substr(key_start, i - key_start);
    out += key;
    while (i < n && isspace(static_cast<unsigned char>(conninfo[i]))) out += conninfo[i++];
    if (i >= n || conninfo[i] != '=') continue;
    out += conninfo[i++];
    while (i < n && isspace(static_cast<unsigned char>(conninfo[i]))) out += conninfo[i++];
    size_t value_start = i;
    if (i < n && conninfo[i] == '\'') {
      ++i;
      while (i < n && conninfo[i] != '\'') i += (conninfo[i] == '\\' && i + 1 < n) ? 2 : 1;
      if (i < n) ++i;
    } else {
      while (i < n && !isspace(static_cast<unsigned char>(conninfo[i]))) {
        i += (conninfo[i] == '\\' && i + 1 < n) ? 2 : 1;
      }
    }
    out += key == "password" ? "***" : conninfo.substr(value_start, i - value_start);
  }
  return out;
}

Result<std::string> Show(Connection& conn, const std::string& name) {
  ASSIGN_OR_RETURN(Rows rows, conn.Query("SHOW " + name));
  if (rows.rows.empty() || rows.rows[0].empty() || !rows.rows[0][0])
    return Internal("SHOW " + name + " returned nothing");
  return *rows.rows[0][0];
}

Result<uint64_t> ShowBytes(Connection& conn, const std::string& name) {
  ASSIGN_OR_RETURN(std::string text, Show(conn, name));
  uint64_t n = 0;
  size_t i = 0;
  while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) n = n * 10 + (text[i++] - '0');
  const std::string unit = text.substr(i);
  if (i == 0 || !(unit.empty() || unit == "kB" || unit == "MB" || unit == "GB"))
    return FailedPrecondition("server setting '" + name + "' is '" + text + "', not a size");
  if (unit == "kB") return n << 10;
  if (unit == "MB") return n << 20;
  if (unit == "GB") return n << 30;
  return n;
}

}  // namespace reprise::pg
