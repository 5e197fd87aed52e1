#include "repo/prune.h"

#include <unordered_set>

#include "repo/content.h"
#include "repo/format.h"
#include "repo/pack.h"
#include "repo/pack_writer.h"
#include "repo/wal_store.h"

namespace reprise {

Result<PruneReport> PruneRepository(Repository& repo, const PruneOptions& options,
                                    const ProgressFn& progress) {
  PruneReport report;
  if (!options.dry_run) {
    // Credentials that may not delete (an append-only repository) are found out before
    // anything is written: deleting a key that cannot exist answers 403 only when denied.
    Status probe = repo.storage().Delete(PackKey(Id::Random()));
    if (probe.code() == Code::kPermissionDenied) {
      return probe.WithContext("refusing to prune, nothing was changed");
    }
  }
  std::vector<std::string> bad;
  RETURN_IF_ERROR(repo.LoadIndex(&bad));
  if (!bad.empty())
    return FailedPrecondition("refusing to prune: " + bad.front() +
                              ". HINT: run 'reprise check' and repair first");
  std::vector<std::string> bad_points;
  ASSIGN_OR_RETURN(auto points, repo.ListPoints(&bad_points));
  if (!bad_points.empty())
    return FailedPrecondition("refusing to prune: " + bad_points.front() +
                              ". HINT: run 'reprise check'");

  // Mark.
  std::unordered_set<Id, IdHash> used;
  for (size_t i = 0; i < points.size(); ++i) {
    if (progress) progress("mark", i, points.size());
    for (const auto& c : points[i].components) {
      Id missing;
      bool any_missing = false;
      Status st = VisitPointBlobs(repo, c, [&](const Id& blob, BlobType) {
        if (!repo.index().Has(blob)) {
          any_missing = true;
          missing = blob;
        }
        used.insert(blob);
      });
      if (!st.ok())
        return FailedPrecondition("refusing to prune: point '" + points[i].id.Short() +
                                  "': " + st.message() + ". HINT: run 'reprise check'");
      if (any_missing)
        return FailedPrecondition("refusing to prune: point '" + points[i].id.Short() +
                                  "' needs blob '" + missing.Short() +
                                  "', which no index lists. HINT: run 'reprise check'");
    }
  }

  // WAL archives are roots too: every archived WAL file keeps its blobs.
  RETURN_IF_ERROR(ForEachWalRecord(repo, [&](const std::string& key, const WalRecord& r) {
    for (const auto& c : r.chunks) {
      if (!repo.index().Has(c.id))
        return FailedPrecondition("refusing to prune: WAL record '" + key + "' needs blob '" +
                                  c.id.Short() + "', which no index lists. HINT: run 'reprise check'");
      used.insert(c.id);
    }
    return Status::Ok();
  }).WithContext("reading the WAL archive"));

  // Sweep plan. A blob kept in two packs counts in the one the index resolves to.
  auto packs = repo.index().Packs();
  ASSIGN_OR_RETURN(auto stored, repo.storage().List(std::string(kDataDir)));
  std::vector<Id> to_delete, to_repack, orphans;
  std::vector<IndexPack> kept;
  std::unordered_map<Id, uint64_t, IdHash> stored_size;
  for (const auto& o : stored) {
    auto id = Id::FromHex(o.key.substr(o.key.rfind('/') + 1));
    if (!id.ok()) continue;
    stored_size[*id] = o.size;
    report.bytes_total += o.size;
    if (!packs.count(*id)) orphans.push_back(*id);
  }
  report.packs_total = stored_size.size();
  for (const auto& [id, entries] : packs) {
    if (!stored_size.count(id))
      return FailedPrecondition("refusing to prune: pack '" + id.Hex() +
                                "' is indexed but missing. HINT: run 'reprise check'");
    uint64_t used_bytes = 0, total = 0;
    for (const auto& e : entries) {
      total += e.length;
      auto loc = repo.index().Find(e.id);
      bool counts = used.count(e.id) && loc.ok() && loc->pack == id;
      if (counts) {
        used_bytes += e.length;
        report.blobs_used++;
      } else {
        report.blobs_unused++;
      }
    }
    if (used_bytes == 0) {
      to_delete.push_back(id);
    } else if (static_cast<double>(total - used_bytes) >
               options.repack_threshold * static_cast<double>(total)) {
      to_repack.push_back(id);
    } else {
      kept.push_back(IndexPack{.pack = id, .entries = entries});
    }
  }
  report.orphan_packs = orphans.size();
  report.packs_deleted = to_delete.size() + orphans.size();
  report.packs_repacked = to_repack.size();
  for (const auto& id : to_delete) report.bytes_freed += stored_size[id];
  for (const auto& id : orphans) report.bytes_freed += stored_size[id];
  if (options.dry_run) return report;
  if (to_delete.empty() && to_repack.empty() && orphans.empty()) return report;

  // Repack: copy needed blobs, sealed, into new packs; authenticate each on the way.
  SealedPackWriter writer(repo);
  for (size_t i = 0; i < to_repack.size(); ++i) {
    if (progress) progress("repack", i, to_repack.size());
    const Id& pid = to_repack[i];
    ASSIGN_OR_RETURN(Bytes data, repo.storage().Get(PackKey(pid)));
    for (const auto& e : packs.at(pid)) {
      auto loc = repo.index().Find(e.id);
      if (!used.count(e.id) || !loc.ok() || loc->pack != pid) continue;
      if (e.offset + e.length > data.size())
        return Corruption("refusing to prune: pack '" + pid.Hex() + "' is truncated");
      ByteView sealed = ByteView(data).subspan(e.offset, e.length);
      auto plain = OpenBlob(repo.key().encryption, e.id, sealed, e.raw_length);
      if (!plain.ok())
        return Corruption("refusing to prune: " + plain.status().message() + " in pack '" +
                          pid.Hex() + "'. HINT: run 'reprise check --read-data'");
      RETURN_IF_ERROR(writer.Add(e.type, e.id, sealed, e.raw_length));
    }
    report.bytes_freed += stored_size[pid];
  }
  RETURN_IF_ERROR(writer.Flush());
  std::vector<IndexPack> fresh = writer.TakeWritten();
  report.packs_written = writer.packs_written();
  for (const auto& f : fresh) report.bytes_freed -= ExpectedPackSize(f.entries);

  // One new index of everything kept, then the old index files, then the packs.
  std::vector<Id> old_index = repo.index_files();
  std::vector<IndexPack> all = kept;
  all.insert(all.end(), fresh.begin(), fresh.end());
  if (progress) progress("index", 0, 1);
  Bytes file = EncodeIndex(repo.key().encryption, all);
  Id new_index = Sha256(file);
  RETURN_IF_ERROR(repo.storage().Put(IndexKey(new_index), file));
  for (const Id& old : old_index)
    if (old != new_index) RETURN_IF_ERROR(repo.storage().Delete(IndexKey(old)));
  size_t n = 0, total = to_delete.size() + to_repack.size() + orphans.size();
  for (const auto* list : {&to_delete, &to_repack, &orphans}) {
    for (const Id& id : *list) {
      if (progress) progress("delete", n++, total);
      RETURN_IF_ERROR(repo.storage().Delete(PackKey(id)));
    }
  }
  return report;
}

}  // namespace reprise
