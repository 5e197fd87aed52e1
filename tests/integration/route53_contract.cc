// See route53_contract.h for what this implements and where its rules come from.
#include "route53_contract.h"

#include <arpa/inet.h>
#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <set>

#include <fmt/format.h>

#include "common/bytes.h"
#include "pg_env.h"
#include "storage/s3/sigv4.h"
#include "storage/s3/xml.h"

namespace reprise::testing {

namespace {

constexpr char kNamespace[] = "https://route53.amazonaws.com/doc/2013-04-01/";
constexpr char kRegion[] = "us-east-1";
constexpr char kService[] = "route53";
constexpr int64_t kMaxSkewSeconds = 300;

// RRType in service-2.json.
const std::set<std::string> kRRTypes = {"SOA", "A",   "TXT", "NS",  "CNAME", "MX",
                                        "NAPTR", "PTR", "SRV", "SPF", "AAAA", "CAA",
                                        "DS",  "TLSA", "SSHFP", "SVCB", "HTTPS"};
// ChangeAction.
const std::set<std::string> kActions = {"CREATE", "DELETE", "UPSERT"};

using Params = std::vector<std::pair<std::string, std::string>>;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Absolute(std::string name) {
  if (name.empty() || name.back() != '.') name += '.';
  return name;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// "com.example.www.": how ListResourceRecordSets orders names.
std::string SortKey(const std::string& name) {
  std::vector<std::string> labels;
  size_t start = 0;
  std::string n = name;
  if (!n.empty() && n.back() == '.') n.pop_back();
  for (size_t dot; (dot = n.find('.', start)) != std::string::npos; start = dot + 1) {
    labels.push_back(n.substr(start, dot - start));
  }
  labels.push_back(n.substr(start));
  std::string key;
  for (auto it = labels.rbegin(); it != labels.rend(); ++it) key += *it + ".";
  return key;
}

// Route 53 prints characters other than a-z 0-9 - _ . as "\ddd" (octal).
std::string EscapeName(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\{:03o}", c);
    }
  }
  return out;
}

std::string IsoTime(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

std::optional<int64_t> ParseAmzDate(const std::string& s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && !std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
  }
  struct tm tm {};
  tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(s.substr(4, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(6, 2));
  tm.tm_hour = std::stoi(s.substr(9, 2));
  tm.tm_min = std::stoi(s.substr(11, 2));
  tm.tm_sec = std::stoi(s.substr(13, 2));
  return static_cast<int64_t>(timegm(&tm));
}

// ---- A strict little XML parser: elements, attributes, text, entities, comments, CDATA;
// no DTDs, no processing instructions but the declaration, no mixed content. ----

struct Node {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attrs;
  std::vector<Node> kids;
  std::string text;
};

class XmlParser {
 public:
  explicit XmlParser(std::string_view s) : s_(s) {}

  bool Document(Node* root) {
    SkipWs();
    if (Starts("<?xml")) {
      size_t end = s_.find("?>", i_);
      if (end == std::string_view::npos) return Fail("unterminated XML declaration");
      i_ = end + 2;
    }
    if (!Misc()) return false;
    if (!Element(root, 0)) return false;
    if (!Misc()) return false;
    if (i_ != s_.size()) return Fail("content after the root element");
    return true;
  }
  const std::string& error() const { return err_; }

 private:
  bool Fail(const std::string& m) {
    if (err_.empty()) err_ = fmt::format("{} (at byte {})", m, i_);
    return false;
  }
  bool Starts(std::string_view p) const { return s_.substr(i_, p.size()) == p; }
  void SkipWs() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  // Whitespace and comments between top-level items.
  bool Misc() {
    while (true) {
      SkipWs();
      if (Starts("<!--")) {
        if (!Comment()) return false;
      } else if (Starts("<!") || Starts("<?")) {
        return Fail("DTDs and processing instructions are not allowed");
      } else {
        return true;
      }
    }
  }
  bool Comment() {
    size_t end = s_.find("-->", i_ + 4);
    if (end == std::string_view::npos) return Fail("unterminated comment");
    i_ = end + 3;
    return true;
  }
  bool Name(std::string* out) {
    size_t b = i_;
    auto first = [](unsigned char c) { return std::isalpha(c) || c == '_' || c == ':'; };
    auto rest = [](unsigned char c) {
      return std::isalnum(c) || c == '_' || c == ':' || c == '-' || c == '.';
    };
    if (i_ >= s_.size() || !first(static_cast<unsigned char>(s_[i_]))) {
      return Fail("expected a name");
    }
    while (i_ < s_.size() && rest(static_cast<unsigned char>(s_[i_]))) ++i_;
    *out = std::string(s_.substr(b, i_ - b));
    return true;
  }
  // Text with only the five entities and character references.
  bool Text(std::string_view raw, std::string* out) {
    for (size_t amp = raw.find('&'); amp != std::string_view::npos;
         amp = raw.find('&', amp + 1)) {
      size_t semi = raw.find(';', amp);
      if (semi == std::string_view::npos) return Fail("'&' without ';'");
      std::string_view ent = raw.substr(amp + 1, semi - amp - 1);
      bool ok = ent == "amp" || ent == "lt" || ent == "gt" || ent == "quot" || ent == "apos";
      if (!ok && ent.size() >= 2 && ent[0] == '#') {
        std::string_view digits = ent.substr(ent[1] == 'x' ? 2 : 1);
        ok = !digits.empty() && std::all_of(digits.begin(), digits.end(), [&](char c) {
          return ent[1] == 'x' ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                               : std::isdigit(static_cast<unsigned char>(c)) != 0;
        });
      }
      if (!ok) return Fail(fmt::format("unknown entity '&{};'", ent));
    }
    if (raw.find('<') != std::string_view::npos) return Fail("'<' in text");
    *out += s3::XmlUnescape(raw);
    return true;
  }
  bool Element(Node* n, int depth) {
    if (depth > 32) return Fail("elements nested too deeply");
    if (!Starts("<")) return Fail("expected an element");
    ++i_;
    if (!Name(&n->name)) return false;
    while (true) {
      bool ws = i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]));
      SkipWs();
      if (Starts("/>")) {
        i_ += 2;
        return true;
      }
      if (Starts(">")) {
        ++i_;
        break;
      }
      if (!ws) return Fail("expected whitespace, '>' or '/>' in a start tag");
      std::string attr, value;
      if (!Name(&attr)) return false;
      SkipWs();
      if (!Starts("=")) return Fail("expected '=' after attribute '" + attr + "'");
      ++i_;
      SkipWs();
      if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\'')) {
        return Fail("attribute value not quoted");
      }
      char q = s_[i_++];
      size_t end = s_.find(q, i_);
      if (end == std::string_view::npos) return Fail("unterminated attribute value");
      if (!Text(s_.substr(i_, end - i_), &value)) return false;
      i_ = end + 1;
      for (const auto& [a, v] : n->attrs) {
        if (a == attr) return Fail("attribute '" + attr + "' repeated");
      }
      n->attrs.emplace_back(attr, value);
    }
    std::string text;
    while (true) {
      if (i_ >= s_.size()) return Fail("element '" + n->name + "' is not closed");
      if (Starts("</")) {
        i_ += 2;
        std::string closing;
        if (!Name(&closing)) return false;
        if (closing != n->name) {
          return Fail(fmt::format("'</{}>' closes '<{}>'", closing, n->name));
        }
        SkipWs();
        if (!Starts(">")) return Fail("expected '>'");
        ++i_;
        break;
      }
      if (Starts("<!--")) {
        if (!Comment()) return false;
        continue;
      }
      if (Starts("<![CDATA[")) {
        size_t end = s_.find("]]>", i_);
        if (end == std::string_view::npos) return Fail("unterminated CDATA");
        text += s_.substr(i_ + 9, end - i_ - 9);
        i_ = end + 3;
        continue;
      }
      if (Starts("<?") || Starts("<!")) return Fail("unexpected markup in content");
      if (Starts("<")) {
        n->kids.emplace_back();
        if (!Element(&n->kids.back(), depth + 1)) return false;
        continue;
      }
      size_t lt = s_.find('<', i_);
      if (lt == std::string_view::npos) lt = s_.size();
      if (!Text(s_.substr(i_, lt - i_), &text)) return false;
      i_ = lt;
    }
    bool blank = std::all_of(text.begin(), text.end(),
                             [](unsigned char c) { return std::isspace(c) != 0; });
    if (!n->kids.empty() && !blank) {
      return Fail("element '" + n->name + "' mixes text and elements");
    }
    n->text = n->kids.empty() ? text : "";
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
  std::string err_;
};

// An InvalidInput message; the structure checks below return "" when all is well.
using Problem = std::string;

std::string Validation(const std::string& value, const std::string& where,
                       const std::string& constraint) {
  return fmt::format(
      "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: {}", value,
      where, constraint);
}

// The children of `n` are the structure's members in the model's order, each at most once,
// the required ones present; no attributes below the root. Fills `got` by name.
Problem Members(const Node& n, const std::string& where,
                const std::vector<std::pair<std::string, bool>>& members,
                std::map<std::string, const Node*>* got) {
  if (!n.attrs.empty()) return fmt::format("Invalid XML: unexpected attribute on '{}'", where);
  if (!n.text.empty() && n.kids.empty() &&
      !std::all_of(n.text.begin(), n.text.end(),
                   [](unsigned char c) { return std::isspace(c) != 0; })) {
    return fmt::format("Invalid XML: '{}' is a structure, not text", where);
  }
  size_t next = 0;  // members before this one may not appear any more
  for (const Node& k : n.kids) {
    size_t pos = members.size();
    for (size_t m = 0; m < members.size(); ++m) {
      if (members[m].first == k.name) pos = m;
    }
    if (pos == members.size()) {
      return fmt::format("Invalid XML: unexpected element '{}' in '{}'", k.name, where);
    }
    if (got->count(k.name)) {
      return fmt::format("Invalid XML: element '{}' repeated in '{}'", k.name, where);
    }
    if (pos < next) {
      return fmt::format("Invalid XML: element '{}' out of order in '{}'", k.name, where);
    }
    next = pos + 1;
    (*got)[k.name] = &k;
  }
  for (const auto& [name, required] : members) {
    if (required && !got->count(name)) {
      return fmt::format("Invalid XML: '{}' is missing the required element '{}'", where, name);
    }
  }
  return "";
}

// A list: every child is `member`, at least `min` of them.
Problem List(const Node& n, const std::string& where, const std::string& member, size_t min) {
  if (!n.attrs.empty()) return fmt::format("Invalid XML: unexpected attribute on '{}'", where);
  for (const Node& k : n.kids) {
    if (k.name != member) {
      return fmt::format("Invalid XML: unexpected element '{}' in '{}'", k.name, where);
    }
  }
  if (n.kids.size() < min) {
    return Validation("[]", where,
                      fmt::format("Member must have length greater than or equal to {}", min));
  }
  return "";
}

Problem Leaf(const Node& n, const std::string& where) {
  if (!n.kids.empty() || !n.attrs.empty()) {
    return fmt::format("Invalid XML: '{}' must hold text only", where);
  }
  return "";
}

bool IsAddress(int family, const std::string& text) {
  unsigned char buf[16];
  return inet_pton(family, text.c_str(), buf) == 1;
}

struct ParsedChange {
  std::string action;
  Route53Rrset set;
};

}  // namespace

Route53Contract::Route53Contract(Options options)
    : options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  server_->Put(".*", handler);
  server_->Delete(".*", handler);
  port_ = FreePort();
  bound_ = server_->bind_to_port("127.0.0.1", port_);
  if (bound_) {
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Route53Contract::~Route53Contract() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string Route53Contract::endpoint() const { return fmt::format("http://127.0.0.1:{}", port_); }

void Route53Contract::AddZone(const std::string& id, const std::string& origin) {
  std::lock_guard<std::mutex> lock(mu_);
  Zone z;
  z.origin = Lower(Absolute(origin));
  z.sets[{z.origin, "NS"}] = {z.origin, "NS", 172800,
                              {"ns-1.awsdns-01.org.", "ns-2.awsdns-02.co.uk."}};
  z.sets[{z.origin, "SOA"}] = {
      z.origin, "SOA", 900,
      {"ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}};
  zones_[id] = std::move(z);
}

std::vector<Route53Rrset> Route53Contract::Records(const std::string& zone_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Route53Rrset> out;
  auto it = zones_.find(zone_id);
  if (it == zones_.end()) return out;
  for (const auto& [key, set] : it->second.sets) out.push_back(set);
  std::sort(out.begin(), out.end(), [](const Route53Rrset& a, const Route53Rrset& b) {
    return std::make_pair(SortKey(a.name), a.type) < std::make_pair(SortKey(b.name), b.type);
  });
  return out;
}

std::optional<Route53Rrset> Route53Contract::Find(const std::string& zone_id,
                                                  const std::string& name,
                                                  const std::string& type) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto z = zones_.find(zone_id);
  if (z == zones_.end()) return std::nullopt;
  auto s = z->second.sets.find({Lower(Absolute(name)), type});
  if (s == z->second.sets.end()) return std::nullopt;
  return s->second;
}

void Route53Contract::FailNext(int times, int http_status, const std::string& code,
                               const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_times_ = times;
  fail_status_ = http_status;
  fail_code_ = code;
  fail_message_ = message;
}

Route53Contract::Counters Route53Contract::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

std::vector<std::string> Route53Contract::Log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

Route53Contract::Reply Route53Contract::Error(int status, const std::string& code,
                                              const std::string& message) const {
  std::string type = status >= 500 ? "Receiver" : "Sender";
  std::string body = fmt::format(
      "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{}\"><Error><Type>{}</Type>"
      "<Code>{}</Code><Message>{}</Message></Error><RequestId>{:08x}-0000-4000-8000-"
      "000000000000</RequestId></ErrorResponse>",
      kNamespace, type, code, s3::XmlEscape(message), next_request_);
  return {status, body};
}

void Route53Contract::Handle(const httplib::Request& req, httplib::Response& res) {
  // The raw target, decoded here: the signature covers exactly what was on the wire.
  std::string target = req.target;
  size_t qm = target.find('?');
  std::string path = PercentDecode(target.substr(0, qm));
  Params query;
  if (qm != std::string::npos) {
    std::string qs = target.substr(qm + 1);
    size_t start = 0;
    while (start <= qs.size()) {
      size_t amp = qs.find('&', start);
      if (amp == std::string::npos) amp = qs.size();
      std::string item = qs.substr(start, amp - start);
      if (!item.empty()) {
        size_t eq = item.find('=');
        query.emplace_back(PercentDecode(item.substr(0, eq)),
                           eq == std::string::npos ? "" : PercentDecode(item.substr(eq + 1)));
      }
      start = amp + 1;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++next_request_;
  Reply reply;
  if (std::optional<Reply> denied = CheckSignature(req, path, query)) {
    reply = *denied;
  } else {
    reply = Dispatch(req, path, query);
  }
  std::string line = fmt::format("{} {} -> {}", req.method, target, reply.status);
  if (reply.status >= 300) {
    line += " " + s3::XmlText(reply.body, "Code").value_or("") + ": " +
            s3::XmlText(reply.body, "Message").value_or("");
  }
  log_.push_back(line);
  res.status = reply.status;
  res.set_header("x-amzn-RequestId", fmt::format("{:08x}-0000-4000-8000-000000000000",
                                                 next_request_));
  res.set_content(reply.body, "text/xml");
}

std::optional<Route53Contract::Reply> Route53Contract::CheckSignature(
    const httplib::Request& req, const std::string& path, const Params& query) {
  std::string auth = req.get_header_value("Authorization");
  if (auth.empty()) return Error(403, "MissingAuthenticationToken", "Missing Authentication Token");
  const std::string alg = "AWS4-HMAC-SHA256 ";
  if (auth.rfind(alg, 0) != 0) {
    return Error(400, "IncompleteSignature", "Unsupported Authorization Type");
  }
  std::map<std::string, std::string> parts;
  std::string rest = auth.substr(alg.size());
  size_t start = 0;
  while (start < rest.size()) {
    size_t comma = rest.find(',', start);
    if (comma == std::string::npos) comma = rest.size();
    std::string item = rest.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(' '));
    size_t eq = item.find('=');
    if (eq != std::string::npos) parts[item.substr(0, eq)] = item.substr(eq + 1);
    start = comma + 1;
  }
  for (const char* p : {"Credential", "SignedHeaders", "Signature"}) {
    if (!parts.count(p)) {
      return Error(400, "IncompleteSignature",
                   fmt::format("Authorization header requires '{}' parameter.", p));
    }
  }
  std::vector<std::string> scope;
  {
    std::string c = parts["Credential"];
    size_t s = 0;
    for (size_t slash; (slash = c.find('/', s)) != std::string::npos; s = slash + 1) {
      scope.push_back(c.substr(s, slash - s));
    }
    scope.push_back(c.substr(s));
  }
  if (scope.size() != 5 || scope[4] != "aws4_request") {
    return Error(400, "IncompleteSignature",
                 "Credential must have exactly 5 slash-delimited elements, e.g. "
                 "keyid/date/region/service/term");
  }
  if (scope[0] != options_.access_key_id) {
    return Error(403, "InvalidClientTokenId",
                 "The security token included in the request is invalid.");
  }
  if (!req.get_header_value("X-Amz-Security-Token").empty()) {
    return Error(403, "InvalidClientTokenId",
                 "The security token included in the request is invalid.");
  }
  std::string amz_date = req.get_header_value("X-Amz-Date");
  std::optional<int64_t> when = ParseAmzDate(amz_date);
  if (!when) {
    return Error(400, "IncompleteSignature",
                 "Authorization header requires existence of either a 'X-Amz-Date' or a "
                 "'Date' header.");
  }
  if (scope[1] != amz_date.substr(0, 8)) {
    return Error(403, "SignatureDoesNotMatch",
                 fmt::format("Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                             "version of date from HTTP: '{}' != '{}'",
                             scope[1], amz_date.substr(0, 8)));
  }
  if (scope[2] != kRegion) {
    return Error(403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region.");
  }
  if (scope[3] != kService) {
    return Error(403, "SignatureDoesNotMatch",
                 fmt::format("Credential should be scoped to correct service: '{}'.", kService));
  }
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (*when < now - kMaxSkewSeconds) {
    return Error(403, "SignatureDoesNotMatch",
                 fmt::format("Signature expired: {} is now earlier than {} ({} - 5 min.)",
                             amz_date, s3::AmzDate(now - kMaxSkewSeconds), s3::AmzDate(now)));
  }
  if (*when > now + kMaxSkewSeconds) {
    return Error(403, "SignatureDoesNotMatch",
                 fmt::format("Signature not yet current: {} is still later than {} ({} + 5 "
                             "min.)",
                             amz_date, s3::AmzDate(now + kMaxSkewSeconds), s3::AmzDate(now)));
  }
  // Rebuild the request from what was signed and recompute the signature.
  s3::SigV4Request sreq{.method = req.method,
                        .path = path,
                        .query = query,
                        .headers = {},
                        .payload_hash = s3::PayloadHash(AsBytes(req.body))};
  std::set<std::string> signed_names;
  std::string list = parts["SignedHeaders"];
  size_t s = 0;
  while (s <= list.size()) {
    size_t semi = list.find(';', s);
    if (semi == std::string::npos) semi = list.size();
    std::string name = list.substr(s, semi - s);
    if (name.empty() || name != Lower(name)) {
      return Error(400, "IncompleteSignature", "SignedHeaders is malformed");
    }
    size_t count = req.get_header_value_count(name);
    if (count == 0) {
      return Error(403, "SignatureDoesNotMatch",
                   fmt::format("Header '{}' is signed but not in the request", name));
    }
    for (size_t i = 0; i < count; ++i) {
      sreq.headers.emplace_back(name, req.get_header_value(name, i));
    }
    signed_names.insert(name);
    s = semi + 1;
  }
  for (const char* must : {"host", "x-amz-date"}) {
    if (!signed_names.count(must)) {
      return Error(403, "SignatureDoesNotMatch",
                   fmt::format("'{}' must be a signed header", must));
    }
  }
  std::string content_sha = req.get_header_value("X-Amz-Content-Sha256");
  if (!content_sha.empty() && content_sha != sreq.payload_hash) {
    return Error(400, "InvalidInput",
                 "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  s3::Credentials creds{.access_key_id = options_.access_key_id,
                        .secret_access_key = options_.secret_access_key};
  s3::SigV4Signature expect = s3::ComputeSignature(sreq, creds, kRegion, kService, amz_date);
  if (expect.signature != parts["Signature"]) {
    return Error(403, "SignatureDoesNotMatch",
                 "The request signature we calculated does not match the signature you "
                 "provided. Check your AWS Secret Access Key and signing method. Consult the "
                 "service documentation for details.");
  }
  return std::nullopt;
}

Route53Contract::Reply Route53Contract::Dispatch(const httplib::Request& req,
                                                 const std::string& path,
                                                 const Params& query) {
  std::vector<std::string> seg;
  size_t s = 1;
  if (path.empty() || path[0] != '/') return Error(404, "UnknownOperation", "no such operation");
  for (size_t slash; (slash = path.find('/', s)) != std::string::npos; s = slash + 1) {
    seg.push_back(path.substr(s, slash - s));
  }
  seg.push_back(path.substr(s));
  // POST /2013-04-01/hostedzone/{Id}/rrset/ (the model's requestUri, trailing '/' included)
  bool change = req.method == "POST" && seg.size() == 5 && seg[0] == "2013-04-01" &&
                seg[1] == "hostedzone" && !seg[2].empty() && seg[3] == "rrset" &&
                seg[4].empty();
  bool list = req.method == "GET" && seg.size() == 4 && seg[0] == "2013-04-01" &&
              seg[1] == "hostedzone" && !seg[2].empty() && seg[3] == "rrset";
  bool get_change = req.method == "GET" && seg.size() == 3 && seg[0] == "2013-04-01" &&
                    seg[1] == "change" && !seg[2].empty();
  if (!change && !list && !get_change) {
    return Error(404, "UnknownOperation",
                 fmt::format("this contract server has no operation {} {}", req.method, path));
  }
  if (change) ++counters_.change_requests;
  if (fail_times_ > 0) {
    --fail_times_;
    return Error(fail_status_, fail_code_, fail_message_);
  }
  if (change) return ChangeRecordSets(seg[2], req.body);
  if (list) return ListRecordSets(seg[2], query);
  return GetChange(seg[2]);
}

Route53Contract::Reply Route53Contract::ChangeRecordSets(const std::string& zone_id,
                                                         const std::string& body) {
  if (zone_id.size() > 32) {
    return Error(400, "InvalidInput",
                 Validation(zone_id, "hostedZoneId",
                            "Member must have length less than or equal to 32"));
  }
  Node root;
  XmlParser parser(body);
  if (!parser.Document(&root)) {
    return Error(400, "InvalidInput", "Invalid XML: " + parser.error());
  }
  if (root.name != "ChangeResourceRecordSetsRequest") {
    return Error(400, "InvalidInput",
                 fmt::format("Invalid XML: the root element is '{}', not "
                             "'ChangeResourceRecordSetsRequest'",
                             root.name));
  }
  std::string ns;
  for (const auto& [a, v] : root.attrs) {
    if (a == "xmlns") {
      ns = v;
    } else {
      return Error(400, "InvalidInput", "Invalid XML: unexpected attribute '" + a + "'");
    }
  }
  if (ns != kNamespace) {
    return Error(400, "InvalidInput",
                 fmt::format("Invalid XML: namespace '{}' is not '{}'", ns, kNamespace));
  }
  Node bare = root;
  bare.attrs.clear();
  std::map<std::string, const Node*> top;
  if (Problem p = Members(bare, "ChangeResourceRecordSetsRequest", {{"ChangeBatch", true}}, &top);
      !p.empty()) {
    return Error(400, "InvalidInput", p);
  }
  std::map<std::string, const Node*> batch;
  if (Problem p = Members(*top["ChangeBatch"], "changeBatch",
                          {{"Comment", false}, {"Changes", true}}, &batch);
      !p.empty()) {
    return Error(400, "InvalidInput", p);
  }
  if (const Node* c = batch["Comment"]) {
    if (Problem p = Leaf(*c, "changeBatch.comment"); !p.empty()) {
      return Error(400, "InvalidInput", p);
    }
    if (c->text.size() > 256) {
      return Error(400, "InvalidInput",
                   Validation(c->text, "changeBatch.comment",
                              "Member must have length less than or equal to 256"));
    }
  }
  const Node& changes = *batch["Changes"];
  if (Problem p = List(changes, "changeBatch.changes", "Change", 1); !p.empty()) {
    return Error(400, "InvalidInput", p);
  }
  // The ResourceRecordSet members in the model's order; only simple records are implemented.
  const std::vector<std::pair<std::string, bool>> kSetMembers = {
      {"Name", true},          {"Type", true},           {"SetIdentifier", false},
      {"Weight", false},       {"Region", false},        {"GeoLocation", false},
      {"Failover", false},     {"MultiValueAnswer", false}, {"TTL", false},
      {"ResourceRecords", false}, {"AliasTarget", false}, {"HealthCheckId", false},
      {"TrafficPolicyInstanceId", false}, {"CidrRoutingConfig", false},
      {"GeoProximityLocation", false}};
  std::vector<ParsedChange> parsed;
  for (size_t i = 0; i < changes.kids.size(); ++i) {
    std::string where = fmt::format("changeBatch.changes.{}.member", i + 1);
    std::map<std::string, const Node*> ch;
    if (Problem p = Members(changes.kids[i], where,
                            {{"Action", true}, {"ResourceRecordSet", true}}, &ch);
        !p.empty()) {
      return Error(400, "InvalidInput", p);
    }
    if (Problem p = Leaf(*ch["Action"], where + ".action"); !p.empty()) {
      return Error(400, "InvalidInput", p);
    }
    ParsedChange pc;
    pc.action = ch["Action"]->text;
    if (!kActions.count(pc.action)) {
      return Error(400, "InvalidInput",
                   Validation(pc.action, where + ".action",
                              "Member must satisfy enum value set: [CREATE, DELETE, UPSERT]"));
    }
    std::string rw = where + ".resourceRecordSet";
    std::map<std::string, const Node*> rs;
    if (Problem p = Members(*ch["ResourceRecordSet"], rw, kSetMembers, &rs); !p.empty()) {
      return Error(400, "InvalidInput", p);
    }
    for (const auto& [name, node] : rs) {
      if (name != "Name" && name != "Type" && name != "TTL" && name != "ResourceRecords") {
        return Error(400, "InvalidInput",
                     fmt::format("'{}' is valid in the API but this contract server implements "
                                 "simple records only",
                                 name));
      }
    }
    for (const char* leaf : {"Name", "Type", "TTL"}) {
      if (rs.count(leaf)) {
        if (Problem p = Leaf(*rs[leaf], rw + "." + leaf); !p.empty()) {
          return Error(400, "InvalidInput", p);
        }
      }
    }
    std::string name = rs["Name"]->text;
    if (name.size() > 1024) {
      return Error(400, "InvalidInput",
                   Validation(name.substr(0, 40) + "...", rw + ".name",
                              "Member must have length less than or equal to 1024"));
    }
    if (name.empty()) {
      return Error(400, "InvalidInput", Validation(name, rw + ".name", "Member must not be empty"));
    }
    pc.set.name = Lower(Absolute(name));
    pc.set.type = rs["Type"]->text;
    if (!kRRTypes.count(pc.set.type)) {
      return Error(400, "InvalidInput",
                   Validation(pc.set.type, rw + ".type",
                              "Member must satisfy enum value set: [SOA, A, TXT, NS, CNAME, MX, "
                              "NAPTR, PTR, SRV, SPF, AAAA, CAA, DS, TLSA, SSHFP, SVCB, HTTPS]"));
    }
    if (!rs.count("TTL") || !rs.count("ResourceRecords")) {
      return Error(400, "InvalidInput",
                   fmt::format("Invalid request: Expected exactly one of [AliasTarget, all of "
                               "[TTL, and ResourceRecords], or TrafficPolicyInstanceId], but "
                               "found none in Change with [Action={}, Name={}, Type={}, "
                               "SetIdentifier=null]",
                               pc.action, name, pc.set.type));
    }
    const std::string& ttl = rs["TTL"]->text;
    bool digits = !ttl.empty() && ttl.size() <= 10 &&
                  std::all_of(ttl.begin(), ttl.end(),
                              [](unsigned char c) { return std::isdigit(c) != 0; });
    if (!digits || std::stoll(ttl) > 2147483647LL) {
      return Error(400, "InvalidInput",
                   Validation(ttl, rw + ".TTL",
                              "Member must be a whole number from 0 to 2147483647"));
    }
    pc.set.ttl = std::stoll(ttl);
    const Node& records = *rs["ResourceRecords"];
    if (Problem p = List(records, rw + ".resourceRecords", "ResourceRecord", 1); !p.empty()) {
      return Error(400, "InvalidInput", p);
    }
    for (size_t r = 0; r < records.kids.size(); ++r) {
      std::string vw = fmt::format("{}.resourceRecords.{}.member", rw, r + 1);
      std::map<std::string, const Node*> rec;
      if (Problem p = Members(records.kids[r], vw, {{"Value", true}}, &rec); !p.empty()) {
        return Error(400, "InvalidInput", p);
      }
      if (Problem p = Leaf(*rec["Value"], vw + ".value"); !p.empty()) {
        return Error(400, "InvalidInput", p);
      }
      const std::string& v = rec["Value"]->text;
      if (v.size() > 4000) {
        return Error(400, "InvalidInput",
                     Validation(v.substr(0, 40) + "...", vw + ".value",
                                "Member must have length less than or equal to 4000"));
      }
      pc.set.values.push_back(v);
    }
    parsed.push_back(std::move(pc));
  }

  auto zit = zones_.find(zone_id);
  if (zit == zones_.end()) {
    return Error(404, "NoSuchHostedZone", "No hosted zone found with ID: " + zone_id);
  }
  // The batch is applied to a copy: all of it or nothing (InvalidChangeBatch).
  Zone zone = zit->second;
  std::vector<std::string> errors;
  for (const ParsedChange& pc : parsed) {
    const Route53Rrset& set = pc.set;
    std::string which = fmt::format("[name='{}', type='{}']", set.name, set.type);
    bool inside = set.name == zone.origin ||
                  (set.name.size() > zone.origin.size() &&
                   set.name.compare(set.name.size() - zone.origin.size() - 1,
                                    zone.origin.size() + 1, "." + zone.origin) == 0);
    if (!inside) {
      errors.push_back(fmt::format("RRSet with DNS name {} is not permitted in zone {}",
                                   set.name, zone.origin));
      continue;
    }
    for (const std::string& v : set.values) {
      if (set.type == "A" && !IsAddress(AF_INET, v)) {
        errors.push_back(fmt::format("ARRDATAIllegalIPv4Address (Value is not a valid IPv4 "
                                     "address) encountered with '{}'", v));
      }
      if (set.type == "AAAA" && !IsAddress(AF_INET6, v)) {
        errors.push_back(fmt::format("AAAARRDATAIllegalIPv6Address (Value is not a valid IPv6 "
                                     "address) encountered with '{}'", v));
      }
    }
    if (set.type == "CNAME" && set.values.size() != 1) {
      errors.push_back(fmt::format("RRSet of type CNAME with DNS name {} has more than one "
                                   "value", set.name));
    }
    if (set.type == "CNAME" && set.name == zone.origin) {
      errors.push_back(fmt::format("RRSet of type CNAME with DNS name {} is not permitted at "
                                   "apex in zone {}", set.name, zone.origin));
    }
    auto key = std::make_pair(set.name, set.type);
    auto existing = zone.sets.find(key);
    if (pc.action == "DELETE") {
      if (existing == zone.sets.end()) {
        errors.push_back(fmt::format("Tried to delete resource record set {} but it was not "
                                     "found", which));
      } else if (existing->second.ttl != set.ttl || existing->second.values != set.values) {
        errors.push_back(fmt::format("Tried to delete resource record set {} but the values "
                                     "provided do not match the current values", which));
      } else {
        zone.sets.erase(existing);
      }
      continue;
    }
    if (pc.action == "CREATE" && existing != zone.sets.end()) {
      errors.push_back(
          fmt::format("Tried to create resource record set {} but it already exists", which));
      continue;
    }
    // RFC 1034: a CNAME owns its name alone.
    for (const auto& [k, other] : zone.sets) {
      if (k.first == set.name && k.second != set.type &&
          (set.type == "CNAME" || k.second == "CNAME")) {
        errors.push_back(fmt::format(
            "RRSet of type {} with DNS name {} is not permitted because a conflicting RRSet of "
            "type {} with the same DNS name already exists in zone {}",
            set.type, set.name, k.second, zone.origin));
      }
    }
    zone.sets[key] = set;
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : ", ") + e;
    return Error(400, "InvalidChangeBatch", "[" + all + "]");
  }
  zit->second = std::move(zone);
  ++counters_.changes_applied;

  ++next_change_;
  // Ids look like the documented "C2682N5HXP0BZ4": 'C' and 13 upper-case letters or digits.
  static constexpr char kAlnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(next_change_ + port_);
  std::string id = "C";
  for (int i = 0; i < 13; ++i, x /= 36) id.push_back(kAlnum[x % 36]);
  Change c{.polls = 0, .submitted_at = IsoTime(std::chrono::system_clock::now())};
  changes_[id] = c;
  std::string comment;
  if (const Node* cm = batch["Comment"]) {
    comment = "<Comment>" + s3::XmlEscape(cm->text) + "</Comment>";
  }
  return {200, fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<ChangeResourceRecordSetsResponse xmlns=\"{}\"><ChangeInfo>"
                           "<Id>/change/{}</Id><Status>PENDING</Status>"
                           "<SubmittedAt>{}</SubmittedAt>{}</ChangeInfo>"
                           "</ChangeResourceRecordSetsResponse>",
                           kNamespace, id, c.submitted_at, comment)};
}

Route53Contract::Reply Route53Contract::GetChange(const std::string& id) {
  if (id.size() > 6500) {
    return Error(400, "InvalidInput",
                 Validation(id.substr(0, 40), "id",
                            "Member must have length less than or equal to 6500"));
  }
  auto it = changes_.find(id);
  if (it == changes_.end()) {
    return Error(404, "NoSuchChange", "A change with the specified change ID does not exist.");
  }
  ++counters_.get_change;
  ++it->second.polls;
  bool insync = it->second.polls > options_.polls_until_insync;
  if (insync) ++counters_.insync_answers;
  return {200, fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<GetChangeResponse xmlns=\"{}\"><ChangeInfo><Id>/change/{}</Id>"
                           "<Status>{}</Status><SubmittedAt>{}</SubmittedAt></ChangeInfo>"
                           "</GetChangeResponse>",
                           kNamespace, id, insync ? "INSYNC" : "PENDING",
                           it->second.submitted_at)};
}

Route53Contract::Reply Route53Contract::ListRecordSets(const std::string& zone_id,
                                                       const Params& query) {
  if (zone_id.size() > 32) {
    return Error(400, "InvalidInput",
                 Validation(zone_id, "hostedZoneId",
                            "Member must have length less than or equal to 32"));
  }
  std::map<std::string, std::string> q;
  for (const auto& [k, v] : query) {
    if (k != "name" && k != "type" && k != "identifier" && k != "maxitems") {
      return Error(400, "InvalidInput", "Unknown query parameter '" + k + "'");
    }
    if (!q.emplace(k, v).second) {
      return Error(400, "InvalidInput", "Query parameter '" + k + "' repeated");
    }
  }
  if (q.count("type") && !q.count("name")) {
    return Error(400, "InvalidInput", "Invalid request: type given without name");
  }
  if (q.count("type") && !kRRTypes.count(q["type"])) {
    return Error(400, "InvalidInput",
                 Validation(q["type"], "type", "Member must satisfy enum value set"));
  }
  if (q.count("name") && q["name"].size() > 1024) {
    return Error(400, "InvalidInput",
                 Validation(q["name"].substr(0, 40), "name",
                            "Member must have length less than or equal to 1024"));
  }
  if (q.count("identifier")) {
    return Error(400, "InvalidInput",
                 "'identifier' is valid in the API but this contract server implements simple "
                 "records only");
  }
  int max_items = 300;
  if (q.count("maxitems")) {
    const std::string& m = q["maxitems"];
    bool digits = !m.empty() && m.size() <= 9 &&
                  std::all_of(m.begin(), m.end(),
                              [](unsigned char c) { return std::isdigit(c) != 0; });
    if (!digits || std::stoi(m) < 1) {
      return Error(400, "InvalidInput", Validation(m, "maxitems", "Member must be a positive "
                                                                  "whole number"));
    }
    max_items = std::min(300, std::stoi(m));
  }
  auto zit = zones_.find(zone_id);
  if (zit == zones_.end()) {
    return Error(404, "NoSuchHostedZone", "No hosted zone found with ID: " + zone_id);
  }
  ++counters_.list;
  std::vector<const Route53Rrset*> sets;
  for (const auto& [k, set] : zit->second.sets) sets.push_back(&set);
  std::sort(sets.begin(), sets.end(), [](const Route53Rrset* a, const Route53Rrset* b) {
    return std::make_pair(SortKey(a->name), a->type) < std::make_pair(SortKey(b->name), b->type);
  });
  std::string start_key = q.count("name") ? SortKey(Lower(Absolute(q["name"]))) : "";
  std::string start_type = q.count("type") ? q["type"] : "";
  auto from = std::find_if(sets.begin(), sets.end(), [&](const Route53Rrset* s) {
    return std::make_pair(SortKey(s->name), s->type) >= std::make_pair(start_key, start_type);
  });
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<ListResourceRecordSetsResponse xmlns=\"{}\"><ResourceRecordSets>",
      kNamespace);
  int n = 0;
  auto it = from;
  for (; it != sets.end() && n < max_items; ++it, ++n) {
    const Route53Rrset& s = **it;
    out += "<ResourceRecordSet><Name>" + s3::XmlEscape(EscapeName(s.name)) + "</Name><Type>" +
           s.type + "</Type><TTL>" + std::to_string(s.ttl) + "</TTL><ResourceRecords>";
    for (const auto& v : s.values) {
      out += "<ResourceRecord><Value>" + s3::XmlEscape(v) + "</Value></ResourceRecord>";
    }
    out += "</ResourceRecords></ResourceRecordSet>";
  }
  out += "</ResourceRecordSets>";
  bool truncated = it != sets.end();
  out += fmt::format("<IsTruncated>{}</IsTruncated>", truncated ? "true" : "false");
  if (truncated) {
    out += "<NextRecordName>" + s3::XmlEscape(EscapeName((*it)->name)) +
           "</NextRecordName><NextRecordType>" + (*it)->type + "</NextRecordType>";
  }
  out += fmt::format("<MaxItems>{}</MaxItems></ListResourceRecordSetsResponse>",
                     q.count("maxitems") ? q["maxitems"] : "300");
  return {200, out};
}

}  // namespace reprise::testing
