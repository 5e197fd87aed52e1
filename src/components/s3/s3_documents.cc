#include "components/s3/s3_documents.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/thread_pool.h"
#include "storage/s3/credentials.h"
#include "storage/s3/object_client.h"
#include "storage/s3/s3_url.h"

namespace reprise {

namespace {

using nlohmann::json;

// Objects above this are read in ranged GETs of this size, so no more than this is in memory
// per connection however big an object is.
constexpr uint64_t kRangeSize = 4ull << 20;
// Restore: objects of this size or more go up as multipart uploads in parts of kPartSize
// (the target URL's multipart_threshold= and part_size= change both).
constexpr uint64_t kDefaultMultipartThreshold = 8ull << 20;
constexpr uint64_t kDefaultPartSize = 8ull << 20;
constexpr int kAttempts = 4;  // per request, when the server is unavailable (5xx, resets)

Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.status();
}

// Calls `f` again while it fails with kUnavailable, up to kAttempts times, backing off.
template <typename F>
auto Retrying(F&& f) -> decltype(f()) {
  for (int attempt = 1;; ++attempt) {
    auto r = f();
    if (r.ok() || !StatusOf(r).retryable() || attempt == kAttempts) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 << (2 * attempt)));
  }
}

// An open bucket and the key prefix of an s3:// URL ("" or "a/b/").
struct Bucket {
  s3::S3Url url;
  std::unique_ptr<s3::ObjectClient> client;
  std::string prefix;
};

Result<Bucket> OpenBucket(const std::string& text,
                          const std::optional<StorageCredentials>& credentials, int connections) {
  ASSIGN_OR_RETURN(s3::S3Url url, s3::ParseS3Url(text));
  std::optional<s3::Credentials> given;
  if (credentials) {
    given = s3::Credentials{.access_key_id = credentials->access_key_id,
                            .secret_access_key = credentials->secret_access_key,
                            .session_token = credentials->session_token};
  }
  ASSIGN_OR_RETURN(auto client,
                   s3::OpenObjectClient(url, s3::ProcessEnv(), given ? &*given : nullptr,
                                        credentials ? credentials->origin : "", connections));
  std::string prefix = url.prefix.empty() ? "" : url.prefix + "/";
  return Bucket{.url = std::move(url), .client = std::move(client), .prefix = std::move(prefix)};
}

// The first manifest entry: where the objects came from. An earlier point of another bucket
// (the plan's url changed) is not used for incremental reuse.
json SourceEntry(const Bucket& b) {
  return json{{"source",
               {{"endpoint", b.client->options().endpoint},
                {"bucket", b.url.bucket},
                {"prefix", b.url.prefix}}}};
}

json AttributesToEntry(const s3::ObjectAttributes& a, json entry) {
  if (!a.content_type.empty()) entry["content_type"] = a.content_type;
  if (!a.metadata.empty()) entry["metadata"] = a.metadata;
  if (!a.headers.empty()) entry["headers"] = a.headers;
  return entry;
}

Result<s3::ObjectAttributes> AttributesFromEntry(const json& e) {
  s3::ObjectAttributes a;
  auto strings = [&](const char* field,
                     std::map<std::string, std::string>& out) -> Status {
    auto it = e.find(field);
    if (it == e.end()) return Status::Ok();
    if (!it->is_object()) return Corruption(std::string("an s3 entry's '") + field +
                                            "' is not an object");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string())
        return Corruption(std::string("an s3 entry's '") + field + "' has a non-string value");
      out[k] = v.get<std::string>();
    }
    return Status::Ok();
  };
  if (auto it = e.find("content_type"); it != e.end() && it->is_string())
    a.content_type = it->get<std::string>();
  RETURN_IF_ERROR(strings("metadata", a.metadata));
  RETURN_IF_ERROR(strings("headers", a.headers));
  // Only the headers S3 keeps as object attributes go back on a PUT.
  for (auto it = a.headers.begin(); it != a.headers.end();) {
    const auto& kept = s3::KeptHeaders();
    it = std::find(kept.begin(), kept.end(), it->first) == kept.end() ? a.headers.erase(it)
                                                                      : std::next(it);
  }
  return a;
}

// ---- backup ----

class DocumentsBackup {
 public:
  DocumentsBackup(Bucket& bucket, BackupSink& sink, const S3DocumentsSpec& spec)
      : bucket_(bucket), sink_(sink), spec_(spec) {}

  Result<json> Run() {
    if (spec_.incremental) OpenPrevious();
    RETURN_IF_ERROR(sink_.AddEntry(SourceEntry(bucket_), {}));
    Status listed;
    {
      size_t n = static_cast<size_t>(std::max(1, spec_.connections));
      ThreadPool pool(n, 2 * n);
      pool_ = &pool;
      listed = bucket_.client->List(bucket_.prefix,
                                    [this](s3::ListedObject o) { return OnListed(std::move(o)); });
      if (!listed.ok()) cancel_ = true;
      pool_ = nullptr;
    }  // waits for every download
    if (!listed.ok()) return listed;
    {
      std::lock_guard lk(mu_);
      if (!error_.ok()) return error_;
    }
    uint64_t downloaded = downloaded_, downloaded_bytes = downloaded_bytes_;
    return json{{"endpoint", bucket_.client->options().endpoint},
                {"bucket", bucket_.url.bucket},
                {"prefix", bucket_.url.prefix},
                {"objects", downloaded + reused_},
                {"bytes", downloaded_bytes + reused_bytes_},
                {"downloaded", downloaded},
                {"downloaded_bytes", downloaded_bytes},
                {"reused", reused_},
                {"reused_bytes", reused_bytes_},
                {"skipped", skipped_.load()}};
  }

 private:
  std::string Name(const std::string& key) const { return "'" + bucket_.client->Name(key) + "'"; }

  void OpenPrevious() {
    previous_ = sink_.Previous();
    if (!previous_) return;
    auto first = previous_->Next();
    if (!first.ok() || !*first || !(*first)->contains("source") ||
        (**first)["source"] != SourceEntry(bucket_)["source"]) {
      previous_.reset();  // another bucket (or an unreadable manifest): read everything
    }
  }

  // The previous point's entry for `rel`, if any. Listings come in ascending key order, as
  // the previous manifest was written, so one forward pass over it finds every match.
  std::optional<json> PreviousOf(const std::string& rel) {
    while (previous_) {
      if (prev_.is_object()) {
        const std::string key = prev_.value("key", "");
        if (key == rel) return prev_;
        if (key > rel) return std::nullopt;
      }
      auto next = previous_->Next();
      if (!next.ok() || !*next) {
        previous_.reset();
        prev_ = nullptr;
        return std::nullopt;
      }
      prev_ = **next;
    }
    return std::nullopt;
  }

  Status OnListed(s3::ListedObject o) {
    {
      std::lock_guard lk(mu_);
      if (!error_.ok()) return error_;
    }
    std::string rel = o.key.substr(bucket_.prefix.size());
    if (rel.empty()) return Status::Ok();  // the prefix's own "folder" marker
    if (std::optional<json> prev = PreviousOf(rel)) {
      ASSIGN_OR_RETURN(bool reused, Reuse(o, *prev));
      if (reused) return Status::Ok();
    }
    auto promise = std::make_shared<std::promise<Result<DeferredEntry>>>();
    EntryFuture entry = promise->get_future().share();
    pool_->Submit([this, promise, o = std::move(o), rel] {
      if (cancel_) {
        promise->set_value(Cancelled("the listing of the bucket failed"));
        return;
      }
      Result<DeferredEntry> r = Download(o, rel);
      if (!r.ok()) {
        std::lock_guard lk(mu_);
        if (error_.ok()) error_ = r.status();
        cancel_ = true;
      }
      promise->set_value(std::move(r));
    });
    RETURN_IF_ERROR(sink_.AddEntryLater(std::move(entry)));
    sink_.progress().entries.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }

  // Adds the previous entry again when the object is unchanged and its content still stored.
  Result<bool> Reuse(const s3::ListedObject& o, const json& prev) {
    if (o.etag.empty() || prev.value("etag", "") != o.etag ||
        prev.value("size", uint64_t{0}) != o.size ||
        prev.value("last_modified", "") != o.last_modified)
      return false;
    auto lists = prev.find("contents");
    if (lists == prev.end() || !lists->is_array() || lists->size() != 1) return false;
    if (!sink_.Reusable((*lists)[0])) return false;
    auto content = ContentFromJson((*lists)[0]);
    if (!content.ok() || content->size != o.size) return false;
    json entry = prev;
    entry.erase("contents");
    // Content type and metadata come from the previous point: S3 cannot change them without
    // writing the object again, which changes its last-modified time.
    RETURN_IF_ERROR(sink_.AddEntry(std::move(entry), {BackupSink::Ready(std::move(*content))}));
    sink_.progress().entries.fetch_add(1, std::memory_order_relaxed);
    ++reused_;
    reused_bytes_ += o.size;
    return true;
  }

  // Reads one object; retried once when it changes while being read.
  Result<DeferredEntry> Download(const s3::ListedObject& o, const std::string& rel) {
    Result<std::optional<DeferredEntry>> r = ReadObject(o, rel, o.etag);
    if (!r.ok() && r.status().code() == Code::kAborted) r = ReadObject(o, rel, "");
    if (!r.ok() && r.status().code() == Code::kAborted) {
      Skip("object " + Name(o.key) + " kept changing while it was read; it is not saved");
      return DeferredEntry{};
    }
    if (!r.ok()) return r.status();
    if (!*r) {
      Skip("object " + Name(o.key) + " was deleted during the backup; it is not saved");
      return DeferredEntry{};
    }
    return std::move(**r);
  }

  // nullopt: the object is gone. kAborted: its ETag is not (or no longer) `expect_etag`.
  Result<std::optional<DeferredEntry>> ReadObject(const s3::ListedObject& o,
                                                  const std::string& rel,
                                                  const std::string& expect_etag) {
    std::unique_ptr<ContentWriter> writer = sink_.NewContent();
    s3::ObjectHead head;
    std::string etag = expect_etag;
    uint64_t offset = 0;
    bool first = true;
    do {
      // Small objects in one plain GET (a range on an empty object is an error).
      uint64_t length = first && o.size <= kRangeSize ? 0 : kRangeSize;
      ASSIGN_OR_RETURN(std::optional<s3::ObjectData> got, Retrying([&] {
                         return bucket_.client->Get(o.key, offset, length, etag);
                       }));
      if (!got) return std::optional<DeferredEntry>();
      if (first) {
        head = std::move(got->head);
        etag = head.etag;
        first = false;
      } else if (got->head.etag != etag || got->head.size != head.size) {
        return Aborted("object " + Name(o.key) + " changed while it was read");
      }
      if (!got->data.empty()) RETURN_IF_ERROR(writer->Write(got->data));
      sink_.progress().bytes_read.fetch_add(got->data.size(), std::memory_order_relaxed);
      offset += got->data.size();
      if (length == 0 || got->data.empty()) break;
    } while (offset < head.size);
    if (offset != head.size)
      return Aborted("object " + Name(o.key) + " changed while it was read");
    json entry = {{"key", rel},
                  {"size", head.size},
                  {"etag", head.etag},
                  // Another version than the listed one: its listing time is unknown, so the
                  // next backup reads it again rather than trust a time that is not its own.
                  {"last_modified", head.etag == o.etag ? o.last_modified : ""}};
    entry = AttributesToEntry(head.attributes, std::move(entry));
    ++downloaded_;
    downloaded_bytes_ += head.size;
    return std::optional<DeferredEntry>(DeferredEntry{std::move(entry), {writer->Close()}});
  }

  void Skip(std::string message) {
    ++skipped_;
    sink_.Warn(std::move(message));
  }

  Bucket& bucket_;
  BackupSink& sink_;
  const S3DocumentsSpec& spec_;
  ThreadPool* pool_ = nullptr;
  std::unique_ptr<ManifestCursor> previous_;
  json prev_;  // the previous manifest's entry PreviousOf stopped at
  uint64_t reused_ = 0, reused_bytes_ = 0;  // the listing thread's
  std::atomic<uint64_t> downloaded_{0}, downloaded_bytes_{0}, skipped_{0};
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  Status error_;  // the first download that failed (not a warning), guarded by mu_
};

// ---- restore ----

class DocumentsRestore {
 public:
  DocumentsRestore(Bucket& target, RestoreSource& source, const RestoreOptions& options,
                   int connections)
      : target_(target), source_(source), options_(options), connections_(connections) {
    threshold_ = target.url.multipart_threshold.value_or(kDefaultMultipartThreshold);
    part_size_ = std::max<uint64_t>(target.url.part_size.value_or(kDefaultPartSize),
                                    s3::kMinPartSize);
  }

  Result<S3RestoreReport> Run() {
    bool del = false;
    if (auto it = options_.params.find("delete"); it != options_.params.end()) {
      if (!it->is_boolean())
        return InvalidArgument("restore parameter 'delete' must be true or false");
      del = it->get<bool>();
    }
    report_.target = s3::DisplayUrl(target_.url);
    // What is there already: an object with the same ETag and size may need no upload.
    RETURN_IF_ERROR(target_.client->List(target_.prefix, [&](s3::ListedObject o) {
      existing_.emplace(std::move(o.key), std::pair(o.size, std::move(o.etag)));
      return Status::Ok();
    }));
    std::unordered_set<std::string> keys;
    Status st;
    {
      size_t n = static_cast<size_t>(std::max(1, connections_));
      ThreadPool pool(n, 2 * n);
      st = source_.ForEachEntry([&](const json& e) -> Status {
        if (e.contains("source")) return Status::Ok();
        auto key = e.find("key");
        if (key == e.end() || !key->is_string() || key->get<std::string>().empty())
          return Corruption("an s3 manifest entry has no key");
        std::string rel = key->get<std::string>();
        if (!Included(rel)) return Status::Ok();
        keys.insert(rel);
        ++report_.objects;
        if (Status f = Failed(); !f.ok()) return f;
        pool.Submit([this, e] {
          if (Failed().ok()) Record(Upload(e));
        });
        return Status::Ok();
      });
    }  // every upload has finished
    if (st.ok()) st = Failed();
    if (!st.ok()) {
      return del ? st.WithContext("nothing was deleted from '" + report_.target + "'") : st;
    }
    report_.uploaded = uploaded_;
    report_.uploaded_bytes = uploaded_bytes_;
    report_.unchanged = unchanged_;
    if (del) RETURN_IF_ERROR(DeleteOthers(keys));
    return report_;
  }

 private:
  bool Included(const std::string& rel) const {
    if (options_.include.empty()) return true;
    return std::any_of(options_.include.begin(), options_.include.end(),
                       [&](const std::string& p) { return rel.starts_with(p); });
  }

  Status Failed() {
    std::lock_guard lk(mu_);
    return error_;
  }
  void Record(Status st) {
    if (st.ok()) return;
    std::lock_guard lk(mu_);
    if (error_.ok()) error_ = std::move(st);
  }

  Status Upload(const json& e) {
    std::string key = target_.prefix + e["key"].get<std::string>();
    ASSIGN_OR_RETURN(s3::ObjectAttributes attributes, AttributesFromEntry(e));
    uint64_t size = e.value("size", uint64_t{0});
    std::string etag = e.value("etag", "");
    auto lists = e.find("contents");
    if (lists == e.end() || !lists->is_array() || lists->size() != 1)
      return Corruption("the s3 manifest entry of '" + key + "' has no content");
    if (auto it = existing_.find(key);
        it != existing_.end() && !etag.empty() && it->second == std::pair(size, etag)) {
      ASSIGN_OR_RETURN(auto head, Retrying([&] { return target_.client->Head(key); }));
      if (head && head->etag == etag && head->size == size && head->attributes == attributes) {
        ++unchanged_;
        return Status::Ok();
      }
    }
    const json& content = (*lists)[0];
    auto too_short = [&](uint64_t got) {
      return Corruption("the content of '" + target_.client->Name(key) + "' in the point has " +
                        std::to_string(got) + " bytes, its entry says " + std::to_string(size));
    };
    if (size < threshold_) {
      Bytes data;
      data.reserve(size);
      RETURN_IF_ERROR(source_.ReadContent(content, [&](ByteView b) {
        data.insert(data.end(), b.begin(), b.end());
        return Status::Ok();
      }));
      if (data.size() != size) return too_short(data.size());
      RETURN_IF_ERROR(
          Retrying([&] { return target_.client->Put(key, data, attributes); }).status());
    } else {
      ASSIGN_OR_RETURN(std::string upload_id, Retrying([&] {
                         return target_.client->StartMultipart(key, attributes);
                       }));
      std::vector<std::string> etags;
      Bytes part;
      uint64_t total = 0;
      auto flush = [&]() -> Status {
        int number = static_cast<int>(etags.size()) + 1;
        ASSIGN_OR_RETURN(std::string t, Retrying([&] {
                           return target_.client->PutPart(key, upload_id, number, part);
                         }));
        etags.push_back(std::move(t));
        part.clear();
        return Status::Ok();
      };
      Status st = source_.ReadContent(content, [&](ByteView b) -> Status {
        total += b.size();
        while (!b.empty()) {
          size_t n = std::min<size_t>(b.size(), part_size_ - part.size());
          part.insert(part.end(), b.begin(), b.begin() + static_cast<ptrdiff_t>(n));
          b = b.subspan(n);
          if (part.size() == part_size_) RETURN_IF_ERROR(flush());
        }
        return Status::Ok();
      });
      if (st.ok() && total != size) st = too_short(total);
      if (st.ok() && (!part.empty() || etags.empty())) st = flush();
      if (st.ok()) st = target_.client->CompleteMultipart(key, upload_id, etags);
      if (!st.ok()) {
        target_.client->AbortMultipart(key, upload_id);
        return st;
      }
    }
    ++uploaded_;
    uploaded_bytes_ += size;
    return Status::Ok();
  }

  // After every upload: the target's objects (under the prefix, and the include paths) that
  // the point does not have.
  Status DeleteOthers(const std::unordered_set<std::string>& keys) {
    std::vector<std::string> doomed;
    RETURN_IF_ERROR(target_.client->List(target_.prefix, [&](s3::ListedObject o) {
      std::string rel = o.key.substr(target_.prefix.size());
      if (!rel.empty() && Included(rel) && !keys.contains(rel)) doomed.push_back(o.key);
      return Status::Ok();
    }));
    RETURN_IF_ERROR(Retrying([&] { return target_.client->DeleteMany(doomed); }));
    report_.deleted = doomed.size();
    return Status::Ok();
  }

  Bucket& target_;
  RestoreSource& source_;
  const RestoreOptions& options_;
  int connections_;
  uint64_t threshold_, part_size_;
  std::unordered_map<std::string, std::pair<uint64_t, std::string>> existing_;  // read-only
  S3RestoreReport report_;                                                        // in uploads
  std::atomic<uint64_t> uploaded_{0}, uploaded_bytes_{0}, unchanged_{0};
  std::mutex mu_;
  Status error_;  // the first failure, guarded by mu_
};

class S3DocumentsComponent final : public Component {
 public:
  S3DocumentsComponent(S3DocumentsSpec spec, std::optional<StorageCredentials> credentials)
      : spec_(std::move(spec)), credentials_(std::move(credentials)) {}
  std::string kind() const override { return "s3"; }

  Result<nlohmann::json> Backup(BackupSink& sink) override {
    if (spec_.url.empty())
      return InvalidArgument("the s3 component has no 'url': HINT: set url: s3://bucket[/prefix]"
                             "?endpoint=...&region=...");
    ASSIGN_OR_RETURN(Bucket bucket, OpenBucket(spec_.url, credentials_, spec_.connections));
    DocumentsBackup backup(bucket, sink, spec_);
    return backup.Run();
  }

  Status Restore(const nlohmann::json& info, RestoreSource& source,
                 const RestoreOptions& options) override {
    return RestoreS3Documents(info, source, options, spec_, credentials_).status();
  }

 private:
  S3DocumentsSpec spec_;
  std::optional<StorageCredentials> credentials_;
};

}  // namespace

std::unique_ptr<Component> MakeS3DocumentsComponent(
    S3DocumentsSpec spec, std::optional<StorageCredentials> credentials) {
  return std::make_unique<S3DocumentsComponent>(std::move(spec), std::move(credentials));
}

Result<S3RestoreReport> RestoreS3Documents(const nlohmann::json& info, RestoreSource& source,
                                           const RestoreOptions& options,
                                           const S3DocumentsSpec& spec,
                                           const std::optional<StorageCredentials>& credentials) {
  const std::string& url = options.target.empty() ? spec.url : options.target;
  std::string from;
  if (info.is_object() && info.contains("bucket")) {
    std::string prefix = info.value("prefix", "");
    from = " (the objects of 's3://" + info.value("bucket", "") +
           (prefix.empty() ? "" : "/" + prefix) + "')";
  }
  if (url.empty()) {
    return InvalidArgument("no bucket to restore into" + from +
                           ": HINT: give --target s3://bucket[/prefix]?endpoint=...&region=...");
  }
  if (!url.starts_with("s3://")) {
    return InvalidArgument("restore target '" + url + "' of an s3 component is not an s3:// url" +
                           from + ": HINT: give --target s3://bucket[/prefix]?endpoint=...");
  }
  ASSIGN_OR_RETURN(Bucket target, OpenBucket(url, credentials, spec.connections));
  DocumentsRestore restore(target, source, options, spec.connections);
  return restore.Run();
}

Result<StorageCredentials> ParseCredentialsSecret(std::string_view text, std::string origin) {
  std::vector<std::string> parts;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t b = 0;
    while (b < line.size() && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
    if (b < line.size()) parts.push_back(line.substr(b));
  }
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidArgument(origin + " has " + std::to_string(parts.size()) +
                           " non-empty line(s): HINT: write 2 or 3 lines: the access key id, "
                           "the secret access key, and optionally a session token");
  }
  return StorageCredentials{.access_key_id = parts[0],
                            .secret_access_key = parts[1],
                            .session_token = parts.size() > 2 ? parts[2] : "",
                            .origin = std::move(origin)};
}

}  // namespace reprise
