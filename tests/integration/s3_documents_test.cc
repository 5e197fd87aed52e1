// The `s3` documents component against a real S3 server (Ceph RGW from
// tests/services/rgw-start.sh; see rgw_env.h): full and incremental backups of a bucket's
// objects with their content type and metadata, restores to another bucket (with and without
// deleting what the point does not have), a multipart-sized object, errors, and the CLI with
// a plan. Each test creates its own buckets and empties and deletes them at the end.
#include "components/s3/s3_documents.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "component_repo.h"
#include "harness.h"
#include "rgw_env.h"
#include "storage/s3/object_client.h"
#include "storage/s3/s3_storage.h"

namespace reprise {
namespace {

using nlohmann::json;
using testing::ComponentRepo;
using testing::kRgwSkipReason;
using testing::LoadRgwEnv;
using testing::RandomHex;
using testing::RgwEnv;
using testing::RunCommand;
using testing::TempDir;
using testing::WriteFile;

const std::optional<RgwEnv>& Env() {
  static const std::optional<RgwEnv> env = LoadRgwEnv();
  return env;
}

std::string Md5Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    out += buf;
  }
  return out;
}

// Runs fn(0..n-1) on `threads` threads.
void ParallelFor(size_t n, size_t threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) fn(i);
    });
  }
  for (auto& th : pool) th.join();
}

// What the test put into an object, to compare a restored one with.
struct Doc {
  std::string content;
  s3::ObjectAttributes attributes;
};

class S3DocumentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Env()) GTEST_SKIP() << kRgwSkipReason;
  }

  void TearDown() override {
    for (const std::string& b : buckets_) {
      auto c = Client(b);
      std::vector<std::string> keys;
      (void)c->List("", [&](s3::ListedObject o) {
        keys.push_back(std::move(o.key));
        return Status::Ok();
      });
      // DeleteObjects takes 1000 keys a request: send those requests side by side.
      std::vector<std::vector<std::string>> batches((keys.size() + 999) / 1000);
      for (size_t i = 0; i < keys.size(); ++i) batches[i / 1000].push_back(std::move(keys[i]));
      ParallelFor(batches.size(), 8, [&](size_t i) {
        Status st = c->DeleteMany(batches[i]);
        EXPECT_TRUE(st.ok()) << st.ToString();
      });
      (void)Storage(b)->DeleteBucket();
    }
  }

  s3::ObjectClientOptions ClientOptions(const std::string& bucket) {
    return {.bucket = bucket,
            .endpoint = Env()->endpoint,
            .region = Env()->region,
            .path_style = true,
            .credentials = {.access_key_id = Env()->access_key,
                            .secret_access_key = Env()->secret_key},
            .connections = 64};
  }
  std::unique_ptr<s3::ObjectClient> Client(const std::string& bucket) {
    auto c = s3::ObjectClient::Create(ClientOptions(bucket));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::unique_ptr<S3Storage> Storage(const std::string& bucket) {
    auto s = S3Storage::Create(S3Options{.bucket = bucket,
                                         .endpoint = Env()->endpoint,
                                         .region = Env()->region,
                                         .path_style = true,
                                         .credentials = {.access_key_id = Env()->access_key,
                                                         .secret_access_key = Env()->secret_key}});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  // A new, empty bucket, deleted with its objects by TearDown.
  std::string NewBucket() {
    std::string b = Env()->bucket_prefix + "-docs-" + RandomHex(10);
    Status st = Storage(b)->CreateBucket();
    EXPECT_TRUE(st.ok()) << st.ToString();
    buckets_.push_back(b);
    return b;
  }
  std::string Url(const std::string& bucket, const std::string& prefix,
                  const std::string& options = "") {
    return "s3://" + bucket + (prefix.empty() ? "" : "/" + prefix) +
           "?endpoint=" + Env()->endpoint + "&region=" + Env()->region + options;
  }
  std::optional<StorageCredentials> Credentials() {
    return StorageCredentials{.access_key_id = Env()->access_key,
                              .secret_access_key = Env()->secret_key,
                              .origin = "the test's credentials"};
  }
  std::unique_ptr<Component> Make(const std::string& url, int connections = 16) {
    return MakeS3DocumentsComponent(S3DocumentsSpec{.url = url, .connections = connections},
                                    Credentials());
  }

  // Puts every doc (keys relative to `prefix`, "" or "p/") in parallel.
  void PutAll(const std::string& bucket, const std::string& prefix,
              const std::map<std::string, Doc>& docs) {
    auto c = Client(bucket);
    std::vector<const std::pair<const std::string, Doc>*> all;
    for (const auto& d : docs) all.push_back(&d);
    std::atomic<int> failures{0};
    ParallelFor(all.size(), 48, [&](size_t i) {
      auto r = c->Put(prefix + all[i]->first, AsBytes(all[i]->second.content),
                      all[i]->second.attributes);
      if (!r.ok() && failures++ == 0) ADD_FAILURE() << r.status().ToString();
    });
    ASSERT_EQ(failures.load(), 0);
  }

  // Every object under `prefix` of `bucket` is exactly `docs` (keys relative to the prefix):
  // bytes (the ETag of a single PUT is their MD5; fetched in full for `fetch`), content type
  // and metadata (HEAD of each object).
  void ExpectBucketHolds(const std::string& bucket, const std::string& prefix,
                         const std::map<std::string, Doc>& docs,
                         const std::vector<std::string>& fetch = {}) {
    auto c = Client(bucket);
    std::map<std::string, s3::ListedObject> listed;
    ASSERT_TRUE(c->List(prefix, [&](s3::ListedObject o) {
                   std::string rel = o.key.substr(prefix.size());
                   listed.emplace(rel, std::move(o));
                   return Status::Ok();
                 }).ok());
    ASSERT_EQ(listed.size(), docs.size());
    std::vector<const std::pair<const std::string, Doc>*> all;
    for (const auto& d : docs) all.push_back(&d);
    std::mutex mu;
    std::vector<std::string> problems;
    auto problem = [&](std::string p) {
      std::lock_guard lk(mu);
      problems.push_back(std::move(p));
    };
    ParallelFor(all.size(), 48, [&](size_t i) {
      const auto& [rel, doc] = *all[i];
      auto it = listed.find(rel);
      if (it == listed.end()) return problem("missing '" + rel + "'");
      if (it->second.etag != Md5Hex(doc.content) || it->second.size != doc.content.size())
        return problem("bytes of '" + rel + "' differ (etag " + it->second.etag + ")");
      auto head = c->Head(prefix + rel);
      if (!head.ok() || !*head) return problem("cannot HEAD '" + rel + "'");
      if ((*head)->attributes != doc.attributes) {
        return problem("attributes of '" + rel + "' differ: content type '" +
                       (*head)->attributes.content_type + "', " +
                       std::to_string((*head)->attributes.metadata.size()) + " metadata");
      }
    });
    for (const std::string& rel : fetch) {
      auto got = c->Get(prefix + rel);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_TRUE(got->has_value()) << rel;
      EXPECT_EQ(AsString((*got)->data), docs.at(rel).content) << rel;
    }
    EXPECT_TRUE(problems.empty()) << problems.size() << " problem(s), first: " << problems[0];
  }

  std::vector<std::string> buckets_;
  TempDir dir_;
};

s3::ObjectAttributes TextAttributes(const std::string& type = "text/plain") {
  return s3::ObjectAttributes{.content_type = type};
}

TEST_F(S3DocumentsTest, IncrementalBackupOf10000ObjectsDownloadsOnlyTheChanged) {
  const std::string src = NewBucket(), dst = NewBucket();
  std::map<std::string, Doc> docs;
  for (int i = 0; i < 10000; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "d%02d/%05d.txt", i / 500, i);
    Doc d{.content = "document " + std::to_string(i) + " v1 " + RandomHex(i % 50),
          .attributes = TextAttributes()};
    if (i % 1000 == 3) {
      d.attributes = {.content_type = "text/markdown; charset=utf-8",
                      .metadata = {{"author", "writer-" + std::to_string(i)}, {"lang", "en"}},
                      .headers = {{"cache-control", "max-age=300"}}};
    }
    docs[key] = std::move(d);
  }
  PutAll(src, "kb/", docs);
  // Outside the component's prefix: never saved.
  ASSERT_TRUE(Client(src)->Put("other/x", AsBytes("not mine"), {}).ok());

  ComponentRepo repo(dir_.path() + "/repo", "docs");
  // Many connections: each small GET waits on the server's round trip, not on bandwidth.
  auto component = Make(Url(src, "kb"), 64);
  auto full = repo.Backup(*component);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ((*full)["objects"], 10000);
  EXPECT_EQ((*full)["downloaded"], 10000);
  EXPECT_EQ((*full)["reused"], 0);
  EXPECT_EQ((*full)["bucket"], src);
  EXPECT_EQ((*full)["prefix"], "kb");
  EXPECT_TRUE(repo.warnings.empty()) << repo.warnings[0];

  // 100 changed (one with new metadata), 3 added, 2 deleted.
  std::map<std::string, Doc> changed;
  std::vector<std::string> fetch;
  int n = 0;
  for (auto& [rel, doc] : docs) {
    if (n++ % 100 != 7) continue;
    doc.content = "changed " + rel + " " + RandomHex(20);
    if (changed.empty()) doc.attributes = {.content_type = "application/json",
                                           .metadata = {{"rev", "2"}}};
    changed[rel] = doc;
    fetch.push_back(rel);
  }
  ASSERT_EQ(changed.size(), 100u);
  for (int i = 0; i < 3; ++i) {
    std::string rel = "new/" + std::to_string(i);
    docs[rel] = changed[rel] =
        Doc{.content = "new " + RandomHex(30), .attributes = TextAttributes()};
    fetch.push_back(rel);
  }
  PutAll(src, "kb/", changed);
  for (const char* rel : {"d00/00050.txt", "d00/00051.txt"}) {
    ASSERT_TRUE(Client(src)->Delete(std::string("kb/") + rel).ok());
    docs.erase(rel);
  }

  auto incremental = repo.Backup(*component, /*incremental=*/true);
  ASSERT_TRUE(incremental.ok()) << incremental.status().ToString();
  EXPECT_EQ((*incremental)["downloaded"], 103) << incremental->dump();
  EXPECT_EQ((*incremental)["reused"], 10000 - 100 - 2) << incremental->dump();
  EXPECT_EQ((*incremental)["objects"], 10001);
  uint64_t bytes = 0;
  for (const auto& [rel, doc] : docs) bytes += doc.content.size();
  EXPECT_EQ((*incremental)["bytes"], bytes);

  // The incremental point alone restores the bucket as it is now, attributes included.
  auto source = repo.Source();
  auto report = RestoreS3Documents(repo.component.info, *source,
                                   RestoreOptions{.target = Url(dst, "restored")},
                                   S3DocumentsSpec{.connections = 32}, Credentials());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->objects, 10001u);
  EXPECT_EQ(report->uploaded, 10001u);
  EXPECT_EQ(report->unchanged, 0u);
  EXPECT_EQ(report->target, "s3://" + dst + "/restored");
  ExpectBucketHolds(dst, "restored/", docs, fetch);
}

TEST_F(S3DocumentsTest, RestoreWithDeleteIntoABucketWithExtraObjects) {
  const std::string src = NewBucket(), dst = NewBucket();
  std::map<std::string, Doc> docs;
  for (int i = 0; i < 20; ++i) {
    docs["doc" + std::to_string(i + 10)] =
        Doc{.content = "text " + std::to_string(i), .attributes = TextAttributes()};
  }
  docs["folder/"] = Doc{.content = "", .attributes = TextAttributes("application/x-directory")};
  PutAll(src, "", docs);
  ComponentRepo repo(dir_.path() + "/repo", "docs");
  auto component = Make(Url(src, ""));
  auto info = repo.Backup(*component);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ((*info)["objects"], 21);

  // The target: two objects the point does not have, one that differs in its bytes, one in
  // its content type only, one identical, and one outside the target prefix.
  std::map<std::string, Doc> there = {
      {"copy/extra", {.content = "extra", .attributes = TextAttributes()}},
      {"copy/sub/extra2", {.content = "extra2", .attributes = TextAttributes()}},
      {"copy/doc11", {.content = "not the same", .attributes = TextAttributes()}},
      {"copy/doc12", {.content = docs["doc12"].content, .attributes = TextAttributes("a/b")}},
      {"copy/doc13", docs["doc13"]},
      {"keep/me", {.content = "outside", .attributes = TextAttributes()}}};
  PutAll(dst, "", there);

  RestoreOptions options{.target = Url(dst, "copy"), .params = {{"delete", true}}};
  auto report = RestoreS3Documents(repo.component.info, *repo.Source(), options,
                                   S3DocumentsSpec{}, Credentials());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->objects, 21u);
  EXPECT_EQ(report->unchanged, 1u);  // doc13
  EXPECT_EQ(report->uploaded, 20u);
  EXPECT_EQ(report->deleted, 2u);
  ExpectBucketHolds(dst, "copy/", docs, {"doc11", "doc12"});
  auto keep = Client(dst)->Get("keep/me");
  ASSERT_TRUE(keep.ok() && keep->has_value());
  EXPECT_EQ(AsString((*keep)->data), "outside");

  // Again, through the Component interface: nothing to do.
  ASSERT_TRUE(repo.Restore(*component, options).ok());
  auto again = RestoreS3Documents(repo.component.info, *repo.Source(), options, S3DocumentsSpec{},
                                  Credentials());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->uploaded, 0u);
  EXPECT_EQ(again->unchanged, 21u);
  EXPECT_EQ(again->deleted, 0u);

  // Without delete, extra objects stay.
  ASSERT_TRUE(Client(dst)->Put("copy/late", AsBytes("late"), {}).ok());
  options.params = json::object();
  ASSERT_TRUE(repo.Restore(*component, options).ok());
  EXPECT_TRUE(Client(dst)->Get("copy/late")->has_value());
}

TEST_F(S3DocumentsTest, BigObjectGoesInRangesAndComesBackInParts) {
  const std::string src = NewBucket(), dst = NewBucket();
  std::string big(12 * 1024 * 1024 + 123, '\0');
  std::mt19937_64 rng(5);
  for (char& c : big) c = static_cast<char>(rng());
  std::map<std::string, Doc> docs = {
      {"big.pdf",
       {.content = big,
        .attributes = {.content_type = "application/pdf",
                       .metadata = {{"title", "Annual report"}, {"pages", "212"}},
                       .headers = {{"cache-control", "no-cache"},
                                   {"content-disposition", "attachment; filename=\"big.pdf\""},
                                   {"content-language", "en"}}}}},
      {"empty", {.content = "", .attributes = TextAttributes()}},
      {"small", {.content = "small", .attributes = TextAttributes()}}};
  PutAll(src, "docs/", docs);

  ComponentRepo repo(dir_.path() + "/repo", "docs");
  auto component = Make(Url(src, "docs"));
  auto info = repo.Backup(*component);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ((*info)["downloaded"], 3);
  EXPECT_EQ((*info)["bytes"], big.size() + 5);
  auto entries = repo.Entries();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0]["source"]["bucket"], src);
  EXPECT_EQ(entries[1]["key"], "big.pdf");
  EXPECT_EQ(entries[1]["metadata"]["title"], "Annual report");
  EXPECT_EQ(repo.Read(entries[1]["contents"][0]), big);

  auto again = repo.Backup(*component, /*incremental=*/true);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ((*again)["downloaded"], 0);
  EXPECT_EQ((*again)["reused"], 3);

  RestoreOptions options{.target = Url(dst, "", "&multipart_threshold=6MiB&part_size=5MiB")};
  auto report = RestoreS3Documents(repo.component.info, *repo.Source(), options,
                                   S3DocumentsSpec{}, Credentials());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->uploaded, 3u);
  auto head = Client(dst)->Head("big.pdf");
  ASSERT_TRUE(head.ok() && head->has_value());
  EXPECT_NE((*head)->etag.find("-3"), std::string::npos) << (*head)->etag;  // 3 parts
  EXPECT_EQ((*head)->attributes, docs["big.pdf"].attributes);
  auto got = Client(dst)->Get("big.pdf");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_TRUE(AsString((*got)->data) == big);
  auto empty = Client(dst)->Get("empty");
  ASSERT_TRUE(empty.ok() && empty->has_value());
  EXPECT_TRUE((*empty)->data.empty());
}

// Passes everything to `inner`, calling the hooks first: on_new_content(n) when the n-th
// content (from 1) is opened, on_write(n, w) before its w-th Write. With one connection the
// component opens one content per object and attempt, in listing order, just before its
// first GET, and writes each range before asking for the next: the hooks change the bucket
// at exactly those moments.
class HookedSink final : public BackupSink {
 public:
  explicit HookedSink(BackupSink& inner) : inner_(inner) {}
  std::function<void(int)> on_new_content = [](int) {};
  std::function<void(int, int)> on_write = [](int, int) {};

  std::unique_ptr<ManifestCursor> Previous() override { return inner_.Previous(); }
  bool Reusable(const json& content) override { return inner_.Reusable(content); }
  std::unique_ptr<ContentWriter> NewContent() override {
    int n = ++contents_;
    on_new_content(n);
    return std::make_unique<Writer>(inner_.NewContent(), [this, n](int w) { on_write(n, w); });
  }
  Status AddEntry(json entry, std::vector<ContentFuture> contents) override {
    return inner_.AddEntry(std::move(entry), std::move(contents));
  }
  Status AddEntryLater(EntryFuture entry) override { return inner_.AddEntryLater(entry); }
  void Warn(std::string message) override { inner_.Warn(std::move(message)); }
  BackupProgress& progress() override { return inner_.progress(); }

 private:
  class Writer final : public ContentWriter {
   public:
    Writer(std::unique_ptr<ContentWriter> inner, std::function<void(int)> hook)
        : inner_(std::move(inner)), hook_(std::move(hook)) {}
    Status Write(ByteView data) override {
      hook_(++writes_);
      return inner_->Write(data);
    }
    ContentFuture Close() override { return inner_->Close(); }

   private:
    std::unique_ptr<ContentWriter> inner_;
    std::function<void(int)> hook_;
    int writes_ = 0;
  };
  BackupSink& inner_;
  std::atomic<int> contents_{0};
};

TEST_F(S3DocumentsTest, ObjectsDeletedOrChangedDuringTheBackupAreWarnedAbout) {
  const std::string src = NewBucket();
  auto c = Client(src);
  auto put = [&](const std::string& key, const std::string& content) {
    auto r = c->Put(key, AsBytes(content), TextAttributes());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  // "d" needs two ranged GETs (4 MiB each).
  auto big = [](char fill) { return std::string((5 << 20) + 10, fill); };
  put("a", "stays");
  put("b", "is deleted after the listing");
  put("c", "is replaced after the listing");
  put("d", big('1'));

  ComponentRepo repo(dir_.path() + "/repo", "docs");
  auto component = MakeS3DocumentsComponent(
      S3DocumentsSpec{.url = Url(src, ""), .connections = 1}, Credentials());
  int replaced = 0;
  auto info = repo.Backup(
      [&](BackupSink& inner) {
        HookedSink sink(inner);
        // Contents: 1 a, 2 b (gone), 3 c (its GET finds another ETag), 4 c again,
        // 5 and 6 d (replaced after its first range, both times).
        sink.on_new_content = [&](int n) {
          if (n == 2) EXPECT_TRUE(c->Delete("b").ok());
          if (n == 3) put("c", "the new c");
        };
        sink.on_write = [&](int n, int w) {
          if ((n == 5 || n == 6) && w == 1) put("d", big(static_cast<char>('2' + replaced++)));
        };
        return component->Backup(sink);
      },
      "s3");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(replaced, 2);
  EXPECT_EQ((*info)["downloaded"], 2) << info->dump();
  EXPECT_EQ((*info)["skipped"], 2) << info->dump();
  ASSERT_EQ(repo.warnings.size(), 2u);
  EXPECT_NE(repo.warnings[0].find("'s3://" + src + "/b' was deleted during the backup"),
            std::string::npos)
      << repo.warnings[0];
  EXPECT_NE(repo.warnings[1].find("'s3://" + src + "/d' kept changing while it was read"),
            std::string::npos)
      << repo.warnings[1];
  auto entries = repo.Entries();
  ASSERT_EQ(entries.size(), 3u);  // the source, a, c
  EXPECT_EQ(entries[1]["key"], "a");
  EXPECT_EQ(entries[2]["key"], "c");
  EXPECT_EQ(repo.Read(entries[2]["contents"][0]), "the new c");
  EXPECT_EQ(entries[2]["etag"], Md5Hex("the new c"));
  EXPECT_EQ(entries[2]["last_modified"], "");

  // Next time: "a" is reused; "c" (whose listing time was not its own) and "d" are read.
  auto next = repo.Backup(*component, /*incremental=*/true);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ((*next)["reused"], 1) << next->dump();
  EXPECT_EQ((*next)["downloaded"], 2) << next->dump();
  EXPECT_TRUE(repo.warnings.empty());
}

TEST_F(S3DocumentsTest, ErrorsNameTheBucketAndNeverTheSecret) {
  ComponentRepo repo(dir_.path() + "/repo", "docs");
  std::string missing = Env()->bucket_prefix + "-none-" + RandomHex(8);
  auto c = Make(Url(missing, "p"));
  auto r = repo.Backup(*c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound) << r.status().ToString();
  EXPECT_NE(r.status().message().find("bucket '" + missing + "' does not exist"),
            std::string::npos)
      << r.status().ToString();

  const std::string src = NewBucket();
  ASSERT_TRUE(Client(src)->Put("a", AsBytes("a"), {}).ok());
  StorageCredentials wrong{.access_key_id = Env()->access_key,
                           .secret_access_key = "wrong-secret-0000000000000000000",
                           .origin = "secret 'docs_s3' of component 'docs'"};
  auto bad = MakeS3DocumentsComponent(S3DocumentsSpec{.url = Url(src, "")}, wrong);
  r = repo.Backup(*bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated) << r.status().ToString();
  EXPECT_NE(r.status().message().find("secret 'docs_s3' of component 'docs'"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("'s3://" + src), std::string::npos) << r.status().ToString();
  EXPECT_EQ(r.status().message().find(wrong.secret_access_key), std::string::npos);

  // Restores: a point of `src`, into a missing bucket and into something not S3.
  auto good = Make(Url(src, ""));
  ASSERT_TRUE(repo.Backup(*good).ok());
  auto into_missing = RestoreS3Documents(repo.component.info, *repo.Source(),
                                         RestoreOptions{.target = Url(missing, "")},
                                         S3DocumentsSpec{}, Credentials());
  EXPECT_EQ(into_missing.status().code(), Code::kNotFound) << into_missing.status().ToString();
  EXPECT_NE(into_missing.status().message().find(missing), std::string::npos);
  Status not_s3 = repo.Restore(*good, RestoreOptions{.target = "/tmp/somewhere"});
  EXPECT_EQ(not_s3.code(), Code::kInvalidArgument) << not_s3.ToString();
  Status no_target = repo.Restore(
      *MakeS3DocumentsComponent(S3DocumentsSpec{}, Credentials()), RestoreOptions{});
  EXPECT_EQ(no_target.code(), Code::kInvalidArgument) << no_target.ToString();
  EXPECT_NE(no_target.message().find("s3://" + src), std::string::npos) << no_target.ToString();
}

// A plan with kind s3 and an env credentials secret: `reprise backup`, then
// `reprise restore latest --component docs --target s3://...` into another bucket.
TEST_F(S3DocumentsTest, PlanBackupAndRestoreThroughTheCli) {
  const std::string src = NewBucket(), dst = NewBucket();
  std::map<std::string, Doc> docs;
  for (int i = 0; i < 50; ++i) {
    docs["f" + std::to_string(i)] =
        Doc{.content = RandomHex(100 + i), .attributes = TextAttributes("text/csv")};
  }
  docs["f7"].attributes.metadata = {{"source", "crawler"}};
  PutAll(src, "rag/", docs);

  std::string base = dir_.path();
  WriteFile(base + "/pw", "s3 documents passphrase\n");
  std::string plan = base + "/plan.yaml";
  WriteFile(plan, "version: 1\nname: docs\n"
                  "secrets:\n  docs_s3: {env: [DOCS_KEY_ID, DOCS_SECRET]}\n"
                  "sites:\n  main: {repository: " + base + "/repo}\n"
                  "components:\n  docs:\n    kind: s3\n    class: documents\n"
                  "    url: '" + Url(src, "rag") + "'\n"
                  "    credentials: docs_s3\n    connections: 4\n");
  std::vector<std::string> env = {"REPRISE_PASSWORD_FILE=" + base + "/pw",
                                  "DOCS_KEY_ID=" + Env()->access_key,
                                  "DOCS_SECRET=" + Env()->secret_key, "AWS_ACCESS_KEY_ID=",
                                  "AWS_SECRET_ACCESS_KEY=", "HOME=" + base};
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {REPRISE_BINARY, "--plan", plan});
    return RunCommand(args, env);
  };
  auto init = run({"init"});
  ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
  auto backup = run({"backup"});
  ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;
  EXPECT_EQ(backup.err.find(Env()->secret_key), std::string::npos);
  EXPECT_EQ(backup.out.find(Env()->secret_key), std::string::npos);

  auto restore =
      run({"restore", "latest", "--component", "docs", "--target", Url(dst, "back")});
  ASSERT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  ExpectBucketHolds(dst, "back/", docs, {"f7"});

  // Without the secret's variables the plan's component cannot be opened, and says why.
  auto without = RunCommand({REPRISE_BINARY, "--plan", plan, "backup"},
                            {"REPRISE_PASSWORD_FILE=" + base + "/pw", "DOCS_KEY_ID=",
                             "DOCS_SECRET=", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="});
  EXPECT_NE(without.exit_code, 0);
  EXPECT_NE((without.out + without.err).find("DOCS_KEY_ID"), std::string::npos)
      << without.out << without.err;
}

}  // namespace
}  // namespace reprise
