// The qdrant component (src/components/qdrant/) over real HTTP against the Qdrant contract
// server (tests/contract/qdrant_contract.h), in process, on free ports: no real Qdrant runs
// here. Every test ends by asserting that no request broke Qdrant's OpenAPI description.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <fstream>
#include <random>
#include <sstream>

#include "component_repo.h"
#include "components/qdrant/qdrant_client.h"
#include "components/qdrant/qdrant_component.h"
#include "harness.h"
#include "pg_env.h"
#include "qdrant_contract.h"

namespace reprise::testing {
namespace {

using nlohmann::json;

const std::string kReference = std::string(REPRISE_SOURCE_DIR) + "/tests/contract/qdrant";

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string s;
  static const char* d = "0123456789abcdef";
  for (unsigned i = 0; i < len; ++i) {
    s.push_back(d[md[i] >> 4]);
    s.push_back(d[md[i] & 15]);
  }
  return s;
}

// The members of a tar held in memory.
std::map<std::string, std::string> TarMembers(const std::string& data) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  if (archive_read_open_memory(a, data.data(), data.size()) != ARCHIVE_OK) {
    archive_read_free(a);
    return out;
  }
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string body;
    char buf[8192];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) body.append(buf, size_t(n));
    out[archive_entry_pathname(e)] = body;
  }
  archive_read_free(a);
  return out;
}

class QdrantComponentTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& s : servers_) {
      EXPECT_TRUE(s->Violations().empty())
          << "OpenAPI violations at " << s->url() << ":\n" << Join(s->Violations());
    }
  }

  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += "  " + x + "\n";
    return s;
  }

  QdrantContract& Server(QdrantContract::Options o = {}) {
    o.port = FreePort();
    o.reference_dir = kReference;
    servers_.push_back(std::make_unique<QdrantContract>(o));
    EXPECT_TRUE(servers_.back()->running()) << servers_.back()->error();
    return *servers_.back();
  }

  static qdrant::Client ClientOf(const QdrantContract& s, const std::string& key = "") {
    return qdrant::Client({.url = s.url(), .api_key = key});
  }

  // A collection of `n` points of dimension 8 with payloads; ids from `first`, every 10th a
  // UUID.
  static void Fill(const QdrantContract& s, const std::string& coll, int n, int first = 0,
                   const std::string& key = "") {
    auto c = ClientOf(s, key);
    json create = {{"vectors", {{"size", 8}, {"distance", "Cosine"}}}};
    auto r = c.Call("PUT", "/collections/" + coll, &create);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->status, 200) << r->body.dump();
    std::mt19937 rng(static_cast<unsigned>(n + first));
    std::uniform_real_distribution<double> u(-1, 1);
    for (int start = 0; start < n; start += 500) {
      json points = json::array();
      for (int i = start; i < std::min(n, start + 500); ++i) {
        int id = first + i;
        json vec = json::array();
        for (int d = 0; d < 8; ++d) vec.push_back(u(rng));
        json pid = id;
        if (id % 10 == 7) {
          char uuid[40];
          std::snprintf(uuid, sizeof uuid, "%08x-0000-4000-8000-%012x", id, id * 7);
          pid = uuid;
        }
        points.push_back({{"id", pid},
                          {"vector", vec},
                          {"payload",
                           {{"doc", "doc-" + std::to_string(id / 5)},
                            {"chunk", id % 5},
                            {"tags", json::array({"t" + std::to_string(id % 3), "all"})},
                            {"text", RandomText(40 + id % 100, static_cast<unsigned>(id))}}}});
      }
      json body = {{"points", points}};
      auto up = c.Call("PUT", "/collections/" + coll + "/points?wait=true", &body);
      ASSERT_TRUE(up.ok()) << up.status().ToString();
      ASSERT_EQ(up->status, 200) << up->body.dump();
    }
  }

  static QdrantSpec Spec(const QdrantContract& s) {
    QdrantSpec spec;
    spec.url = s.url();
    spec.timeout = std::chrono::seconds(30);
    return spec;
  }

  static bool Logged(const QdrantContract& s, const std::string& prefix) {
    for (const auto& l : s.Log())
      if (l.rfind(prefix, 0) == 0) return true;
    return false;
  }

  TempDir tmp_;
  std::vector<std::unique_ptr<QdrantContract>> servers_;
};

TEST_F(QdrantComponentTest, TwoCollectionsRoundTripIntoAFreshServer) {
  auto& src = Server();
  Fill(src, "docs", 3000);
  Fill(src, "faq", 1200, 100000);
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  auto component = MakeQdrantComponent(Spec(src), "");
  auto info = repo.Backup(*component);
  ASSERT_TRUE(info.ok()) << info.status().ToString();

  EXPECT_EQ((*info)["version"], "1.19.0");
  ASSERT_EQ((*info)["peers"].size(), 1u);
  const json& snaps = (*info)["peers"][0]["snapshots"];
  ASSERT_EQ(snaps.size(), 2u);
  EXPECT_EQ(snaps[0]["collection"], "docs");
  EXPECT_EQ(snaps[1]["collection"], "faq");
  for (const auto& s : snaps) {
    EXPECT_EQ(s["checksum"].get<std::string>().size(), 64u);
    EXPECT_GT(s["size"].get<uint64_t>(), 10240u);
  }
  auto entries = repo.Entries();
  ASSERT_EQ(entries.size(), 2u);
  // What the repository holds is the snapshot the server listed, byte for byte.
  std::string stored = repo.Read(entries[0]["contents"][0]);
  EXPECT_EQ(Sha256Hex(stored), snaps[0]["checksum"]);
  // The snapshots were deleted from the server after the backup.
  EXPECT_TRUE(src.SnapshotFiles("docs").empty());
  EXPECT_TRUE(src.SnapshotFiles("faq").empty());
  EXPECT_TRUE(Logged(src, "DELETE /collections/docs/snapshots/"));

  auto& dst = Server();
  auto restorer = MakeQdrantComponent(QdrantSpec{}, "");
  Status st = repo.Restore(*restorer, {.target = dst.url()});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(dst.Points("docs").size(), 3000u);
  EXPECT_EQ(dst.Points("docs"), src.Points("docs"));
  EXPECT_EQ(dst.Points("faq"), src.Points("faq"));
  EXPECT_TRUE(Logged(dst, "POST /collections/docs/snapshots/upload -> 200"));

  // The restored data answers queries as the source does.
  auto c = ClientOf(dst);
  json count = {{"filter", {{"must", {{{"key", "chunk"}, {"match", {{"value", 3}}}}}}}}};
  auto n = c.Call("POST", "/collections/docs/points/count", &count);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->body["result"]["count"], 600);

  // --include restores only the collections named.
  auto& only = Server();
  st = repo.Restore(*restorer, {.target = only.url(), .include = {"faq"}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(only.Collections(), std::vector<std::string>{"faq"});
}

TEST_F(QdrantComponentTest, NamedCollectionsOnlyAndMissingOneFails) {
  auto& src = Server();
  Fill(src, "docs", 50);
  Fill(src, "other", 50);
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  QdrantSpec spec = Spec(src);
  spec.collections = {"docs"};
  auto component = MakeQdrantComponent(spec, "");
  auto info = repo.Backup(*component);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ((*info)["peers"][0]["snapshots"].size(), 1u);
  EXPECT_FALSE(Logged(src, "POST /collections/other/snapshots"));

  spec.collections = {"docs", "nope"};
  auto missing = MakeQdrantComponent(spec, "");
  ComponentRepo repo2(tmp_.path() + "/repo2", "vectors");
  auto bad = repo2.Backup(*missing);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kNotFound) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("'nope'"), std::string::npos) << bad.status().ToString();
  EXPECT_TRUE(src.SnapshotFiles("docs").empty());
}

TEST_F(QdrantComponentTest, AcceptedAnswersArePolledBothWays) {
  auto& src = Server();
  Fill(src, "docs", 800);
  src.AcceptNext(10);  // snapshot creation answers 202 and finishes later
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  auto info = repo.Backup(*MakeQdrantComponent(Spec(src), ""));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(Logged(src, "POST /collections/docs/snapshots -> 202"));
  EXPECT_TRUE(src.SnapshotFiles("docs").empty());

  auto& dst = Server();
  dst.AcceptNext(10);  // the upload answers 202; the collection appears later
  Status st = repo.Restore(*MakeQdrantComponent(QdrantSpec{}, ""), {.target = dst.url()});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(Logged(dst, "POST /collections/docs/snapshots/upload -> 202"));
  // Restore returned only once the collection was back: no waiting here.
  EXPECT_TRUE(Logged(dst, "GET /collections/docs -> 200"));
  EXPECT_EQ(dst.Points("docs"), src.Points("docs"));
}

TEST_F(QdrantComponentTest, ChecksumMismatchFailsTheBackupAndRestoresNothing) {
  auto& src = Server();
  Fill(src, "docs", 100);
  src.CorruptNextChecksums(1);
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  auto info = repo.Backup(*MakeQdrantComponent(Spec(src), ""));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kCorruption) << info.status().ToString();
  EXPECT_NE(info.status().message().find("SHA-256"), std::string::npos);
  // Deleted from the server on the failure path too.
  EXPECT_TRUE(src.SnapshotFiles("docs").empty());

  // A snapshot whose bytes do not match the recorded checksum is not sent at restore.
  ComponentRepo good(tmp_.path() + "/good", "vectors");
  ASSERT_TRUE(good.Backup(*MakeQdrantComponent(Spec(src), "")).ok());
  auto& dst = Server();
  struct Forged final : RestoreSource {
    RestoreSource& in;
    explicit Forged(RestoreSource& i) : in(i) {}
    Status ForEachEntry(const std::function<Status(const json&)>& fn) override {
      return in.ForEachEntry([&](const json& e) {
        json copy = e;
        copy["checksum"] = std::string(64, 'a');
        return fn(copy);
      });
    }
    Status ReadContent(const json& c, const std::function<Status(ByteView)>& s) override {
      return in.ReadContent(c, s);
    }
  };
  auto source = good.Source();
  Forged forged(*source);
  Status st = MakeQdrantComponent(QdrantSpec{}, "")->Restore(good.component.info, forged,
                                                             {.target = dst.url()});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  EXPECT_FALSE(dst.HasCollection("docs"));
  EXPECT_FALSE(Logged(dst, "POST /collections/docs/snapshots/upload"));
}

TEST_F(QdrantComponentTest, OtherMinorVersionIsRefusedUnlessForced) {
  auto& src = Server();
  Fill(src, "docs", 200);
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  ASSERT_TRUE(repo.Backup(*MakeQdrantComponent(Spec(src), "")).ok());
  auto restorer = MakeQdrantComponent(QdrantSpec{}, "");

  auto& older = Server({.version = "1.18.2"});
  Status st = repo.Restore(*restorer, {.target = older.url()});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("1.18.2"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("HINT"), std::string::npos) << st.ToString();
  EXPECT_TRUE(older.Collections().empty());
  EXPECT_FALSE(Logged(older, "POST /collections/docs/snapshots/upload"));

  std::vector<std::string> warned;
  st = repo.Restore(*restorer, {.target = older.url(),
                                .warn = [&](const std::string& m) { warned.push_back(m); },
                                .params = {{"force", true}}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(older.Points("docs"), src.Points("docs"));
  ASSERT_EQ(warned.size(), 1u);
  EXPECT_NE(warned[0].find("forced"), std::string::npos);

  // A patch release differs only in the last number: no refusal.
  auto& patched = Server({.version = "1.19.4"});
  st = repo.Restore(*restorer, {.target = patched.url()});
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(QdrantComponentTest, ClusterSnapshotsEveryPeerAndRestoresEachToItsPeer) {
  std::map<uint64_t, std::string> uris = {{11, "http://peer-a:6335"}, {12, "http://peer-b:6335"}};
  auto& a = Server({.peer_id = 11, .cluster_status = "enabled", .peers = uris});
  auto& b = Server({.peer_id = 12, .cluster_status = "enabled", .peers = uris});
  // Each peer holds its own shard of the collection.
  Fill(a, "docs", 600, 0);
  Fill(b, "docs", 700, 5000);
  QdrantSpec spec = Spec(a);
  spec.peers = {a.url(), b.url()};
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  auto info = repo.Backup(*MakeQdrantComponent(spec, ""));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ((*info)["peers"].size(), 2u);
  EXPECT_EQ((*info)["peers"][1]["url"], b.url());
  EXPECT_EQ(repo.Entries().size(), 2u);
  EXPECT_TRUE(a.SnapshotFiles("docs").empty());
  EXPECT_TRUE(b.SnapshotFiles("docs").empty());

  auto& a2 = Server({.peer_id = 21, .cluster_status = "enabled", .peers = uris});
  auto& b2 = Server({.peer_id = 22, .cluster_status = "enabled", .peers = uris});
  auto restorer = MakeQdrantComponent(QdrantSpec{}, "");
  Status wrong = repo.Restore(*restorer, {.target = a2.url()});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.code(), Code::kInvalidArgument) << wrong.ToString();
  EXPECT_TRUE(a2.Collections().empty());

  Status st = repo.Restore(*restorer, {.target = a2.url() + "," + b2.url()});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(a2.Points("docs"), a.Points("docs"));
  EXPECT_EQ(b2.Points("docs"), b.Points("docs"));
  EXPECT_NE(a2.Points("docs"), b2.Points("docs"));
}

TEST_F(QdrantComponentTest, RestoreByUrlServedByReprise) {
  auto& src = Server();
  Fill(src, "docs", 1500);
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  ASSERT_TRUE(repo.Backup(*MakeQdrantComponent(Spec(src), "")).ok());

  auto& dst = Server();
  QdrantSpec spec;
  spec.restore_method = QdrantSpec::RestoreMethod::kUrl;
  Status st = repo.Restore(*MakeQdrantComponent(spec, ""), {.target = dst.url()});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(Logged(dst, "PUT /collections/docs/snapshots/recover -> 200"));
  EXPECT_FALSE(Logged(dst, "POST /collections/docs/snapshots/upload"));
  EXPECT_EQ(dst.Points("docs"), src.Points("docs"));

  // The same through params, answered 202 and polled.
  auto& later = Server();
  later.AcceptNext(5);
  st = repo.Restore(*MakeQdrantComponent(QdrantSpec{}, ""),
                    {.target = later.url(), .params = {{"method", "url"}}});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(Logged(later, "PUT /collections/docs/snapshots/recover -> 202"));
  EXPECT_EQ(later.Points("docs"), src.Points("docs"));
}

TEST_F(QdrantComponentTest, ExistingCollectionIsReplacedOnlyWithOverwrite) {
  auto& src = Server();
  Fill(src, "docs", 300);
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  ASSERT_TRUE(repo.Backup(*MakeQdrantComponent(Spec(src), "")).ok());
  auto& dst = Server();
  Fill(dst, "docs", 10, 90000);
  auto restorer = MakeQdrantComponent(QdrantSpec{}, "");
  Status st = repo.Restore(*restorer, {.target = dst.url()});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("--overwrite"), std::string::npos);
  EXPECT_EQ(dst.Points("docs").size(), 10u);
  st = repo.Restore(*restorer, {.target = dst.url(), .overwrite = true});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(dst.Points("docs"), src.Points("docs"));
}

TEST_F(QdrantComponentTest, ApiKeyIsSentAndNeverShown) {
  const std::string key = "s3cr3t-qdrant-key";
  auto& src = Server({.api_key = key});
  Fill(src, "docs", 100, 0, key);
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  auto denied = repo.Backup(*MakeQdrantComponent(Spec(src), "wrong-key"));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), Code::kPermissionDenied) << denied.status().ToString();
  EXPECT_NE(denied.status().message().find("api_key"), std::string::npos);
  EXPECT_EQ(denied.status().message().find("wrong-key"), std::string::npos);

  ComponentRepo ok(tmp_.path() + "/ok", "vectors");
  auto info = ok.Backup(*MakeQdrantComponent(Spec(src), key));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->dump().find(key), std::string::npos);
  auto seen = src.HeaderValues("api-key");
  EXPECT_FALSE(seen.empty());
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [&](const std::string& v) {
    return v == key || v == "wrong-key";
  }));
}

TEST_F(QdrantComponentTest, RealSnapshotFileBytesSurviveAndUploadWithTheirChecksum) {
  const std::string real = FileBytes(kReference + "/test-shard.snapshot");
  ASSERT_EQ(real.size(), 10240u);
  auto& src = Server();
  Fill(src, "docs", 20);
  ComponentRepo repo(tmp_.path() + "/repo", "vectors");
  ASSERT_TRUE(repo.Backup(*MakeQdrantComponent(Spec(src), "")).ok());
  // The collection snapshot carries the real shard snapshot; the repository kept it intact.
  auto members = TarMembers(repo.Read(repo.Entries()[0]["contents"][0]));
  ASSERT_TRUE(members.count("0/shard.snapshot"));
  EXPECT_EQ(members["0/shard.snapshot"], real);

  // The real file through reprise's upload code, with its SHA-256.
  std::string path = tmp_.path() + "/test-shard.snapshot";
  WriteFile(path, real);
  auto c = ClientOf(src);
  std::string sum = Sha256Hex(real);
  auto r = c.UploadFile("/collections/docs/shards/0/snapshots/upload?priority=snapshot&checksum=" +
                            sum,
                        "snapshot", path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200) << r->body.dump();
  EXPECT_EQ(src.ShardUploads(), std::vector<std::string>{"docs/0 " + sum});
  auto bad = c.UploadFile("/collections/docs/shards/0/snapshots/upload?checksum=" +
                              std::string(64, '0'),
                          "snapshot", path);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(src.ShardUploads().size(), 1u);
}

TEST_F(QdrantComponentTest, ContractServerRecordsRequestsThatBreakTheDescription) {
  // The contract's own check: the validator must be able to fail.
  auto s = std::make_unique<QdrantContract>(
      QdrantContract::Options{.port = FreePort(), .reference_dir = kReference});
  ASSERT_TRUE(s->running()) << s->error();
  auto c = ClientOf(*s);
  json bad_create = {{"vectors", {{"size", 0}, {"distance", "Cosine"}}}};
  auto r1 = c.Call("PUT", "/collections/x", &bad_create);
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(r1->status, 400);
  auto r2 = c.Call("POST", "/collections/x/snapshots?wait=yes");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->status, 400);
  auto r3 = c.Call("GET", "/collections/x/snapshotz");
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->status, 404);
  json filter = {{"filter", {{"must", {{{"key", "a"}, {"match", {{"valu", 1}}}}}}}}};
  auto r4 = c.Call("POST", "/collections/x/points/scroll", &filter);
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(r4->status, 400);
  auto v = s->Violations();
  ASSERT_EQ(v.size(), 4u) << Join(v);
  EXPECT_NE(v[0].find("minimum"), std::string::npos) << v[0];
  EXPECT_NE(v[1].find("'wait'"), std::string::npos) << v[1];
  EXPECT_NE(v[2].find("not described"), std::string::npos) << v[2];
}

TEST_F(QdrantComponentTest, CliBacksUpAndRestoresAQdrantComponent) {
  auto& src = Server();
  Fill(src, "docs", 400);
  Fill(src, "faq", 100, 7000);
  std::string repo = tmp_.path() + "/repo", pw = tmp_.path() + "/pw";
  WriteFile(pw, "integration passphrase\n");
  chmod(pw.c_str(), 0600);
  std::vector<std::string> env = {"REPRISE_REPOSITORY=" + repo, "REPRISE_PASSWORD_FILE=" + pw};
  auto init = RunCommand({REPRISE_BINARY, "init"}, env);
  ASSERT_EQ(init.exit_code, 0) << init.err;
  std::string plan = tmp_.path() + "/reprise.yaml";
  WriteFile(plan, "version: 1\nname: test\nsites:\n  primary:\n    repository: " + repo +
                      "\ncomponents:\n  vectors:\n    kind: qdrant\n    class: embeddings\n"
                      "    url: " + src.url() + "\n    timeout: 60s\n");
  auto backup = RunCommand({REPRISE_BINARY, "--plan", plan, "--json", "backup"}, env);
  ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;
  auto j = json::parse(backup.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << backup.out;
  EXPECT_EQ(j["status"], "complete") << backup.out;
  EXPECT_TRUE(src.SnapshotFiles("docs").empty());

  auto& dst = Server();
  auto restore = RunCommand({REPRISE_BINARY, "restore", "latest", "--component", "vectors",
                             "--target", dst.url()},
                            env);
  ASSERT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  EXPECT_EQ(dst.Points("docs"), src.Points("docs"));
  EXPECT_EQ(dst.Points("faq"), src.Points("faq"));
}

}  // namespace
}  // namespace reprise::testing
