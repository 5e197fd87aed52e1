#include "components/qdrant/qdrant_component.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "components/qdrant/qdrant_client.h"
#include "components/qdrant/snapshot_server.h"

namespace reprise {

namespace {

using nlohmann::json;
using qdrant::Client;
using qdrant::Reply;
using Clock = std::chrono::steady_clock;

// Streaming SHA-256, lowercase hex as Qdrant prints its checksums.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(ByteView d) { EVP_DigestUpdate(ctx_, d.data(), d.size()); }
  std::string Hex() {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; ++i) {
      s.push_back(digits[md[i] >> 4]);
      s.push_back(digits[md[i] & 15]);
    }
    return s;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Waits between polls: 50 ms doubling to 1 s.
class Backoff {
 public:
  explicit Backoff(std::chrono::seconds limit) : deadline_(Clock::now() + limit) {}
  // False when the deadline has passed.
  bool Wait() {
    if (Clock::now() >= deadline_) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    std::this_thread::sleep_for(std::min(delay_, left));
    delay_ = std::min(delay_ * 2, std::chrono::milliseconds(1000));
    return true;
  }

 private:
  Clock::time_point deadline_;
  std::chrono::milliseconds delay_{50};
};

std::string CollPath(const std::string& collection) {
  return "/collections/" + qdrant::UrlEncode(collection);
}

std::vector<std::string> SplitTargets(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string part = s.substr(start, comma == std::string::npos ? comma : comma - start);
    while (!part.empty() && (part.back() == '/' || part.back() == ' ')) part.pop_back();
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<std::string> ServerVersion(const Client& c) {
  ASSIGN_OR_RETURN(json v, c.Get("/"));
  if (!v.is_object() || !v.contains("version") || !v["version"].is_string()) {
    return FailedPrecondition("'" + c.url() +
                              "' does not say its version at GET /; HINT: is this Qdrant's REST "
                              "API (port 6333)?");
  }
  return v["version"].get<std::string>();
}

Result<json> ListSnapshots(const Client& c, const std::string& collection) {
  ASSIGN_OR_RETURN(json list, c.Get(CollPath(collection) + "/snapshots"));
  if (!list.is_array()) {
    return FailedPrecondition("snapshot list of collection '" + collection + "' on '" + c.url() +
                              "' is not a list");
  }
  return list;
}

// Deletes a snapshot on the server when it goes out of scope, success or not.
class SnapshotGuard {
 public:
  SnapshotGuard(const Client& c, std::string collection, std::string name, BackupSink& sink)
      : c_(c), collection_(std::move(collection)), name_(std::move(name)), sink_(sink) {}
  ~SnapshotGuard() {
    auto r = c_.Call("DELETE", CollPath(collection_) + "/snapshots/" + qdrant::UrlEncode(name_) +
                                   "?wait=true");
    if (!r.ok()) {
      sink_.Warn("snapshot '" + name_ + "' of collection '" + collection_ + "' on '" + c_.url() +
                 "' was not deleted: " + r.status().message());
    } else if (r->status != 200 && r->status != 202) {
      sink_.Warn(c_.ErrorFrom(*r, "deleting snapshot '" + name_ + "'").message() +
                 "; HINT: delete it on the server, it takes disk space there");
    }
  }

 private:
  const Client& c_;
  std::string collection_, name_;
  BackupSink& sink_;
};

class QdrantComponent final : public Component {
 public:
  QdrantComponent(QdrantSpec spec, std::string api_key)
      : spec_(std::move(spec)), api_key_(std::move(api_key)) {}
  std::string kind() const override { return "qdrant"; }

  Result<json> Backup(BackupSink& sink) override {
    std::vector<std::string> peers = spec_.peers;
    if (peers.empty() && !spec_.url.empty()) peers.push_back(spec_.url);
    if (peers.empty()) {
      return FailedPrecondition(
          "qdrant component has no 'url'; HINT: set url: http://qdrant:6333 in the plan");
    }
    json info = {{"peers", json::array()}};
    std::string first_version;
    for (size_t i = 0; i < peers.size(); ++i) {
      Client c(ClientFor(peers[i]));
      ASSIGN_OR_RETURN(std::string version, ServerVersion(c));
      if (i == 0) first_version = version;
      if (qdrant::MajorMinor(version) != qdrant::MajorMinor(first_version)) {
        sink.Warn("peer '" + peers[i] + "' runs Qdrant " + version + ", peer '" + peers[0] +
                  "' runs " + first_version + ": the cluster is mid-upgrade");
      }
      std::vector<std::string> collections = spec_.collections;
      if (collections.empty()) {
        ASSIGN_OR_RETURN(json list, c.Get("/collections"));
        if (list.is_object() && list.contains("collections") && list["collections"].is_array()) {
          for (const auto& d : list["collections"]) {
            if (d.is_object() && d.contains("name") && d["name"].is_string()) {
              collections.push_back(d["name"]);
            }
          }
        }
        std::sort(collections.begin(), collections.end());
        if (collections.empty()) sink.Warn("Qdrant at '" + peers[i] + "' has no collections");
      }
      json peer = {{"url", peers[i]}, {"version", version}, {"snapshots", json::array()}};
      for (const auto& coll : collections) {
        Result<json> snap = BackupCollection(c, i, version, coll, sink);
        if (!snap.ok()) {
          return snap.status().WithContext("collection '" + coll + "' on '" + peers[i] + "'");
        }
        peer["snapshots"].push_back(std::move(*snap));
      }
      info["peers"].push_back(std::move(peer));
    }
    info["version"] = first_version;
    return info;
  }

  Status Restore(const json& info, RestoreSource& source,
                 const RestoreOptions& options) override {
    std::vector<std::string> targets = SplitTargets(options.target);
    if (targets.empty()) {
      targets = spec_.peers;
      if (targets.empty() && !spec_.url.empty()) targets.push_back(spec_.url);
    }
    if (targets.empty()) {
      return InvalidArgument(
          "no Qdrant to restore into; HINT: --target http://qdrant:6333 (a cluster: one URL per "
          "peer, comma-separated)");
    }
    if (!info.is_object() || !info.contains("peers") || !info["peers"].is_array() ||
        info["peers"].empty()) {
      return Corruption("the point's qdrant record has no peers");
    }
    const json& peers = info["peers"];
    if (targets.size() != peers.size()) {
      std::string order;
      for (const auto& p : peers) order += (order.empty() ? "" : ", ") + p.value("url", "?");
      return InvalidArgument("the point holds snapshots of " + std::to_string(peers.size()) +
                             " Qdrant peer(s) (" + order + ") but " +
                             std::to_string(targets.size()) +
                             " target(s) were given; HINT: give one URL per peer, "
                             "comma-separated, in that order");
    }
    bool force = options.params.is_object() && options.params.value("force", false);
    bool by_url = spec_.restore_method == QdrantSpec::RestoreMethod::kUrl;
    if (options.params.is_object() && options.params.contains("method")) {
      std::string m = options.params.value("method", "");
      if (m != "upload" && m != "url") {
        return InvalidArgument("restore method '" + m + "' is not upload or url");
      }
      by_url = m == "url";
    }
    std::string serve_address =
        options.params.is_object() ? options.params.value("serve_address", "127.0.0.1")
                                   : "127.0.0.1";

    // Collect the entries to restore, then check every target before changing anything.
    std::vector<json> entries;
    RETURN_IF_ERROR(source.ForEachEntry([&](const json& e) -> Status {
      if (e.value("type", "") != "snapshot") return Status::Ok();
      if (!Wanted(e.value("collection", ""), options.include)) return Status::Ok();
      entries.push_back(e);
      return Status::Ok();
    }));
    if (entries.empty()) return NotFound("no collection snapshot of the point matches");
    std::vector<Client> clients;
    for (size_t i = 0; i < targets.size(); ++i) {
      clients.emplace_back(ClientFor(targets[i]));
      ASSIGN_OR_RETURN(std::string version, ServerVersion(clients.back()));
      std::string recorded = peers[i].value("version", "");
      if (qdrant::MajorMinor(version) != qdrant::MajorMinor(recorded)) {
        std::string what = "snapshots taken by Qdrant " + recorded + " cannot be restored into '" +
                           targets[i] + "', which runs Qdrant " + version +
                           ": Qdrant recovers snapshots of its own minor version only";
        if (!force) {
          return FailedPrecondition(what + "; HINT: restore into a Qdrant " +
                                    qdrant::MajorMinor(recorded) +
                                    ".x, or force it (restore params {\"force\": true})");
        }
        Warn(options, what + " (forced)");
      }
    }
    for (const auto& e : entries) {
      size_t peer = e.value("peer", 0);
      if (peer >= clients.size()) return Corruption("snapshot entry names peer " +
                                                    std::to_string(peer) + " of " +
                                                    std::to_string(clients.size()));
      std::string coll = e.value("collection", "");
      ASSIGN_OR_RETURN(Reply r, clients[peer].Call("GET", CollPath(coll)));
      if (r.status == 200 && !options.overwrite) {
        return AlreadyExists("collection '" + coll + "' already exists on '" + targets[peer] +
                             "'; HINT: restore with --overwrite to replace it by the snapshot");
      }
    }
    for (const auto& e : entries) {
      size_t peer = e.value("peer", 0);
      RETURN_IF_ERROR(RestoreOne(clients[peer], e, source, by_url, serve_address, options));
    }
    return Status::Ok();
  }

 private:
  qdrant::ClientOptions ClientFor(const std::string& url) const {
    return qdrant::ClientOptions{
        .url = url, .api_key = api_key_, .ca_file = spec_.ca_file, .timeout = spec_.timeout};
  }

  static bool Wanted(const std::string& coll, const std::vector<std::string>& include) {
    if (include.empty()) return true;
    return std::find(include.begin(), include.end(), coll) != include.end();
  }

  static void Warn(const RestoreOptions& o, const std::string& m) {
    if (o.warn) {
      o.warn(m);
    } else {
      std::fprintf(stderr, "warning: %s\n", m.c_str());
    }
  }

  // Creates a snapshot of `coll` on one peer, streams it into the repository and deletes it.
  Result<json> BackupCollection(const Client& c, size_t peer, const std::string& version,
                                const std::string& coll, BackupSink& sink) {
    std::string where = "collection '" + coll + "' on '" + c.url() + "'";
    ASSIGN_OR_RETURN(json before, ListSnapshots(c, coll));
    std::set<std::string> old;
    for (const auto& d : before) old.insert(d.value("name", ""));

    ASSIGN_OR_RETURN(Reply created, c.Call("POST", CollPath(coll) + "/snapshots?wait=true"));
    std::string name;
    json desc;
    if (created.status == 200 && created.body.is_object() &&
        created.body.contains("result") && created.body["result"].is_object()) {
      name = created.body["result"].value("name", "");
    } else if (created.status != 202) {
      return c.ErrorFrom(created, "creating a snapshot of " + where);
    }
    // 202: the snapshot is being made; it is done when it shows up in the list.
    Backoff backoff(spec_.timeout);
    while (true) {
      ASSIGN_OR_RETURN(json list, ListSnapshots(c, coll));
      for (const auto& d : list) {
        std::string n = d.value("name", "");
        if ((!name.empty() && n == name) || (name.empty() && !old.count(n))) desc = d;
      }
      if (!desc.is_null()) break;
      if (!backoff.Wait()) {
        return Unavailable("the snapshot of " + where + " did not appear within " +
                           std::to_string(spec_.timeout.count()) +
                           " s; HINT: raise the component's timeout");
      }
    }
    name = desc.value("name", "");
    SnapshotGuard guard(c, coll, name, sink);
    std::string listed = desc.contains("checksum") && desc["checksum"].is_string()
                             ? desc["checksum"].get<std::string>()
                             : "";

    Sha256 sha;
    uint64_t size = 0;
    std::unique_ptr<ContentWriter> writer = sink.NewContent();
    RETURN_IF_ERROR(c.Download(CollPath(coll) + "/snapshots/" + qdrant::UrlEncode(name),
                               [&](ByteView d) -> Status {
                                 sha.Update(d);
                                 size += d.size();
                                 sink.progress().bytes_read.fetch_add(d.size(),
                                                                      std::memory_order_relaxed);
                                 return writer->Write(d);
                               }));
    ContentFuture content = writer->Close();
    std::string sum = sha.Hex();
    if (listed.empty()) {
      sink.Warn("Qdrant listed no checksum for snapshot '" + name + "' of " + where +
                "; recorded the SHA-256 of what was downloaded");
    } else if (listed != sum) {
      return Corruption("snapshot '" + name + "' of " + where + " downloaded with SHA-256 " +
                        sum + ", but the server lists " + listed +
                        ": the download or the server's file is damaged; nothing was kept. HINT: "
                        "run the backup again; if it repeats, check the Qdrant host's disk");
    }
    uint64_t listed_size = desc.value("size", uint64_t{0});
    if (listed_size != 0 && listed_size != size) {
      return Corruption("snapshot '" + name + "' of " + where + " is " + std::to_string(size) +
                        " bytes downloaded, but the server lists " +
                        std::to_string(listed_size));
    }
    json entry = {{"type", "snapshot"}, {"peer", peer},     {"peer_url", c.url()},
                  {"collection", coll}, {"name", name},     {"size", size},
                  {"checksum", sum},    {"version", version}};
    RETURN_IF_ERROR(sink.AddEntry(entry, {content}));
    sink.progress().entries.fetch_add(1, std::memory_order_relaxed);
    return json{{"collection", coll}, {"name", name}, {"size", size}, {"checksum", sum}};
  }

  // Spools one snapshot to a temp file (checking its SHA-256), then has the peer recover it.
  Status RestoreOne(const Client& c, const json& e, RestoreSource& source, bool by_url,
                    const std::string& serve_address, const RestoreOptions& options) {
    std::string coll = e.value("collection", "");
    std::string name = e.value("name", "snapshot");
    std::string want = e.value("checksum", "");
    if (!e.contains("contents") || !e["contents"].is_array() || e["contents"].empty()) {
      return Corruption("snapshot entry of collection '" + coll + "' has no contents");
    }
    std::string dir = options.params.is_object() ? options.params.value("spool_dir", "") : "";
    if (dir.empty()) {
      const char* t = getenv("TMPDIR");
      dir = t && *t ? t : "/tmp";
    }
    std::string path = dir + "/reprise-qdrant-XXXXXX";
    int fd = mkstemp(path.data());
    if (fd < 0) return ErrnoError("mkstemp", path, errno);
    struct Remove {
      std::string p;
      int fd;
      ~Remove() {
        if (fd >= 0) close(fd);
        unlink(p.c_str());
      }
    } remove{path, fd};
    Sha256 sha;
    uint64_t size = 0;
    RETURN_IF_ERROR(source.ReadContent(e["contents"][0], [&](ByteView d) -> Status {
      sha.Update(d);
      size += d.size();
      const uint8_t* p = d.data();
      size_t left = d.size();
      while (left > 0) {
        ssize_t n = write(remove.fd, p, left);
        if (n < 0) {
          if (errno == EINTR) continue;
          return ErrnoError("write", path, errno);
        }
        p += n;
        left -= static_cast<size_t>(n);
      }
      return Status::Ok();
    }));
    if (fsync(remove.fd) != 0 && errno != EINVAL) return ErrnoError("fsync", path, errno);
    std::string sum = sha.Hex();
    if (!want.empty() && sum != want) {
      return Corruption("snapshot '" + name + "' of collection '" + coll +
                        "' reads back with SHA-256 " + sum + " but was saved with " + want +
                        "; nothing was sent to Qdrant");
    }
    std::string where = "collection '" + coll + "' on '" + c.url() + "'";
    Reply r;
    std::unique_ptr<qdrant::SnapshotServer> server;
    if (by_url) {
      ASSIGN_OR_RETURN(server, qdrant::SnapshotServer::Start(serve_address, path, name));
      json body = {{"location", server->url()}, {"priority", "snapshot"}, {"checksum", sum}};
      ASSIGN_OR_RETURN(r, c.Call("PUT", CollPath(coll) + "/snapshots/recover?wait=true", &body));
    } else {
      ASSIGN_OR_RETURN(r, c.UploadFile(CollPath(coll) + "/snapshots/upload?wait=true&priority="
                                       "snapshot&checksum=" + sum,
                                       "snapshot", path));
    }
    if (r.status == 200) {
      if (r.body.is_object() && r.body.contains("result") && r.body["result"] == false) {
        return FailedPrecondition("Qdrant did not recover " + where);
      }
      return Status::Ok();
    }
    if (r.status != 202) return c.ErrorFrom(r, "recovering " + where);
    // Accepted: recovery runs in the background; done when the collection answers green.
    Backoff backoff(spec_.timeout);
    while (true) {
      ASSIGN_OR_RETURN(Reply g, c.Call("GET", CollPath(coll)));
      if (g.status == 200 && g.body.is_object() && g.body.contains("result") &&
          g.body["result"].is_object() && g.body["result"].value("status", "") == "green") {
        return Status::Ok();
      }
      if (g.status != 200 && g.status != 404) return c.ErrorFrom(g, "waiting for " + where);
      if (!backoff.Wait()) {
        return Unavailable("the recovery of " + where + " did not finish within " +
                           std::to_string(spec_.timeout.count()) +
                           " s; HINT: it may still be running: check the collection, or raise "
                           "the component's timeout");
      }
    }
  }

  QdrantSpec spec_;
  std::string api_key_;
};

}  // namespace

std::unique_ptr<Component> MakeQdrantComponent(QdrantSpec spec, std::string api_key) {
  return std::make_unique<QdrantComponent>(std::move(spec), std::move(api_key));
}

}  // namespace reprise
