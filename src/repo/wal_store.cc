#include "repo/wal_store.h"

#include <future>

#include "common/sysinfo.h"
#include "repo/compress.h"
#include "repo/format.h"

namespace reprise {

namespace {

// WAL is written once and read rarely, and wal-push sits in PostgreSQL's archiving path: zstd's
// fast level 1 compresses pgbench-like WAL ~30x at ~2.5 GB/s (level 2: ~1.8 GB/s) and WAL full of
// embeddings barely at any level (1.05x here, 1.17x at level 1 for a quarter of the speed).
constexpr int kWalCompressionLevel = -1;

nlohmann::json LocationToJson(const BlobLocation& l) {
  return nlohmann::json::array({l.pack.Hex(), l.offset, l.length, l.raw_length});
}

}  // namespace

Id ChunkListDigest(const std::vector<ChunkRef>& chunks) {
  Bytes list;
  list.reserve(chunks.size() * 36);
  for (const auto& c : chunks) {
    list.insert(list.end(), c.id.bytes.begin(), c.id.bytes.end());
    for (int i = 0; i < 4; ++i) list.push_back(static_cast<uint8_t>(c.length >> (8 * i)));
  }
  return Sha256(list);
}

nlohmann::json WalRecordToJson(const WalRecord& r) {
  nlohmann::json chunks = nlohmann::json::array(), at = nlohmann::json::array();
  for (const auto& c : r.chunks) chunks.push_back(nlohmann::json::array({c.id.Hex(), c.length}));
  for (const auto& l : r.at) at.push_back(LocationToJson(l));
  return {{"name", r.name},     {"size", r.size},       {"digest", r.digest.Hex()},
          {"time_ns", r.time_ns}, {"host", r.host},     {"partial", r.partial},
          {"chunks", chunks},   {"at", at}};
}

Result<WalRecord> WalRecordFromJson(const nlohmann::json& j) {
  try {
    WalRecord r;
    r.name = j.at("name").get<std::string>();
    r.size = j.at("size").get<uint64_t>();
    ASSIGN_OR_RETURN(r.digest, Id::FromHex(j.at("digest").get<std::string>()));
    r.time_ns = j.at("time_ns").get<int64_t>();
    r.host = j.value("host", "");
    r.partial = j.value("partial", false);
    uint64_t total = 0;
    for (const auto& c : j.at("chunks")) {
      ChunkRef ref;
      ASSIGN_OR_RETURN(ref.id, Id::FromHex(c.at(0).get<std::string>()));
      ref.length = c.at(1).get<uint32_t>();
      total += ref.length;
      r.chunks.push_back(ref);
    }
    if (total != r.size) return Corruption("WAL record: chunk lengths do not add up to its size");
    if (ChunkListDigest(r.chunks) != r.digest)
      return Corruption("WAL record: its digest does not match its chunk list");
    for (const auto& l : j.at("at")) {
      BlobLocation loc;
      ASSIGN_OR_RETURN(loc.pack, Id::FromHex(l.at(0).get<std::string>()));
      loc.offset = l.at(1).get<uint64_t>();
      loc.length = l.at(2).get<uint32_t>();
      loc.raw_length = l.at(3).get<uint32_t>();
      r.at.push_back(loc);
    }
    if (!r.at.empty() && r.at.size() != r.chunks.size())
      return Corruption("WAL record: locations do not match its chunks");
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Corruption(std::string("WAL record is malformed: ") + e.what());
  }
}

WalStore::WalStore(Repository& repo, std::string component, const Clock& clock)
    : repo_(repo), component_(std::move(component)), clock_(clock) {}

std::string WalStore::Key(const std::string& name) const {
  return std::string(kWalDir) + component_ + "/" + name;
}

bool WalStore::Exists(const std::string& name) { return repo_.storage().Stat(Key(name)).ok(); }

Result<WalRecord> WalStore::Load(const std::string& name) {
  auto j = repo_.LoadJsonFile(Key(name), kAadWal);
  if (!j.ok()) {
    if (j.status().code() == Code::kNotFound)
      return NotFound("WAL file '" + name + "' of component '" + component_ +
                      "' is not in the archive");
    return j.status();
  }
  auto r = WalRecordFromJson(*j);
  if (!r.ok()) return r.status().WithContext("WAL file '" + name + "'");
  if (r->name != name)
    return Corruption("WAL record '" + Key(name) + "' names another file ('" + r->name + "')");
  return r;
}

Result<PushOutcome> WalStore::Push(const std::string& name, ByteView data, bool partial,
                                   ThreadPool* pool) {
  // Cut, then id, seal and store the chunks in parallel. The outcome of an existing record is
  // decided on the chunk list: ids are keyed hashes of the bytes.
  std::vector<ByteView> pieces;
  for (size_t pos = 0; pos < data.size();) {
    size_t n = repo_.chunker().Next(data.subspan(pos), true);
    pieces.push_back(data.subspan(pos, n));
    pos += n;
  }
  WalRecord rec;
  rec.name = name;
  rec.size = data.size();
  rec.time_ns = clock_.NowUnixNanos();
  rec.host = HostName();
  rec.partial = partial;
  rec.chunks.resize(pieces.size());
  auto run_all = [&](const std::function<Status(size_t)>& job) {
    std::vector<std::future<Status>> done;
    for (size_t i = 0; i < pieces.size(); ++i) {
      auto task = std::make_shared<std::packaged_task<Status()>>([&job, i] { return job(i); });
      done.push_back(task->get_future());
      if (pool && pieces.size() > 1) {
        pool->Submit([task] { (*task)(); });
      } else {
        (*task)();
      }
    }
    Status first;
    for (auto& f : done) {
      Status st = f.get();
      if (!st.ok() && first.ok()) first = st;
    }
    return first;
  };
  RETURN_IF_ERROR(run_all([&](size_t i) {
    rec.chunks[i] = ChunkRef{.id = BlobIdOf(repo_.key().id, pieces[i]),
                             .length = static_cast<uint32_t>(pieces[i].size())};
    return Status::Ok();
  }));
  rec.digest = ChunkListDigest(rec.chunks);
  if (!partial) {
    auto existing = Load(name);
    if (existing.ok()) {
      if (existing->digest == rec.digest && existing->size == data.size() && !existing->partial)
        return PushOutcome::kAlreadyStored;
      if (!existing->partial)
        return FailedPrecondition(
            "WAL file '" + name + "' is already archived for component '" + component_ +
            "' with different content (" + std::to_string(existing->size) + " bytes, digest " +
            existing->digest.Short() + "; now " + std::to_string(data.size()) + " bytes, " +
            rec.digest.Short() + "). HINT: two clusters may be archiving into the same component");
    } else if (existing.status().code() != Code::kNotFound) {
      return existing.status();
    }
  }
  RETURN_IF_ERROR(run_all([&](size_t i) {
    return repo_.SaveBlob(BlobType::kData, rec.chunks[i].id, pieces[i], kWalCompressionLevel)
        .status();
  }));
  RETURN_IF_ERROR(repo_.Flush());
  for (const auto& c : rec.chunks) {
    auto loc = repo_.index().Find(c.id);
    if (!loc.ok()) {  // known from an earlier session: no location hint
      rec.at.clear();
      break;
    }
    rec.at.push_back(*loc);
  }
  std::string text = WalRecordToJson(rec).dump();
  Bytes file = Seal(repo_.key().encryption, CompressBlob(AsBytes(text), 3), AsBytes(kAadWal));
  RETURN_IF_ERROR(repo_.storage().Put(Key(name), file).WithContext("writing WAL record"));
  return PushOutcome::kStored;
}

Result<Bytes> WalStore::Fetch(const std::string& name) {
  ASSIGN_OR_RETURN(WalRecord rec, Load(name));
  Bytes out;
  out.reserve(rec.size);
  for (size_t i = 0; i < rec.chunks.size(); ++i) {
    const ChunkRef& c = rec.chunks[i];
    Result<Bytes> piece = Internal("no location");
    if (i < rec.at.size()) piece = repo_.ReadBlobAt(c.id, rec.at[i]);
    if (!piece.ok()) {  // moved by prune, or no hint: ask the index
      if (!index_loaded_) {
        RETURN_IF_ERROR(repo_.LoadIndex());
        index_loaded_ = true;
      }
      piece = repo_.ReadBlob(c.id);
    }
    if (!piece.ok()) return piece.status().WithContext("WAL file '" + name + "'");
    if (piece->size() != c.length)
      return Corruption("WAL file '" + name + "': blob '" + c.id.Short() + "' has the wrong length");
    out.insert(out.end(), piece->begin(), piece->end());
  }
  if (out.size() != rec.size)
    return Corruption("WAL file '" + name + "' of component '" + component_ +
                      "' does not have its recorded size");
  return out;
}

Result<std::vector<std::string>> WalStore::List() {
  const std::string prefix = std::string(kWalDir) + component_ + "/";
  ASSIGN_OR_RETURN(auto objects, repo_.storage().List(prefix));
  std::vector<std::string> names;
  for (const auto& o : objects) {
    std::string rest = o.key.substr(prefix.size());
    if (rest.empty() || rest.find('/') != std::string::npos) continue;
    names.push_back(std::move(rest));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status WalStore::Remove(const std::string& name) { return repo_.storage().Delete(Key(name)); }

Result<std::vector<std::string>> WalComponents(Storage& storage) {
  ASSIGN_OR_RETURN(auto objects, storage.List(std::string(kWalDir)));
  std::vector<std::string> out;
  for (const auto& o : objects) {
    std::string rest = o.key.substr(kWalDir.size());
    size_t slash = rest.find('/');
    if (slash == std::string::npos) continue;
    std::string c = rest.substr(0, slash);
    if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status ForEachWalRecord(
    Repository& repo,
    const std::function<Status(const std::string& key, const WalRecord&)>& visit) {
  ASSIGN_OR_RETURN(auto objects, repo.storage().List(std::string(kWalDir)));
  std::sort(objects.begin(), objects.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  for (const auto& o : objects) {
    ASSIGN_OR_RETURN(auto j, repo.LoadJsonFile(o.key, kAadWal));
    auto r = WalRecordFromJson(j);
    if (!r.ok()) return r.status().WithContext("'" + o.key + "'");
    RETURN_IF_ERROR(visit(o.key, *r));
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ExpireWal(Repository& repo, const std::vector<Point>& kept,
                                           bool dry_run) {
  auto segno_of = [](const std::string& name) -> std::optional<uint64_t> {
    // 24 hex digits: 8 timeline, 8 log, 8 segment (of 2^32 / segment size per log).
    if (name.size() < 24) return std::nullopt;
    for (size_t i = 0; i < 24; ++i)
      if (!isxdigit(static_cast<unsigned char>(name[i]))) return std::nullopt;
    if (name.size() > 24 && name[24] != '.') return std::nullopt;
    uint64_t log = std::stoull(name.substr(8, 8), nullptr, 16);
    uint64_t seg = std::stoull(name.substr(16, 8), nullptr, 16);
    return (log << 32) | seg;  // orders like the LSN, whatever the segment size
  };
  std::vector<std::string> expired;
  ASSIGN_OR_RETURN(auto components, WalComponents(repo.storage()));
  for (const auto& component : components) {
    std::optional<uint64_t> oldest;
    for (const auto& p : kept) {
      const PointComponent* c = p.Find(component);
      if (!c || c->status != "ok") continue;
      auto s = segno_of(c->info.value("start_wal", std::string()));
      if (s && (!oldest || *s < *oldest)) oldest = s;
    }
    if (!oldest) continue;
    SystemClock clock;  // not used to expire: only records push times
    WalStore wal(repo, component, clock);
    ASSIGN_OR_RETURN(auto names, wal.List());
    for (const auto& n : names) {
      auto s = segno_of(n);
      if (!s || *s >= *oldest) continue;
      expired.push_back(wal.Key(n));
      if (!dry_run) RETURN_IF_ERROR(wal.Remove(n));
    }
  }
  return expired;
}

}  // namespace reprise
