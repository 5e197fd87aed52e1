#include "repo/wal_store.h"

#include <cstring>
#include <condition_variable>
#include <future>
#include <mutex>
#include <unordered_map>

#include "common/sysinfo.h"
#include "repo/compress.h"
#include "repo/format.h"
#include "repo/pack.h"

namespace reprise {

namespace {

// WAL is written once and read rarely, and wal-push sits in PostgreSQL's archiving path. On 40
// segments of pgbench plus embedding inserts (bench/wal_push_latency.sh), per 16 MiB segment
// in 1 MiB chunks: level 1 18.6 ms of CPU, stores 64.8%; fast level 1 (-1) 9.0 ms, 69.9%;
// -4 7.0 ms, 72.9%; -16 5.2 ms, 75.2%. -4 takes a fifth less CPU than -1 for 4% more bytes.
constexpr int kWalCompressionLevel = -4;
// WAL chunks are cut at fixed offsets (see Push).
constexpr size_t kWalChunkSize = 1 << 20;

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

namespace {

// Runs job(i) for i in [0, n) on `pool` (inline without one) and returns the first error.
Status RunAll(ThreadPool* pool, size_t n, const std::function<Status(size_t)>& job) {
  if (!pool || n < 2) {
    Status first;
    for (size_t i = 0; i < n; ++i) {
      Status st = job(i);
      if (!st.ok() && first.ok()) first = st;
    }
    return first;
  }
  std::vector<std::future<Status>> done;
  done.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto task = std::make_shared<std::packaged_task<Status()>>([&job, i] { return job(i); });
    done.push_back(task->get_future());
    pool->Submit([task] { (*task)(); });
  }
  Status first;
  for (auto& f : done) {
    Status st = f.get();
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

}  // namespace

Result<PushOutcome> WalStore::Push(const std::string& name, ByteView data, bool partial,
                                   ThreadPool* pool, const std::function<Status()>& before_write) {
  // A complete file already archived is compared on its own chunk boundaries (records written
  // by older versions were cut by the content-defined chunker): the same bytes give the same
  // keyed ids, so the same digest.
  if (!partial) {
    auto existing = Load(name);
    if (existing.ok() && !existing->partial) {
      bool same = existing->size == data.size();
      if (same) {
        std::vector<ChunkRef> mine(existing->chunks.size());
        std::vector<size_t> offsets(existing->chunks.size());
        for (size_t i = 0, pos = 0; i < mine.size(); pos += existing->chunks[i].length, ++i)
          offsets[i] = pos;
        RETURN_IF_ERROR(RunAll(pool, mine.size(), [&](size_t i) {
          ByteView piece = data.subspan(offsets[i], existing->chunks[i].length);
          mine[i] = ChunkRef{.id = BlobIdOf(repo_.key().id, piece),
                             .length = static_cast<uint32_t>(piece.size())};
          return Status::Ok();
        }));
        same = ChunkListDigest(mine) == existing->digest;
      }
      if (same) return PushOutcome::kAlreadyStored;
      return FailedPrecondition(
          "WAL file '" + name + "' is already archived for component '" + component_ +
          "' with different content (" + std::to_string(existing->size) + " bytes, digest " +
          existing->digest.Short() + "; now " + std::to_string(data.size()) +
          " bytes). HINT: two clusters may be archiving into the same component");
    }
    if (!existing.ok() && existing.status().code() != Code::kNotFound) return existing.status();
  }

  // Fixed-size chunks: WAL hardly ever repeats between files, so content-defined boundaries
  // buy nothing; fixed ones cost no scan, and a growing partial segment keeps its prefix's
  // chunks (wal-stream pushes it again and again).
  const size_t count = (data.size() + kWalChunkSize - 1) / kWalChunkSize;
  auto piece = [&](size_t i) {
    size_t off = i * kWalChunkSize;
    return data.subspan(off, std::min(kWalChunkSize, data.size() - off));
  };
  WalRecord rec;
  rec.name = name;
  rec.size = data.size();
  rec.time_ns = clock_.NowUnixNanos();
  rec.host = HostName();
  rec.partial = partial;
  rec.chunks.resize(count);

  // Each chunk is one job: keyed id, then zstd while its bytes are still in cache. Chunks this
  // repository already indexes (an earlier push of this session) are not compressed. The
  // compressed chunks are then sealed in order straight into the pack writer's buffer.
  //
  // Chunks are claimed in order by the calling thread and by one helper per pool thread; the
  // caller also seals each finished chunk into the pack in order, and runs a chunk itself
  // rather than sleep while one is left to claim (a sleeping thread can take milliseconds to
  // wake on a busy or virtualised machine, which a 16 MiB push cannot afford). No chunk is
  // claimed more than kWindow ahead of the one being packed, which bounds memory for large
  // segments (wal_segment_size up to 1 GiB).
  // Compressed chunks go into a few buffers that are reused (a fresh 1 MiB buffer per chunk
  // costs its page faults every time).
  constexpr size_t kWindow = 4;
  struct Slot {
    Bytes compressed;  // its first `size` bytes
    size_t size = 0;
    bool known = false;
    bool done = false;  // under `mu`
  };
  std::vector<Slot> slots(count);
  std::mutex mu;
  std::condition_variable changed;
  size_t next_claim = 0, packed = 0, helpers_running = 0;  // under `mu`
  std::vector<Bytes> spare;                                 // under `mu`
  auto job = [&](size_t i) {
    ByteView p = piece(i);
    Id id = BlobIdOf(repo_.key().id, p);
    rec.chunks[i] = ChunkRef{.id = id, .length = static_cast<uint32_t>(p.size())};
    Slot& slot = slots[i];
    slot.known = repo_.index().Has(id);
    if (!slot.known) {
      {
        std::lock_guard lk(mu);
        if (!spare.empty()) {
          slot.compressed = std::move(spare.back());
          spare.pop_back();
        }
      }
      slot.size = CompressBlobInto(p, kWalCompressionLevel, slot.compressed);
    }
    std::lock_guard lk(mu);
    slot.done = true;
    changed.notify_all();
  };
  // Claims the next chunk if the window allows; count when none is left.
  auto claim = [&](std::unique_lock<std::mutex>& lk, bool wait) -> size_t {
    for (;;) {
      if (next_claim >= count) return count;
      if (next_claim < packed + kWindow) return next_claim++;
      if (!wait) return count;
      changed.wait(lk);
    }
  };
  if (pool && count > 1) {
    for (size_t h = 0; h < pool->size(); ++h) {
      {
        std::lock_guard lk(mu);
        ++helpers_running;
      }
      pool->Submit([&] {
        std::unique_lock lk(mu);
        for (size_t i; (i = claim(lk, true)) < count;) {
          lk.unlock();
          job(i);
          lk.lock();
        }
        --helpers_running;
        changed.notify_all();
      });
    }
  }
  // The helpers hold references into this frame: they are waited for before it returns.
  struct Joiner {
    std::mutex& mu;
    std::condition_variable& changed;
    size_t& next_claim;
    size_t count;
    size_t& running;
    ~Joiner() {
      std::unique_lock lk(mu);
      next_claim = count;  // nothing more to claim, also after an error
      changed.notify_all();
      changed.wait(lk, [&] { return running == 0; });
    }
  } joiner{mu, changed, next_claim, count, helpers_running};
  // Waits until chunk i is compressed, compressing others meanwhile.
  auto await_chunk = [&](size_t i) {
    std::unique_lock lk(mu);
    while (!slots[i].done) {
      size_t mine = claim(lk, false);
      if (mine < count) {
        lk.unlock();
        job(mine);
        lk.lock();
      } else {
        changed.wait(lk);
      }
    }
  };
  auto mark_packed = [&](size_t i) {
    std::lock_guard lk(mu);
    packed = i + 1;
    changed.notify_all();
  };

  // Packs are written as they are filled, in chunk order: the storage's writer takes each
  // sealed blob as it comes (the local backend streams it to disk), and a full pack is
  // committed (fsync, rename) by its own thread while the next one fills.
  const size_t pack_limit = repo_.config().pack_size;
  std::vector<IndexPack> packs;
  std::vector<std::future<Status>> puts;
  bool writing = false;
  std::unordered_map<Id, BlobLocation, IdHash> placed;
  std::unique_ptr<ObjectWriter> writer;
  IndexPack current;
  uint64_t current_size = 0;
  auto append = [&](ByteView bytes) -> Status {
    uint8_t* room = writer->Reserve(bytes.size());
    if (!bytes.empty()) std::memcpy(room, bytes.data(), bytes.size());
    return writer->Append(bytes.size());
  };
  auto finish_pack = [&]() -> Status {
    if (!writer) return Status::Ok();
    RETURN_IF_ERROR(append(SealPackTrailer(repo_.key().encryption, current.entries))
                        .WithContext("writing pack"));
    for (const auto& e : current.entries)
      placed[e.id] = BlobLocation{.pack = current.pack, .type = e.type, .offset = e.offset,
                                  .length = e.length, .raw_length = e.raw_length};
    std::shared_ptr<ObjectWriter> done(std::move(writer));
    packs.push_back(std::move(current));
    current = IndexPack();
    current_size = 0;
    puts.push_back(std::async(std::launch::async, [done] {
      return done->Commit().WithContext("writing pack");
    }));
    return Status::Ok();
  };
  auto add_blob = [&](const Id& id, ByteView compressed, uint32_t raw_length) -> Status {
    if (!writer) {
      if (!writing) {
        writing = true;
        if (before_write) RETURN_IF_ERROR(before_write());
      }
      current.pack = Id::Random();
      ASSIGN_OR_RETURN(writer, repo_.storage().OpenWriter(PackKey(current.pack)));
    }
    const size_t sealed = compressed.size() + kSealOverhead;
    uint8_t* room = writer->Reserve(sealed);
    SealTo(repo_.key().encryption, compressed, id.bytes, room);
    RETURN_IF_ERROR(writer->Append(sealed).WithContext("writing pack"));
    current.entries.push_back(PackEntry{.type = BlobType::kData,
                                        .id = id,
                                        .offset = current_size,
                                        .length = static_cast<uint32_t>(sealed),
                                        .raw_length = raw_length});
    current_size += sealed;
    if (current_size >= pack_limit) return finish_pack();
    return Status::Ok();
  };
  std::unordered_map<Id, bool, IdHash> pack_present;
  Status write_error;
  for (size_t i = 0; i < count && write_error.ok(); ++i) {
    await_chunk(i);
    mark_packed(i);
    Slot& s = slots[i];
    const Id& id = rec.chunks[i].id;
    // The buffer goes back for another chunk whatever happens to this one.
    struct GiveBack {
      Slot& s;
      std::mutex& mu;
      std::vector<Bytes>& spare;
      ~GiveBack() {
        if (s.compressed.empty()) return;
        std::lock_guard lk(mu);
        spare.push_back(std::move(s.compressed));
      }
    } give_back{s, mu, spare};
    if (placed.count(id)) continue;
    if (s.known) {
      // Stored by an earlier push of this process (wal-stream runs for hours). Prune may have
      // deleted its pack since (its segment expired): trust it only if the pack is still
      // there, checked under the lock so that prune cannot delete it before the record names
      // it; otherwise store it again.
      if (!writing) {
        writing = true;
        if (before_write) RETURN_IF_ERROR(before_write());
      }
      auto loc = repo_.index().Find(id);
      bool present = false;
      if (loc.ok()) {
        auto it = pack_present.find(loc->pack);
        if (it == pack_present.end())
          it = pack_present.emplace(loc->pack, repo_.storage().Stat(PackKey(loc->pack)).ok()).first;
        present = it->second;
      }
      if (present) continue;
      s.known = false;
      s.size = CompressBlobInto(piece(i), kWalCompressionLevel, s.compressed);
    }
    if (s.size == 0) continue;
    // Duplicates within this file (zero-filled pages) are stored once.
    bool dup = false;
    for (const auto& e : current.entries)
      if (e.id == id) dup = true;
    if (dup) continue;
    write_error = add_blob(id, ByteView(s.compressed.data(), s.size), rec.chunks[i].length);
  }
  if (write_error.ok()) write_error = finish_pack();
  writer.reset();  // a pack left unfinished by an error leaves nothing behind
  for (auto& f : puts) {
    Status st = f.get();
    if (!st.ok() && write_error.ok()) write_error = st;
  }
  RETURN_IF_ERROR(write_error);
  if (!packs.empty()) RETURN_IF_ERROR(repo_.WriteIndexFile(packs).status());

  rec.digest = ChunkListDigest(rec.chunks);
  for (const auto& c : rec.chunks) {
    auto it = placed.find(c.id);
    if (it != placed.end()) {
      rec.at.push_back(it->second);
      continue;
    }
    auto loc = repo_.index().Find(c.id);
    if (!loc.ok()) {  // known from an earlier session: no location hint
      rec.at.clear();
      break;
    }
    rec.at.push_back(*loc);
  }
  if (!writing && before_write) RETURN_IF_ERROR(before_write());
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
