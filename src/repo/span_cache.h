// Whole-span reads for a restore that needs nearly everything a point references.
//
// Blob by blob (or in the ranged spans of Repository::ReadBlobs), a restore of 1 GiB from an
// object store costs some 700 ranged GETs, a seventh of them reading again what a neighbour
// read, and the server spends about as much CPU on the requests as on the bytes (Ceph RGW:
// ~0.5 ms a request). A SpanCache is planned from the point's manifest before the restore
// begins: for each pack, the span from the first to the last blob the point needs. A pack
// whose span is mostly needed is fetched once, in one GET, by the first reader that needs it
// (the next packs in the order the restore needs them are fetched ahead by a thread of the
// cache), and every blob of it is served from memory; the span is dropped when its last
// planned blob has been served. Packs with little of their span needed, and blobs the plan
// does not know, are read as before.
//
// Memory: at most kMaxSpans spans of at most kPieceBytes each are held at once (the plan is
// an estimate: a span whose blobs are not all read is evicted by need order when over). A span
// is fetched once: the blobs still wanted from one evicted or already dropped are read one
// run at a time, as without a plan, so a restore that outgrows the limit degrades to the
// unplanned reads instead of fetching pieces again and again; nothing is fetched ahead while
// the limit is reached.
// Thread-safety: ReadBlobs may be called from many threads at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "repo/index.h"
#include "repo/repository.h"

namespace reprise {

class SpanCache {
 public:
  static constexpr uint64_t kPieceBytes = 4 << 20;
  static constexpr size_t kMaxSpans = 32;
  static constexpr size_t kAhead = 4;  // spans fetched ahead of the one first needed now

  // The plan keeps an entry per distinct blob (about 100 bytes): past this many, a restore is
  // read without one (as before the plan existed) rather than hold that much memory.
  static constexpr size_t kMaxPlannedBlobs = 1 << 20;

  // `visit_needed(fn)` must call fn(blob id) for every blob read the restore will make, in
  // the order it will make them (a blob read twice, twice). Blobs missing from the index are
  // left out of the plan (reading them reports them as usual). Returns no cache (nullptr)
  // when more than `max_blobs` distinct blobs are needed.
  static Result<std::unique_ptr<SpanCache>> Plan(
      Repository& repo,
      const std::function<Status(const std::function<void(const Id&)>&)>& visit_needed,
      size_t max_blobs = kMaxPlannedBlobs, size_t max_spans = kMaxSpans);
  ~SpanCache();
  SpanCache(const SpanCache&) = delete;
  SpanCache& operator=(const SpanCache&) = delete;

  // As Repository::ReadBlobs: `out` gets the plaintext of each of `ids`, in order.
  Status ReadBlobs(const std::vector<Id>& ids, std::vector<Bytes>* out);

  // What the plan chose (for tests and the verbose log).
  size_t whole_spans() const { return spans_.size(); }
  uint64_t fetches() const;

 private:
  struct SpanPlan {
    Id pack;
    uint64_t offset = 0, length = 0;
  };
  struct Fetched {
    bool done = false;
    Status error;
    std::shared_ptr<const Bytes> bytes;
    uint64_t reads_left = 0;  // planned blob reads not yet served
  };
  struct Where {
    uint32_t span;  // index into spans_
    BlobLocation loc;
  };

  explicit SpanCache(Repository& repo);
  // The bytes of span `i`: fetched by this thread unless in flight or held; waits if in flight.
  // A reader's call also queues the next kAhead spans for the fetcher thread. No bytes
  // (nullptr) when the span was fetched once and dropped since: the caller reads its blob
  // alone.
  Result<std::shared_ptr<const Bytes>> Get(uint32_t i, bool reader);
  void Served(uint32_t i);
  void Prefetch(uint32_t from);  // mu_ held
  void EvictLocked();            // mu_ held
  void FetchLoop();

  Repository& repo_;
  std::vector<SpanPlan> spans_;                          // in need order
  std::vector<uint64_t> planned_reads_;                  // per span
  std::unordered_map<Id, Where, IdHash> where_;          // blobs in whole spans

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<uint32_t, Fetched> held_;  // fetched or in flight
  // Per span: a fetch has started once. Such a span is never fetched again: once it is
  // dropped, a reader that still needs one of its blobs reads that blob alone.
  std::vector<bool> fetched_;
  size_t max_spans_ = kMaxSpans;
  std::vector<uint32_t> to_fetch_;              // prefetches not yet started
  uint64_t fetches_ = 0;
  bool stop_ = false;
  std::thread fetcher_;
};

}  // namespace reprise
