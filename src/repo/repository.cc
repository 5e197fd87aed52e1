#include "repo/repository.h"

#include <algorithm>
#include <cstring>

#include "repo/compress.h"
#include "repo/format.h"
#include "repo/pack.h"

namespace reprise {

namespace {

constexpr size_t kUploadThreads = 2;
constexpr size_t kMaxQueuedPacks = 1;
constexpr size_t kPacksPerIndexFile = 64;

nlohmann::json ConfigToJson(const RepoConfig& c) {
  return {{"version", c.version},
          {"id", c.id.Hex()},
          {"created", c.created},
          {"chunker", {{"min", c.chunker.min_size}, {"avg", c.chunker.avg_size},
                       {"max", c.chunker.max_size}}},
          {"pack_size", c.pack_size},
          {"compression", {{"algorithm", "zstd"}, {"level", c.compression_level}}}};
}

Result<RepoConfig> ConfigFromJson(const nlohmann::json& j) {
  try {
    RepoConfig c;
    c.version = j.at("version").get<int>();
    if (c.version != kFormatVersion)
      return FailedPrecondition("repository has format version " + std::to_string(c.version) +
                                "; this reprise reads version " + std::to_string(kFormatVersion) +
                                ". HINT: use a reprise release that supports it");
    ASSIGN_OR_RETURN(c.id, Id::FromHex(j.at("id").get<std::string>()));
    c.created = j.value("created", "");
    c.chunker.min_size = j.at("chunker").at("min").get<uint32_t>();
    c.chunker.avg_size = j.at("chunker").at("avg").get<uint32_t>();
    c.chunker.max_size = j.at("chunker").at("max").get<uint32_t>();
    c.pack_size = j.at("pack_size").get<uint32_t>();
    c.compression_level = j.at("compression").at("level").get<int>();
    RETURN_IF_ERROR(ValidateChunkerParams(c.chunker));
    return c;
  } catch (const nlohmann::json::exception& e) {
    return Corruption(std::string("config is malformed: ") + e.what());
  }
}

}  // namespace

Repository::Repository(std::unique_ptr<Storage> storage, const MasterKey& master,
                       const Id& key_id, const RepoConfig& config)
    : storage_(std::move(storage)),
      master_(master),
      key_id_(key_id),
      config_(config),
      chunker_(master.chunker, config.chunker) {
  for (size_t i = 0; i < kUploadThreads; ++i) uploaders_.emplace_back([this] { UploadLoop(); });
}

Repository::~Repository() {
  {
    std::lock_guard lk(upload_mu_);
    stopping_ = true;
  }
  upload_cv_.notify_all();
  for (auto& t : uploaders_) t.join();
}

Result<std::unique_ptr<Repository>> Repository::Init(std::unique_ptr<Storage> storage,
                                                     std::string_view passphrase,
                                                     const InitOptions& options,
                                                     const Clock& clock) {
  if (passphrase.empty()) return InvalidArgument("the passphrase is empty");
  RETURN_IF_ERROR(ValidateChunkerParams(options.chunker));
  auto existing = storage->Stat(std::string(kConfigKey));
  if (existing.ok())
    return AlreadyExists("'" + storage->Location() + "' already holds a repository");
  if (existing.status().code() != Code::kNotFound) return existing.status();
  ASSIGN_OR_RETURN(auto keys, storage->List(std::string(kKeysDir)));
  if (!keys.empty())
    return AlreadyExists("'" + storage->Location() +
                         "' has key files but no config: a broken init? HINT: remove it by hand");

  MasterKey master = options.master ? *options.master : MasterKey::Generate();
  RepoConfig config;
  config.id = Id::Random();
  config.chunker = options.chunker;
  config.pack_size = options.pack_size;
  config.compression_level = options.compression_level;
  config.created = FormatRfc3339(clock.NowUnixNanos());

  // The key first, the config last: a repository exists once its config does.
  ASSIGN_OR_RETURN(Id key_id, AddKeyFile(*storage, master, passphrase, options.kdf, clock));
  std::string text = ConfigToJson(config).dump();
  Bytes sealed = Seal(master.encryption, AsBytes(text), AsBytes(kAadConfig));
  RETURN_IF_ERROR(storage->Put(std::string(kConfigKey), sealed));
  return std::unique_ptr<Repository>(new Repository(std::move(storage), master, key_id, config));
}

Result<std::unique_ptr<Repository>> Repository::Open(std::unique_ptr<Storage> storage,
                                                     std::string_view passphrase) {
  auto cfg = storage->Get(std::string(kConfigKey));
  if (!cfg.ok()) {
    if (cfg.status().code() == Code::kNotFound)
      return NotFound("'" + storage->Location() +
                      "' is not a reprise repository (no config). HINT: create one with "
                      "'reprise init'");
    return cfg.status().WithContext("reading the repository config");
  }
  ASSIGN_OR_RETURN(auto opened, OpenWithPassphrase(*storage, passphrase));
  auto& [key_id, master] = opened;
  auto plain = reprise::Open(master.encryption, *cfg, AsBytes(kAadConfig));
  if (!plain.ok()) return Corruption("the repository config fails authentication");
  auto j = nlohmann::json::parse(plain->begin(), plain->end(), nullptr, false);
  if (j.is_discarded()) return Corruption("the repository config is not JSON");
  ASSIGN_OR_RETURN(RepoConfig config, ConfigFromJson(j));
  return std::unique_ptr<Repository>(new Repository(std::move(storage), master, key_id, config));
}

Status Repository::LoadIndex(std::vector<std::string>* damaged) {
  ASSIGN_OR_RETURN(auto files, storage_->List(std::string(kIndexDir)));
  index_files_.clear();
  for (const auto& f : files) {
    auto id = Id::FromHex(f.key.substr(kIndexDir.size()));
    auto bytes = storage_->Get(f.key);
    if (!bytes.ok()) return bytes.status().WithContext("reading index '" + f.key + "'");
    auto packs = DecodeIndex(master_.encryption, *bytes);
    if (!packs.ok() || !id.ok() || Sha256(*bytes) != *id) {
      std::string msg = "index '" + f.key + "' is damaged: " +
                        (packs.ok() ? std::string("its name is not its hash")
                                    : packs.status().message());
      if (!damaged) return Corruption(msg + ". HINT: run 'reprise check'");
      damaged->push_back(msg);
      continue;
    }
    for (const auto& p : *packs) index_.AddPack(p);
    index_files_.push_back(*id);
  }
  return Status::Ok();
}

Result<bool> Repository::SaveBlob(BlobType type, const Id& id, ByteView plaintext,
                                  WriteStats* also) {
  return SaveBlob(type, id, plaintext, config_.compression_level, also);
}

Result<bool> Repository::SaveBlob(BlobType type, const Id& id, ByteView plaintext, int level,
                                  WriteStats* also) {
  RETURN_IF_ERROR(TakeError());
  auto count = [&](auto add) {  // into the repository's counters and the caller's
    add(stats_);
    if (also) add(*also);
  };
  auto dedup = [&] {
    count([&](WriteStats& s) {
      s.dedup_blobs++;
      s.dedup_bytes += plaintext.size();
    });
    return false;
  };
  if (index_.Has(id)) return dedup();
  {
    std::lock_guard lk(claim_mu_);
    if (!claimed_.insert(id).second) return dedup();
  }
  Bytes sealed = SealBlob(master_.encryption, id, plaintext, level);
  count([&](WriteStats& s) {
    s.new_blobs++;
    s.new_bytes += plaintext.size();
    s.stored_bytes += sealed.size();
  });
  int slot = static_cast<int>(type);
  std::lock_guard lk(pack_mu_);
  OpenPack& pack = open_[slot];
  if (!pack.writer) {
    pack.id = Id::Random();
    auto writer = storage_->OpenWriter(PackKey(pack.id));
    if (!writer.ok()) {
      SetError(writer.status().WithContext("writing pack '" + pack.id.Short() + "'"));
      return TakeError();
    }
    pack.writer = std::move(*writer);
  }
  std::memcpy(pack.writer->Reserve(sealed.size()), sealed.data(), sealed.size());
  if (Status st = pack.writer->Append(sealed.size()); !st.ok()) {
    SetError(st.WithContext("writing pack '" + pack.id.Short() + "'"));
    return TakeError();
  }
  pack.entries.push_back(PackEntry{.type = type,
                                   .id = id,
                                   .offset = pack.size,
                                   .length = static_cast<uint32_t>(sealed.size()),
                                   .raw_length = static_cast<uint32_t>(plaintext.size())});
  pack.size += sealed.size();
  if (pack.size >= config_.pack_size) FinishPackLocked(slot);
  return true;
}

void Repository::FinishPackLocked(int slot) {
  if (!open_[slot].writer) return;
  PendingPack p = std::move(open_[slot]);
  open_[slot] = OpenPack();
  Bytes trailer = SealPackTrailer(master_.encryption, p.entries);
  std::memcpy(p.writer->Reserve(trailer.size()), trailer.data(), trailer.size());
  if (Status st = p.writer->Append(trailer.size()); !st.ok()) {
    SetError(st.WithContext("writing pack '" + p.id.Short() + "'"));
    return;  // the writer goes with `p`: nothing is left behind
  }
  std::unique_lock lk(upload_mu_);
  upload_done_cv_.wait(lk, [&] { return upload_queue_.size() < kMaxQueuedPacks || stopping_; });
  upload_queue_.push_back(std::move(p));
  lk.unlock();
  upload_cv_.notify_one();
}

void Repository::UploadLoop() {
  for (;;) {
    PendingPack p;
    {
      std::unique_lock lk(upload_mu_);
      upload_cv_.wait(lk, [&] { return stopping_ || !upload_queue_.empty(); });
      if (upload_queue_.empty()) return;
      p = std::move(upload_queue_.front());
      upload_queue_.pop_front();
      ++uploads_in_flight_;
    }
    upload_done_cv_.notify_all();
    Status st = p.writer->Commit();
    p.writer.reset();
    std::vector<IndexPack> to_write;
    {
      std::lock_guard lk(upload_mu_);
      --uploads_in_flight_;
      if (!st.ok()) {
        if (error_.ok()) error_ = st.WithContext("writing pack '" + p.id.Short() + "'");
      } else {
        stats_.packs++;
        unindexed_.push_back(IndexPack{.pack = p.id, .entries = std::move(p.entries)});
        if (unindexed_.size() >= kPacksPerIndexFile) to_write.swap(unindexed_);
      }
    }
    if (!to_write.empty()) {
      auto written = WriteIndexFile(to_write);
      if (!written.ok()) SetError(written.status());
    }
    upload_done_cv_.notify_all();
  }
}

void Repository::SetError(const Status& st) {
  std::lock_guard lk(upload_mu_);
  if (error_.ok()) error_ = st;
}

Status Repository::TakeError() {
  std::lock_guard lk(upload_mu_);
  return error_;
}

Status Repository::Flush() {
  {
    std::lock_guard lk(pack_mu_);
    FinishPackLocked(0);
    FinishPackLocked(1);
  }
  std::vector<IndexPack> to_write;
  {
    std::unique_lock lk(upload_mu_);
    upload_done_cv_.wait(lk, [&] { return upload_queue_.empty() && uploads_in_flight_ == 0; });
    RETURN_IF_ERROR(error_);
    to_write.swap(unindexed_);
  }
  if (!to_write.empty()) {
    ASSIGN_OR_RETURN(Id ignored, WriteIndexFile(to_write));
    (void)ignored;
  }
  return TakeError();
}

Result<Id> Repository::WriteIndexFile(const std::vector<IndexPack>& packs) {
  Bytes file = EncodeIndex(master_.encryption, packs);
  Id id = Sha256(file);
  RETURN_IF_ERROR(storage_->Put(IndexKey(id), file).WithContext("writing index"));
  for (const auto& p : packs) index_.AddPack(p);
  std::lock_guard lk(upload_mu_);
  index_files_.push_back(id);
  return id;
}

Result<Bytes> Repository::ReadBlob(const Id& id) {
  ASSIGN_OR_RETURN(BlobLocation loc, index_.Find(id));
  return ReadBlobAt(id, loc);
}

Result<Bytes> Repository::ReadBlobAt(const Id& id, const BlobLocation& loc) {
  auto sealed = storage_->GetRange(PackKey(loc.pack), loc.offset, loc.length);
  if (!sealed.ok())
    return sealed.status().WithContext("reading blob '" + id.Short() + "' from pack '" +
                                       loc.pack.Hex() + "'");
  return OpenStoredBlob(id, loc, *sealed);
}

Result<Bytes> Repository::ReadPackRange(const Id& pack, uint64_t offset, uint64_t length) {
  auto bytes = storage_->GetRange(PackKey(pack), offset, length);
  if (!bytes.ok()) return bytes.status().WithContext("reading pack '" + pack.Hex() + "'");
  if (bytes->size() != length)
    return Corruption("pack '" + pack.Hex() + "' is shorter than its index says. " +
                      "HINT: run 'reprise check --read-data' to see what is affected");
  return bytes;
}

Result<Bytes> Repository::OpenStoredBlob(const Id& id, const BlobLocation& loc,
                                         ByteView sealed) const {
  auto plain = OpenBlob(master_.encryption, id, sealed, loc.raw_length);
  if (!plain.ok())
    return Corruption(plain.status().message() + " in pack '" + loc.pack.Hex() +
                      "'. HINT: run 'reprise check --read-data' to see what is affected");
  return plain;
}

Status Repository::ReadBlobs(const std::vector<Id>& ids, std::vector<Bytes>* out) {
  std::vector<BlobLocation> locs;
  locs.reserve(ids.size());
  for (const Id& id : ids) {
    auto loc = index_.Find(id);
    if (!loc.ok()) {
      // Read what comes before the unknown blob, then report it.
      locs.clear();
      break;
    }
    locs.push_back(*loc);
  }
  if (locs.size() != ids.size()) {  // fall back to one read each (names the missing blob)
    for (const Id& id : ids) {
      ASSIGN_OR_RETURN(Bytes b, ReadBlob(id));
      out->push_back(std::move(b));
    }
    return Status::Ok();
  }
  // Blobs are read in spans: the asked blobs of one pack in offset order (whatever their
  // order in `ids`), with gaps of at most kMaxGap between neighbours and at most kMaxSpan in
  // all. On an object store each request costs the server far more than reading a few
  // hundred KiB more: restoring 9000 files from Ceph RGW took 6575 ranged GETs of 2.3 KiB
  // (median) when only back-to-back blobs were read together, and RGW's CPU was the limit.
  constexpr uint64_t kMaxGap = 1 << 20;
  constexpr uint64_t kMaxSpan = 8 << 20;
  std::vector<size_t> order(ids.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (locs[a].pack != locs[b].pack) return locs[a].pack.bytes < locs[b].pack.bytes;
    return locs[a].offset < locs[b].offset;
  });
  std::vector<Bytes> got(ids.size());
  size_t i = 0;
  while (i < order.size()) {
    const BlobLocation& first = locs[order[i]];
    uint64_t end = first.offset + first.length;
    size_t j = i + 1;
    while (j < order.size()) {
      const BlobLocation& next = locs[order[j]];
      uint64_t next_end = std::max(end, next.offset + next.length);
      if (next.pack != first.pack || next.offset > end + kMaxGap ||
          next_end - first.offset > kMaxSpan)
        break;
      end = next_end;
      ++j;
    }
    if (j == i + 1) {
      ASSIGN_OR_RETURN(got[order[i]], ReadBlobAt(ids[order[i]], first));
      i = j;
      continue;
    }
    auto sealed = ReadPackRange(first.pack, first.offset, end - first.offset);
    if (!sealed.ok())
      return sealed.status().WithContext("reading blob '" + ids[order[i]].Short() + "'");
    for (size_t k = i; k < j; ++k) {
      const size_t at = order[k];
      ByteView one = ByteView(*sealed).subspan(locs[at].offset - first.offset, locs[at].length);
      ASSIGN_OR_RETURN(got[at], OpenStoredBlob(ids[at], locs[at], one));
    }
    i = j;
  }
  for (Bytes& b : got) out->push_back(std::move(b));
  return Status::Ok();
}

Result<Id> Repository::SaveJsonFile(std::string_view dir, std::string_view aad,
                                    const nlohmann::json& j) {
  std::string text = j.dump();
  Bytes file = Seal(master_.encryption, CompressBlob(AsBytes(text), 3), AsBytes(aad));
  Id id = Sha256(file);
  RETURN_IF_ERROR(storage_->Put(std::string(dir) + id.Hex(), file));
  return id;
}

Result<nlohmann::json> Repository::LoadJsonFile(const std::string& key, std::string_view aad) {
  ASSIGN_OR_RETURN(Bytes file, storage_->Get(key));
  auto stored = reprise::Open(master_.encryption, file, AsBytes(aad));
  if (!stored.ok()) return Corruption("'" + key + "' fails authentication");
  ASSIGN_OR_RETURN(Bytes plain, DecompressBlob(*stored, size_t{1} << 30));
  auto j = nlohmann::json::parse(plain.begin(), plain.end(), nullptr, false);
  if (j.is_discarded()) return Corruption("'" + key + "' is not JSON");
  return j;
}

Result<Id> Repository::SavePoint(const Point& point) {
  return SaveJsonFile(kPointsDir, kAadPoint, PointToJson(point));
}

Result<Point> Repository::LoadPoint(const Id& id) {
  ASSIGN_OR_RETURN(auto j, LoadJsonFile(PointKey(id), kAadPoint));
  auto p = PointFromJson(j);
  if (!p.ok()) return p.status().WithContext("point '" + id.Short() + "'");
  p->id = id;
  return p;
}

Result<std::vector<Point>> Repository::ListPoints(std::vector<std::string>* damaged) {
  ASSIGN_OR_RETURN(auto files, storage_->List(std::string(kPointsDir)));
  std::vector<Point> points;
  for (const auto& f : files) {
    auto id = Id::FromHex(f.key.substr(kPointsDir.size()));
    if (!id.ok()) continue;
    auto p = LoadPoint(*id);
    if (!p.ok()) {
      if (!damaged) return p.status();
      damaged->push_back(p.status().message());
      continue;
    }
    points.push_back(std::move(*p));
  }
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return points;
}

Result<Point> Repository::ResolvePoint(const std::string& ref) {
  ASSIGN_OR_RETURN(auto points, ListPoints());
  if (points.empty()) return NotFound("repository '" + storage_->Location() + "' has no points");
  if (ref == "latest") return points.back();
  if (ref.size() < 4) return InvalidArgument("point '" + ref + "': give at least 4 hex digits");
  const Point* found = nullptr;
  for (const auto& p : points) {
    if (p.id.Hex().rfind(ref, 0) == 0) {
      if (found) return InvalidArgument("point '" + ref + "' is ambiguous: give more digits");
      found = &p;
    }
  }
  if (!found)
    return NotFound("no point '" + ref + "' in '" + storage_->Location() +
                    "'. HINT: 'reprise points' lists them");
  return *found;
}

Result<std::unique_ptr<Repository>> OpenRepository(const std::string& url,
                                                   std::string_view passphrase) {
  ASSIGN_OR_RETURN(auto storage, OpenStorage(url));
  return Repository::Open(std::move(storage), passphrase);
}

}  // namespace reprise
