// The engine between components and the repository: a BackupSink that chunks, hashes,
// deduplicates, compresses, seals and packs content on a thread pool, and a RestoreSource
// that reads it back in order with parallel prefetch.
//
// Pipeline (backup): the component's thread reads and chunks (a chunk is cut only once
// max_size bytes are buffered or the stream ends, so no byte is scanned twice); each chunk is
// a pool job: HMAC id -> dedup -> zstd -> AES-GCM -> pack; full packs are written by the
// repository's upload threads. Memory is bounded by the pool's queue (jobs of at most
// max_size bytes), the pending-entry window and the packs in flight, never by data size.
#pragma once

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/thread_pool.h"
#include "components/component.h"
#include "repo/point.h"
#include "repo/repository.h"
#include "repo/span_cache.h"

namespace reprise {

class RepoBackupSink final : public BackupSink {
 public:
  RepoBackupSink(Repository& repo, ThreadPool& pool);
  ~RepoBackupSink() override;

  std::unique_ptr<ContentWriter> NewContent() override;
  std::unique_ptr<ContentWriter> NewContent(const ContentOptions& options) override;
  Status AddEntry(nlohmann::json entry, std::vector<ContentFuture> contents) override;
  Status AddEntryLater(EntryFuture entry) override;
  void Warn(std::string message) override;
  BackupProgress& progress() override { return progress_; }
  std::unique_ptr<ManifestCursor> Previous() override;
  bool Reusable(const nlohmann::json& content) override;
  // The manifest that Previous() reads (set by the orchestrator before Backup).
  void SetPrevious(std::vector<Id> manifest) { previous_ = std::move(manifest); }
  uint64_t reused_bytes() const { return reused_bytes_; }
  // The blobs this sink stored (new) or found stored (dedup): its own share of the
  // repository's write stats, right while other sinks write at once.
  const WriteStats& write_stats() const { return *counters_; }

  // Waits for every pending entry and writes the rest of the manifest. Returns its tree blobs.
  Result<std::vector<Id>> Finish();
  uint64_t entries() const { return entries_; }
  uint64_t bytes() const { return bytes_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  uint64_t warning_count() const { return warning_count_; }

 private:
  struct Pending {
    nlohmann::json entry;
    std::vector<ContentFuture> contents;
    std::optional<EntryFuture> later;  // when set, entry and contents come from it
  };
  Status Drain(bool all);
  Status WriteFront();
  Status EmitLine(const std::string& line);
  Status CutManifest(bool eof);

  Repository& repo_;
  ThreadPool& pool_;
  BackupProgress progress_;
  std::deque<Pending> pending_;
  Bytes manifest_buf_;
  std::vector<Id> manifest_;
  std::optional<std::vector<Id>> previous_;
  uint64_t entries_ = 0, bytes_ = 0;
  std::atomic<uint64_t> reused_bytes_{0};
  std::shared_ptr<WriteStats> counters_ = std::make_shared<WriteStats>();
  std::mutex warn_mu_;
  std::vector<std::string> warnings_;
  uint64_t warning_count_ = 0;
};

class RepoRestoreSource final : public RestoreSource {
 public:
  RepoRestoreSource(Repository& repo, const PointComponent& component, ThreadPool& pool);
  Status ForEachEntry(const std::function<Status(const nlohmann::json&)>& fn) override;
  Status ReadContent(const nlohmann::json& content,
                     const std::function<Status(ByteView)>& sink) override;
  Status ReadContents(const std::vector<const nlohmann::json*>& contents,
                      const std::function<Status(size_t, ByteView)>& sink) override;
  Result<Content> Resolve(const nlohmann::json& content) override;
  std::optional<Id> ChunkIdOf(ByteView data) override;
  Result<Bytes> ReadChunk(const ChunkRef& chunk) override;
  Status ExpectFullRead() override;
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  // Through the span cache when ExpectFullRead planned one, else Repository::ReadBlobs.
  Status ReadBlobs(const std::vector<Id>& ids, std::vector<Bytes>* out);
  std::unique_ptr<SpanCache> spans_;
  std::atomic<uint64_t> bytes_read_{0};
  Repository& repo_;
  const PointComponent& component_;
  ThreadPool& pool_;
};

// Reads the manifest made of `trees` forward (see ManifestCursor).
std::unique_ptr<ManifestCursor> OpenManifest(Repository& repo, std::vector<Id> trees);

// Visits every blob a point needs: its manifests' tree blobs, then every content chunk.
// Stops at the first error (a tree blob that cannot be read, a malformed entry).
Status VisitPointBlobs(Repository& repo, const PointComponent& component,
                       const std::function<void(const Id&, BlobType)>& visit);

}  // namespace reprise
