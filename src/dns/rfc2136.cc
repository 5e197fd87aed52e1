// RFC 2136 dynamic update and direct queries over ldns.
//
// The packet exchange is done here rather than with ldns_send/ldns_resolver: ldns_send drops
// the answer's TSIG error when verification fails and does not check the answer's id. Here
// the query is signed with ldns_pkt_tsig_sign, sent with ldns_tcp_send/ldns_udp_send, and the
// answer is matched by id, its TSIG error read, then its signature verified with
// ldns_pkt_tsig_verify against the query's MAC (RFC 8945 section 5.3).
#include "dns/rfc2136.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <ldns/ldns.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace reprise::dns {

namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

struct RrListFree {
  void operator()(ldns_rr_list* l) const { ldns_rr_list_deep_free(l); }
};
using RrListPtr = std::unique_ptr<ldns_rr_list, RrListFree>;

struct BufferFree {
  void operator()(ldns_buffer* b) const { ldns_buffer_free(b); }
};

// Strings that ldns allocates with malloc.
std::string TakeString(char* s) {
  if (s == nullptr) return "";
  std::string out(s);
  std::free(s);
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Absolute(std::string name) {
  if (name.empty() || name.back() != '.') name += '.';
  return name;
}

// The names ldns' TSIG code knows (tsig.c: ldns_digest_function). ldns 1.8.3 misspells
// hmac-sha384, so it is left out; ParseTsigKey rejects it.
const char* LdnsAlgorithm(const std::string& algorithm) {
  if (algorithm == "hmac-sha256") return "hmac-sha256.";
  if (algorithm == "hmac-sha512") return "hmac-sha512.";
  if (algorithm == "hmac-sha1") return "hmac-sha1.";
  if (algorithm == "hmac-md5") return "hmac-md5.sig-alg.reg.int.";
  return nullptr;
}

std::string RcodeName(int rcode) {
  switch (rcode) {
    case LDNS_RCODE_NOERROR: return "NOERROR";
    case LDNS_RCODE_FORMERR: return "FORMERR";
    case LDNS_RCODE_SERVFAIL: return "SERVFAIL";
    case LDNS_RCODE_NXDOMAIN: return "NXDOMAIN";
    case LDNS_RCODE_NOTIMPL: return "NOTIMP";
    case LDNS_RCODE_REFUSED: return "REFUSED";
    case LDNS_RCODE_YXDOMAIN: return "YXDOMAIN";
    case LDNS_RCODE_YXRRSET: return "YXRRSET";
    case LDNS_RCODE_NXRRSET: return "NXRRSET";
    case LDNS_RCODE_NOTAUTH: return "NOTAUTH";
    case LDNS_RCODE_NOTZONE: return "NOTZONE";
    default: return "RCODE" + std::to_string(rcode);
  }
}

// TSIG error field (RFC 8945 section 4.3, extended RCODEs).
std::string TsigErrorName(int error) {
  switch (error) {
    case 16: return "BADSIG";
    case 17: return "BADKEY";
    case 18: return "BADTIME";
    case 22: return "BADTRUNC";
    default: return "TSIG error " + std::to_string(error);
  }
}

struct Reply {
  PktPtr pkt;
  int rcode = 0;
  int tsig_error = 0;         // from the answer's TSIG record; 0 without one
  bool tsig_present = false;  // the answer carries a TSIG record
  bool tsig_verified = false;  // its MAC verifies with our key (only when a key was used)
};

Result<sockaddr_storage> Resolve(const DnsServer& server, socklen_t* len) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(server.port);
  int rc = getaddrinfo(server.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return Unavailable(fmt::format("cannot resolve dns server '{}': {}", server.ToString(),
                                   gai_strerror(rc)));
  }
  sockaddr_storage ss{};
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return ss;
}

// Sends `query` (given an id here, signed with `key` when given) and reads the matching
// answer. Only a missing or malformed answer is an error; any rcode is the caller's to map.
Result<Reply> Exchange(const DnsServer& server, ldns_pkt* query, const DnsTransport& transport,
                       const TsigKey* key) {
  socklen_t addr_len = 0;
  ASSIGN_OR_RETURN(sockaddr_storage addr, Resolve(server, &addr_len));
  ldns_pkt_set_random_id(query);
  if (key != nullptr) {
    const char* alg = LdnsAlgorithm(key->algorithm);
    if (alg == nullptr) {
      return InvalidArgument(fmt::format("tsig algorithm '{}' of key '{}' is not supported",
                                         key->algorithm, key->name));
    }
    ldns_status st = ldns_pkt_tsig_sign(query, key->name.c_str(), key->secret_base64.c_str(),
                                        300, alg, nullptr);
    if (st != LDNS_STATUS_OK) {
      return InvalidArgument(fmt::format("cannot sign with tsig key '{}': {}", key->name,
                                         ldns_get_errorstr_by_id(st)));
    }
  }
  std::unique_ptr<ldns_buffer, BufferFree> qb(ldns_buffer_new(LDNS_MIN_BUFLEN));
  if (!qb || ldns_pkt2buffer_wire(qb.get(), query) != LDNS_STATUS_OK) {
    return Internal("cannot encode dns packet");
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(transport.timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((transport.timeout.count() % 1000) * 1000);
  uint8_t* wire = nullptr;
  size_t wire_size = 0;
  ldns_status st =
      transport.tcp ? ldns_tcp_send(&wire, qb.get(), &addr, addr_len, tv, &wire_size)
                    : ldns_udp_send(&wire, qb.get(), &addr, addr_len, tv, &wire_size);
  std::unique_ptr<uint8_t, decltype(&std::free)> wire_owner(wire, &std::free);
  if (st != LDNS_STATUS_OK || wire == nullptr) {
    return Unavailable(fmt::format(
        "no answer from dns server '{}' over {} within {} ms (refused, unreachable or timed "
        "out)",
        server.ToString(), transport.tcp ? "tcp" : "udp", transport.timeout.count()));
  }
  ldns_pkt* raw = nullptr;
  st = ldns_wire2pkt(&raw, wire, wire_size);
  if (st != LDNS_STATUS_OK || raw == nullptr) {
    return Unavailable(fmt::format("malformed answer from dns server '{}': {}",
                                   server.ToString(), ldns_get_errorstr_by_id(st)));
  }
  Reply reply;
  reply.pkt.reset(raw);
  if (ldns_pkt_id(raw) != ldns_pkt_id(query) || !ldns_pkt_qr(raw)) {
    return Unavailable(fmt::format("dns server '{}' answered with a packet that does not match "
                                   "the query (id {} for {})",
                                   server.ToString(), ldns_pkt_id(raw), ldns_pkt_id(query)));
  }
  reply.rcode = ldns_pkt_get_rcode(raw);
  if (ldns_rr* t = ldns_pkt_tsig(raw); t != nullptr && ldns_rr_rd_count(t) > 5) {
    reply.tsig_present = true;
    reply.tsig_error = ldns_rdf2native_int16(ldns_rr_rdf(t, 5));
  }
  if (key != nullptr && reply.tsig_present) {
    ldns_rr* answer_tsig = ldns_pkt_tsig(raw);
    const ldns_rdf* query_mac = ldns_rr_rdf(ldns_pkt_tsig(query), 3);
    reply.tsig_verified = ldns_pkt_tsig_verify(raw, wire, wire_size, key->name.c_str(),
                                               key->secret_base64.c_str(), query_mac);
    // On some failures ldns detaches the TSIG record from the packet without freeing it.
    if (ldns_pkt_tsig(raw) == nullptr) ldns_rr_free(answer_tsig);
  }
  return reply;
}

std::string RdataText(const ldns_rr* rr) {
  std::string out;
  for (size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
    if (i > 0) out += ' ';
    out += TakeString(ldns_rdf2str(ldns_rr_rdf(rr, i)));
  }
  return out;
}

Result<ldns_rr_type> TypeByName(const std::string& type) {
  ldns_rr_type t = ldns_get_rr_type_by_name(type.c_str());
  if (t == 0) return InvalidArgument(fmt::format("unknown dns record type '{}'", type));
  return t;
}

// The value as it goes into the zone: addresses checked, names made absolute.
Result<std::string> NormalizeValue(const std::string& type, const std::string& value) {
  std::string t = Lower(type);
  unsigned char buf[16];
  if (t == "a" && inet_pton(AF_INET, value.c_str(), buf) != 1) {
    return InvalidArgument(fmt::format("'{}' is not an IPv4 address (record type A)", value));
  }
  if (t == "aaaa" && inet_pton(AF_INET6, value.c_str(), buf) != 1) {
    return InvalidArgument(fmt::format("'{}' is not an IPv6 address (record type AAAA)", value));
  }
  if (value.empty() || value.find_first_of(" \t\r\n;") != std::string::npos) {
    return InvalidArgument(fmt::format("'{}' is not a valid {} record value", value, type));
  }
  if (t == "cname") return Absolute(value);
  return value;
}

class Rfc2136Provider : public DnsProvider {
 public:
  Rfc2136Provider(DnsSpec spec, std::optional<TsigKey> key, DnsTransport transport)
      : spec_(std::move(spec)), key_(std::move(key)), transport_(transport) {}

  Status Replace(const std::string& value) override {
    ASSIGN_OR_RETURN(DnsServer server, ParseDnsServer(spec_.server));
    ASSIGN_OR_RETURN(ldns_rr_type type, TypeByName(spec_.type));
    ASSIGN_OR_RETURN(std::string v, NormalizeValue(spec_.type, value));
    std::string record = Absolute(spec_.record);
    std::string zone = Absolute(spec_.zone);
    std::string what = fmt::format("update of '{}' {} on dns server '{}'", record, spec_.type,
                                   server.ToString());

    RrListPtr updates(ldns_rr_list_new());
    // Delete the RRset (RFC 2136 section 2.5.2: class ANY, ttl 0, no rdata) ...
    ldns_rr* del = ldns_rr_new();
    ldns_rdf* owner = ldns_dname_new_frm_str(record.c_str());
    if (del == nullptr || owner == nullptr) {
      if (del != nullptr) ldns_rr_free(del);
      if (owner != nullptr) ldns_rdf_deep_free(owner);
      return InvalidArgument(fmt::format("'{}' is not a valid dns name", record));
    }
    ldns_rr_set_owner(del, owner);
    ldns_rr_set_type(del, type);
    ldns_rr_set_class(del, LDNS_RR_CLASS_ANY);
    ldns_rr_set_ttl(del, 0);
    ldns_rr_list_push_rr(updates.get(), del);
    // ... then add the new value (section 2.5.1).
    std::string text = fmt::format("{} {} IN {} {}", record, spec_.ttl, spec_.type, v);
    ldns_rr* add = nullptr;
    ldns_status st = ldns_rr_new_frm_str(&add, text.c_str(), 0, nullptr, nullptr);
    if (st != LDNS_STATUS_OK || add == nullptr) {
      return InvalidArgument(fmt::format("cannot build record '{}': {}", text,
                                         ldns_get_errorstr_by_id(st)));
    }
    ldns_rr_list_push_rr(updates.get(), add);

    ldns_rdf* zone_rdf = ldns_dname_new_frm_str(zone.c_str());
    if (zone_rdf == nullptr) return InvalidArgument(fmt::format("'{}' is not a valid zone", zone));
    PktPtr pkt(ldns_update_pkt_new(zone_rdf, LDNS_RR_CLASS_IN, nullptr, updates.get(), nullptr));
    if (!pkt) return Internal("cannot build dns update packet");
    ldns_pkt_set_rd(pkt.get(), false);  // ldns sets it; the bit is Z in an UPDATE header

    const TsigKey* key = key_ ? &*key_ : nullptr;
    ASSIGN_OR_RETURN(Reply reply, Exchange(server, pkt.get(), transport_, key));
    if (reply.rcode != LDNS_RCODE_NOERROR) return RcodeError(what, zone, reply);
    if (key != nullptr && !reply.tsig_verified) {
      return Unauthenticated(fmt::format(
          "{}: the answer is {} with tsig key '{}', so the outcome is unknown: HINT: the record "
          "may or may not have changed; query the server",
          what, reply.tsig_present ? "not correctly signed" : "not signed", key->name));
    }
    return Status::Ok();
  }

  Result<std::vector<std::string>> Query(const std::string& server) override {
    return QueryRecord(server, spec_.record, spec_.type,
                       DnsTransport{.timeout = transport_.timeout, .tcp = false});
  }

  std::string Describe() const override {
    return fmt::format("rfc2136 {} {}", spec_.server, Absolute(spec_.record));
  }

 private:
  Status RcodeError(const std::string& what, const std::string& zone, const Reply& reply) const {
    std::string rcode = RcodeName(reply.rcode);
    if (reply.tsig_error != 0) rcode += " (" + TsigErrorName(reply.tsig_error) + ")";
    std::string msg = fmt::format("{} failed: the server answered {}", what, rcode);
    std::string key_name = key_ ? key_->name : "";
    switch (reply.rcode) {
      case LDNS_RCODE_NOTAUTH:
      case LDNS_RCODE_REFUSED:
        if (reply.tsig_error == 16 || reply.tsig_error == 17) {
          return PermissionDenied(msg + fmt::format(
              ": HINT: the server does not accept tsig key '{}' ({}): check the key name, "
              "algorithm and secret in secret '{}'",
              key_name, key_->algorithm, spec_.tsig_secret));
        }
        if (reply.tsig_error == 18) {
          return PermissionDenied(msg + ": HINT: the clocks of this host and the dns server "
                                        "differ by more than 5 minutes");
        }
        if (!key_) {
          return PermissionDenied(msg + fmt::format(
              ": HINT: the server may want updates signed with tsig: set failover.dns."
              "tsig_secret, or allow updates of zone '{}' from this host",
              zone));
        }
        return PermissionDenied(msg + fmt::format(
            ": HINT: allow key '{}' to update zone '{}' in the server's acl, and check the "
            "server is the primary for it",
            key_name, zone));
      case LDNS_RCODE_SERVFAIL:
        return Unavailable(msg);
      case LDNS_RCODE_NOTZONE:
        return InvalidArgument(msg + fmt::format(": HINT: '{}' must be inside zone '{}'",
                                                 Absolute(spec_.record), zone));
      default:
        return FailedPrecondition(msg);
    }
  }

  DnsSpec spec_;
  std::optional<TsigKey> key_;
  DnsTransport transport_;
};

}  // namespace

std::string DnsServer::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<DnsServer> ParseDnsServer(const std::string& text) {
  DnsServer s;
  std::string port;
  auto bad = [&](const std::string& why) {
    return InvalidArgument(fmt::format("dns server '{}': {}: HINT: write host:port, e.g. "
                                       "'192.0.2.53:53'",
                                       text, why));
  };
  if (text.empty()) return bad("empty");
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return bad("missing ']'");
    s.host = text.substr(1, close - 1);
    std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("expected ':' after ']'");
      port = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    s.host = text;  // a bare IPv6 address
  } else if (size_t colon = text.find(':'); colon != std::string::npos) {
    s.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  } else {
    s.host = text;
  }
  if (s.host.empty()) return bad("no host");
  if (!port.empty() || text.back() == ':') {
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); })) {
      return bad("bad port");
    }
    s.port = std::atoi(port.c_str());
    if (s.port < 1 || s.port > 65535) return bad("port out of range");
  }
  return s;
}

Result<std::vector<std::string>> QueryRecord(const std::string& server_text,
                                             const std::string& record, const std::string& type,
                                             const DnsTransport& transport) {
  ASSIGN_OR_RETURN(DnsServer server, ParseDnsServer(server_text));
  ASSIGN_OR_RETURN(ldns_rr_type rr_type, TypeByName(type));
  std::string name = Absolute(record);
  std::string what = fmt::format("query for '{}' {} at dns server '{}'", name, type,
                                 server.ToString());
  DnsTransport t = transport;
  for (int attempt = 0; attempt < 2; ++attempt) {
    ldns_rdf* qname = ldns_dname_new_frm_str(name.c_str());
    if (qname == nullptr) return InvalidArgument(fmt::format("'{}' is not a valid dns name", name));
    PktPtr query(ldns_pkt_query_new(qname, rr_type, LDNS_RR_CLASS_IN, 0));  // RD off
    if (!query) return Internal("cannot build dns query");
    ASSIGN_OR_RETURN(Reply reply, Exchange(server, query.get(), t, nullptr));
    if (ldns_pkt_tc(reply.pkt.get()) && !t.tcp) {
      t.tcp = true;
      continue;
    }
    switch (reply.rcode) {
      case LDNS_RCODE_NOERROR: break;
      case LDNS_RCODE_NXDOMAIN: return std::vector<std::string>{};
      case LDNS_RCODE_SERVFAIL:
        return Unavailable(fmt::format("{} failed: SERVFAIL", what));
      case LDNS_RCODE_REFUSED:
      case LDNS_RCODE_NOTAUTH:
        return PermissionDenied(fmt::format(
            "{} failed: {}: HINT: query a server that is authoritative for the name",
            what, RcodeName(reply.rcode)));
      default:
        return FailedPrecondition(fmt::format("{} failed: {}", what, RcodeName(reply.rcode)));
    }
    std::vector<std::string> values;
    ldns_rr_list* answer = ldns_pkt_answer(reply.pkt.get());
    for (size_t i = 0; answer != nullptr && i < ldns_rr_list_rr_count(answer); ++i) {
      ldns_rr* rr = ldns_rr_list_rr(answer, i);
      if (ldns_rr_get_type(rr) != rr_type) continue;
      // The query's own question names what was asked (a CNAME's target may follow).
      const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(query.get()), 0);
      if (ldns_dname_compare(ldns_rr_owner(rr), ldns_rr_owner(question)) != 0) continue;
      values.push_back(RdataText(rr));
    }
    return values;
  }
  return Unavailable(fmt::format("{} failed: the answer is truncated even over tcp", what));
}

bool SameValue(const std::string& type, const std::string& a, const std::string& b) {
  std::string t = Lower(type);
  if (t == "a" || t == "aaaa") {
    int family = t == "a" ? AF_INET : AF_INET6;
    unsigned char x[16] = {}, y[16] = {};
    if (inet_pton(family, a.c_str(), x) == 1 && inet_pton(family, b.c_str(), y) == 1) {
      return std::memcmp(x, y, sizeof x) == 0;
    }
    return a == b;
  }
  std::string la = Lower(a), lb = Lower(b);
  if (!la.empty() && la.back() == '.') la.pop_back();
  if (!lb.empty() && lb.back() == '.') lb.pop_back();
  return la == lb;
}

std::unique_ptr<DnsProvider> MakeRfc2136Provider(const DnsSpec& spec, std::optional<TsigKey> key,
                                                 const DnsTransport& transport) {
  return std::make_unique<Rfc2136Provider>(spec, std::move(key), transport);
}

}  // namespace reprise::dns
