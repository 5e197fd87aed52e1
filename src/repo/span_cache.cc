#include "repo/span_cache.h"

#include <algorithm>
#include <limits>


namespace reprise {

SpanCache::SpanCache(Repository& repo) : repo_(repo) {}

SpanCache::~SpanCache() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (fetcher_.joinable()) fetcher_.join();
}

Result<std::unique_ptr<SpanCache>> SpanCache::Plan(
    Repository& repo,
    const std::function<Status(const std::function<void(const Id&)>&)>& visit_needed,
    size_t max_blobs, size_t max_spans) {
  std::unique_ptr<SpanCache> cache(new SpanCache(repo));
  cache->max_spans_ = std::max<size_t>(1, max_spans);
  struct Need {
    BlobLocation loc;
    uint64_t first = 0;  // when it is first needed (visit number)
    uint64_t reads = 0;
  };
  using Entry = std::pair<const Id, Need>;  // points into `blobs`, which no longer changes
  struct PackNeed {
    uint64_t lo = std::numeric_limits<uint64_t>::max(), hi = 0, needed = 0;
    std::vector<const Entry*> blobs;
  };
  std::unordered_map<Id, Need, IdHash> blobs;
  uint64_t visits = 0;
  bool too_many = false;
  RETURN_IF_ERROR(visit_needed([&](const Id& id) {
    if (too_many) return;
    ++visits;
    auto it = blobs.find(id);
    if (it == blobs.end()) {
      if (blobs.size() >= max_blobs) {
        too_many = true;
        blobs.clear();
        return;
      }
      auto found = repo.index().Find(id);
      if (!found.ok()) return;  // reading it will say so
      it = blobs.emplace(id, Need{*found, visits, 0}).first;
    }
    ++it->second.reads;
  }));
  if (too_many) return std::unique_ptr<SpanCache>();
  std::unordered_map<Id, PackNeed, IdHash> packs;
  for (const Entry& e : blobs) {
    const BlobLocation& loc = e.second.loc;
    PackNeed& p = packs[loc.pack];
    p.lo = std::min(p.lo, loc.offset);
    p.hi = std::max(p.hi, loc.offset + loc.length);
    p.needed += loc.length;
    p.blobs.push_back(&e);
  }
  // A pack's needed span is worth reading whole when at least half of it is needed; it is
  // read in pieces of about kPieceBytes, each one GET, cut between blobs.
  struct Piece {
    SpanPlan span;
    uint64_t first, reads;
    std::vector<const Entry*> blobs;
  };
  std::vector<Piece> pieces;
  for (auto& [pack, p] : packs) {
    const uint64_t length = p.hi - p.lo;
    if (p.needed * 2 < length) continue;
    std::sort(p.blobs.begin(), p.blobs.end(), [](const Entry* a, const Entry* b) {
      return a->second.loc.offset < b->second.loc.offset;
    });
    for (const Entry* e : p.blobs) {
      const Need& need = e->second;
      const uint64_t end = need.loc.offset + need.loc.length;
      if (pieces.empty() || pieces.back().span.pack != pack ||
          end - pieces.back().span.offset > kPieceBytes) {
        pieces.push_back(Piece{SpanPlan{pack, need.loc.offset, 0}, need.first, 0, {}});
      }
      Piece& piece = pieces.back();
      piece.span.length = end - piece.span.offset;
      piece.first = std::min(piece.first, need.first);
      piece.reads += need.reads;
      piece.blobs.push_back(e);
    }
  }
  std::sort(pieces.begin(), pieces.end(),
            [](const Piece& a, const Piece& b) { return a.first < b.first; });
  for (const Piece& piece : pieces) {
    const auto index = static_cast<uint32_t>(cache->spans_.size());
    cache->spans_.push_back(piece.span);
    cache->planned_reads_.push_back(piece.reads);
    cache->fetched_.push_back(false);
    for (const Entry* e : piece.blobs) cache->where_.emplace(e->first, Where{index, e->second.loc});
  }
  if (!cache->spans_.empty()) cache->fetcher_ = std::thread([c = cache.get()] { c->FetchLoop(); });
  return cache;
}

uint64_t SpanCache::fetches() const {
  std::lock_guard lk(mu_);
  return fetches_;
}

Status SpanCache::ReadBlobs(const std::vector<Id>& ids, std::vector<Bytes>* out) {
  // Runs of blobs outside the whole spans go to the repository together, in order.
  std::vector<Id> run;
  auto flush_run = [&]() -> Status {
    if (run.empty()) return Status::Ok();
    Status s = repo_.ReadBlobs(run, out);
    run.clear();
    return s;
  };
  for (const Id& id : ids) {
    auto w = where_.find(id);
    if (w == where_.end()) {
      run.push_back(id);
      continue;
    }
    RETURN_IF_ERROR(flush_run());
    const Where& where = w->second;
    const SpanPlan& span = spans_[where.span];
    ASSIGN_OR_RETURN(std::shared_ptr<const Bytes> bytes, Get(where.span, true));
    if (!bytes) {  // its span was dropped before this read: read the blob alone
      run.push_back(id);
      continue;
    }
    ByteView sealed = ByteView(*bytes).subspan(where.loc.offset - span.offset, where.loc.length);
    auto plain = repo_.OpenStoredBlob(id, where.loc, sealed);
    Served(where.span);
    if (!plain.ok()) return plain.status();
    out->push_back(std::move(*plain));
  }
  return flush_run();
}

Result<std::shared_ptr<const Bytes>> SpanCache::Get(uint32_t i, bool reader) {
  std::unique_lock lk(mu_);
  if (reader) Prefetch(i + 1);
  for (;;) {
    auto it = held_.find(i);
    if (it == held_.end()) {
      // Fetched once and dropped since (evicted, or a read the plan did not count): fetching
      // the whole piece again for what is left of it could repeat for every late blob.
      if (fetched_[i]) return std::shared_ptr<const Bytes>();
      break;  // neither held nor in flight: this thread fetches it
    }
    if (it->second.done) {
      if (!it->second.error.ok()) return it->second.error;
      return it->second.bytes;
    }
    cv_.wait(lk);  // in flight: another thread fetches it
  }
  held_[i].reads_left = planned_reads_[i];
  fetched_[i] = true;
  lk.unlock();
  const SpanPlan& span = spans_[i];
  auto got = repo_.ReadPackRange(span.pack, span.offset, span.length);
  lk.lock();
  Fetched& f = held_[i];
  f.done = true;
  ++fetches_;
  if (got.ok()) {
    f.bytes = std::make_shared<const Bytes>(std::move(*got));
  } else {
    f.error = got.status();
  }
  Result<std::shared_ptr<const Bytes>> result =
      f.error.ok() ? Result<std::shared_ptr<const Bytes>>(f.bytes)
                   : Result<std::shared_ptr<const Bytes>>(f.error);
  EvictLocked();
  lk.unlock();
  cv_.notify_all();
  return result;
}

void SpanCache::Served(uint32_t i) {
  std::lock_guard lk(mu_);
  auto it = held_.find(i);
  if (it == held_.end() || !it->second.done) return;
  if (it->second.reads_left > 0 && --it->second.reads_left == 0) held_.erase(it);
}

void SpanCache::Prefetch(uint32_t from) {
  bool queued = false;
  for (uint32_t j = from; j < spans_.size() && j < from + kAhead; ++j) {
    if (fetched_[j] || std::find(to_fetch_.begin(), to_fetch_.end(), j) != to_fetch_.end())
      continue;
    to_fetch_.push_back(j);
    queued = true;
  }
  if (queued) cv_.notify_all();
}

void SpanCache::EvictLocked() {
  // Oldest in need order first; spans in flight stay.
  while (held_.size() > max_spans_) {
    auto victim = held_.end();
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (it->second.done && (victim == held_.end() || it->first < victim->first)) victim = it;
    }
    if (victim == held_.end()) return;
    held_.erase(victim);
  }
}

void SpanCache::FetchLoop() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || !to_fetch_.empty(); });
    if (stop_) return;
    const uint32_t j = to_fetch_.front();
    to_fetch_.erase(to_fetch_.begin());
    // A reader got to it first (it may even be served and dropped already); or no room is
    // left, and fetching ahead would only evict what readers still need.
    if (fetched_[j] || held_.size() >= max_spans_) continue;
    lk.unlock();
    (void)Get(j, false);  // errors stay in held_ for the reader that needs the span
    lk.lock();
  }
}

}  // namespace reprise
