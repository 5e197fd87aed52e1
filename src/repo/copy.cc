#include "repo/copy.h"

#include <algorithm>
#include <future>
#include <map>
#include <memory>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "common/thread_pool.h"
#include "repo/block_map.h"
#include "repo/compress.h"
#include "repo/content.h"
#include "repo/format.h"
#include "repo/pack.h"
#include "repo/pack_writer.h"
#include "repo/wal_store.h"

namespace reprise {

namespace {

// A blob the target lacks and where the source keeps it.
struct Needed {
  Id id;
  BlobLocation loc;
};
// Source pack -> its needed blobs, by offset.
using PackGroups = std::map<Id, std::vector<Needed>>;

// Groups blob ids (that `to` lacks) by the source pack holding them. `what` names the object
// needing them, for messages ("point 'ab12cd34'").
Result<PackGroups> GroupByPack(Repository& from, const std::vector<Id>& ids,
                               const std::string& what) {
  PackGroups groups;
  for (const Id& id : ids) {
    auto loc = from.index().Find(id);
    if (!loc.ok())
      return Corruption(what + " needs blob '" + id.Short() +
                        "', which no index of the source lists. HINT: run 'reprise check' on "
                        "the source");
    groups[loc->pack].push_back(Needed{id, *loc});
  }
  for (auto& [pack, blobs] : groups)
    std::sort(blobs.begin(), blobs.end(),
              [](const Needed& a, const Needed& b) { return a.loc.offset < b.loc.offset; });
  return groups;
}

// Every blob `point` needs that `to` does not index, grouped by the source pack holding it.
Result<PackGroups> NeededBlobs(Repository& from, Repository& to, const Point& point) {
  std::unordered_set<Id, IdHash> seen;
  std::vector<Id> ids;
  for (const auto& c : point.components) {
    Status st = VisitPointBlobs(from, c, [&](const Id& id, BlobType) {
      if (!to.index().Has(id) && seen.insert(id).second) ids.push_back(id);
    });
    if (!st.ok()) return st.WithContext("point '" + point.id.Short() + "'");
  }
  return GroupByPack(from, ids, "point '" + point.id.Short() + "'");
}

// Splits one pack's needed blobs (by offset) into runs, each fetched with one ranged read:
// blobs closer than max_gap join a run, and no run is longer than max_read.
std::vector<std::span<const Needed>> Runs(const std::vector<Needed>& blobs,
                                          const CopyOptions& options) {
  std::vector<std::span<const Needed>> runs;
  size_t start = 0;
  for (size_t i = 1; i <= blobs.size(); ++i) {
    bool cut = i == blobs.size();
    if (!cut) {
      uint64_t prev_end = blobs[i - 1].loc.offset + blobs[i - 1].loc.length;
      uint64_t end = blobs[i].loc.offset + blobs[i].loc.length;
      cut = blobs[i].loc.offset > prev_end + options.max_gap ||
            end - blobs[start].loc.offset > options.max_read;
    }
    if (cut) {
      runs.emplace_back(blobs.data() + start, i - start);
      start = i;
    }
  }
  return runs;
}

// Copies the points one at a time: packs, then their index file, then the point.
class PointCopier {
 public:
  PointCopier(Repository& from, Repository& to, const CopyOptions& options, CopyReport& report)
      : from_(from), to_(to), options_(options), report_(report), writer_(to) {}

  Status Copy(const Point& point, const ProgressFn& progress) {
    ASSIGN_OR_RETURN(PackGroups groups, NeededBlobs(from_, to_, point));
    RETURN_IF_ERROR(CopyGroups(groups, "point '" + point.id.Short() + "'", progress));
    return CopyPointFile(point);
  }

  // One WAL record: its blobs, then the record file byte for byte (same key, same name).
  Status CopyWal(const std::string& key, const WalRecord& rec) {
    std::vector<Id> ids;
    std::unordered_set<Id, IdHash> seen;
    for (const auto& c : rec.chunks)
      if (!to_.index().Has(c.id) && seen.insert(c.id).second) ids.push_back(c.id);
    const std::string what = "WAL file '" + rec.name + "'";
    ASSIGN_OR_RETURN(PackGroups groups, GroupByPack(from_, ids, what));
    RETURN_IF_ERROR(CopyGroups(groups, what, nullptr));
    ASSIGN_OR_RETURN(Bytes file, from_.storage().Get(key));
    RETURN_IF_ERROR(to_.storage().Put(key, file).WithContext("writing '" + key + "'"));
    report_.wal_files_copied++;
    return Status::Ok();
  }

 private:
  Status CopyGroups(const PackGroups& groups, const std::string& what,
                    const ProgressFn& progress) {
    size_t done = 0;
    for (const auto& [pack, blobs] : groups) {
      if (progress) progress("copy " + what + ": packs", done++, groups.size());
      RETURN_IF_ERROR(CopyFromPack(what, pack, blobs));
    }
    RETURN_IF_ERROR(writer_.Flush());
    report_.packs_written = writer_.packs_written();
    if (auto packs = writer_.TakeWritten(); !packs.empty()) {
      ASSIGN_OR_RETURN(Id index, to_.WriteIndexFile(packs));
      (void)index;
    }
    return Status::Ok();
  }

  Status CopyFromPack(const std::string& what, const Id& pack, const std::vector<Needed>& blobs) {
    for (std::span<const Needed> run : Runs(blobs, options_)) {
      uint64_t begin = run.front().loc.offset;
      uint64_t end = run.back().loc.offset + run.back().loc.length;
      auto bytes = from_.storage().GetRange(PackKey(pack), begin, end - begin);
      if (!bytes.ok())
        return bytes.status().WithContext(what + ": reading pack '" + pack.Hex() + "'");
      for (const Needed& n : run) {
        ByteView sealed = ByteView(*bytes).subspan(n.loc.offset - begin, n.loc.length);
        RETURN_IF_ERROR(AddBlob(what, pack, n, sealed));
      }
    }
    return Status::Ok();
  }

  // Authenticates the sealed blob, then appends it unchanged to the open pack.
  Status AddBlob(const std::string& what, const Id& pack, const Needed& n, ByteView sealed) {
    auto plain = OpenBlob(from_.key().encryption, n.id, sealed, n.loc.raw_length);
    if (!plain.ok())
      return Corruption(what + " was not copied: " +
                        plain.status().message() + " in pack '" + pack.Hex() + "' of '" +
                        from_.storage().Location() +
                        "'. HINT: run 'reprise check --read-data' on the source");
    RETURN_IF_ERROR(writer_.Add(n.loc.type, n.id, sealed, n.loc.raw_length));
    report_.blobs_copied++;
    report_.bytes_copied += sealed.size();
    return Status::Ok();
  }

  // The point file, byte for byte: same bytes, same name.
  Status CopyPointFile(const Point& point) {
    ASSIGN_OR_RETURN(Bytes file, from_.storage().Get(PointKey(point.id)));
    if (Sha256(file) != point.id)
      return Corruption("point '" + point.id.Short() + "' of '" + from_.storage().Location() +
                        "' changed while it was copied (its name is not its hash)");
    RETURN_IF_ERROR(to_.storage().Put(PointKey(point.id), file).WithContext(
        "writing point '" + point.id.Short() + "'"));
    report_.points_copied++;
    report_.copied.push_back(point.id);
    return Status::Ok();
  }

  Repository& from_;
  Repository& to_;
  const CopyOptions& options_;
  CopyReport& report_;
  SealedPackWriter writer_;
};

// ---- Between different master keys: every blob re-sealed, manifests rewritten ----

// WAL blobs are stored at zstd's fast level, as WalStore does.
constexpr int kWalLevel = -1;
// Re-encrypted WAL records are written in batches: blobs of up to this many bytes or records
// -> Flush (packs, index) -> the records.
constexpr uint64_t kWalBatchBytes = 64 << 20;
constexpr size_t kWalBatchFiles = 64;

// Copies points and WAL records into a repository with another master key. Each blob is read
// from the source (ReadBlob authenticates it), given its id under the target's id key and
// saved with the target's SaveBlob (which dedups against the target and compresses at its
// level); the data keeps the source's chunk boundaries. Block maps are rewritten bases first,
// manifests are re-cut into tree blobs by a RepoBackupSink on the target. `ids_` maps source
// ids to target ids for the run, so a blob shared by several points is read once.
class Reencryptor {
 public:
  Reencryptor(Repository& from, Repository& to, const CopyOptions& options, CopyReport& report)
      : from_(from),
        to_(to),
        report_(report),
        pool_(options.threads ? options.threads : DefaultThreads(),
              4 * (options.threads ? options.threads : DefaultThreads())) {}

  // Blobs -> Flush (packs, index files) -> the new point, which records the source's id.
  Status Copy(const Point& point, const ProgressFn& progress) {
    const std::string what = "point '" + point.id.Short() + "'";
    Point out = point;
    out.id = Id{};
    out.copied_from = point.id.Hex();
    for (size_t i = 0; i < out.components.size(); ++i) {
      PointComponent& c = out.components[i];
      if (progress) progress("copy " + what + ": components", i, out.components.size());
      if (c.manifest.empty()) continue;
      auto manifest = Manifest(c);
      if (!manifest.ok())
        return Explain(manifest.status(), what + " was not copied: component '" + c.name + "'");
      c.manifest = std::move(*manifest);
    }
    RETURN_IF_ERROR(to_.Flush().WithContext("copying " + what));
    ASSIGN_OR_RETURN(Id id, to_.SavePoint(out));
    report_.points_copied++;
    report_.copied.push_back(id);
    report_.copied_from.push_back(point.id);
    return Status::Ok();
  }

  // Re-ids the record's chunks (digest recomputed); the record is written by FlushWal, after
  // its blobs are durable, with "at" recomputed from the target's index.
  Status CopyWal(const std::string& key, const WalRecord& rec) {
    std::vector<Id> ids;
    for (const auto& c : rec.chunks) ids.push_back(c.id);
    Status st = Blobs(ids, BlobType::kData, kWalLevel);
    if (!st.ok()) return Explain(st, "WAL file '" + rec.name + "' was not copied");
    WalRecord out = rec;
    for (auto& c : out.chunks) c.id = ids_.at(c.id);
    out.digest = ChunkListDigest(out.chunks);
    out.at.clear();
    wal_bytes_ += rec.size;
    pending_wal_.emplace_back(key, std::move(out));
    if (wal_bytes_ >= kWalBatchBytes || pending_wal_.size() >= kWalBatchFiles) return FlushWal();
    return Status::Ok();
  }

  Status FlushWal() {
    if (pending_wal_.empty()) return Status::Ok();
    RETURN_IF_ERROR(to_.Flush());
    for (auto& [key, rec] : pending_wal_) {
      for (const auto& c : rec.chunks) {
        auto loc = to_.index().Find(c.id);
        if (!loc.ok()) {
          rec.at.clear();  // only a hint: fetch falls back to the index
          break;
        }
        rec.at.push_back(*loc);
      }
      std::string text = WalRecordToJson(rec).dump();
      Bytes file = Seal(to_.key().encryption, CompressBlob(AsBytes(text), 3), AsBytes(kAadWal));
      RETURN_IF_ERROR(to_.storage().Put(key, file).WithContext("writing '" + key + "'"));
      report_.wal_files_copied++;
    }
    pending_wal_.clear();
    wal_bytes_ = 0;
    return Status::Ok();
  }

 private:
  // Source damage keeps its code (kCorruption) and gets a hint about the source.
  Status Explain(const Status& st, const std::string& context) {
    if (st.code() == Code::kCorruption) {
      std::string why = st.message();
      why = why.substr(0, why.find(". HINT:"));  // one hint, about the source
      return Corruption(context + ": " + why + " (source '" +
                        from_.storage().Location() +
                        "'). HINT: run 'reprise check --read-data' on the source");
    }
    return st.WithContext(context);
  }

  // The component's manifest, every content rewritten with target ids, cut into tree blobs
  // of the target the way a backup cuts it.
  Result<std::vector<Id>> Manifest(const PointComponent& c) {
    RepoBackupSink sink(to_, pool_);
    auto cursor = OpenManifest(from_, c.manifest);
    for (;;) {
      ASSIGN_OR_RETURN(const nlohmann::json* entry, cursor->Next());
      if (!entry) break;
      nlohmann::json out = *entry;
      std::vector<ContentFuture> contents;
      auto it = entry->find("contents");
      if (it != entry->end()) {
        if (!it->is_array()) return Corruption("a manifest entry has a bad 'contents'");
        for (const auto& list : *it) {
          ASSIGN_OR_RETURN(Content content, ContentFromJson(list));
          ASSIGN_OR_RETURN(Content moved, Rewrite(std::move(content)));
          contents.push_back(BackupSink::Ready(std::move(moved)));
        }
      }
      // With no futures the sink keeps the entry's "contents" as it is (an empty list).
      RETURN_IF_ERROR(sink.AddEntry(std::move(out), std::move(contents)));
    }
    return sink.Finish();
  }

  Result<Content> Rewrite(Content content) {
    if (content.map) {
      ASSIGN_OR_RETURN(Id map, Map(*content.map, 0));
      content.map = map;
      return content;
    }
    std::vector<Id> ids;
    ids.reserve(content.chunks.size());
    for (const auto& ch : content.chunks) ids.push_back(ch.id);
    RETURN_IF_ERROR(Blobs(ids, BlobType::kData, std::nullopt));
    for (auto& ch : content.chunks) ch.id = ids_.at(ch.id);
    return content;
  }

  // A block map under its target id: its base first (recursively), then its blocks.
  Result<Id> Map(const Id& id, uint32_t depth) {
    if (auto it = ids_.find(id); it != ids_.end()) return it->second;
    if (depth > kBlockMapMaxDepth)
      return Corruption("block map '" + id.Short() + "': chain longer than allowed");
    ASSIGN_OR_RETURN(Bytes bytes, from_.ReadBlob(id));
    auto map = DecodeBlockMap(bytes);
    if (!map.ok()) return map.status().WithContext("block map '" + id.Short() + "'");
    if (map->base) {
      ASSIGN_OR_RETURN(Id base, Map(*map->base, depth + 1));
      map->base = base;
    }
    std::vector<Id> ids;
    ids.reserve(map->entries.size());
    for (const auto& e : map->entries) ids.push_back(e.chunk.id);
    RETURN_IF_ERROR(Blobs(ids, BlobType::kData, std::nullopt));
    for (auto& e : map->entries) e.chunk.id = ids_.at(e.chunk.id);
    Bytes out = EncodeBlockMap(*map);
    Id target = BlobIdOf(to_.key().id, out);
    RETURN_IF_ERROR(to_.SaveBlob(BlobType::kTree, target, out).status());
    ids_[id] = target;
    return target;
  }

  // Re-seals every id not mapped yet, in parallel on the pool; fills ids_.
  Status Blobs(const std::vector<Id>& ids, BlobType type, std::optional<int> level) {
    std::vector<Id> todo;
    std::unordered_set<Id, IdHash> seen;
    for (const Id& id : ids)
      if (!ids_.count(id) && seen.insert(id).second) todo.push_back(id);
    if (todo.empty()) return Status::Ok();
    std::vector<std::future<Result<Id>>> done;
    done.reserve(todo.size());
    for (const Id& id : todo) {
      auto task = std::make_shared<std::packaged_task<Result<Id>()>>(
          [this, id, type, level] { return Reseal(id, type, level); });
      done.push_back(task->get_future());
      if (todo.size() > 1) {
        pool_.Submit([task] { (*task)(); });
      } else {
        (*task)();
      }
    }
    Status first;
    for (size_t i = 0; i < done.size(); ++i) {
      Result<Id> r = done[i].get();
      if (!r.ok()) {
        if (first.ok()) first = r.status();
        continue;
      }
      ids_[todo[i]] = *r;
    }
    return first;
  }

  // One blob: read and authenticated from the source, saved under its target id.
  Result<Id> Reseal(const Id& id, BlobType type, std::optional<int> level) {
    ASSIGN_OR_RETURN(Bytes plain, from_.ReadBlob(id));
    Id target = BlobIdOf(to_.key().id, plain);
    auto saved = level ? to_.SaveBlob(type, target, plain, *level)
                       : to_.SaveBlob(type, target, plain);
    if (!saved.ok()) return saved.status();
    return target;
  }

  Repository& from_;
  Repository& to_;
  CopyReport& report_;
  ThreadPool pool_;
  std::unordered_map<Id, Id, IdHash> ids_;  // source id -> target id (this run)
  std::vector<std::pair<std::string, WalRecord>> pending_wal_;
  uint64_t wal_bytes_ = 0;
};

// The points asked for (all when none), oldest first, each once.
Result<std::vector<Point>> SelectPoints(Repository& from, const CopyOptions& options) {
  if (options.points.empty()) return from.ListPoints();
  std::vector<Point> out;
  std::unordered_set<Id, IdHash> seen;
  for (const auto& ref : options.points) {
    ASSIGN_OR_RETURN(Point p, from.ResolvePoint(ref));
    if (seen.insert(p.id).second) out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const Point& a, const Point& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return out;
}

// Visits the WAL records of `from` the target still needs: complete files it lacks, and
// partial ones whose target record is another one. A copied record keeps the source's size
// and time (also when re-encrypted), so an unchanged partial is recognised by them.
Status ForEachWalToCopy(Repository& from, Repository& to,
                        const std::function<Status(const std::string&, const WalRecord&)>& copy) {
  ASSIGN_OR_RETURN(auto present_wal, to.storage().List(std::string(kWalDir)));
  std::unordered_set<std::string> have;
  for (const auto& o : present_wal) have.insert(o.key);
  return ForEachWalRecord(from, [&](const std::string& key, const WalRecord& rec) {
    if (have.count(key)) {
      if (!rec.partial) return Status::Ok();
      auto j = to.LoadJsonFile(key, kAadWal);
      if (j.ok()) {
        auto there = WalRecordFromJson(*j);
        if (there.ok() && there->size == rec.size && there->time_ns == rec.time_ns)
          return Status::Ok();
      }
    }
    return copy(key, rec);
  });
}

Result<std::unordered_set<Id, IdHash>> PointIds(Repository& repo) {
  ASSIGN_OR_RETURN(auto files, repo.storage().List(std::string(kPointsDir)));
  std::unordered_set<Id, IdHash> ids;
  for (const auto& f : files) {
    auto id = Id::FromHex(f.key.substr(kPointsDir.size()));
    if (id.ok()) ids.insert(*id);
  }
  return ids;
}

// The re-encrypting copy. A source point is skipped when the target has a point copied from
// it ("copied_from"), or when it was itself copied from a point the target has.
Result<CopyReport> CopyReencrypting(Repository& from, Repository& to, const CopyOptions& options,
                                    const ProgressFn& progress) {
  RETURN_IF_ERROR(from.LoadIndex());
  RETURN_IF_ERROR(to.LoadIndex());
  ASSIGN_OR_RETURN(std::vector<Point> points, SelectPoints(from, options));
  std::vector<std::string> damaged;  // a damaged target point is no reason not to copy
  ASSIGN_OR_RETURN(std::vector<Point> present, to.ListPoints(&damaged));
  std::unordered_set<std::string> copied, ids;
  for (const Point& p : present) {
    if (!p.copied_from.empty()) copied.insert(p.copied_from);
    ids.insert(p.id.Hex());
  }
  CopyReport report;
  report.reencrypted = true;
  WriteStats& stats = to.write_stats();
  const uint64_t blobs0 = stats.new_blobs, bytes0 = stats.stored_bytes, packs0 = stats.packs;
  Reencryptor copier(from, to, options, report);
  for (size_t i = 0; i < points.size(); ++i) {
    if (progress) progress("points", i, points.size());
    const Point& p = points[i];
    if (copied.count(p.id.Hex()) || (!p.copied_from.empty() && ids.count(p.copied_from))) {
      report.points_skipped++;
      continue;
    }
    RETURN_IF_ERROR(copier.Copy(p, progress));
  }
  if (progress) progress("points", points.size(), points.size());
  if (options.wal) {
    Status st = ForEachWalToCopy(from, to, [&](const std::string& key, const WalRecord& rec) {
      return copier.CopyWal(key, rec);
    });
    if (st.ok()) st = copier.FlushWal();
    RETURN_IF_ERROR(st.WithContext("copying the WAL archive"));
  }
  report.blobs_copied = stats.new_blobs - blobs0;
  report.bytes_copied = stats.stored_bytes - bytes0;
  report.packs_written = stats.packs - packs0;
  return report;
}

}  // namespace

bool SameMasterKey(const Repository& a, const Repository& b) {
  return a.key().encryption == b.key().encryption && a.key().id == b.key().id &&
         a.key().chunker == b.key().chunker;
}

Result<CopyReport> CopyPoints(Repository& from, Repository& to, const CopyOptions& options,
                              const ProgressFn& progress) {
  if (!SameMasterKey(from, to)) return CopyReencrypting(from, to, options, progress);
  RETURN_IF_ERROR(from.LoadIndex());
  RETURN_IF_ERROR(to.LoadIndex());
  ASSIGN_OR_RETURN(std::vector<Point> points, SelectPoints(from, options));
  ASSIGN_OR_RETURN(auto present, PointIds(to));
  CopyReport report;
  PointCopier copier(from, to, options, report);
  for (size_t i = 0; i < points.size(); ++i) {
    if (progress) progress("points", i, points.size());
    if (present.count(points[i].id)) {
      report.points_skipped++;
      continue;
    }
    RETURN_IF_ERROR(copier.Copy(points[i], progress));
  }
  if (progress) progress("points", points.size(), points.size());
  if (options.wal) {
    Status st = ForEachWalToCopy(from, to, [&](const std::string& key, const WalRecord& rec) {
      return copier.CopyWal(key, rec);
    });
    RETURN_IF_ERROR(st.WithContext("copying the WAL archive"));
  }
  return report;
}

}  // namespace reprise
