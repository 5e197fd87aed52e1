#include "health/health.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

#include "common/duration.h"
#include "common/subprocess.h"
#include "pg/connection.h"
#include "redis/client.h"
#include "storage/s3/http.h"

namespace reprise::health {

namespace {

using Clock = std::chrono::steady_clock;
using Kind = HealthCheckSpec::Kind;

long long MillisSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::string Ms(long long ms) { return std::to_string(ms) + " ms"; }

// A detail is one line: a multi-line server message is joined, overlong text cut.
std::string OneLine(std::string s, size_t max = 300) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  std::string out;
  for (char c : s) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  while (!out.empty() && out.front() == ' ') out.erase(out.begin());
  if (out.size() > max) out = out.substr(0, max - 3) + "...";
  return out;
}

std::string FormatLsn(uint64_t lsn) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIX64 "/%" PRIX64, lsn >> 32, lsn & 0xffffffffu);
  return buf;
}

std::string FormatSeconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

// "host:port" or "[v6]:port".
bool SplitHostPort(const std::string& target, std::string* host, std::string* port) {
  if (!target.empty() && target.front() == '[') {
    size_t close = target.find(']');
    if (close == std::string::npos || close + 1 >= target.size() || target[close + 1] != ':') {
      return false;
    }
    *host = target.substr(1, close - 1);
    *port = target.substr(close + 2);
  } else {
    size_t colon = target.rfind(':');
    if (colon == std::string::npos || target.find(':') != colon) return false;
    *host = target.substr(0, colon);
    *port = target.substr(colon + 1);
  }
  int p = 0;
  auto [end, ec] = std::from_chars(port->data(), port->data() + port->size(), p);
  return !host->empty() && ec == std::errc() && end == port->data() + port->size() && p > 0 &&
         p < 65536;
}

// ---- http ----

void CheckHttp(const HealthCheckSpec& spec, HealthResult* r) {
  s3::HttpOptions options;
  options.total_timeout_ms = std::max<long>(1, static_cast<long>(spec.timeout.count()));
  options.connect_timeout_seconds =
      std::max<long>(1, static_cast<long>((spec.timeout.count() + 999) / 1000));
  options.ca_file = spec.ca_file;
  options.max_idle_handles = 1;
  s3::HttpClient client(options);
  s3::HttpRequest request;
  request.method = "GET";
  request.url = spec.target;
  request.headers.emplace_back("User-Agent", "reprise-health");
  Clock::time_point start = Clock::now();
  auto response = client.Send(request);
  long long ms = MillisSince(start);
  if (!response.ok()) {
    // The client's message repeats method and URL ("s3 request GET '...' failed: ..."): the
    // check's name already says which URL, so only the reason stays.
    std::string message = response.status().message();
    if (size_t at = message.find("failed: "); at != std::string::npos) {
      message = message.substr(at + 8);
    }
    bool timed_out = message.find("imeout") != std::string::npos ||
                     message.find("timed out") != std::string::npos;
    r->detail = timed_out ? "timed out after " + Ms(spec.timeout.count()) + ": " + message
                          : message;
    return;
  }
  r->facts["status"] = response->status;
  r->facts["ms"] = ms;
  if (response->status != spec.expect_status) {
    r->detail = "got " + std::to_string(response->status) + ", expected " +
                std::to_string(spec.expect_status);
    return;
  }
  if (!spec.expect_body.empty()) {
    std::string_view body = AsString(response->body);
    if (body.find(spec.expect_body) == std::string_view::npos) {
      r->detail = "body does not contain '" + OneLine(spec.expect_body, 80) + "'";
      return;
    }
  }
  r->ok = true;
  r->detail = std::to_string(response->status) + " in " + Ms(ms);
}

// ---- tcp ----

// One address: non-blocking connect, then poll until connected or the deadline.
// Returns 0 when connected, else an errno (ETIMEDOUT at the deadline).
int ConnectOne(const addrinfo* ai, Clock::time_point deadline) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return errno;
  int err = 0;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      err = ETIMEDOUT;
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLOUT, 0};
        int n = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          err = errno;
          break;
        }
        if (n == 0) continue;  // the loop re-checks the deadline
        int so_error = 0;
        socklen_t len = sizeof so_error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
        err = so_error;
        break;
      }
    }
  }
  close(fd);
  return err;
}

void CheckTcp(const HealthCheckSpec& spec, HealthResult* r) {
  std::string host, port;
  if (!SplitHostPort(spec.target, &host, &port)) {
    r->detail = "target '" + spec.target + "' is not host:port";
    return;
  }
  Clock::time_point start = Clock::now();
  Clock::time_point deadline = start + spec.timeout;
  // getaddrinfo has no timeout of its own; a name that hangs in DNS delays the check.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    r->detail = "cannot resolve '" + host + "': " + gai_strerror(rc);
    return;
  }
  int err = ENOENT;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    err = ConnectOne(ai, deadline);
    if (err == 0 || Clock::now() >= deadline) break;
  }
  freeaddrinfo(list);
  long long ms = MillisSince(start);
  if (err == 0) {
    r->ok = true;
    r->detail = "connected in " + Ms(ms);
  } else if (err == ETIMEDOUT) {
    r->detail = "no connection within " + Ms(spec.timeout.count()) + " (timed out)";
  } else if (err == ECONNREFUSED) {
    r->detail = "connection refused";
  } else {
    r->detail = std::string("cannot connect: ") + std::strerror(err);
  }
}

// ---- postgres ----

// Adds connect_timeout to a keyword/value conninfo or a URI (later keywords win in both).
std::string WithConnectTimeout(const std::string& conninfo, std::chrono::milliseconds timeout) {
  long long seconds = std::max<long long>(1, (timeout.count() + 999) / 1000);
  std::string kv = "connect_timeout=" + std::to_string(seconds);
  if (conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://")) {
    return conninfo + (conninfo.find('?') == std::string::npos ? "?" : "&") + kv;
  }
  return conninfo + (conninfo.empty() ? "" : " ") + kv;
}

bool ParseU64(const std::optional<std::string>& v, uint64_t* out) {
  if (!v) return false;
  // numeric values of pg_wal_lsn_diff may print as "1234" (cast to numeric keeps no scale).
  std::string s = *v;
  if (size_t dot = s.find('.'); dot != std::string::npos) s.resize(dot);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

void CheckPostgres(const HealthCheckSpec& spec, const std::string& password, HealthResult* r) {
  auto state = ProbePostgres(spec.target, password, spec.timeout);
  if (!state.ok()) {
    r->detail = state.status().message();
    return;
  }
  const PgState& s = *state;
  bool replica = s.in_recovery;
  r->facts["role"] = replica ? "replica" : "primary";
  r->facts["lsn"] = s.lsn;
  r->facts["receive_lsn"] = s.receive_lsn;
  r->facts["replay_delay_s"] =
      s.replay_delay_seconds ? nlohmann::json(*s.replay_delay_seconds) : nlohmann::json();
  r->facts["read_only"] = s.read_only;
  r->facts["timeline"] = s.timeline;
  if (spec.expect_primary) {
    if (*spec.expect_primary && replica) {
      r->detail = "replica (in recovery), expected a primary";
      return;
    }
    if (*spec.expect_primary && s.read_only) {
      r->detail = "primary is read-only (default_transaction_read_only is on: fenced)";
      return;
    }
    if (!*spec.expect_primary && !replica) {
      r->detail = "primary (not in recovery), expected a replica";
      return;
    }
  }
  if (!replica) {
    r->ok = true;
    r->detail = "primary, lsn " + FormatLsn(s.lsn) + ", timeline " + std::to_string(s.timeline) +
                (s.read_only ? ", read-only" : "");
    return;
  }
  // The lag a replica can measure alone is WAL it received but has not replayed yet. How far
  // it is behind the primary needs the primary's position; failover reads both and compares
  // them itself (the plan's "when the primary is known").
  std::optional<uint64_t> lag;
  if (s.receive_lsn != 0) lag = s.receive_lsn > s.lsn ? s.receive_lsn - s.lsn : 0;
  if (lag) r->facts["lag_bytes"] = *lag;
  if (spec.max_lag_bytes && lag && *lag > *spec.max_lag_bytes) {
    r->detail = "replica, lag " + FormatSize(*lag) + " > " + FormatSize(*spec.max_lag_bytes) +
                " (received, not replayed)";
    return;
  }
  // Replay delay only means something while the primary writes: on an idle primary the last
  // replayed transaction simply grows old.
  if (spec.max_lag_seconds && s.replay_delay_seconds &&
      *s.replay_delay_seconds > static_cast<double>(spec.max_lag_seconds->count())) {
    r->detail = "replica, replay delay " + FormatSeconds(*s.replay_delay_seconds) + " > " +
                FormatDuration(*spec.max_lag_seconds);
    return;
  }
  r->ok = true;
  r->detail = "replica, replayed " + FormatLsn(s.lsn) + (lag ? ", lag " + FormatSize(*lag) : "") +
              (s.replay_delay_seconds
                   ? ", last replayed transaction " + FormatSeconds(*s.replay_delay_seconds) +
                         " ago"
                   : "");
}

// ---- redis ----

void CheckRedis(const HealthCheckSpec& spec, const std::string& password, HealthResult* r) {
  auto address = redis::ParseAddress(spec.target);
  if (!address.ok()) {
    r->detail = address.status().message();
    return;
  }
  auto client = redis::Client::Connect(*address, password, spec.timeout);
  if (!client.ok()) {
    r->detail = client.status().message();
    return;
  }
  redis::Client& c = **client;
  auto pong = c.Command({"PING"});
  if (!pong.ok()) {
    r->detail = pong.status().message();
    return;
  }
  if (pong->str != "PONG") {
    r->detail = "'PING' on redis '" + c.Describe() + "' answered '" + OneLine(pong->str, 60) +
                "', expected 'PONG'";
    return;
  }
  auto st = redis::GetReplicationState(c);
  if (!st.ok()) {
    r->detail = st.status().message();
    return;
  }
  r->facts["role"] = st->primary ? "primary" : "replica";
  r->facts["offset"] = st->offset;
  if (st->primary) {
    r->facts["replicas"] = st->replica_offsets.size();
  } else {
    r->facts["link_up"] = st->link_up;
    r->facts["primary"] = st->primary_host + ":" + std::to_string(st->primary_port);
  }
  if (spec.expect_primary && *spec.expect_primary != st->primary) {
    r->detail = st->primary ? "primary, expected a replica" : "replica, expected a primary";
    return;
  }
  if (st->primary) {
    r->ok = true;
    r->detail = "primary, offset " + std::to_string(st->offset) + ", " +
                std::to_string(st->replica_offsets.size()) + " replica(s)";
    return;
  }
  if (!st->link_up) {
    r->detail = "replica, link to primary '" + st->primary_host + ":" +
                std::to_string(st->primary_port) + "' is down";
    return;
  }
  // A replica's INFO has both master_repl_offset (what it took in from the primary) and
  // slave_repl_offset (what it applied): their difference is the lag it can see alone. Lag
  // versus the primary itself needs the primary's offset, which failover compares.
  auto info = redis::Info(c, "replication");
  if (!info.ok()) {
    r->detail = info.status().message();
    return;
  }
  uint64_t master_offset = st->offset;
  if (auto it = info->find("master_repl_offset"); it != info->end()) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
    if (ec == std::errc()) master_offset = v;
  }
  uint64_t lag = master_offset > st->offset ? master_offset - st->offset : 0;
  r->facts["lag_bytes"] = lag;
  if (spec.max_lag_bytes && lag > *spec.max_lag_bytes) {
    r->detail = "replica, lag " + FormatSize(lag) + " > " + FormatSize(*spec.max_lag_bytes);
    return;
  }
  r->ok = true;
  r->detail = "replica, offset " + std::to_string(st->offset) + ", lag " + FormatSize(lag);
}

// ---- command ----

std::string LastLine(const std::string& text) {
  size_t end = text.size();
  while (end > 0) {
    size_t begin = text.rfind('\n', end - 1);
    begin = begin == std::string::npos ? 0 : begin + 1;
    std::string line = OneLine(text.substr(begin, end - begin), 200);
    if (!line.empty()) return line;
    if (begin == 0) break;
    end = begin - 1;
  }
  return "";
}

void CheckCommand(const HealthCheckSpec& spec, HealthResult* r) {
  constexpr size_t kKeep = 4096;
  std::string out_tail;
  SubprocessOptions options;
  options.argv = ShellArgv(spec.target);
  options.timeout = spec.timeout;
  options.kill_grace = std::chrono::milliseconds(1000);
  options.stderr_tail_bytes = kKeep;
  options.stdout_sink = [&out_tail](ByteView chunk) {
    out_tail.append(AsString(chunk));
    if (out_tail.size() > 2 * kKeep) out_tail.erase(0, out_tail.size() - kKeep);
    return Status::Ok();
  };
  Clock::time_point start = Clock::now();
  auto result = RunSubprocess(options);
  long long ms = MillisSince(start);
  if (!result.ok()) {
    r->detail = result.status().message();
    return;
  }
  r->facts["exit_code"] = result->exit_code;
  if (result->success()) {
    r->ok = true;
    r->detail = "exit 0 in " + Ms(ms);
    return;
  }
  // Errors usually go to stderr; a script that reports on stdout is heard too.
  std::string line = LastLine(result->stderr_tail);
  if (line.empty()) line = LastLine(out_tail);
  r->detail = result->Describe() + (line.empty() ? "" : ": " + line);
}

// Never lets a secret's value through, even if a server echoed it.
void Scrub(const std::string& secret, std::string* text) {
  if (secret.size() < 4) return;  // replacing a tiny value would mangle the text
  for (size_t at = text->find(secret); at != std::string::npos;
       at = text->find(secret, at + 3)) {
    text->replace(at, secret.size(), "***");
  }
}

// A target fit for a name: no password of a conninfo or of a URL's user:password@.
std::string RedactTarget(const HealthCheckSpec& spec) {
  if (spec.kind == Kind::kPostgres) return pg::RedactConninfo(spec.target);
  if (spec.kind == Kind::kCommand || spec.kind == Kind::kTcp) return spec.target;
  std::string t = spec.target;
  size_t scheme = t.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t end = t.find_first_of("/?#", start);
  size_t at = t.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at == std::string::npos || at < start) return t;
  size_t colon = t.find(':', start);
  if (colon != std::string::npos && colon < at) t.replace(colon + 1, at - colon - 1, "***");
  return t;
}

}  // namespace

nlohmann::json HealthResult::ToJson() const {
  return {{"name", name},       {"kind", std::string(HealthCheckKindName(kind))},
          {"ok", ok},           {"detail", detail},
          {"seconds", seconds}, {"facts", facts}};
}

Result<PgState> ProbePostgres(const std::string& conninfo, const std::string& password,
                              std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(auto conn, pg::Connection::Open(WithConnectTimeout(conninfo, timeout),
                                                   /*replication=*/false, password));
  // A server that accepts connections but hangs on queries fails the probe, not the caller.
  RETURN_IF_ERROR(
      conn->Query("SET statement_timeout = " + std::to_string(std::max<long long>(
                                                  1, timeout.count())))
          .status());
  // pg_current_wal_lsn() fails during recovery, hence the CASE. Integers via
  // pg_wal_lsn_diff(lsn, '0/0'): an LSN's text form is not a number.
  ASSIGN_OR_RETURN(
      pg::Rows rows,
      conn->Query("SELECT pg_is_in_recovery(), "
                  "CASE WHEN pg_is_in_recovery() THEN NULL "
                  "ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::numeric END, "
                  "pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::numeric, "
                  "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::numeric, "
                  "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"));
  if (rows.rows.size() != 1 || rows.rows[0].size() != 5 || !rows.rows[0][0]) {
    return Internal("probe of PostgreSQL '" + conn->Describe() + "': unexpected result shape");
  }
  const auto& row = rows.rows[0];
  PgState s;
  s.in_recovery = *row[0] == "t";
  uint64_t current = 0, replay = 0, receive = 0;
  bool have_current = ParseU64(row[1], &current);
  bool have_replay = ParseU64(row[2], &replay);
  if (ParseU64(row[3], &receive)) s.receive_lsn = receive;
  if (s.in_recovery) {
    s.lsn = have_replay ? replay : 0;
  } else {
    if (!have_current) {
      return Internal("probe of PostgreSQL '" + conn->Describe() + "': no current WAL position");
    }
    s.lsn = current;
  }
  if (row[4]) {
    char* end = nullptr;
    double v = std::strtod(row[4]->c_str(), &end);
    if (end != row[4]->c_str()) s.replay_delay_seconds = std::max(0.0, v);
  }
  ASSIGN_OR_RETURN(std::string ro, pg::Show(*conn, "default_transaction_read_only"));
  s.read_only = ro == "on";
  // The timeline of the last checkpoint (restartpoint on a replica); it moves to the new
  // timeline at the first checkpoint after a promotion. A role that may not read it leaves
  // it 0: a missing fact, not a failed probe.
  auto tl = conn->Query("SELECT timeline_id FROM pg_control_checkpoint()");
  if (tl.ok() && tl->rows.size() == 1 && !tl->rows[0].empty() && tl->rows[0][0]) {
    s.timeline = std::atoi(tl->rows[0][0]->c_str());
  }
  return s;
}

HealthResult RunCheck(const HealthCheckSpec& spec, const SecretLookup& secrets) {
  HealthResult r;
  r.kind = spec.kind;
  r.name = spec.name.empty()
               ? std::string(HealthCheckKindName(spec.kind)) + " " + RedactTarget(spec)
               : spec.name;
  Clock::time_point start = Clock::now();
  std::string password;
  try {
    bool wants_password = spec.kind == Kind::kPostgres || spec.kind == Kind::kRedis;
    if (wants_password && !spec.password.empty()) {
      Result<std::string> value = secrets ? secrets(spec.password)
                                          : Result<std::string>(NotFound(
                                                "secret '" + spec.password + "': no secrets"));
      if (!value.ok()) {
        r.detail = value.status().message();
      } else {
        password = std::move(value).value();
        while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
          password.pop_back();
        }
      }
    }
    if (r.detail.empty()) {
      switch (spec.kind) {
        case Kind::kHttp:
          CheckHttp(spec, &r);
          break;
        case Kind::kTcp:
          CheckTcp(spec, &r);
          break;
        case Kind::kPostgres:
          CheckPostgres(spec, password, &r);
          break;
        case Kind::kRedis:
          CheckRedis(spec, password, &r);
          break;
        case Kind::kCommand:
          CheckCommand(spec, &r);
          break;
      }
    }
  } catch (const std::exception& e) {
    r.ok = false;
    r.detail = std::string("internal error: ") + e.what();
  }
  r.detail = OneLine(r.detail, 500);
  Scrub(password, &r.detail);
  Scrub(password, &r.name);
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

std::vector<HealthResult> RunChecks(const std::vector<HealthCheckSpec>& specs,
                                    const SecretLookup& secrets) {
  std::vector<HealthResult> results(specs.size());
  // The lookup may read files or the environment through state that is not thread-safe:
  // one lookup at a time.
  std::mutex mu;
  SecretLookup locked = [&](const std::string& name) -> Result<std::string> {
    std::lock_guard<std::mutex> lock(mu);
    if (!secrets) return NotFound("secret '" + name + "': no secrets are available");
    return secrets(name);
  };
  std::vector<std::thread> threads;
  threads.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    try {
      threads.emplace_back([&, i] { results[i] = RunCheck(specs[i], locked); });
    } catch (const std::system_error&) {
      results[i] = RunCheck(specs[i], locked);  // no thread to be had: run it here
    }
  }
  for (auto& t : threads) t.join();
  return results;
}

}  // namespace reprise::health
