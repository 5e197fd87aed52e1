#include "repo/copy.h"

#include <algorithm>
#include <map>
#include <span>
#include <unordered_set>

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

Status NotSharedKey(Repository& from, Repository& to) {
  std::string a = from.storage().Location(), b = to.storage().Location();
  return FailedPrecondition("repositories '" + a + "' and '" + b +
                            "' do not share a master key (copying between different keys "
                            "would re-encrypt everything, which is not built yet). HINT: "
                            "create the target with 'reprise init --copy-keys-from " + a + "'");
}

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

Result<std::unordered_set<Id, IdHash>> PointIds(Repository& repo) {
  ASSIGN_OR_RETURN(auto files, repo.storage().List(std::string(kPointsDir)));
  std::unordered_set<Id, IdHash> ids;
  for (const auto& f : files) {
    auto id = Id::FromHex(f.key.substr(kPointsDir.size()));
    if (id.ok()) ids.insert(*id);
  }
  return ids;
}

}  // namespace

bool SameMasterKey(const Repository& a, const Repository& b) {
  return a.key().encryption == b.key().encryption && a.key().id == b.key().id &&
         a.key().chunker == b.key().chunker;
}

Result<CopyReport> CopyPoints(Repository& from, Repository& to, const CopyOptions& options,
                              const ProgressFn& progress) {
  if (!SameMasterKey(from, to)) return NotSharedKey(from, to);
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
    // The WAL archive: complete files the target lacks, and partial ones that differ.
    ASSIGN_OR_RETURN(auto present_wal, to.storage().List(std::string(kWalDir)));
    std::unordered_set<std::string> have;
    for (const auto& o : present_wal) have.insert(o.key);
    Status st = ForEachWalRecord(from, [&](const std::string& key, const WalRecord& rec) {
      if (have.count(key)) {
        if (!rec.partial) return Status::Ok();
        auto a = from.storage().Get(key);
        auto b = to.storage().Get(key);
        if (a.ok() && b.ok() && *a == *b) return Status::Ok();
      }
      return copier.CopyWal(key, rec);
    });
    RETURN_IF_ERROR(st.WithContext("copying the WAL archive"));
  }
  return report;
}

}  // namespace reprise
