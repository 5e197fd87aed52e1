#include "redis/client.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace reprise::redis {

namespace {

redisContext* Ctx(void* p) { return static_cast<redisContext*>(p); }

timeval ToTimeval(std::chrono::milliseconds timeout) {
  // hiredis treats a zero timeout as "none"; a health check always wants one.
  long long ms = timeout.count() > 0 ? timeout.count() : 1;
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

bool ParseInt(std::string_view s, int min, int max, int* out) {
  if (s.empty()) return false;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return false;
  *out = v;
  return true;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  *out = v;
  return true;
}

std::string HostPort(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// A server error reply as a Status. The text is the server's; it never holds an argument.
Status ErrorReply(const std::string& what, const std::string& where, const std::string& text) {
  std::string message = what + " on redis '" + where + "': " + text;
  auto starts = [&](const char* prefix) { return text.rfind(prefix, 0) == 0; };
  if (starts("NOAUTH") || starts("WRONGPASS")) {
    return Unauthenticated(message + ": HINT: check the redis password secret");
  }
  if (starts("NOPERM")) return PermissionDenied(message);
  // Transient server states: the same call may succeed a moment later.
  if (starts("LOADING") || starts("BUSY ") || starts("MASTERDOWN") || starts("TRYAGAIN")) {
    return Unavailable(message);
  }
  return FailedPrecondition(message);
}

// Converts a reply; an error anywhere inside it (EXEC) becomes the Status.
Result<Reply> Convert(const redisReply* r, const std::string& what, const std::string& where) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_ERROR:
      return ErrorReply(what, where, std::string(r->str, r->len));
    case REDIS_REPLY_NIL:
      out.type = Reply::Type::kNil;
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        ASSIGN_OR_RETURN(Reply e, Convert(r->element[i], what, where));
        out.elements.push_back(std::move(e));
      }
      break;
    default:
      return Internal(what + " on redis '" + where + "': unknown reply type " +
                      std::to_string(r->type));
  }
  return out;
}

// Why the connection failed, from the context's error (hiredis reports a read timeout as an
// I/O error with EAGAIN).
std::string ContextError(redisContext* c, int saved_errno) {
  if (c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
    return "no answer in time (timed out)";
  }
  if (c->err == REDIS_ERR_EOF) return "the server closed the connection";
  return c->errstr[0] ? std::string(c->errstr) : "unknown error";
}

}  // namespace

Result<Address> ParseAddress(const std::string& url) {
  std::string_view s = url;
  Address a;
  bool is_url = false;
  if (s.rfind("rediss://", 0) == 0) {
    return InvalidArgument("redis address '" + url +
                           "': TLS (rediss://) is not supported: HINT: use redis:// on a "
                           "trusted network or a TLS tunnel");
  }
  if (s.rfind("redis://", 0) == 0) {
    s.remove_prefix(8);
    is_url = true;
  } else if (s.find("://") != std::string_view::npos) {
    return InvalidArgument("redis address '" + url + "': expected redis://host[:port][/db]");
  }
  std::string_view path;
  if (size_t slash = s.find('/'); slash != std::string_view::npos) {
    if (!is_url) {
      return InvalidArgument("redis address '" + url +
                             "': a database number needs the URL form redis://host:port/db");
    }
    path = s.substr(slash + 1);
    s = s.substr(0, slash);
  }
  if (s.find('@') != std::string_view::npos) {
    // Never repeat the address here: it holds a password.
    return InvalidArgument(
        "redis address: a user or password in the URL is not accepted: HINT: put the password "
        "in a secret and name it in the plan (password:)");
  }
  if (s.find('?') != std::string_view::npos || path.find('?') != std::string_view::npos) {
    return InvalidArgument("redis address '" + url + "': query parameters are not supported");
  }
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgument("redis address '" + url + "': unclosed '[' in the host");
    }
    a.host = std::string(s.substr(1, close - 1));
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return InvalidArgument("redis address '" + url + "': expected ':port' after ']'");
      }
      port = rest.substr(1);
      if (port.empty()) return InvalidArgument("redis address '" + url + "': empty port");
    }
  } else {
    size_t colon = s.find(':');
    if (colon != std::string_view::npos && s.find(':', colon + 1) != std::string_view::npos) {
      return InvalidArgument("redis address '" + url +
                             "': write an IPv6 address in brackets: [::1]:6379");
    }
    a.host = std::string(s.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = s.substr(colon + 1);
      if (port.empty()) return InvalidArgument("redis address '" + url + "': empty port");
    }
  }
  if (a.host.empty()) return InvalidArgument("redis address '" + url + "': no host");
  if (!port.empty() && !ParseInt(port, 1, 65535, &a.port)) {
    return InvalidArgument("redis address '" + url + "': port '" + std::string(port) +
                           "' is not a number from 1 to 65535");
  }
  if (!path.empty() && !ParseInt(path, 0, 1 << 20, &a.db)) {
    return InvalidArgument("redis address '" + url + "': database '" + std::string(path) +
                           "' is not a number");
  }
  return a;
}

Result<std::unique_ptr<Client>> Client::Connect(const Address& address,
                                                const std::string& password,
                                                std::chrono::milliseconds timeout) {
  std::unique_ptr<Client> client(new Client());
  client->address_ = address;
  std::string where = client->Describe();
  timeval tv = ToTimeval(timeout);
  errno = 0;
  redisContext* c = redisConnectWithTimeout(address.host.c_str(), address.port, tv);
  int saved_errno = errno;
  if (c == nullptr) return Unavailable("cannot connect to redis '" + where + "': out of memory");
  client->ctx_ = c;
  if (c->err) {
    return Unavailable("cannot connect to redis '" + where + "': " + ContextError(c, saved_errno));
  }
  if (redisSetTimeout(c, tv) != REDIS_OK) {
    return Unavailable("cannot set a timeout on redis '" + where + "': " + c->errstr);
  }
  if (!password.empty()) {
    auto r = client->Command({"AUTH", password});
    if (!r.ok()) return r.status();
  }
  if (address.db != 0) {
    auto r = client->Command({"SELECT", std::to_string(address.db)});
    if (!r.ok()) return r.status();
  }
  return client;
}

Client::~Client() {
  if (ctx_) redisFree(Ctx(ctx_));
}

std::string Client::Describe() const { return HostPort(address_.host, address_.port); }

Result<Reply> Client::Command(const std::vector<std::string>& argv) {
  std::string where = Describe();
  if (argv.empty()) return InvalidArgument("redis command without a name");
  // Only the command's name goes into messages: arguments may be passwords or data.
  std::string what = "'" + argv[0] + "'";
  redisContext* c = Ctx(ctx_);
  if (c->err) {
    return Unavailable(what + " on redis '" + where + "': the connection failed earlier: " +
                       c->errstr);
  }
  std::vector<const char*> args;
  std::vector<size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  // hiredis write()s to the socket: a server that went away must not kill the process with
  // SIGPIPE. Blocked on this thread for the call; one the call raised is swallowed.
  sigset_t pipe_set, old_set, pending_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  sigpending(&pending_set);
  bool was_pending = sigismember(&pending_set, SIGPIPE) == 1;
  errno = 0;
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
  int saved_errno = errno;
  if (!was_pending) {
    sigpending(&pending_set);
    if (sigismember(&pending_set, SIGPIPE) == 1) {
      timespec zero{};
      sigtimedwait(&pipe_set, nullptr, &zero);
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  if (reply == nullptr) {
    return Unavailable(what + " on redis '" + where + "': " + ContextError(c, saved_errno));
  }
  Result<Reply> out = Convert(reply, what, where);
  freeReplyObject(reply);
  return out;
}

Result<std::map<std::string, std::string>> Info(Client& client, const std::string& section) {
  ASSIGN_OR_RETURN(Reply r, client.Command({"INFO", section}));
  if (r.type != Reply::Type::kString && r.type != Reply::Type::kStatus) {
    return FailedPrecondition("'INFO' on redis '" + client.Describe() +
                              "': expected a text reply");
  }
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < r.str.size()) {
    size_t end = r.str.find('\n', pos);
    if (end == std::string::npos) end = r.str.size();
    std::string line = r.str.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    out[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return out;
}

Result<ReplicationState> GetReplicationState(Client& client) {
  ASSIGN_OR_RETURN(auto info, Info(client, "replication"));
  std::string where = client.Describe();
  auto get = [&](const std::string& key) -> const std::string* {
    auto it = info.find(key);
    return it == info.end() ? nullptr : &it->second;
  };
  auto bad = [&](const std::string& key) {
    return FailedPrecondition("'INFO replication' on redis '" + where + "': field '" + key +
                              "' is missing or malformed");
  };
  const std::string* role = get("role");
  if (role == nullptr || (*role != "master" && *role != "slave")) return bad("role");
  ReplicationState st;
  st.primary = *role == "master";
  if (st.primary) {
    const std::string* off = get("master_repl_offset");
    if (off == nullptr || !ParseU64(*off, &st.offset)) return bad("master_repl_offset");
    // slave0:ip=127.0.0.1,port=6380,state=online,offset=1234,lag=0
    for (int i = 0;; ++i) {
      const std::string* line = get("slave" + std::to_string(i));
      if (line == nullptr) break;
      std::string_view v = *line;
      uint64_t offset = 0;
      bool found = false;
      while (!v.empty()) {
        size_t comma = v.find(',');
        std::string_view field = v.substr(0, comma);
        if (field.rfind("offset=", 0) == 0) found = ParseU64(field.substr(7), &offset);
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
      if (!found) return bad("slave" + std::to_string(i));
      st.replica_offsets.push_back(offset);
    }
  } else {
    const std::string* off = get("slave_repl_offset");
    if (off == nullptr || !ParseU64(*off, &st.offset)) return bad("slave_repl_offset");
    const std::string* link = get("master_link_status");
    st.link_up = link != nullptr && *link == "up";
    if (const std::string* host = get("master_host")) st.primary_host = *host;
    if (const std::string* port = get("master_port")) {
      if (!ParseInt(*port, 0, 65535, &st.primary_port)) return bad("master_port");
    }
  }
  return st;
}

}  // namespace reprise::redis
