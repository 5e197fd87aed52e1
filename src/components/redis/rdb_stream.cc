#include "components/redis/rdb_stream.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

namespace reprise::redis {

namespace {

// ---- CRC64 ----------------------------------------------------------------------------------

constexpr uint64_t kJonesPoly = 0xad93d23594c935a9ULL;

constexpr uint64_t Reverse64(uint64_t v) {
  uint64_t r = 0;
  for (int i = 0; i < 64; ++i) {
    r = (r << 1) | (v & 1);
    v >>= 1;
  }
  return r;
}

using Crc64Tables = std::array<std::array<uint64_t, 256>, 8>;

// Slice-by-8 tables for the reflected polynomial: table[0] is the classic byte table,
// table[k][i] is the CRC of byte i followed by k zero bytes.
constexpr Crc64Tables MakeCrc64Tables() {
  Crc64Tables t{};
  const uint64_t poly = Reverse64(kJonesPoly);
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t c = i;
    for (int b = 0; b < 8; ++b) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
    t[0][i] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (int i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}

constexpr Crc64Tables kCrc64Tables = MakeCrc64Tables();

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// ---- the replication connection -------------------------------------------------------------

constexpr size_t kMarkSize = 40;  // CONFIG_RUN_ID_SIZE: the diskless end-of-payload mark

class Connection {
 public:
  Connection(std::string where, std::chrono::milliseconds stall)
      : where_(std::move(where)), stall_(stall) {}
  ~Connection() {
    if (fd_ >= 0) close(fd_);
  }

  Status Open(const Address& a, std::chrono::milliseconds timeout) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(a.port);
    int rc = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
      return Unavailable(
          fmt::format("cannot resolve redis '{}': {}", where_, gai_strerror(rc)));
    }
    Status last = Unavailable(fmt::format("cannot connect to redis '{}'", where_));
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                      ai->ai_protocol);
      if (fd < 0) continue;
      if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        last = Unavailable(
            fmt::format("cannot connect to redis '{}': {}", where_, std::strerror(errno)));
        close(fd);
        continue;
      }
      pollfd p{fd, POLLOUT, 0};
      int n = poll(&p, 1, static_cast<int>(timeout.count()));
      int err = 0;
      socklen_t len = sizeof(err);
      if (n <= 0) {
        err = n == 0 ? ETIMEDOUT : errno;
      } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
      if (err != 0) {
        last = Unavailable(
            fmt::format("cannot connect to redis '{}': {}", where_, std::strerror(err)));
        close(fd);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      fd_ = fd;
      break;
    }
    freeaddrinfo(res);
    return fd_ >= 0 ? Status::Ok() : last;
  }

  Status Send(const std::vector<std::string>& argv) {
    std::string out = fmt::format("*{}\r\n", argv.size());
    for (const auto& a : argv) out += fmt::format("${}\r\n{}\r\n", a.size(), a);
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = send(fd_, out.data() + done, out.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        RETURN_IF_ERROR(Wait(POLLOUT));
        continue;
      }
      return Unavailable(fmt::format("sending to redis '{}': {}", where_,
                                     n < 0 ? std::strerror(errno) : "connection closed"));
    }
    return Status::Ok();
  }

  // One line without its "\r\n". With `skip_newlines`, bare "\n" keepalives before it are
  // dropped (the master sends them while it prepares the payload).
  Result<std::string> ReadLine(bool skip_newlines) {
    for (;;) {
      if (skip_newlines) {
        while (pos_ < buf_.size() && buf_[pos_] == '\n') ++pos_;
      }
      for (size_t i = pos_; i < buf_.size(); ++i) {
        if (buf_[i] != '\n') continue;
        std::string line(reinterpret_cast<const char*>(buf_.data()) + pos_, i - pos_);
        pos_ = i + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (buf_.size() - pos_ > 64 * 1024) {
        return FailedPrecondition(
            fmt::format("redis '{}' sent an over-long reply line", where_));
      }
      RETURN_IF_ERROR(Fill());
    }
  }

  // Bytes already buffered, then up to `max` from the socket. Empty only at an error.
  Result<ByteView> ReadSome(size_t max) {
    if (pos_ == buf_.size()) RETURN_IF_ERROR(Fill());
    size_t n = std::min(max, buf_.size() - pos_);
    ByteView v(buf_.data() + pos_, n);
    pos_ += n;
    return v;
  }

 private:
  Status Wait(short events) {
    pollfd p{fd_, events, 0};
    for (;;) {
      int n = poll(&p, 1, static_cast<int>(stall_.count()));
      if (n > 0) return Status::Ok();
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) {
        return Unavailable(fmt::format(
            "redis '{}' sent nothing for {} ms during the RDB transfer: HINT: raise the "
            "stall timeout, or check the server's log (a fork that is slow or failing)",
            where_, stall_.count()));
      }
      return Unavailable(fmt::format("waiting for redis '{}': {}", where_, std::strerror(errno)));
    }
  }

  // Replaces the (consumed) buffer with the next bytes from the socket.
  Status Fill() {
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    size_t have = buf_.size();
    buf_.resize(have + kReadSize);
    for (;;) {
      ssize_t n = recv(fd_, buf_.data() + have, kReadSize, 0);
      if (n > 0) {
        buf_.resize(have + static_cast<size_t>(n));
        return Status::Ok();
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        Status st = Wait(POLLIN);
        if (!st.ok()) {
          buf_.resize(have);
          return st;
        }
        continue;
      }
      buf_.resize(have);
      return Unavailable(fmt::format(
          "redis '{}' closed the connection during the RDB transfer{}", where_,
          n < 0 ? std::string(": ") + std::strerror(errno) : std::string()));
    }
  }

  static constexpr size_t kReadSize = 256 * 1024;
  std::string where_;
  std::chrono::milliseconds stall_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
};

// An error reply ("-ERR ...") as a Status; the server's text never holds our arguments.
Status ErrorLine(const std::string& what, const std::string& where, const std::string& line) {
  std::string text = line.substr(1);
  std::string message = fmt::format("'{}' on redis '{}': {}", what, where, text);
  auto starts = [&](const char* p) { return text.rfind(p, 0) == 0; };
  if (starts("NOAUTH") || starts("WRONGPASS") || starts("ERR invalid password") ||
      starts("ERR AUTH")) {
    return Unauthenticated(message + ": HINT: check the redis password secret");
  }
  if (starts("NOPERM")) {
    return PermissionDenied(message +
                            ": HINT: the user needs the SYNC and REPLCONF commands");
  }
  if (starts("LOADING") || starts("BUSY") || starts("MASTERDOWN") || starts("TRYAGAIN")) {
    return Unavailable(message);
  }
  return FailedPrecondition(message);
}

// Sends one command and reads a one-line reply (+OK / -ERR).
Status Simple(Connection& c, const std::string& where, const std::vector<std::string>& argv,
              const std::string& name) {
  RETURN_IF_ERROR(c.Send(argv));
  ASSIGN_OR_RETURN(std::string line, c.ReadLine(false));
  if (!line.empty() && line[0] == '-') return ErrorLine(name, where, line);
  if (line.empty() || line[0] != '+') {
    return FailedPrecondition(
        fmt::format("unexpected reply to '{}' from redis '{}'", name, where));
  }
  return Status::Ok();
}

}  // namespace

uint64_t Crc64(uint64_t crc, ByteView data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  const auto& t = kCrc64Tables;
  while (n >= 8) {
    uint64_t v = crc ^ LoadLe64(p);
    crc = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^
          t[4][(v >> 24) & 0xff] ^ t[3][(v >> 32) & 0xff] ^ t[2][(v >> 40) & 0xff] ^
          t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

// ---- RdbVerifier ----------------------------------------------------------------------------

Status RdbVerifier::Update(ByteView data) {
  size_ += data.size();
  for (size_t i = 0; header_.size() < 9 && i < data.size(); ++i) {
    header_ += static_cast<char>(data[i]);
    if (header_.size() == 9) {
      bool digits = true;
      for (size_t k = 5; k < 9; ++k) digits &= header_[k] >= '0' && header_[k] <= '9';
      if (header_.compare(0, 5, "REDIS") != 0 || !digits) {
        return Corruption("not an RDB: it does not start with 'REDIS' and a 4-digit version");
      }
      version_ = std::stoi(header_.substr(5));
      if (version_ < 1) return Corruption("not an RDB: version 0");
    }
  }
  // Everything but the last 8 bytes seen so far is certainly before the trailer.
  if (data.size() >= 8) {
    RETURN_IF_ERROR(Take(ByteView(tail_, tail_len_)));
    RETURN_IF_ERROR(Take(data.first(data.size() - 8)));
    std::memcpy(tail_, data.data() + data.size() - 8, 8);
    tail_len_ = 8;
  } else {
    uint8_t joined[16];
    std::memcpy(joined, tail_, tail_len_);
    std::memcpy(joined + tail_len_, data.data(), data.size());
    size_t len = tail_len_ + data.size();
    size_t keep = std::min<size_t>(len, 8);
    RETURN_IF_ERROR(Take(ByteView(joined, len - keep)));
    std::memcpy(tail_, joined + len - keep, keep);
    tail_len_ = keep;
  }
  return Status::Ok();
}

Status RdbVerifier::Take(ByteView data) {
  if (data.empty()) return Status::Ok();
  crc_ = Crc64(crc_, data);
  last_ = data.back();
  return Status::Ok();
}

Status RdbVerifier::Finish() {
  if (header_.size() < 9) {
    return Corruption(fmt::format("RDB too short ({} bytes): no complete header", size_));
  }
  if (version_ < 5) {
    // No checksum before RDB 5: the stream simply ends with the EOF opcode.
    if (tail_len_ == 0 || tail_[tail_len_ - 1] != 0xff) {
      return Corruption(fmt::format("RDB (version {}, {} bytes) does not end with the EOF "
                                    "opcode: truncated",
                                    version_, size_));
    }
    return Status::Ok();
  }
  if (size_ < 9 + 1 + 8 || last_ != 0xff) {
    return Corruption(fmt::format(
        "RDB (version {}, {} bytes) does not end with the EOF opcode and a checksum: truncated",
        version_, size_));
  }
  uint64_t stored = LoadLe64(tail_);
  if (stored == 0) {  // written with rdbchecksum no
    checksummed_ = false;
    return Status::Ok();
  }
  if (stored != crc_) {
    return Corruption(fmt::format(
        "RDB (version {}, {} bytes) fails its CRC64 check: stored {:016x}, computed {:016x}",
        version_, size_, stored, crc_));
  }
  checksummed_ = true;
  return Status::Ok();
}

// ---- StreamRdb ------------------------------------------------------------------------------

Result<RdbStreamResult> StreamRdb(const RdbStreamOptions& options,
                                  const std::function<Status(ByteView)>& sink) {
  const Address& a = options.address;
  std::string where = (a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host) +
                      ":" + std::to_string(a.port);
  Connection c(where, options.stall_timeout);
  RETURN_IF_ERROR(c.Open(a, options.connect_timeout));
  if (!options.password.empty()) {
    RETURN_IF_ERROR(Simple(c, where, {"AUTH", options.password}, "AUTH"));
  }
  RdbStreamResult result;
  // Like redis-cli: "capa eof" lets a diskless master stream to us; its refusal by a very old
  // server only means a disk-based transfer, so errors other than authentication are ignored.
  Status capa = Simple(c, where, {"REPLCONF", "capa", "eof"}, "REPLCONF capa");
  if (capa.code() == Code::kUnauthenticated || capa.code() == Code::kPermissionDenied ||
      capa.code() == Code::kUnavailable) {
    return capa;
  }
  if (options.rdb_only) {
    // Redis >= 7.0: the master sends the RDB and no command stream, and keeps no
    // replication backlog on our behalf. Older servers answer an error: go on without.
    Status st = Simple(c, where, {"REPLCONF", "rdb-only", "1"}, "REPLCONF rdb-only");
    if (st.code() == Code::kUnavailable) return st;
    result.rdb_only = st.ok();
  }
  // SYNC, as redis-cli --rdb sends: the master treats us as a pre-PSYNC replica, answers with
  // the payload directly (no +FULLRESYNC line to parse) and never tries to continue us
  // partially. PSYNC ? -1 would also tell the exact replication offset of the RDB, but the
  // component records master_repl_offset from INFO around the transfer instead, which is
  // enough for a recovery point's position and keeps us on the path redis-cli is tested on.
  RETURN_IF_ERROR(c.Send({"SYNC"}));
  ASSIGN_OR_RETURN(std::string header, c.ReadLine(true));
  if (!header.empty() && header[0] == '-') return ErrorLine("SYNC", where, header);
  if (header.empty() || header[0] != '$') {
    return FailedPrecondition(
        fmt::format("unexpected reply to 'SYNC' from redis '{}': it does not start a payload",
                    where));
  }
  std::string mark;
  uint64_t length = 0;
  if (header.compare(1, 4, "EOF:") == 0) {
    mark = header.substr(5);
    if (mark.size() != kMarkSize) {
      return FailedPrecondition(
          fmt::format("redis '{}' sent a diskless payload header with a bad end mark", where));
    }
    result.diskless = true;
  } else {
    char* end = nullptr;
    errno = 0;
    length = std::strtoull(header.c_str() + 1, &end, 10);
    if (errno != 0 || end == header.c_str() + 1 || *end != '\0') {
      return FailedPrecondition(
          fmt::format("redis '{}' sent a bad payload length in reply to 'SYNC'", where));
    }
  }

  RdbVerifier verifier;
  uint64_t offset = 0;
  std::vector<uint8_t> scratch;
  auto deliver = [&](ByteView data) -> Status {
    if (data.empty()) return Status::Ok();
    ByteView out = data;
    if (options.tamper) {
      scratch.assign(data.begin(), data.end());
      options.tamper(offset, std::span<uint8_t>(scratch));
      out = ByteView(scratch);
    }
    offset += out.size();
    RETURN_IF_ERROR(verifier.Update(out).WithContext(fmt::format("RDB from redis '{}'", where)));
    return sink(out);
  };

  if (!result.diskless) {
    uint64_t left = length;
    while (left > 0) {
      ASSIGN_OR_RETURN(ByteView got, c.ReadSome(std::min<uint64_t>(left, 1 << 20)));
      left -= got.size();
      RETURN_IF_ERROR(deliver(got));
    }
  } else {
    // The payload ends with the 40-byte mark; nothing follows it until we acknowledge (which
    // we never do), so the mark is always the tail of what has been read so far. The last 40
    // bytes are held back until we know whether they are the mark.
    std::vector<uint8_t> held;
    for (;;) {
      ASSIGN_OR_RETURN(ByteView got, c.ReadSome(1 << 20));
      held.insert(held.end(), got.begin(), got.end());
      bool done = held.size() >= kMarkSize &&
                  std::memcmp(held.data() + held.size() - kMarkSize, mark.data(), kMarkSize) == 0;
      if (held.size() > kMarkSize) {
        size_t n = held.size() - kMarkSize;
        RETURN_IF_ERROR(deliver(ByteView(held.data(), n)));
        held.erase(held.begin(), held.begin() + static_cast<ptrdiff_t>(n));
      }
      if (done) break;
    }
  }
  RETURN_IF_ERROR(verifier.Finish().WithContext(fmt::format("RDB from redis '{}'", where)));
  result.rdb_version = verifier.version();
  result.bytes = verifier.size();
  result.checksummed = verifier.checksummed();
  return result;
}

}  // namespace reprise::redis
