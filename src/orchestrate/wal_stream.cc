#include "orchestrate/wal_stream.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/thread_pool.h"
#include "components/files/posix.h"
#include "pg/connection.h"
#include "pg/replication.h"
#include "pg/wal_names.h"
#include "repo/wal_store.h"

namespace reprise {

namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

class Spooler final : public pg::WalStreamHandler {
 public:
  Spooler(WalStore& wal, const WalStreamOptions& o, uint64_t seg_size, uint32_t tli,
          const std::atomic<bool>& stop, WalStreamStats& stats,
          const std::function<void(const std::string&)>& log)
      : wal_(wal), o_(o), seg_size_(seg_size), tli_(tli), stop_(stop), stats_(stats), log_(log) {}

  ~Spooler() override { CloseFile(); }

  void set_timeline(uint32_t tli) { tli_ = tli; }

  // Where streaming must (re)start: the end of the spooled partial, if there is one for this
  // timeline, else `fallback` rounded down to its segment start.
  pg::Lsn ResumePoint(pg::Lsn fallback) {
    std::error_code ec;
    pg::Lsn best = 0;
    for (const auto& e : fs::directory_iterator(o_.spool_dir, ec)) {
      std::string n = e.path().filename().string();
      if (n.size() != 32 || n.substr(24) != ".partial") continue;
      auto id = pg::ParseSegmentName(n.substr(0, 24), seg_size_);
      if (!id || id->tli != tli_) continue;
      pg::Lsn end = pg::SegmentStartLsn(*id, seg_size_) + e.file_size(ec);
      best = std::max(best, end);
    }
    if (best) return best;
    return fallback - fallback % seg_size_;
  }

  Status OnWalData(pg::Lsn lsn, ByteView data) override {
    while (!data.empty()) {
      uint64_t segno = lsn / seg_size_;
      if (!file_.valid() || segno != segno_) RETURN_IF_ERROR(OpenSegment(segno, lsn));
      if (lsn != pos_)
        return Corruption("WAL stream jumped from " + pg::FormatLsn(pos_) + " to " +
                          pg::FormatLsn(lsn));
      uint64_t room = seg_size_ - lsn % seg_size_;
      size_t n = static_cast<size_t>(std::min<uint64_t>(room, data.size()));
      RETURN_IF_ERROR(files::WriteAllAt(file_.get(), data.first(n), lsn % seg_size_, path_));
      lsn += n;
      pos_ = lsn;
      dirty_ = true;
      stats_.bytes += n;
      data = data.subspan(n);
      if (lsn % seg_size_ == 0) RETURN_IF_ERROR(CompleteSegment());
    }
    return Status::Ok();
  }

  pg::Lsn Flushed() override {
    if (file_.valid() && dirty_) {
      if (::fdatasync(file_.get()) == 0) {
        flushed_ = pos_;
        dirty_ = false;
      } else {
        error_ = files::PathError("syncing", path_, errno);
      }
    }
    if (file_.valid() && Steady::now() - last_push_ >= std::chrono::milliseconds(o_.push_interval_ms) &&
        pushed_ != flushed_) {
      Status st = PushPartial();
      if (!st.ok()) error_ = st;
    }
    stats_.flushed_lsn = flushed_;
    return flushed_;
  }

  bool KeepGoing() override { return !stop_.load() && error_.ok(); }
  Status error() const { return error_; }

  // Archives what the spool holds of the current segment (after a disconnect or stop).
  Status FinalPush() {
    if (!file_.valid()) return Status::Ok();
    if (dirty_) {
      if (::fdatasync(file_.get()) != 0) return files::PathError("syncing", path_, errno);
      flushed_ = pos_;
      dirty_ = false;
    }
    if (pushed_ == flushed_) return Status::Ok();
    return PushPartial();
  }

 private:
  std::string SegName(uint64_t segno) const {
    return pg::SegmentNameOf(pg::SegmentId{tli_, segno}, seg_size_);
  }

  Status OpenSegment(uint64_t segno, pg::Lsn lsn) {
    CloseFile();
    segno_ = segno;
    path_ = files::JoinPath(o_.spool_dir, SegName(segno) + ".partial");
    file_ = files::UniqueFd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!file_.valid()) return files::PathError("opening", path_, errno);
    struct stat st;
    if (::fstat(file_.get(), &st) != 0) return files::PathError("stat", path_, errno);
    pg::Lsn start = segno * seg_size_;
    pos_ = start + static_cast<uint64_t>(st.st_size);
    if (lsn < pos_) {  // the server resent what we had (restart): keep ours, truncate to lsn
      if (::ftruncate(file_.get(), static_cast<off_t>(lsn - start)) != 0)
        return files::PathError("truncating", path_, errno);
      pos_ = lsn;
    }
    flushed_ = pos_;
    pushed_ = 0;
    return Status::Ok();
  }

  Result<Bytes> ReadSpool() {
    Bytes data(static_cast<size_t>(pos_ - segno_ * seg_size_));
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::pread(file_.get(), data.data() + off, data.size() - off, static_cast<off_t>(off));
      if (n <= 0) return files::PathError("reading", path_, n < 0 ? errno : EIO);
      off += static_cast<size_t>(n);
    }
    return data;
  }

  Result<std::shared_ptr<void>> Lock() {
    if (!o_.lock) return std::shared_ptr<void>();
    return o_.lock();
  }

  Status PushPartial() {
    ASSIGN_OR_RETURN(auto lock, Lock());
    ASSIGN_OR_RETURN(Bytes data, ReadSpool());
    RETURN_IF_ERROR(wal_.Push(SegName(segno_) + ".partial", data, /*partial=*/true, &pool_)
                        .status()
                        .WithContext("archiving the partial segment"));
    pushed_ = pos_;
    last_push_ = Steady::now();
    stats_.partial_pushes++;
    return Status::Ok();
  }

  Status CompleteSegment() {
    if (::fdatasync(file_.get()) != 0) return files::PathError("syncing", path_, errno);
    flushed_ = pos_;
    dirty_ = false;
    ASSIGN_OR_RETURN(auto lock, Lock());
    ASSIGN_OR_RETURN(Bytes data, ReadSpool());
    const std::string name = SegName(segno_);
    auto r = wal_.Push(name, data, false, &pool_);
    if (!r.ok()) return r.status().WithContext("archiving '" + name + "'");
    (void)wal_.Remove(name + ".partial");
    std::string done = path_;
    CloseFile();
    ::unlink(done.c_str());
    stats_.segments++;
    if (log_) log_("archived " + name);
    return Status::Ok();
  }

  void CloseFile() {
    if (file_.valid()) (void)file_.Close(path_);
    file_ = files::UniqueFd();
  }

  WalStore& wal_;
  const WalStreamOptions& o_;
  uint64_t seg_size_;
  uint32_t tli_;
  const std::atomic<bool>& stop_;
  WalStreamStats& stats_;
  const std::function<void(const std::string&)>& log_;
  ThreadPool pool_{2, 4};
  files::UniqueFd file_;
  std::string path_;
  uint64_t segno_ = 0;
  pg::Lsn pos_ = 0, flushed_ = 0, pushed_ = 0;
  bool dirty_ = false;
  Status error_;
  Steady::time_point last_push_ = Steady::now();
};

bool Transient(const Status& st) {
  return st.code() == Code::kUnavailable || st.code() == Code::kIOError;
}

}  // namespace

Status RunWalStream(Repository& repo, const WalStreamOptions& o, const Clock& clock,
                    const std::atomic<bool>& stop, WalStreamStats& stats,
                    const std::function<void(const std::string&)>& log) {
  RETURN_IF_ERROR(files::MakeDirs(o.spool_dir));
  WalStore wal(repo, o.component, clock);
  int backoff_ms = 200;
  while (!stop.load()) {
    auto conn = pg::Connection::Open(o.conninfo, true, o.password);
    if (!conn.ok()) {
      if (o.exit_on_disconnect) return conn.status();
      if (log) log("waiting for the server: " + conn.status().message());
      for (int i = 0; i < backoff_ms / 50 && !stop.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      backoff_ms = std::min(backoff_ms * 2, 5000);
      continue;
    }
    backoff_ms = 200;
    auto sys = pg::IdentifySystem(**conn);
    if (!sys.ok()) return sys.status();
    auto seg_size = pg::ShowBytes(**conn, "wal_segment_size");
    if (!seg_size.ok()) return seg_size.status();
    Status slot = pg::CreatePhysicalSlot(**conn, o.slot);
    if (!slot.ok() && slot.code() != Code::kAlreadyExists) return slot;
    // Archive the history of the current timeline (PITR across a promotion needs it).
    if (sys->timeline > 1) {
      auto hist = pg::TimelineHistory(**conn, sys->timeline);
      if (hist.ok() && !wal.Exists(hist->first)) {
        std::shared_ptr<void> held;
        if (o.lock) {
          ASSIGN_OR_RETURN(held, o.lock());
        }
        RETURN_IF_ERROR(wal.Push(hist->first, AsBytes(hist->second)).status());
      }
    }
    Spooler spool(wal, o, *seg_size, sys->timeline, stop, stats, log);
    pg::StreamOptions so;
    so.slot = o.slot;
    so.timeline = sys->timeline;
    so.status_interval_ms = o.status_interval_ms;
    // Restart from what the spool holds, or from the slot's restart point.
    pg::Lsn fallback = sys->xlogpos;
    auto restart = pg::SlotRestartLsn(**conn, o.slot);
    if (restart.ok() && *restart) fallback = **restart;
    so.start_lsn = spool.ResumePoint(fallback);
    if (log) log("streaming from " + pg::FormatLsn(so.start_lsn) + " on timeline " +
                 std::to_string(sys->timeline));
    auto end = pg::StreamWal(**conn, so, spool);
    Status final_push = spool.FinalPush();
    if (!final_push.ok()) return final_push;
    if (!spool.error().ok()) return spool.error();
    if (!end.ok()) {
      if (!Transient(end.status()) && end.status().code() != Code::kFailedPrecondition)
        return end.status();
      if (log) log("stream ended: " + end.status().message());
      if (o.exit_on_disconnect) return Status::Ok();
      continue;
    }
    if (end->next_timeline && log)
      log("timeline " + std::to_string(sys->timeline) + " ended; following timeline " +
          std::to_string(*end->next_timeline));
  }
  return Status::Ok();
}

}  // namespace reprise
