// The physical replication protocol over a replication connection (see PostgreSQL 15 docs,
// "Streaming Replication Protocol"): IDENTIFY_SYSTEM, TIMELINE_HISTORY, slots, BASE_BACKUP (in
// the version-15 single-COPY format with 'n' new-archive, 'd' data, 'p' progress and 'm'
// manifest messages; tar archives are read with libarchive) and START_REPLICATION.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "pg/connection.h"
#include "pg/wal_names.h"

namespace reprise::pg {

struct SystemInfo {
  std::string system_id;  // decimal, as the server prints it
  uint32_t timeline = 0;
  Lsn xlogpos = 0;        // current flush (primary) or replay (standby) position
};
Result<SystemInfo> IdentifySystem(Connection& conn);

// The history file of `tli` (> 1): its file name and contents.
Result<std::pair<std::string, std::string>> TimelineHistory(Connection& conn, uint32_t tli);

// CREATE_REPLICATION_SLOT name PHYSICAL RESERVE_WAL; AlreadyExists when it exists.
Status CreatePhysicalSlot(Connection& conn, const std::string& slot);
Status DropSlot(Connection& conn, const std::string& slot);
// restart_lsn of an existing physical slot (over a normal or replication connection),
// NotFound when there is no such slot, nullopt when it has none yet.
Result<std::optional<Lsn>> SlotRestartLsn(Connection& conn, const std::string& slot);

// One member of a base backup archive, as its tar header describes it.
struct TarMember {
  std::string path;      // relative to the archive root ("base/5/16384", "PG_VERSION")
  enum class Type { kFile, kDirectory, kSymlink } type = Type::kFile;
  uint32_t mode = 0;     // permission bits
  uint64_t size = 0;     // kFile only
  int64_t mtime = 0;     // seconds
  std::string link_target;  // kSymlink only (pg_tblspc/<oid> -> tablespace location)
};

struct BaseBackupOptions {
  std::string label = "reprise";
  bool fast_checkpoint = true;
  bool manifest = true;               // MANIFEST 'yes'
  std::string manifest_checksums = "CRC32C";
  bool wait_for_wal_archive = false;  // WAIT: false; reprise checks the WAL itself
  bool include_wal = false;           // WAL: reprise archives WAL separately
  std::optional<uint64_t> max_rate_kb;
};

struct BaseBackupResult {
  Lsn start_lsn = 0;
  uint32_t start_tli = 0;
  Lsn end_lsn = 0;
  uint32_t end_tli = 0;
};

// Receives the backup as it streams. Archives come one after another: the main data
// directory ("base.tar", tablespace path empty) and one per tablespace ("<oid>.tar", its
// location). Within an archive, each member is announced by OnMember; a file's bytes follow
// through `read`, which the receiver must drain (call until it returns 0) before returning.
// Any error returned stops the backup (the connection is then unusable).
class BaseBackupReceiver {
 public:
  virtual ~BaseBackupReceiver() = default;
  virtual Status OnArchive(const std::string& archive_name, const std::string& tablespace_path,
                           std::optional<uint32_t> tablespace_oid) = 0;
  // `read(buf, cap)` returns how many bytes it put into buf (0 at the end of the member) or
  // an error.
  virtual Status OnMember(const TarMember& member,
                          const std::function<Result<size_t>(uint8_t*, size_t)>& read) = 0;
  virtual Status OnManifestData(ByteView data) = 0;  // the backup_manifest file, in pieces
  virtual void OnProgress(uint64_t bytes_done) {}
};

Result<BaseBackupResult> BaseBackup(Connection& conn, const BaseBackupOptions& options,
                                    BaseBackupReceiver& receiver);

// Streaming WAL (as pg_receivewal does). Handler callbacks run on the caller's thread.
struct StreamOptions {
  std::string slot;          // empty: no slot
  Lsn start_lsn = 0;         // must be at a segment start or where the last run stopped
  uint32_t timeline = 0;
  int status_interval_ms = 1000;  // standby status updates, and how often Flushed() is asked
};
class WalStreamHandler {
 public:
  virtual ~WalStreamHandler() = default;
  // WAL bytes starting at `lsn`, in order, without gaps.
  virtual Status OnWalData(Lsn lsn, ByteView data) = 0;
  // The position the handler has made durable; reported to the server as flush position
  // (which lets the slot advance). Called at least every status_interval_ms.
  virtual Lsn Flushed() = 0;
  // Return false to stop streaming (cleanly, with CopyDone).
  virtual bool KeepGoing() { return true; }
};
struct StreamEnd {
  // When the server ended the timeline: the next timeline and where it starts; else unset
  // (stopped by the handler).
  std::optional<uint32_t> next_timeline;
  Lsn next_start = 0;
};
Result<StreamEnd> StreamWal(Connection& conn, const StreamOptions& options,
                            WalStreamHandler& handler);

}  // namespace reprise::pg
