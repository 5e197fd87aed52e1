#include "orchestrate/backup.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "common/sysinfo.h"
#include "common/thread_pool.h"
#include "repo/content.h"

namespace reprise {

namespace {

// Calls `tick` every 250 ms until destroyed.
class Ticker {
 public:
  explicit Ticker(std::function<void()> tick) : tick_(std::move(tick)) {
    if (tick_) thread_ = std::thread([this] { Run(); });
  }
  ~Ticker() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::unique_lock lk(mu_);
    while (!cv_.wait_for(lk, std::chrono::milliseconds(250), [&] { return stop_; })) tick_();
  }
  std::function<void()> tick_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Remembers the first error that came out of the repository's write path while a component
// ran: a content stream that could not be written or a content whose chunks could not be
// stored. Such an error is the storage's, not the component's, whatever its code.
class StorageErrors {
 public:
  void Note(const Status& st) {
    if (st.ok()) return;
    std::lock_guard lk(mu_);
    if (first_.ok()) first_ = st;
  }
  void Watch(ContentFuture f) {
    std::lock_guard lk(mu_);
    watched_.push_back(std::move(f));
    // Drop resolved, successful contents now and then so memory stays bounded.
    if (watched_.size() >= 4096) CollectLocked();
  }
  // The first storage error, looking at every content that has resolved.
  Status First() {
    std::lock_guard lk(mu_);
    CollectLocked();
    return first_;
  }

 private:
  void CollectLocked() {
    std::vector<ContentFuture> keep;
    for (auto& f : watched_) {
      if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        keep.push_back(std::move(f));
        continue;
      }
      const Result<Content>& c = f.get();
      if (!c.ok() && first_.ok()) first_ = c.status();
    }
    watched_.swap(keep);
  }
  std::mutex mu_;
  Status first_;
  std::vector<ContentFuture> watched_;
};

class WatchedWriter final : public ContentWriter {
 public:
  WatchedWriter(std::unique_ptr<ContentWriter> inner, StorageErrors& errors)
      : inner_(std::move(inner)), errors_(errors) {}
  Status Write(ByteView data) override {
    Status st = inner_->Write(data);
    errors_.Note(st);
    return st;
  }
  ContentFuture Close() override {
    ContentFuture f = inner_->Close();
    errors_.Watch(f);
    return f;
  }

 private:
  std::unique_ptr<ContentWriter> inner_;
  StorageErrors& errors_;
};

// The repository sink, with the errors of its content streams noted (see StorageErrors).
class WatchedSink final : public BackupSink {
 public:
  WatchedSink(RepoBackupSink& inner, StorageErrors& errors) : inner_(inner), errors_(errors) {}
  std::unique_ptr<ManifestCursor> Previous() override { return inner_.Previous(); }
  bool Reusable(const nlohmann::json& content) override { return inner_.Reusable(content); }
  std::unique_ptr<ContentWriter> NewContent() override {
    return std::make_unique<WatchedWriter>(inner_.NewContent(), errors_);
  }
  std::unique_ptr<ContentWriter> NewContent(const ContentOptions& options) override {
    return std::make_unique<WatchedWriter>(inner_.NewContent(options), errors_);
  }
  Status AddEntry(nlohmann::json entry, std::vector<ContentFuture> contents) override {
    return inner_.AddEntry(std::move(entry), std::move(contents));
  }
  Status AddEntryLater(EntryFuture entry) override {
    return inner_.AddEntryLater(std::move(entry));
  }
  void Warn(std::string message) override { inner_.Warn(std::move(message)); }
  BackupProgress& progress() override { return inner_.progress(); }

 private:
  RepoBackupSink& inner_;
  StorageErrors& errors_;
};

// A component while it runs: what the ticker reads.
struct Running {
  const BackupItem* item = nullptr;
  RepoBackupSink* sink = nullptr;
  int64_t started_ns = 0;
};

}  // namespace

Result<Point> RunBackup(Repository& repo, BackupJob& job, const Clock& clock,
                        const std::function<void(const BackupTick&)>& tick) {
  Point point;
  point.time_ns = clock.NowUnixNanos();
  point.host = HostName();
  point.user = UserName();
  point.tags = job.tags;
  point.plan = job.plan_name;
  point.site = job.site;

  // Each component's previous manifest lets it skip what has not changed.
  std::vector<Point> earlier;
  if (auto listed = repo.ListPoints(); listed.ok()) earlier = std::move(*listed);
  auto previous_of = [&](const BackupItem& item) -> std::optional<std::vector<Id>> {
    for (auto it = earlier.rbegin(); it != earlier.rend(); ++it) {
      if (it->host != point.host) continue;
      const PointComponent* c = it->Find(item.name);
      if (c && c->kind == item.kind && c->status == "ok") return c->manifest;
    }
    return std::nullopt;
  };

  ThreadPool pool(DefaultThreads(), 2 * DefaultThreads());
  auto& ws = repo.write_stats();
  std::vector<PointComponent> results(job.items.size());

  std::mutex mu;  // guards everything below
  std::vector<Running> running;
  Status storage_failure;
  size_t next = 0;

  Ticker ticker(tick ? std::function<void()>([&] {
    std::vector<BackupTick> ticks;
    {
      std::lock_guard lk(mu);
      for (const auto& r : running) {
        BackupTick t;
        t.component = r.item->name;
        t.entries = r.sink->progress().entries;
        t.bytes_read = r.sink->progress().bytes_read;
        t.seconds = static_cast<double>(clock.NowUnixNanos() - r.started_ns) / 1e9;
        t.new_bytes = r.sink->write_stats().new_bytes;
        t.stored_bytes = r.sink->write_stats().stored_bytes;
        ticks.push_back(t);
      }
    }
    for (const auto& t : ticks) tick(t);
  })
                       : std::function<void()>());

  auto run_one = [&](size_t i) {
    BackupItem& item = job.items[i];
    PointComponent& pc = results[i];
    pc.name = item.name;
    pc.kind = item.kind;
    pc.started_ns = clock.NowUnixNanos();
    if (!item.component) {
      pc.status = "failed";
      pc.error = item.build_error.message();
      pc.finished_ns = clock.NowUnixNanos();
      return;
    }
    RepoBackupSink sink(repo, pool);
    if (auto prev = previous_of(item)) sink.SetPrevious(std::move(*prev));
    StorageErrors storage_errors;
    WatchedSink watched(sink, storage_errors);
    {
      std::lock_guard lk(mu);
      running.push_back(Running{&item, &sink, pc.started_ns});
    }
    auto info = item.component->Backup(watched);
    Result<std::vector<Id>> manifest =
        info.ok() ? sink.Finish() : Result<std::vector<Id>>(info.status());
    Status from_storage = storage_errors.First();
    {
      std::lock_guard lk(mu);
      // Each component has its own sink: that is what names its entry.
      std::erase_if(running, [&](const Running& r) { return r.sink == &sink; });
      if (!from_storage.ok() && storage_failure.ok())
        storage_failure =
            from_storage.WithContext("backup of component '" + item.name + "'");
    }
    if (!manifest.ok()) {
      pc.status = "failed";
      pc.error = manifest.status().message();
    } else {
      pc.manifest = std::move(*manifest);
      pc.info = std::move(*info);
      pc.entries = sink.entries();
      pc.warnings = sink.warnings();
      pc.warning_count = sink.warning_count();
    }
    pc.stats = {{"entries", sink.entries()},
                {"bytes", sink.bytes()},
                {"bytes_read", sink.progress().bytes_read.load()},
                {"reused_bytes", sink.reused_bytes()},
                {"new_bytes", sink.write_stats().new_bytes.load()},
                {"stored_bytes", sink.write_stats().stored_bytes.load()}};
    pc.finished_ns = clock.NowUnixNanos();
  };

  // `parallel` workers take the next component in order until none is left or the storage
  // failed (then nothing new starts; those running finish, failing fast on the same error).
  auto worker = [&] {
    for (;;) {
      size_t i;
      {
        std::lock_guard lk(mu);
        if (next >= job.items.size() || !storage_failure.ok()) return;
        i = next++;
      }
      run_one(i);
    }
  };
  size_t n = std::min<size_t>(std::max(job.parallel, 1), job.items.size());
  {
    std::vector<std::thread> threads;
    for (size_t k = 1; k < n; ++k) threads.emplace_back(worker);
    if (n > 0) worker();
    for (auto& t : threads) t.join();
  }

  if (!storage_failure.ok()) {
    // A storage failure is not the component's: stop rather than write a point that may
    // name blobs that never reached the repository.
    Status flushed = repo.Flush();
    (void)flushed;
    return storage_failure;
  }

  uint64_t total_bytes = 0, total_entries = 0;
  for (auto& pc : results) {
    if (pc.status != "ok") {
      point.status = "partial";
    } else {
      total_bytes += pc.stats.value("bytes", uint64_t{0});
      total_entries += pc.entries;
    }
    point.components.push_back(std::move(pc));
  }
  // Packs and index first; the point only once they are durable. An upload that failed
  // without any component seeing it fails here.
  RETURN_IF_ERROR(repo.Flush().WithContext("finishing the backup"));
  point.stats = {{"entries", total_entries},
                 {"bytes", total_bytes},
                 {"new_bytes", ws.new_bytes.load()},
                 {"stored_bytes", ws.stored_bytes.load()},
                 {"new_blobs", ws.new_blobs.load()},
                 {"dedup_bytes", ws.dedup_bytes.load()},
                 {"packs", ws.packs.load()},
                 {"parallel", n},
                 {"seconds", static_cast<double>(clock.NowUnixNanos() - point.time_ns) / 1e9}};
  ASSIGN_OR_RETURN(point.id, repo.SavePoint(point));
  return point;
}

nlohmann::json PositionOf(const PointComponent& c) {
  const nlohmann::json& info = c.info;
  nlohmann::json pos = nlohmann::json::object();
  if (!info.is_object()) return pos;
  if (c.kind == "postgres") {
    for (const char* key : {"start_lsn", "end_lsn"})
      if (info.contains(key) && info[key].is_string()) pos[key] = info[key];
    if (info.contains("end_tli")) pos["timeline"] = info["end_tli"];
  } else if (c.kind == "redis") {
    if (info.contains("master_repl_offset")) pos["master_repl_offset"] = info["master_repl_offset"];
  } else if (c.kind == "qdrant") {
    nlohmann::json names = nlohmann::json::array();
    if (info.contains("peers") && info["peers"].is_array()) {
      for (const auto& peer : info["peers"]) {
        if (!peer.is_object() || !peer.contains("snapshots") || !peer["snapshots"].is_array())
          continue;
        for (const auto& s : peer["snapshots"])
          if (s.is_object() && s.contains("name") && s["name"].is_string())
            names.push_back(s.value("collection", "") + "/" + s["name"].get<std::string>());
      }
    }
    if (!names.empty()) pos["snapshots"] = names;
  }
  return pos;
}

std::string DescribePosition(const PointComponent& c) {
  nlohmann::json p = PositionOf(c);
  if (p.contains("start_lsn") && p.contains("end_lsn"))
    return "lsn " + p["start_lsn"].get<std::string>() + " .. " + p["end_lsn"].get<std::string>();
  if (p.contains("master_repl_offset"))
    return "replication offset " + p["master_repl_offset"].dump();
  if (p.contains("snapshots")) {
    std::string s = "snapshot";
    if (p["snapshots"].size() > 1) s += "s";
    for (size_t i = 0; i < p["snapshots"].size(); ++i) {
      if (i == 3) {
        s += " and " + std::to_string(p["snapshots"].size() - 3) + " more";
        break;
      }
      s += (i ? ", " : " ") + p["snapshots"][i].get<std::string>();
    }
    return s;
  }
  return "";
}

}  // namespace reprise
