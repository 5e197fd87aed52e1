#include "quorum/etcd_election.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/bytes.h"
#include "storage/s3/http.h"

namespace reprise::quorum {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string B64(std::string_view s) { return Base64Encode(AsBytes(s)); }

// etcd's JSON gateway prints int64 fields as strings ("ID":"7587..."); accept numbers too.
int64_t JsonInt(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return 0;
  try {
    if (it->is_string()) return std::stoll(it->get<std::string>());
    if (it->is_number_integer()) return it->get<int64_t>();
  } catch (const std::exception&) {
  }
  return 0;
}

Result<std::string> DecodeB64Field(const json& kv, const char* field) {
  auto it = kv.find(field);
  if (it == kv.end() || !it->is_string()) return std::string();  // empty values are omitted
  auto bytes = Base64Decode(it->get<std::string>());
  if (!bytes.ok()) return Internal(std::string("etcd answered a '") + field + "' not in base64");
  return std::string(AsString(*bytes));
}

// Maps an error answer: gRPC codes in the body first (etcd's gateway passes them through),
// then the HTTP status. kUnavailable means "this member cannot serve now, another may"
// (14 Unavailable, 4 DeadlineExceeded: "etcdserver: no leader", "request timed out").
Code ErrorCode(long http_status, int64_t grpc_code) {
  switch (grpc_code) {
    case 14:
    case 4:
      return Code::kUnavailable;
    case 5:
      return Code::kNotFound;
    case 7:
      return Code::kPermissionDenied;
    case 16:
      return Code::kUnauthenticated;
    default:
      break;
  }
  return http_status >= 500 ? Code::kUnavailable : Code::kInternal;
}

// The kv entry of the key in a range response (or a txn's response_range), if any.
const json* FirstKv(const json& range) {
  auto it = range.find("kvs");
  if (it == range.end() || !it->is_array() || it->empty()) return nullptr;
  return &(*it)[0];
}

}  // namespace

struct Election::Impl {
  explicit Impl(ElectionOptions o) : options(std::move(o)), http(HttpOptionsFor(options)) {}

  static s3::HttpOptions HttpOptionsFor(const ElectionOptions& o) {
    s3::HttpOptions h;
    // Short: a dead endpoint must leave time to try the next within one round.
    h.connect_timeout_seconds =
        std::clamp<long>(static_cast<long>(o.request_timeout.count() / 1000), 1, 2);
    h.total_timeout_ms = static_cast<long>(o.request_timeout.count());
    return h;
  }

  // POSTs `body` to `path` on the first endpoint that answers, starting with the one that
  // answered last (so a dead first endpoint does not cost a connect timeout every round).
  // Transport failures and "member cannot serve" answers move on to the next endpoint; other
  // etcd errors are returned as they are.
  Result<json> Call(const std::string& path, const json& body) {
    if (options.endpoints.empty()) {
      return InvalidArgument("no etcd endpoints for election key '" + options.key +
                             "': HINT: list the etcd client URLs in the plan");
    }
    const std::string payload = body.dump();
    Status last;
    for (size_t i = 0; i < options.endpoints.size(); ++i) {
      size_t idx = (preferred + i) % options.endpoints.size();
      std::string endpoint = options.endpoints[idx];
      while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
      s3::HttpRequest req{.method = "POST",
                          .url = endpoint + path,
                          .headers = {{"Content-Type", "application/json"}},
                          .body = AsBytes(payload)};
      auto resp = http.Send(req);
      if (!resp.ok()) {
        last = resp.status();
        continue;
      }
      std::string_view text = AsString(resp->body);
      json parsed = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
      int64_t grpc_code = parsed.is_object() ? JsonInt(parsed, "code") : 0;
      if (resp->status == 200 && parsed.is_object() && !parsed.contains("error")) {
        preferred = idx;
        return parsed;
      }
      std::string message =
          parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()
              ? parsed["message"].get<std::string>()
              : std::string(text.substr(0, 200));
      std::string what = "etcd '" + endpoint + "' " + path;
      Status st(ErrorCode(resp->status, grpc_code),
                what + ": HTTP " + std::to_string(resp->status) + ": " + message);
      if (st.code() == Code::kUnavailable) {
        last = st;
        continue;
      }
      return st;
    }
    return Unavailable("no etcd endpoint answered for election key '" + options.key +
                       "' (last: " + last.message() +
                       "): HINT: check that a quorum of the etcd cluster is up and reachable");
  }

  Status Grant() {
    ASSIGN_OR_RETURN(json r, Call("/v3/lease/grant", {{"TTL", options.ttl.count()}}));
    int64_t id = JsonInt(r, "ID");
    int64_t ttl = JsonInt(r, "TTL");
    if (id == 0 || ttl <= 0) return Internal("etcd granted no lease: " + r.dump());
    lease = id;
    lease_ttl = std::chrono::seconds(ttl);
    return Status::Ok();
  }

  // Refreshes the lease; false when etcd no longer knows it (expired or revoked).
  Result<bool> KeepAlive() {
    ASSIGN_OR_RETURN(json r, Call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}}));
    // The gateway wraps stream messages: {"result":{...}}.
    const json& msg = r.contains("result") && r["result"].is_object() ? r["result"] : r;
    int64_t ttl = JsonInt(msg, "TTL");
    if (ttl <= 0) return false;
    lease_ttl = std::chrono::seconds(ttl);
    return true;
  }

  Result<bool> CampaignLocked() {
    // Taken before the lease is granted or refreshed: etcd's expiry counts from some
    // moment after this, so leadership measured from here is never overstated.
    Clock::time_point refreshed = Clock::now();
    if (lease != 0) {
      ASSIGN_OR_RETURN(bool alive, KeepAlive());
      if (!alive) lease = 0;
    }
    if (lease == 0) RETURN_IF_ERROR(Grant());

    const std::string key = B64(options.key);
    json txn = {
        {"compare", json::array({{{"key", key},
                                  {"result", "EQUAL"},
                                  {"target", "CREATE"},
                                  {"create_revision", "0"}}})},
        {"success", json::array({{{"request_put",
                                   {{"key", key},
                                    {"value", B64(options.candidate)},
                                    {"lease", std::to_string(lease)}}}}})},
        {"failure", json::array({{{"request_range", {{"key", key}}}}})},
    };
    ASSIGN_OR_RETURN(json r, Call("/v3/kv/txn", txn));
    bool ours = r.value("succeeded", false);
    if (!ours) {
      const json* kv = nullptr;
      auto responses = r.find("responses");
      if (responses != r.end() && responses->is_array() && !responses->empty()) {
        auto range = (*responses)[0].find("response_range");
        if (range != (*responses)[0].end()) kv = FirstKv(*range);
      }
      if (kv != nullptr) {
        ASSIGN_OR_RETURN(std::string value, DecodeB64Field(*kv, "value"));
        ours = value == options.candidate && JsonInt(*kv, "lease") == lease;
      }
      // No kv: the key vanished between compare and range (cannot happen inside one txn,
      // but an empty answer must not make us leader).
    }
    if (ours) {
      auto ttl = std::min<std::chrono::seconds>(options.ttl, lease_ttl);
      SetLeaderUntil(refreshed + ttl - std::chrono::seconds(1));
    } else {
      SetLeaderUntil(std::nullopt);
    }
    return ours;
  }

  void SetLeaderUntil(std::optional<Clock::time_point> t) {
    leader_until.store(t ? t->time_since_epoch().count() : kNotLeader);
  }

  static constexpr Clock::rep kNotLeader = std::numeric_limits<Clock::rep>::min();

  ElectionOptions options;
  s3::HttpClient http;
  std::mutex mu;  // one round at a time; guards preferred, lease, lease_ttl
  size_t preferred = 0;
  int64_t lease = 0;  // 0: none
  std::chrono::seconds lease_ttl{0};
  // Outside the mutex, so IsLeader never waits for a round stuck on a slow etcd.
  std::atomic<Clock::rep> leader_until{kNotLeader};
};

Election::Election(ElectionOptions options) : impl_(new Impl(std::move(options))) {}

Election::~Election() { delete impl_; }

Result<bool> Election::Campaign() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto r = impl_->CampaignLocked();
  if (!r.ok()) {
    impl_->SetLeaderUntil(std::nullopt);
    return r.status().WithContext("campaigning for '" + impl_->options.key + "' as '" +
                                  impl_->options.candidate + "'");
  }
  return r;
}

Result<std::string> Election::Leader() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(json r, impl_->Call("/v3/kv/range", {{"key", B64(impl_->options.key)}}));
  const json* kv = FirstKv(r);
  if (kv == nullptr) return std::string();
  return DecodeB64Field(*kv, "value");
}

Status Election::Resign() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  d.SetLeaderUntil(std::nullopt);  // whatever etcd says below, we stop acting as leader now
  const std::string key = B64(d.options.key);
  json compare = json::array({{{"key", key},
                               {"result", "EQUAL"},
                               {"target", "VALUE"},
                               {"value", B64(d.options.candidate)}}});
  if (d.lease != 0) {
    // Same candidate name, other lease: another instance of us (a restarted monitor) holds it.
    compare.push_back({{"key", key},
                       {"result", "EQUAL"},
                       {"target", "LEASE"},
                       {"lease", std::to_string(d.lease)}});
  }
  json txn = {{"compare", compare},
              {"success", json::array({{{"request_delete_range", {{"key", key}}}}})}};
  auto deleted = d.Call("/v3/kv/txn", txn);
  if (!deleted.ok()) {
    return deleted.status().WithContext("resigning '" + d.options.key + "' as '" +
                                        d.options.candidate + "'");
  }
  if (d.lease != 0) {
    auto revoked = d.Call("/v3/lease/revoke", {{"ID", std::to_string(d.lease)}});
    // An expired lease is gone already; on other errors it expires by its TTL.
    if (!revoked.ok() && revoked.status().code() != Code::kNotFound) {
      return revoked.status().WithContext("revoking the lease of '" + d.options.candidate + "'");
    }
    d.lease = 0;
  }
  return Status::Ok();
}

Status Election::Publish(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->lease == 0) {
    return FailedPrecondition("no lease to publish '" + key + "' with: campaign first");
  }
  return impl_
      ->Call("/v3/kv/put", {{"key", B64(key)},
                            {"value", B64(value)},
                            {"lease", std::to_string(impl_->lease)}})
      .status();
}

Result<std::map<std::string, std::string>> Election::ReadPrefix(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::string end = prefix;
  // The range end of a prefix: the prefix with its last byte incremented.
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(end.back() + 1);
  ASSIGN_OR_RETURN(json r, impl_->Call("/v3/kv/range",
                                       {{"key", B64(prefix)}, {"range_end", B64(end)}}));
  std::map<std::string, std::string> out;
  auto kvs = r.find("kvs");
  if (kvs == r.end() || !kvs->is_array()) return out;
  for (const json& kv : *kvs) {
    ASSIGN_OR_RETURN(std::string k, DecodeB64Field(kv, "key"));
    ASSIGN_OR_RETURN(std::string v, DecodeB64Field(kv, "value"));
    out[k] = v;
  }
  return out;
}

Status Election::Put(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Call("/v3/kv/put", {{"key", B64(key)}, {"value", B64(value)}}).status();
}

Result<std::optional<std::string>> Election::Get(const std::string& key) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(json r, impl_->Call("/v3/kv/range", {{"key", B64(key)}}));
  const json* kv = FirstKv(r);
  if (kv == nullptr) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string v, DecodeB64Field(*kv, "value"));
  return std::optional<std::string>(v);
}

bool Election::IsLeader() const {
  Clock::rep until = impl_->leader_until.load();
  return until != Impl::kNotLeader && Clock::now().time_since_epoch().count() < until;
}

}  // namespace reprise::quorum
