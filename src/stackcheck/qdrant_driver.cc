// kind qdrant, through the REST API: `query` is a collection, `field` a payload key (a dotted
// path such as "meta.doc_id" reaches into objects).
//   each:      POST /collections/{c}/points/scroll, page by page (next_page_offset), asking only
//              for that payload key. A string value is yielded as is, an integer or boolean as
//              its JSON text, each element of an array; a point without the key yields nothing.
//   exists_in: one scroll per batch, filtered to points whose key matches any of the values
//              (as strings, and as integers for values that are integers); a full page is
//              followed by another scroll for the values still not found.
// Both first GET the collection, so a missing collection, a refused API key or a server that is
// down fail the check.
#include <cctype>
#include <charconv>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "stackcheck/drivers.h"
#include "storage/s3/http.h"

namespace reprise::stackcheck {

namespace {

constexpr int kPageSize = 1000;

std::string PathEscape(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

class QdrantClient {
 public:
  QdrantClient(const Endpoint& e, std::string collection)
      : base_(e.address), api_key_(e.password), component_(e.component),
        collection_(std::move(collection)),
        http_(s3::HttpOptions{
            .connect_timeout_seconds =
                std::max<long>(1, static_cast<long>((e.timeout.count() + 999) / 1000)),
            .total_timeout_ms = std::max<long>(1, static_cast<long>(e.timeout.count())),
            .ca_file = e.ca_file,
            .max_idle_handles = 1}) {
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
  }

  // GET /collections/{c}: the collection exists and the key is accepted.
  Status Probe() { return Call("GET", "", nullptr).status(); }

  // POST /collections/{c}/points/scroll; the `result` object.
  Result<nlohmann::json> Scroll(const nlohmann::json& body) {
    return Call("POST", "/points/scroll", &body);
  }

  const std::string& component() const { return component_; }

 private:
  Result<nlohmann::json> Call(const std::string& method, const std::string& path,
                              const nlohmann::json* body) {
    const std::string where = "collection '" + collection_ + "' of component '" + component_ +
                              "' at '" + base_ + "'";
    std::string text = body ? body->dump() : "";
    s3::HttpRequest request;
    request.method = method;
    request.url = base_ + "/collections/" + PathEscape(collection_) + path;
    request.headers.emplace_back("Content-Type", "application/json");
    request.headers.emplace_back("Accept", "application/json");
    if (!api_key_.empty()) request.headers.emplace_back("api-key", api_key_);
    request.body = ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    auto response = http_.Send(request);
    if (!response.ok()) return response.status().WithContext(where);
    nlohmann::json j = nlohmann::json::parse(AsString(response->body), nullptr, false);
    std::string detail;
    if (j.is_object() && j.contains("status") && j["status"].is_object()) {
      detail = j["status"].value("error", "");
    }
    if (detail.empty()) detail = std::string(AsString(response->body)).substr(0, 200);
    switch (response->status) {
      case 200:
        break;
      case 401:
      case 403:
        return Unauthenticated(where + " refused the request (HTTP " +
                               std::to_string(response->status) +
                               "): HINT: check the component's api_key secret");
      case 404:
        return NotFound(where + ": the collection does not exist (" + detail + ")");
      default:
        return Status(response->status >= 500 ? Code::kUnavailable : Code::kFailedPrecondition,
                      where + ": HTTP " + std::to_string(response->status) + ": " + detail);
    }
    if (!j.is_object() || !j.contains("result")) {
      return Internal(where + ": the answer is not Qdrant's JSON");
    }
    return j["result"];
  }

  std::string base_, api_key_, component_, collection_;
  s3::HttpClient http_;
};

// The value(s) at `field` in a payload: the key as given, else a dotted path.
const nlohmann::json* FieldOf(const nlohmann::json& payload, const std::string& field) {
  if (!payload.is_object()) return nullptr;
  if (auto it = payload.find(field); it != payload.end()) return &*it;
  const nlohmann::json* at = &payload;
  size_t start = 0;
  while (true) {
    size_t dot = field.find('.', start);
    std::string part = field.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!at->is_object()) return nullptr;
    auto it = at->find(part);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (dot == std::string::npos) return at;
    start = dot + 1;
  }
}

// Appends the scalars of `v` (an array's elements); objects and nulls are not values.
void AppendScalars(const nlohmann::json& v, std::vector<nlohmann::json>& out) {
  if (v.is_array()) {
    for (const auto& e : v) AppendScalars(e, out);
  } else if (v.is_string() || v.is_number() || v.is_boolean()) {
    out.push_back(v);
  }
}

// The scalars at `field` of every point of a scroll answer.
Result<std::vector<nlohmann::json>> PointScalars(const nlohmann::json& result,
                                                 const std::string& field,
                                                 const std::string& component) {
  if (!result.is_object() || !result.contains("points") || !result["points"].is_array()) {
    return Internal("component '" + component + "': a scroll answer without points");
  }
  std::vector<nlohmann::json> values;
  for (const auto& point : result["points"]) {
    if (!point.is_object()) continue;
    auto payload = point.find("payload");
    if (payload == point.end()) continue;
    if (const nlohmann::json* v = FieldOf(*payload, field)) AppendScalars(*v, values);
  }
  return values;
}

std::string Text(const nlohmann::json& scalar) {
  return scalar.is_string() ? scalar.get<std::string>() : scalar.dump();
}

std::optional<int64_t> AsInteger(const std::string& s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

class QdrantSource final : public ValueSource {
 public:
  QdrantSource(std::unique_ptr<QdrantClient> client, std::string field)
      : client_(std::move(client)), field_(std::move(field)) {}

  Status Each(size_t batch_size, const Sink& sink) override {
    nlohmann::json offset = nullptr;
    std::vector<std::string> batch;
    do {
      nlohmann::json body = {{"limit", kPageSize},
                             {"with_payload", nlohmann::json::array({field_})},
                             {"with_vector", false}};
      if (!offset.is_null()) body["offset"] = offset;
      ASSIGN_OR_RETURN(nlohmann::json result, client_->Scroll(body));
      ASSIGN_OR_RETURN(std::vector<nlohmann::json> values,
                       PointScalars(result, field_, client_->component()));
      for (const nlohmann::json& v : values) {
        batch.push_back(Text(v));
        if (batch.size() >= batch_size) {
          RETURN_IF_ERROR(sink(std::move(batch)));
          batch.clear();
        }
      }
      nlohmann::json next = result.value("next_page_offset", nlohmann::json());
      if (!next.is_null() && next == offset) {
        return Internal("component '" + client_->component() +
                        "': the scroll does not advance past offset " + next.dump());
      }
      offset = next;
    } while (!offset.is_null());
    if (!batch.empty()) return sink(std::move(batch));
    return Status::Ok();
  }

 private:
  std::unique_ptr<QdrantClient> client_;
  std::string field_;
};

class QdrantTest final : public MembershipTest {
 public:
  QdrantTest(std::unique_ptr<QdrantClient> client, std::string field)
      : client_(std::move(client)), field_(std::move(field)) {}

  Result<std::vector<bool>> Find(const std::vector<std::string>& values) override {
    std::vector<bool> found(values.size(), false);
    // Which values a payload value answers: by its text, and integers also by number.
    std::map<std::string, std::vector<size_t>> remaining;
    for (size_t i = 0; i < values.size(); ++i) remaining[values[i]].push_back(i);
    while (!remaining.empty()) {
      nlohmann::json strings = nlohmann::json::array(), integers = nlohmann::json::array();
      std::set<int64_t> seen_ints;
      for (const auto& [text, _] : remaining) {
        strings.push_back(text);
        if (auto n = AsInteger(text); n && seen_ints.insert(*n).second) integers.push_back(*n);
      }
      nlohmann::json should = nlohmann::json::array();
      should.push_back(MatchAny(strings));
      if (!integers.empty()) should.push_back(MatchAny(integers));
      nlohmann::json body = {{"limit", kPageSize},
                             {"with_payload", nlohmann::json::array({field_})},
                             {"with_vector", false},
                             {"filter", {{"should", should}}}};
      ASSIGN_OR_RETURN(nlohmann::json result, client_->Scroll(body));
      ASSIGN_OR_RETURN(std::vector<nlohmann::json> got,
                       PointScalars(result, field_, client_->component()));
      const size_t before = remaining.size();
      for (const nlohmann::json& v : got) {
        MarkFound(Text(v), remaining, found);
        if (v.is_number_integer()) {
          // The integer 42 in a payload answers "042" as well as "42".
          const int64_t n = v.get<int64_t>();
          for (auto it = remaining.begin(); it != remaining.end();) {
            auto m = AsInteger(it->first);
            if (m && *m == n) {
              for (size_t i : it->second) found[i] = true;
              it = remaining.erase(it);
            } else {
              ++it;
            }
          }
        }
      }
      const size_t points = result["points"].size();
      if (points < static_cast<size_t>(kPageSize)) break;  // every match was on this page
      if (remaining.size() == before) {
        return Internal("component '" + client_->component() +
                        "': a filtered scroll returned points matching none of the values");
      }
    }
    return found;
  }

 private:
  nlohmann::json MatchAny(const nlohmann::json& any) const {
    nlohmann::json match = nlohmann::json::object();
    match["any"] = any;
    nlohmann::json condition = nlohmann::json::object();
    condition["key"] = field_;
    condition["match"] = std::move(match);
    return condition;
  }

  static void MarkFound(const std::string& v, std::map<std::string, std::vector<size_t>>& remaining,
                        std::vector<bool>& found) {
    auto it = remaining.find(v);
    if (it == remaining.end()) return;
    for (size_t i : it->second) found[i] = true;
    remaining.erase(it);
  }

  std::unique_ptr<QdrantClient> client_;
  std::string field_;
};

Result<std::unique_ptr<QdrantClient>> Connect(const Endpoint& e,
                                              const ConsistencyCheck::Side& side) {
  if (side.field.empty()) {
    return InvalidArgument("component '" + e.component +
                           "' is a qdrant collection: name the payload key with 'payload:'");
  }
  auto client = std::make_unique<QdrantClient>(e, side.query);
  RETURN_IF_ERROR(client->Probe());
  return client;
}

}  // namespace

Result<std::unique_ptr<ValueSource>> OpenQdrantSource(const Endpoint& e,
                                                      const ConsistencyCheck::Side& side) {
  ASSIGN_OR_RETURN(std::unique_ptr<QdrantClient> client, Connect(e, side));
  return std::unique_ptr<ValueSource>(std::make_unique<QdrantSource>(std::move(client), side.field));
}

Result<std::unique_ptr<MembershipTest>> OpenQdrantTest(const Endpoint& e,
                                                       const ConsistencyCheck::Side& side) {
  ASSIGN_OR_RETURN(std::unique_ptr<QdrantClient> client, Connect(e, side));
  return std::unique_ptr<MembershipTest>(std::make_unique<QdrantTest>(std::move(client), side.field));
}

}  // namespace reprise::stackcheck
