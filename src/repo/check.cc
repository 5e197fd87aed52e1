#include "repo/check.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <unordered_set>

#include "common/thread_pool.h"
#include "repo/content.h"
#include "repo/wal_store.h"
#include "repo/format.h"
#include "repo/lock.h"

namespace reprise {

namespace {

// Reads one whole pack and authenticates everything in it against the index.
std::vector<std::string> VerifyPack(Repository& repo, const Id& pack,
                                    const std::vector<PackEntry>& indexed, uint64_t* bytes) {
  std::vector<std::string> problems;
  auto data = repo.storage().Get(PackKey(pack));
  if (!data.ok()) return {"pack '" + pack.Hex() + "' cannot be read: " + data.status().message()};
  *bytes += data->size();
  auto header = ReadPackHeader(repo.key().encryption, *data);
  if (!header.ok()) {
    problems.push_back("pack '" + pack.Hex() + "' is damaged: " + header.status().message());
  } else {
    std::set<std::pair<Id, uint64_t>> in_header, in_index;
    for (const auto& e : *header) in_header.insert({e.id, e.offset});
    for (const auto& e : indexed) in_index.insert({e.id, e.offset});
    if (in_header != in_index)
      problems.push_back("pack '" + pack.Hex() + "': its header and the index disagree");
  }
  for (const auto& e : indexed) {
    if (e.offset + e.length > data->size()) {
      problems.push_back("pack '" + pack.Hex() + "' is truncated: blob '" + e.id.Short() +
                         "' lies past its end");
      continue;
    }
    ByteView sealed = ByteView(*data).subspan(e.offset, e.length);
    auto plain = OpenBlob(repo.key().encryption, e.id, sealed, e.raw_length);
    if (!plain.ok()) {
      problems.push_back("pack '" + pack.Hex() + "' is damaged: " + plain.status().message());
      continue;
    }
    if (BlobIdOf(repo.key().id, *plain) != e.id)
      problems.push_back("pack '" + pack.Hex() + "' is damaged: blob '" + e.id.Short() +
                         "' does not hash to its id");
  }
  return problems;
}

}  // namespace

Result<CheckReport> CheckRepository(Repository& repo, const CheckOptions& options,
                                    const Clock& clock, const ProgressFn& progress) {
  CheckReport report;
  std::set<Id> damaged;

  // Locks: stale ones are worth knowing about, never damage.
  std::vector<std::string> bad_locks;
  ASSIGN_OR_RETURN(auto locks, ListLocks(repo, &bad_locks));
  for (const auto& l : locks)
    if (IsStale(l, clock))
      report.warnings.push_back("stale " + l.Describe() + ". HINT: 'reprise unlock' removes it");
  for (auto& m : bad_locks) report.warnings.push_back(m);

  // Index.
  if (progress) progress("index", 0, 0);
  std::vector<std::string> bad_index;
  RETURN_IF_ERROR(repo.LoadIndex(&bad_index));
  for (auto& m : bad_index) report.errors.push_back(m);
  auto packs = repo.index().Packs();
  report.packs = packs.size();

  // Packs present with the size the index implies.
  ASSIGN_OR_RETURN(auto stored, repo.storage().List(std::string(kDataDir)));
  std::unordered_map<Id, uint64_t, IdHash> sizes;
  for (const auto& o : stored) {
    auto slash = o.key.rfind('/');
    auto id = Id::FromHex(o.key.substr(slash + 1));
    if (!id.ok()) {
      report.warnings.push_back("'" + o.key + "' is not a pack name (ignored)");
      continue;
    }
    sizes[*id] = o.size;
  }
  for (const auto& [id, entries] : packs) {
    auto it = sizes.find(id);
    if (it == sizes.end()) {
      report.errors.push_back("pack '" + id.Hex() + "' is in the index but missing");
      damaged.insert(id);
    } else if (it->second != ExpectedPackSize(entries)) {
      report.errors.push_back("pack '" + id.Hex() + "' has size " + std::to_string(it->second) +
                              ", the index implies " + std::to_string(ExpectedPackSize(entries)));
      damaged.insert(id);
    }
  }
  size_t orphans = 0;
  for (const auto& [id, size] : sizes)
    if (!packs.count(id)) ++orphans;
  if (orphans)
    report.warnings.push_back(std::to_string(orphans) +
                              " pack(s) are not in any index (left by an interrupted backup or "
                              "prune; harmless). HINT: 'reprise prune' removes them");

  // Points: every blob they need is indexed; remember which packs each point uses.
  std::vector<std::string> bad_points;
  ASSIGN_OR_RETURN(auto points, repo.ListPoints(&bad_points));
  for (auto& m : bad_points) report.errors.push_back(m);
  report.points = points.size();
  std::map<Id, std::set<Id>> packs_of_point;
  std::set<Id> broken_points;
  std::unordered_set<Id, IdHash> seen_blobs;
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    if (progress) progress("points", i, points.size());
    for (const auto& c : p.components) {
      std::vector<Id> missing;
      Status st = VisitPointBlobs(repo, c, [&](const Id& blob, BlobType) {
        seen_blobs.insert(blob);
        auto loc = repo.index().Find(blob);
        if (!loc.ok()) {
          missing.push_back(blob);
          return;
        }
        packs_of_point[p.id].insert(loc->pack);
      });
      if (!st.ok()) {
        report.errors.push_back("point '" + p.id.Short() + "' component '" + c.name +
                                "': " + st.message());
        broken_points.insert(p.id);
      }
      if (!missing.empty()) {
        report.errors.push_back("point '" + p.id.Short() + "' component '" + c.name + "': " +
                                std::to_string(missing.size()) + " blob(s) missing, e.g. '" +
                                missing.front().Short() + "'");
        broken_points.insert(p.id);
      }
    }
  }
  // WAL archives: every record opens and every blob it names is indexed.
  Status wal = ForEachWalRecord(repo, [&](const std::string& key, const WalRecord& r) {
    ++report.wal_files;
    size_t missing = 0;
    for (const auto& c : r.chunks) {
      seen_blobs.insert(c.id);
      if (!repo.index().Has(c.id)) ++missing;
    }
    if (missing)
      report.errors.push_back("WAL record '" + key + "': " + std::to_string(missing) +
                              " blob(s) missing");
    return Status::Ok();
  });
  if (!wal.ok()) report.errors.push_back("WAL archive: " + wal.message());
  report.blobs = seen_blobs.size();

  // Data: read and authenticate packs.
  if (options.read_data) {
    std::vector<Id> ids;
    for (const auto& [id, entries] : packs)
      if (sizes.count(id)) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    if (options.subset < 1.0) {
      std::mt19937_64 rng(std::random_device{}());
      std::shuffle(ids.begin(), ids.end(), rng);
      size_t n = static_cast<size_t>(std::ceil(options.subset * static_cast<double>(ids.size())));
      ids.resize(std::min(ids.size(), std::max<size_t>(n, ids.empty() ? 0 : 1)));
    }
    std::mutex mu;
    std::atomic<uint64_t> done{0};
    {
      ThreadPool pool(DefaultThreads(), DefaultThreads());
      for (const Id& id : ids) {
        pool.Submit([&, id] {
          uint64_t bytes = 0;
          auto problems = VerifyPack(repo, id, packs.at(id), &bytes);
          std::lock_guard lk(mu);
          report.bytes_read += bytes;
          report.packs_read++;
          for (auto& m : problems) report.errors.push_back(std::move(m));
          if (!problems.empty()) damaged.insert(id);
          if (progress) progress("read data", ++done, ids.size());
        });
      }
    }
  }

  report.damaged_packs.assign(damaged.begin(), damaged.end());
  for (const auto& p : points) {
    bool hit = broken_points.count(p.id) != 0;
    for (const Id& d : damaged) hit = hit || packs_of_point[p.id].count(d);
    if (hit) report.affected_points.push_back(p);
  }
  return report;
}

}  // namespace reprise
