// The WAL archive of a database component: files that arrive one at a time (WAL segments,
// timeline history files, backup history files, the partial segment a stream is filling),
// each stored as blobs plus a sealed record naming them:
//
//   wal/<component>/<file name> = Seal(CompressBlob(JSON record), aad="reprise-wal-v1")
//   record: {"name","size","digest","time_ns","host","partial","chunks":[[id,len],...],
//            "at":[[pack hex, offset, sealed length, raw length],...]}
//   digest = SHA-256 of the chunk list (each chunk's 32-byte keyed id and 4-byte length): the
//   file's identity without a second pass over 16 MiB (chunk ids are keyed hashes of the bytes).
//
// The record is written last, after the packs and an index file holding its blobs are
// durable: a visible record is always fetchable. Records of complete files are never replaced
// (pushing the same bytes again is a no-op, other bytes are refused); a partial segment's
// record is replaced as the stream grows and removed once the full segment is archived.
// "at" caches where each blob was written so a fetch needs neither the index nor a listing;
// when prune has moved a blob, fetch falls back to the index.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/thread_pool.h"
#include "components/component.h"
#include "repo/repository.h"

namespace reprise {

struct WalRecord {
  std::string name;
  uint64_t size = 0;
  Id digest;
  int64_t time_ns = 0;
  std::string host;
  bool partial = false;
  std::vector<ChunkRef> chunks;
  std::vector<BlobLocation> at;  // same order as chunks; may be empty
};

enum class PushOutcome { kStored, kAlreadyStored };

class WalStore {
 public:
  // `component` is the plan's component name (a storage key component).
  WalStore(Repository& repo, std::string component, const Clock& clock);

  // Stores `data` as file `name`. Durable when it returns OK. `pool` (optional) ids,
  // compresses and encrypts chunks in parallel. A partial push replaces an earlier partial
  // record. `before_write` (optional) runs once before the first write to the repository (the
  // caller may take its lock meanwhile); its error stops the push with nothing written.
  Result<PushOutcome> Push(const std::string& name, ByteView data, bool partial = false,
                           ThreadPool* pool = nullptr,
                           const std::function<Status()>& before_write = {});
  // The file's bytes, every chunk authenticated against its id. kNotFound when not archived.
  Result<Bytes> Fetch(const std::string& name);
  Result<WalRecord> Load(const std::string& name);
  bool Exists(const std::string& name);
  // Names of every archived file of this component (no decryption: a listing).
  Result<std::vector<std::string>> List();
  Status Remove(const std::string& name);
  std::string Key(const std::string& name) const;

 private:
  Repository& repo_;
  std::string component_;
  const Clock& clock_;
  bool index_loaded_ = false;
};

// Every component that has WAL files in the repository.
Result<std::vector<std::string>> WalComponents(Storage& storage);
// Calls `visit` for each record of every component (for prune, check and copy).
Status ForEachWalRecord(Repository& repo,
                        const std::function<Status(const std::string& key, const WalRecord&)>& visit);

// WAL no kept point needs: for every component with WAL, the files whose segment number is
// below the oldest first segment (`info.start_wal`) of the kept points holding that component
// (history files are always kept; a component no kept point holds keeps all its WAL). Deletes
// them unless `dry_run`; returns the storage keys concerned.
Result<std::vector<std::string>> ExpireWal(Repository& repo, const std::vector<Point>& kept,
                                           bool dry_run);

// The record's digest: SHA-256 over each chunk's id and little-endian u32 length.
Id ChunkListDigest(const std::vector<ChunkRef>& chunks);
nlohmann::json WalRecordToJson(const WalRecord& r);
Result<WalRecord> WalRecordFromJson(const nlohmann::json& j);

}  // namespace reprise
