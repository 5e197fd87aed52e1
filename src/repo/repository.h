// An open repository: its storage, master key, config and index, and the blob writer that
// fills packs. Objects are written in the order packs -> index -> point; nothing is ever
// overwritten (every name is content-addressed or random), so a crash leaves at worst
// unreferenced packs, which prune removes.
//
// Thread-safety: SaveBlob, ReadBlob and the index may be used from many threads at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "repo/chunker.h"
#include "repo/crypto.h"
#include "repo/index.h"
#include "repo/keys.h"
#include "repo/point.h"
#include "storage/storage.h"

namespace reprise {

struct RepoConfig {
  int version = 1;
  Id id;
  ChunkerParams chunker;
  uint32_t pack_size = 16 * 1024 * 1024;  // target size of a pack
  int compression_level = 2;              // zstd level
  std::string created;
};

struct InitOptions {
  ChunkerParams chunker;
  uint32_t pack_size = 16 * 1024 * 1024;
  int compression_level = 2;
  ScryptParams kdf;
  const MasterKey* master = nullptr;  // reuse this master key (copy between sites); else new
};

struct WriteStats {
  std::atomic<uint64_t> new_blobs{0};
  std::atomic<uint64_t> new_bytes{0};     // plaintext bytes of new blobs
  std::atomic<uint64_t> stored_bytes{0};  // sealed bytes of new blobs
  std::atomic<uint64_t> dedup_blobs{0};
  std::atomic<uint64_t> dedup_bytes{0};
  std::atomic<uint64_t> packs{0};
};

class Repository {
 public:
  ~Repository();

  static Result<std::unique_ptr<Repository>> Init(std::unique_ptr<Storage> storage,
                                                  std::string_view passphrase,
                                                  const InitOptions& options, const Clock& clock);
  static Result<std::unique_ptr<Repository>> Open(std::unique_ptr<Storage> storage,
                                                  std::string_view passphrase);

  Storage& storage() { return *storage_; }
  const RepoConfig& config() const { return config_; }
  const MasterKey& key() const { return master_; }
  const Id& key_id() const { return key_id_; }
  const Chunker& chunker() const { return chunker_; }

  // Reads every index file. Index files that do not open are reported through `damaged`
  // (when given) and otherwise fail the call.
  Status LoadIndex(std::vector<std::string>* damaged = nullptr);
  MasterIndex& index() { return index_; }
  const std::vector<Id>& index_files() const { return index_files_; }

  // Stores a blob unless the repository (or this session) has it. Returns true when new.
  // `also`, when given, counts the blob too (a caller's own share of write_stats(), e.g. one
  // component of a backup while others run at once).
  Result<bool> SaveBlob(BlobType type, const Id& id, ByteView plaintext,
                        WriteStats* also = nullptr);
  // The same with another zstd level than the repository's (negative: zstd's fast levels).
  Result<bool> SaveBlob(BlobType type, const Id& id, ByteView plaintext, int level,
                        WriteStats* also = nullptr);
  // Finishes open packs, waits for uploads and writes the index of the new packs. After OK,
  // every blob saved so far is durable and findable.
  Status Flush();
  Result<Bytes> ReadBlob(const Id& id);
  // Reads a blob from where `loc` says, without the index (WAL fetch keeps locations in its
  // records). Fails (never returns wrong bytes) when the blob is not there any more.
  Result<Bytes> ReadBlobAt(const Id& id, const BlobLocation& loc);
  // Bytes [offset, offset + length) of a pack; kCorruption when the pack is shorter.
  Result<Bytes> ReadPackRange(const Id& pack, uint64_t offset, uint64_t length);
  // Authenticates and decompresses the sealed bytes of blob `id`, stored at `loc`; damage is
  // reported naming the pack.
  Result<Bytes> OpenStoredBlob(const Id& id, const BlobLocation& loc, ByteView sealed) const;
  // Reads several blobs in order; neighbours in one pack (the usual case for blocks written
  // one after another) come in one ranged read. Stops at the first blob that fails, returning
  // the good ones before it in `out` and the error.
  Status ReadBlobs(const std::vector<Id>& ids, std::vector<Bytes>* out);
  WriteStats& write_stats() { return stats_; }

  // Small sealed JSON files (points, locks).
  Result<Id> SaveJsonFile(std::string_view dir, std::string_view aad, const nlohmann::json& j);
  Result<nlohmann::json> LoadJsonFile(const std::string& key, std::string_view aad);

  Result<Id> SavePoint(const Point& point);
  Result<Point> LoadPoint(const Id& id);
  // Every point, oldest first. Points that do not open are reported in `damaged` if given.
  Result<std::vector<Point>> ListPoints(std::vector<std::string>* damaged = nullptr);
  // "latest", a full id or a unique prefix of at least 4 hex digits.
  Result<Point> ResolvePoint(const std::string& ref);

  // Writes one index file listing `packs` and remembers it.
  Result<Id> WriteIndexFile(const std::vector<IndexPack>& packs);

 private:
  Repository(std::unique_ptr<Storage> storage, const MasterKey& master, const Id& key_id,
             const RepoConfig& config);
  void UploadLoop();
  Status TakeError();
  void SetError(const Status& st);
  void FinishPackLocked(int slot);  // pack_mu_ held

  std::unique_ptr<Storage> storage_;
  MasterKey master_;
  Id key_id_;
  RepoConfig config_;
  Chunker chunker_;
  MasterIndex index_;
  std::vector<Id> index_files_;

  // Blob writer.
  std::mutex claim_mu_;
  std::unordered_set<Id, IdHash> claimed_;  // saved this session, maybe not indexed yet
  std::mutex pack_mu_;
  // A pack being filled: its bytes go to the storage's writer as blobs come (the local
  // backend streams them to disk), and an uploader commits it once full.
  struct OpenPack {
    Id id;
    std::unique_ptr<ObjectWriter> writer;
    std::vector<PackEntry> entries;
    uint64_t size = 0;
  };
  OpenPack open_[2];  // one per BlobType
  std::mutex upload_mu_;
  std::condition_variable upload_cv_, upload_done_cv_;
  using PendingPack = OpenPack;  // full, its trailer written, to commit
  std::deque<PendingPack> upload_queue_;
  size_t uploads_in_flight_ = 0;
  std::vector<IndexPack> unindexed_;  // uploaded, not yet in an index file
  bool stopping_ = false;
  Status error_;
  std::vector<std::thread> uploaders_;
  WriteStats stats_;
};

// Opens storage by URL and the repository in it: the common path of every command.
Result<std::unique_ptr<Repository>> OpenRepository(const std::string& url,
                                                   std::string_view passphrase);

}  // namespace reprise
