#include "orchestrate/backup.h"

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
  uint64_t total_bytes = 0, total_entries = 0;
  for (auto& item : job.items) {
    PointComponent pc;
    pc.name = item.name;
    pc.kind = item.kind;
    pc.started_ns = clock.NowUnixNanos();
    uint64_t new0 = ws.new_bytes, stored0 = ws.stored_bytes;
    if (!item.component) {
      pc.status = "failed";
      pc.error = item.build_error.message();
    } else {
      RepoBackupSink sink(repo, pool);
      if (auto prev = previous_of(item)) sink.SetPrevious(std::move(*prev));
      std::mutex name_mu;
      Ticker ticker(tick ? std::function<void()>([&] {
        BackupTick t;
        t.component = item.name;
        t.entries = sink.progress().entries;
        t.bytes_read = sink.progress().bytes_read;
        t.new_bytes = ws.new_bytes - new0;
        t.stored_bytes = ws.stored_bytes - stored0;
        t.seconds = static_cast<double>(clock.NowUnixNanos() - pc.started_ns) / 1e9;
        tick(t);
      })
                         : std::function<void()>());
      auto info = item.component->Backup(sink);
      Result<std::vector<Id>> manifest =
          info.ok() ? sink.Finish() : Result<std::vector<Id>>(info.status());
      if (!manifest.ok()) {
        pc.status = "failed";
        pc.error = manifest.status().message();
        // A storage failure is not this component's: stop rather than write a point that
        // may name blobs that never reached the repository.
        if (manifest.status().code() == Code::kIOError ||
            manifest.status().code() == Code::kUnavailable ||
            manifest.status().code() == Code::kPermissionDenied) {
          Status flushed = repo.Flush();
          (void)flushed;
          return manifest.status().WithContext("backup of component '" + item.name + "'");
        }
      } else {
        pc.manifest = std::move(*manifest);
        pc.info = std::move(*info);
        pc.entries = sink.entries();
        pc.warnings = sink.warnings();
        pc.warning_count = sink.warning_count();
        total_bytes += sink.bytes();
        total_entries += sink.entries();
      }
      pc.stats = {{"entries", sink.entries()},
                  {"bytes", sink.bytes()},
                  {"bytes_read", sink.progress().bytes_read.load()},
                  {"reused_bytes", sink.reused_bytes()},
                  {"new_bytes", ws.new_bytes - new0},
                  {"stored_bytes", ws.stored_bytes - stored0}};
    }
    pc.finished_ns = clock.NowUnixNanos();
    if (pc.status != "ok") point.status = "partial";
    point.components.push_back(std::move(pc));
  }
  // Packs and index first; the point only once they are durable.
  RETURN_IF_ERROR(repo.Flush().WithContext("finishing the backup"));
  point.stats = {{"entries", total_entries},
                 {"bytes", total_bytes},
                 {"new_bytes", ws.new_bytes.load()},
                 {"stored_bytes", ws.stored_bytes.load()},
                 {"new_blobs", ws.new_blobs.load()},
                 {"dedup_bytes", ws.dedup_bytes.load()},
                 {"packs", ws.packs.load()},
                 {"seconds", static_cast<double>(clock.NowUnixNanos() - point.time_ns) / 1e9}};
  ASSIGN_OR_RETURN(point.id, repo.SavePoint(point));
  return point;
}

}  // namespace reprise
