// See qdrant_contract.h for what this serves and how it checks requests.
#include "qdrant_contract.h"

#include <archive.h>
#include <archive_entry.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace reprise::testing {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kTitle[] = "qdrant - vector search engine";

std::string Hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

std::string Sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return Hex(md, len);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Timestamp(const char* fmt) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

// Points sort as Qdrant orders ids: integers first (numerically), then UUIDs.
std::optional<std::string> SortKey(const json& id) {
  if (id.is_number_unsigned() || (id.is_number_integer() && id.get<int64_t>() >= 0)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0%020llu",
                  static_cast<unsigned long long>(id.get<uint64_t>()));
    return std::string(buf);
  }
  if (id.is_string()) {
    std::string s = id;
    std::string out = "1";
    for (char c : s) {
      if (c != '-') out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    return out;
  }
  return std::nullopt;
}

const json* PayloadValue(const json& payload, const std::string& key) {
  const json* cur = &payload;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!cur->is_object() || !cur->contains(part)) return nullptr;
    cur = &(*cur)[part];
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

bool ValueMatches(const json* field, const json& want) {
  if (!field) return false;
  if (field->is_array()) {
    for (const auto& e : *field)
      if (e == want) return true;
    return false;
  }
  return *field == want;
}

// Conditions the contract server evaluates; `unsupported` names anything else.
bool ConditionMatches(const json& cond, const json& payload, std::string* unsupported);

bool FilterMatches(const json& filter, const json& payload, std::string* unsupported) {
  if (filter.is_null()) return true;
  auto list = [](const json& v) {
    if (v.is_null()) return json::array();
    return v.is_array() ? v : json::array({v});
  };
  for (const auto& [k, v] : filter.items()) {
    if (k != "must" && k != "should" && k != "must_not") {
      if (!v.is_null()) *unsupported = "filter clause '" + k + "'";
    }
  }
  for (const auto& c : list(filter.value("must", json()))) {
    if (!ConditionMatches(c, payload, unsupported)) return false;
  }
  for (const auto& c : list(filter.value("must_not", json()))) {
    if (ConditionMatches(c, payload, unsupported)) return false;
  }
  json should = list(filter.value("should", json()));
  if (!should.empty()) {
    bool any = false;
    for (const auto& c : should) any = ConditionMatches(c, payload, unsupported) || any;
    if (!any) return false;
  }
  return true;
}

bool ConditionMatches(const json& cond, const json& payload, std::string* unsupported) {
  if (cond.contains("must") || cond.contains("should") || cond.contains("must_not")) {
    return FilterMatches(cond, payload, unsupported);
  }
  if (!cond.contains("key") || !cond.contains("match") || !cond["match"].is_object()) {
    *unsupported = "condition " + cond.dump();
    return false;
  }
  const json* field = PayloadValue(payload, cond["key"]);
  const json& m = cond["match"];
  if (m.contains("value")) return ValueMatches(field, m["value"]);
  if (m.contains("any")) {
    for (const auto& v : m["any"])
      if (ValueMatches(field, v)) return true;
    return false;
  }
  *unsupported = "match " + m.dump();
  return false;
}

json SelectPayload(const json& payload, const json& with) {
  if (with.is_array()) {
    json out = json::object();
    for (const auto& k : with) {
      std::string key = k;
      if (payload.contains(key)) out[key] = payload[key];
    }
    return out;
  }
  if (with.is_object() && with.contains("include")) return SelectPayload(payload, with["include"]);
  if (with.is_object() && with.contains("exclude")) {
    json out = payload;
    for (const auto& k : with["exclude"]) out.erase(k.get<std::string>());
    return out;
  }
  return payload;
}

// Names and contents of every member of a tar held in memory or a file; "" or an error.
std::string ReadTar(const std::string* memory, const std::string* file,
                    std::map<std::string, std::string>* members) {
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  int r = memory ? archive_read_open_memory(a, memory->data(), memory->size())
                 : archive_read_open_filename(a, file->c_str(), 1 << 16);
  if (r != ARCHIVE_OK) {
    std::string e = archive_error_string(a) ? archive_error_string(a) : "cannot open";
    archive_read_free(a);
    return "not a tar archive: " + e;
  }
  archive_entry* entry;
  std::string err;
  while ((r = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(entry);
    std::string data;
    const void* buf;
    size_t size;
    la_int64_t offset;
    int d;
    while ((d = archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
      if (static_cast<size_t>(offset) > data.size()) data.resize(static_cast<size_t>(offset));
      data.append(static_cast<const char*>(buf), size);
    }
    if (d != ARCHIVE_EOF) {
      err = "member '" + name + "' cannot be read: " +
            (archive_error_string(a) ? archive_error_string(a) : "?");
      break;
    }
    (*members)[name] = std::move(data);
  }
  if (err.empty() && r != ARCHIVE_EOF) {
    err = std::string("damaged tar archive: ") +
          (archive_error_string(a) ? archive_error_string(a) : "?");
  }
  archive_read_free(a);
  return err;
}

// The checks Qdrant's shard recovery starts with: a tar with the shard's config and state.
std::string CheckShardSnapshot(const std::string* memory, const std::string* file) {
  std::map<std::string, std::string> m;
  std::string err = ReadTar(memory, file, &m);
  if (!err.empty()) return err;
  for (const char* need : {"shard_config.json", "replica_state.json"}) {
    if (!m.count(need)) return std::string("shard snapshot has no ") + need;
    if (json::parse(m[need], nullptr, false).is_discarded()) {
      return std::string("shard snapshot's ") + need + " is not JSON";
    }
  }
  return "";
}

}  // namespace

std::string QdrantContract::Call::Query(const std::string& name, const std::string& def) const {
  for (const auto& [k, v] : query)
    if (k == name) return v;
  return def;
}

QdrantContract::QdrantContract(Options options)
    : options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  std::string err;
  api_ = OpenApi::Load(options_.reference_dir + "/openapi-v1.19.json", &err);
  if (!api_) {
    error_ = err;
    return;
  }
  if (!fs::exists(options_.reference_dir + "/test-shard.snapshot")) {
    error_ = "no test-shard.snapshot in '" + options_.reference_dir + "'";
    return;
  }
  if (options_.data_dir.empty()) {
    char tmpl[] = "/tmp/qdrant-contract-XXXXXX";
    if (!mkdtemp(tmpl)) {
      error_ = "cannot make a temp dir";
      return;
    }
    options_.data_dir = tmpl;
    own_data_dir_ = true;
  }
  std::error_code ec;
  fs::create_directories(options_.data_dir + "/snapshots", ec);
  fs::create_directories(options_.data_dir + "/incoming", ec);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  server_->Put(".*", handler);
  server_->Delete(".*", handler);
  server_->Patch(".*", handler);
  server_->Options(".*", handler);
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port("127.0.0.1");
  } else {
    port_ = server_->bind_to_port("127.0.0.1", options_.port) ? options_.port : -1;
  }
  if (port_ <= 0) {
    error_ = "cannot bind 127.0.0.1:" + std::to_string(options_.port);
    return;
  }
  running_ = true;
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

QdrantContract::~QdrantContract() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  server_->stop();
  if (thread_.joinable()) thread_.join();
  std::vector<std::thread> bg;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bg.swap(background_);
  }
  for (auto& t : bg) t.join();
  if (own_data_dir_) {
    std::error_code ec;
    fs::remove_all(options_.data_dir, ec);
  }
}

std::string QdrantContract::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void QdrantContract::AcceptNext(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  accept_next_ = n;
}

void QdrantContract::CorruptNextChecksums(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  corrupt_next_ = n;
}

void QdrantContract::SetVersion(const std::string& version) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.version = version;
}

std::vector<std::string> QdrantContract::Violations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return violations_;
}

std::vector<std::string> QdrantContract::Log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

bool QdrantContract::HasCollection(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = collections_.find(name);
  return it != collections_.end() && !it->second.recovering;
}

std::vector<std::string> QdrantContract::Collections() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, c] : collections_)
    if (!c.recovering) out.push_back(name);
  return out;
}

json QdrantContract::Points(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  json out = json::array();
  auto it = collections_.find(name);
  if (it == collections_.end()) return out;
  for (const auto& [key, p] : it->second.points) out.push_back(p);
  return out;
}

std::vector<std::string> QdrantContract::SnapshotFiles(const std::string& collection) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(SnapshotDir(collection), ec)) {
    std::string n = e.path().filename().string();
    if (n.size() > 9 && n.substr(n.size() - 9) == ".snapshot") out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> QdrantContract::ShardUploads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shard_uploads_;
}

std::vector<std::string> QdrantContract::HeaderValues(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = headers_.find(name);
  return it == headers_.end() ? std::vector<std::string>{} : it->second;
}

std::string QdrantContract::SnapshotDir(const std::string& collection) const {
  return options_.data_dir + "/snapshots/" + collection;
}

bool QdrantContract::TakeAccept() {
  std::lock_guard<std::mutex> lock(mu_);
  if (accept_next_ <= 0) return false;
  --accept_next_;
  return true;
}

void QdrantContract::Background(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  background_.emplace_back([this, fn = std::move(fn)] {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(options_.async_delay_ms),
                       [this] { return stopping_; })) {
        return;
      }
    }
    fn();
  });
}

QdrantContract::Reply QdrantContract::Ok(json result) const {
  return {200, {{"result", std::move(result)}, {"status", "ok"}, {"time", 0.0001}}, ""};
}

QdrantContract::Reply QdrantContract::Accepted() const {
  return {202, {{"status", "accepted"}, {"time", 0.0001}}, ""};
}

QdrantContract::Reply QdrantContract::Error(int status, const std::string& message) const {
  return {status, {{"status", {{"error", message}}}, {"time", 0.0001}}, ""};
}

void QdrantContract::Handle(const httplib::Request& req, httplib::Response& res) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, v] : req.headers) {
      std::string n = k;
      for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      headers_[n].push_back(v);
    }
  }
  Call call{&req, {}, {}};
  for (const auto& [k, v] : req.params) call.query.emplace_back(k, v);

  Reply reply;
  std::vector<std::string> problems;
  std::string err;
  std::optional<OpenApi::Match> m = api_->Find(req.method, req.path, &err);
  bool authorized = options_.api_key.empty() ||
                    req.get_header_value("api-key") == options_.api_key ||
                    req.get_header_value("Authorization") == "Bearer " + options_.api_key;
  if (!m) {
    problems.push_back(req.method + " " + req.path + ": " + err);
    reply = Error(404, err);
  } else if (!authorized) {
    reply = Error(401, "Must provide an API key or an Authorization bearer token");
  } else {
    call.match = *m;
    problems = api_->CheckParameters(*m, call.query);
    std::vector<std::string> fields;
    for (const auto& [name, part] : req.files) fields.push_back(name);
    auto body_problems =
        api_->CheckBody(*m, req.get_header_value("Content-Type"),
                        req.is_multipart_form_data() ? "" : req.body, fields);
    problems.insert(problems.end(), body_problems.begin(), body_problems.end());
    if (!problems.empty()) {
      reply = Error(400, "Format error: " + problems.front());
    } else {
      reply = Dispatch(call);
    }
  }
  if (m && reply.file.empty()) {
    auto bad = api_->CheckResponse(*m, reply.status, reply.body);
    for (auto& b : bad) problems.push_back("(server bug) " + b);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& p : problems) violations_.push_back(std::move(p));
    std::string line = req.method + " " + req.path + " -> " + std::to_string(reply.status);
    if (reply.status >= 400 && reply.body.contains("status") && reply.body["status"].is_object()) {
      line += " " + reply.body["status"].value("error", "");
    }
    log_.push_back(line);
  }
  res.status = reply.status;
  if (!reply.file.empty()) {
    std::error_code ec;
    auto size = fs::file_size(reply.file, ec);
    auto in = std::make_shared<std::ifstream>(reply.file, std::ios::binary);
    res.set_content_provider(
        static_cast<size_t>(size), "application/octet-stream",
        [in](size_t offset, size_t length, httplib::DataSink& sink) {
          std::vector<char> buf(std::min<size_t>(length, 1 << 16));
          in->seekg(static_cast<std::streamoff>(offset));
          in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
          if (in->gcount() <= 0) return false;
          sink.write(buf.data(), static_cast<size_t>(in->gcount()));
          return true;
        });
  } else {
    res.set_content(reply.body.dump(), "application/json");
  }
}

QdrantContract::Reply QdrantContract::Dispatch(const Call& c) {
  const std::string& t = c.match.path_template;
  const std::string& method = c.match.method;
  auto p = [&](const char* name) { return c.match.path_params.at(name); };
  json body = json::parse(c.req->body, nullptr, false);
  if (body.is_discarded()) body = json::object();
  bool wait = c.Query("wait", "true") == "true";

  if (t == "/") {
    std::lock_guard<std::mutex> lock(mu_);
    return {200, {{"title", kTitle}, {"version", options_.version}, {"commit", "contract"}}, ""};
  }
  if (t == "/cluster") {
    if (options_.cluster_status != "enabled") return Ok({{"status", "disabled"}});
    json peers = json::object();
    for (const auto& [id, uri] : options_.peers) peers[std::to_string(id)] = {{"uri", uri}};
    return Ok({{"status", "enabled"},
               {"peer_id", options_.peer_id},
               {"peers", peers},
               {"raft_info",
                {{"term", 1}, {"commit", 1}, {"pending_operations", 0},
                 {"leader",
                  options_.peers.empty() ? options_.peer_id : options_.peers.begin()->first},
                 {"role", "Follower"}, {"is_voter", true}}},
               {"consensus_thread_status",
                {{"consensus_thread_status", "working"},
                 {"last_update", Timestamp("%Y-%m-%dT%H:%M:%SZ")}}},
               {"message_send_failures", json::object()}});
  }
  if (t == "/collections") {
    json list = json::array();
    for (const auto& n : Collections()) list.push_back({{"name", n}});
    return Ok({{"collections", list}});
  }
  if (t == "/collections/{collection_name}") {
    std::string name = p("collection_name");
    std::lock_guard<std::mutex> lock(mu_);
    auto it = collections_.find(name);
    bool exists = it != collections_.end() && !it->second.recovering;
    if (method == "get") {
      if (it == collections_.end() || (it->second.recovering && it->second.points.empty() &&
                                       it->second.create_body.is_null())) {
        return Error(404, "Not found: Collection `" + name + "` doesn't exist!");
      }
      return Ok(CollectionInfo(it->second));
    }
    if (method == "put") {
      if (it != collections_.end()) {
        return Error(400, "Wrong input: Collection `" + name + "` already exists!");
      }
      if (!body.contains("vectors")) {
        return Error(400, "Wrong input: the contract server needs 'vectors' to create '" + name +
                              "'");
      }
      collections_[name] = Collection{body, {}, false};
      return Ok(true);
    }
    if (method == "delete") {
      if (exists) collections_.erase(it);
      return Ok(exists);
    }
    return Error(400, "the contract server does not implement " + method + " " + t);
  }
  if (t == "/collections/{collection_name}/points" && method == "put") {
    return Upsert(p("collection_name"), body);
  }
  if (t == "/collections/{collection_name}/points/scroll") {
    return Scroll(p("collection_name"), body);
  }
  if (t == "/collections/{collection_name}/points/count") {
    return Count(p("collection_name"), body);
  }
  if (t == "/collections/{collection_name}/snapshots") {
    if (method == "get") return ListSnapshots(p("collection_name"));
    return CreateSnapshot(p("collection_name"), wait);
  }
  if (t == "/collections/{collection_name}/snapshots/{snapshot_name}") {
    std::string coll = p("collection_name"), name = p("snapshot_name");
    std::string file = SnapshotDir(coll) + "/" + name;
    if (name.find('/') != std::string::npos || name.find("..") != std::string::npos ||
        !fs::exists(file)) {
      return Error(404, "Not found: Snapshot " + name + " not found");
    }
    if (method == "get") return {200, json(), file};
    std::error_code ec;
    fs::remove(file, ec);
    std::lock_guard<std::mutex> lock(mu_);
    checksums_[coll].erase(name);
    return Ok(true);
  }
  if (t == "/collections/{collection_name}/snapshots/upload") {
    auto it = c.req->files.find("snapshot");
    if (it == c.req->files.end()) return Error(400, "Wrong input: no 'snapshot' part");
    std::string file;
    {
      std::lock_guard<std::mutex> lock(mu_);
      file = options_.data_dir + "/incoming/upload-" + std::to_string(++snapshot_counter_);
    }
    std::ofstream(file, std::ios::binary) << it->second.content;
    return Recover(p("collection_name"), file, c.Query("checksum"), wait);
  }
  if (t == "/collections/{collection_name}/snapshots/recover") {
    std::string location = body.value("location", "");
    if (location.rfind("http://", 0) != 0) {
      return Error(400, "Wrong input: the contract server fetches http:// locations only, not '" +
                            location + "'");
    }
    std::string rest = location.substr(7);
    size_t slash = rest.find('/');
    std::string host = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
    std::string file;
    {
      std::lock_guard<std::mutex> lock(mu_);
      file = options_.data_dir + "/incoming/fetch-" + std::to_string(++snapshot_counter_);
    }
    httplib::Client cli("http://" + host);
    cli.set_read_timeout(std::chrono::seconds(60));
    std::ofstream out(file, std::ios::binary);
    auto r = cli.Get(path, [&](const char* data, size_t n) {
      out.write(data, static_cast<std::streamsize>(n));
      return true;
    });
    out.close();
    if (!r || r->status != 200) {
      return Error(400, "Service internal error: cannot download '" + location + "': " +
                            (r ? "HTTP " + std::to_string(r->status)
                               : httplib::to_string(r.error())));
    }
    std::string checksum = body.contains("checksum") && body["checksum"].is_string()
                               ? body["checksum"].get<std::string>()
                               : "";
    return Recover(p("collection_name"), file, checksum, wait);
  }
  if (t == "/collections/{collection_name}/shards/{shard_id}/snapshots/upload") {
    return ShardUpload(c, p("collection_name"), p("shard_id"));
  }
  return Error(400, "the contract server does not implement " + method + " " + t);
}

json QdrantContract::CollectionInfo(const Collection& c) const {
  json vectors = c.create_body.is_object() ? c.create_body.value("vectors", json::object())
                                           : json::object();
  return {{"status", c.recovering ? "yellow" : "green"},
          {"optimizer_status", "ok"},
          {"segments_count", 1},
          {"points_count", c.points.size()},
          {"indexed_vectors_count", 0},
          {"config",
           {{"params",
             {{"vectors", vectors}, {"shard_number", 1}, {"replication_factor", 1},
              {"write_consistency_factor", 1}, {"on_disk_payload", true}}},
            {"hnsw_config", {{"m", 16}, {"ef_construct", 100}, {"full_scan_threshold", 10000}}},
            {"optimizer_config", {{"default_segment_number", 0}, {"flush_interval_sec", 5}}},
            {"wal_config", {{"wal_capacity_mb", 32}, {"wal_segments_ahead", 0}}}}},
          {"payload_schema", json::object()}};
}

QdrantContract::Reply QdrantContract::Upsert(const std::string& name, const json& body) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end() || it->second.recovering) {
    return Error(404, "Not found: Collection `" + name + "` doesn't exist!");
  }
  std::vector<json> points;
  if (body.contains("points")) {
    for (const auto& pt : body["points"]) points.push_back(pt);
  } else if (body.contains("batch")) {
    const json& b = body["batch"];
    if (!b["vectors"].is_array() || b["vectors"].size() != b["ids"].size()) {
      return Error(400, "Wrong input: batch ids and vectors differ in length");
    }
    for (size_t i = 0; i < b["ids"].size(); ++i) {
      json pt = {{"id", b["ids"][i]}, {"vector", b["vectors"][i]}};
      if (b.contains("payloads") && b["payloads"].is_array() && i < b["payloads"].size()) {
        pt["payload"] = b["payloads"][i];
      }
      points.push_back(pt);
    }
  }
  json vectors = it->second.create_body.value("vectors", json::object());
  for (auto& pt : points) {
    auto key = SortKey(pt["id"]);
    if (!key) return Error(400, "Wrong input: bad point id " + pt["id"].dump());
    if (vectors.contains("size") && pt["vector"].is_array() &&
        pt["vector"].size() != vectors["size"].get<size_t>()) {
      return Error(400, "Wrong input: Vector dimension error: expected dim: " +
                            vectors["size"].dump() + ", got " +
                            std::to_string(pt["vector"].size()));
    }
  }
  for (auto& pt : points) {
    json stored = {{"id", pt["id"]},
                   {"vector", pt["vector"]},
                   {"payload", pt.contains("payload") && pt["payload"].is_object()
                                   ? pt["payload"]
                                   : json::object()}};
    it->second.points[*SortKey(pt["id"])] = std::move(stored);
  }
  return Ok({{"operation_id", ++snapshot_counter_}, {"status", "completed"}});
}

QdrantContract::Reply QdrantContract::Scroll(const std::string& name, const json& body) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end() || it->second.recovering) {
    return Error(404, "Not found: Collection `" + name + "` doesn't exist!");
  }
  size_t limit = body.contains("limit") && body["limit"].is_number() ? body["limit"].get<size_t>()
                                                                    : 10;
  json with_payload = body.contains("with_payload") && !body["with_payload"].is_null()
                          ? body["with_payload"]
                          : json(true);
  json with_vector = body.value("with_vector", json(false));
  json filter = body.value("filter", json());
  auto start = it->second.points.begin();
  if (body.contains("offset") && !body["offset"].is_null()) {
    auto key = SortKey(body["offset"]);
    if (!key) return Error(400, "Wrong input: bad offset");
    start = it->second.points.lower_bound(*key);
  }
  json out = json::array();
  json next = nullptr;
  std::string unsupported;
  for (auto p = start; p != it->second.points.end(); ++p) {
    if (!FilterMatches(filter, p->second["payload"], &unsupported)) continue;
    if (out.size() == limit) {
      next = p->second["id"];
      break;
    }
    json rec = {{"id", p->second["id"]}};
    if (!(with_payload.is_boolean() && !with_payload.get<bool>())) {
      rec["payload"] = SelectPayload(p->second["payload"], with_payload);
    }
    if (!(with_vector.is_boolean() && !with_vector.get<bool>())) {
      rec["vector"] = p->second["vector"];
    }
    out.push_back(std::move(rec));
  }
  if (!unsupported.empty()) {
    violations_.push_back("unsupported by the contract server: " + unsupported);
    return Error(400, "the contract server does not implement " + unsupported);
  }
  return Ok({{"points", out}, {"next_page_offset", next}});
}

QdrantContract::Reply QdrantContract::Count(const std::string& name, const json& body) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end() || it->second.recovering) {
    return Error(404, "Not found: Collection `" + name + "` doesn't exist!");
  }
  json filter = body.value("filter", json());
  std::string unsupported;
  size_t n = 0;
  for (const auto& [k, pt] : it->second.points) {
    if (FilterMatches(filter, pt["payload"], &unsupported)) ++n;
  }
  if (!unsupported.empty()) {
    violations_.push_back("unsupported by the contract server: " + unsupported);
    return Error(400, "the contract server does not implement " + unsupported);
  }
  return Ok({{"count", n}});
}

QdrantContract::Reply QdrantContract::ListSnapshots(const std::string& collection) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!collections_.count(collection)) {
      return Error(404, "Not found: Collection `" + collection + "` doesn't exist!");
    }
  }
  json list = json::array();
  for (const auto& name : SnapshotFiles(collection)) {
    std::error_code ec;
    auto path = SnapshotDir(collection) + "/" + name;
    auto size = fs::file_size(path, ec);
    std::lock_guard<std::mutex> lock(mu_);
    json sum = nullptr;
    auto it = checksums_[collection].find(name);
    if (it != checksums_[collection].end()) sum = it->second;
    list.push_back({{"name", name},
                    {"creation_time", Timestamp("%Y-%m-%dT%H:%M:%S")},
                    {"size", static_cast<uint64_t>(size)},
                    {"checksum", sum}});
  }
  return Ok(list);
}

std::string QdrantContract::WriteSnapshot(const std::string& collection,
                                          const Collection& state) {
  std::string dir = SnapshotDir(collection);
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    name = collection + "-" + std::to_string(options_.peer_id) + "-" +
           Timestamp("%Y-%m-%d-%H-%M-%S") + "-" + std::to_string(++snapshot_counter_) +
           ".snapshot";
  }
  std::string tmp = dir + "/." + name + ".tmp";
  json config = {{"name", collection}, {"create", state.create_body}};
  json points = json::array();
  for (const auto& [k, p] : state.points) points.push_back(p);
  std::vector<std::pair<std::string, std::string>> members = {
      {"config.json", config.dump()},
      {"points.json", points.dump()},
      {"0/shard.snapshot", ReadAll(options_.reference_dir + "/test-shard.snapshot")}};
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open_filename(a, tmp.c_str());
  for (const auto& [mname, data] : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, mname.c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, std::time(nullptr), 0);
    archive_write_header(a, e);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  std::string sum = Sha256File(tmp);
  std::lock_guard<std::mutex> lock(mu_);
  if (corrupt_next_ > 0) {
    --corrupt_next_;
    sum[0] = sum[0] == '0' ? '1' : '0';
  }
  checksums_[collection][name] = sum;
  fs::rename(tmp, dir + "/" + name, ec);
  return name;
}

std::string QdrantContract::ReadSnapshot(const std::string& file, Collection* out) const {
  std::map<std::string, std::string> m;
  std::string err = ReadTar(nullptr, &file, &m);
  if (!err.empty()) return err;
  if (!m.count("config.json") || !m.count("points.json")) {
    return "not a collection snapshot (no config.json / points.json)";
  }
  if (!m.count("0/shard.snapshot")) return "collection snapshot has no shard 0";
  std::string shard = CheckShardSnapshot(&m["0/shard.snapshot"], nullptr);
  if (!shard.empty()) return "shard 0: " + shard;
  json config = json::parse(m["config.json"], nullptr, false);
  json points = json::parse(m["points.json"], nullptr, false);
  if (config.is_discarded() || points.is_discarded() || !points.is_array()) {
    return "damaged collection snapshot";
  }
  out->create_body = config.value("create", json::object());
  for (const auto& p : points) out->points[*SortKey(p["id"])] = p;
  return "";
}

QdrantContract::Reply QdrantContract::CreateSnapshot(const std::string& collection, bool wait) {
  Collection copy;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = collections_.find(collection);
    if (it == collections_.end() || it->second.recovering) {
      return Error(404, "Not found: Collection `" + collection + "` doesn't exist!");
    }
    copy = it->second;
  }
  if (TakeAccept() || !wait) {
    Background([this, collection, copy] { WriteSnapshot(collection, copy); });
    return Accepted();
  }
  std::string name = WriteSnapshot(collection, copy);
  std::error_code ec;
  auto size = fs::file_size(SnapshotDir(collection) + "/" + name, ec);
  std::lock_guard<std::mutex> lock(mu_);
  return Ok({{"name", name},
             {"creation_time", Timestamp("%Y-%m-%dT%H:%M:%S")},
             {"size", static_cast<uint64_t>(size)},
             {"checksum", checksums_[collection][name]}});
}

QdrantContract::Reply QdrantContract::Recover(const std::string& collection,
                                              const std::string& file,
                                              const std::string& checksum, bool wait) {
  std::string actual = Sha256File(file);
  if (!checksum.empty() && checksum != actual) {
    std::error_code ec;
    fs::remove(file, ec);
    return Error(400, "Wrong input: Snapshot checksum mismatch: expected " + checksum +
                          ", got " + actual);
  }
  Collection restored;
  std::string err = ReadSnapshot(file, &restored);
  std::error_code ec;
  fs::remove(file, ec);
  if (!err.empty()) return Error(400, "Wrong input: invalid snapshot: " + err);
  if (TakeAccept() || !wait) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      collections_[collection].recovering = true;
    }
    Background([this, collection, restored]() mutable {
      std::lock_guard<std::mutex> lock(mu_);
      restored.recovering = false;
      collections_[collection] = std::move(restored);
    });
    return Accepted();
  }
  std::lock_guard<std::mutex> lock(mu_);
  collections_[collection] = std::move(restored);
  return Ok(true);
}

QdrantContract::Reply QdrantContract::ShardUpload(const Call& c, const std::string& collection,
                                                  const std::string& shard) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = collections_.find(collection);
    if (it == collections_.end() || it->second.recovering) {
      return Error(404, "Not found: Collection `" + collection + "` doesn't exist!");
    }
  }
  auto it = c.req->files.find("snapshot");
  if (it == c.req->files.end()) return Error(400, "Wrong input: no 'snapshot' part");
  const std::string& data = it->second.content;
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string actual = Hex(md, len);
  std::string checksum = c.Query("checksum");
  if (!checksum.empty() && checksum != actual) {
    return Error(400, "Wrong input: Snapshot checksum mismatch: expected " + checksum +
                          ", got " + actual);
  }
  std::string err = CheckShardSnapshot(&data, nullptr);
  if (!err.empty()) return Error(400, "Wrong input: invalid shard snapshot: " + err);
  std::lock_guard<std::mutex> lock(mu_);
  shard_uploads_.push_back(collection + "/" + shard + " " + actual);
  return Ok(true);
}

}  // namespace reprise::testing
