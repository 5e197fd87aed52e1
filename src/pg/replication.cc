#include "pg/replication.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/select.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>

namespace reprise::pg {

namespace {

// ---- small helpers ---------------------------------------------------------------------

// Drains the remaining results of a command so that the connection can be used again.
void DrainResults(PGconn* conn) {
  while (PGresult* r = PQgetResult(conn)) {
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH || st == PGRES_COPY_IN) break;
  }
}

// Runs a replication command that must return exactly one row with at least `min_fields`.
Result<PgResultPtr> OneRow(Connection& conn, const std::string& command, int min_fields) {
  PgResultPtr res(PQexec(conn.raw(), command.c_str()));
  if (!res || PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
    return ResultError(conn.raw(), res.get(), command);
  }
  if (PQntuples(res.get()) != 1 || PQnfields(res.get()) < min_fields) {
    return Internal(command + " on '" + conn.Describe() + "': expected 1 row of " +
                    std::to_string(min_fields) + " fields, got " +
                    std::to_string(PQntuples(res.get())) + " rows of " +
                    std::to_string(PQnfields(res.get())));
  }
  return res;
}

std::string Value(const PGresult* res, int row, int field) {
  return std::string(PQgetvalue(res, row, field),
                     static_cast<size_t>(PQgetlength(res, row, field)));
}

Result<uint32_t> ParseTli(const std::string& s, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v > 0xFFFFFFFFull) {
    return Internal(what + ": '" + s + "' is not a timeline");
  }
  return static_cast<uint32_t>(v);
}

Status CheckSlotName(const std::string& slot) {
  bool ok = !slot.empty() && slot.size() <= 63;
  for (char c : slot) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  if (!ok) {
    return InvalidArgument("'" + slot +
                           "' is not a valid replication slot name: HINT: use lower-case "
                           "letters, digits and underscores, at most 63 characters");
  }
  return Status::Ok();
}

bool IsReplicationConnection(PGconn* conn) {
  bool replication = false;
  PQconninfoOption* opts = PQconninfo(conn);
  for (PQconninfoOption* o = opts; o && o->keyword; ++o) {
    if (std::strcmp(o->keyword, "replication") == 0 && o->val && *o->val) {
      std::string v = o->val;
      replication = v != "0" && v != "false" && v != "off" && v != "no";
    }
  }
  PQconninfoFree(opts);
  return replication;
}

void PutInt64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}
uint64_t GetInt64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// ---- BASE_BACKUP stream ----------------------------------------------------------------

// One CopyData message of the base backup stream, owned until the next one is read.
struct CopyMessage {
  char* buf = nullptr;
  int len = 0;
  char type() const { return len > 0 ? buf[0] : '\0'; }
  ByteView payload() const {
    return len > 1 ? ByteView(reinterpret_cast<const uint8_t*>(buf) + 1,
                              static_cast<size_t>(len - 1))
                   : ByteView();
  }
};

class BackupStream {
 public:
  BackupStream(Connection& conn, BaseBackupReceiver& receiver)
      : conn_(conn), receiver_(receiver) {}
  ~BackupStream() { Free(); }

  // Makes the next message current: true with a message, false at the end of the COPY.
  Result<bool> Next() {
    Free();
    if (pending_.buf) {
      current_ = pending_;
      pending_ = {};
      return true;
    }
    if (done_) return false;
    current_.len = PQgetCopyData(conn_.raw(), &current_.buf, /*async=*/0);
    if (current_.len == -1) {
      current_ = {};
      done_ = true;
      return false;
    }
    if (current_.len < 0) {
      current_ = {};
      return ResultError(conn_.raw(), nullptr, "BASE_BACKUP");
    }
    if (current_.len == 0) return Internal("BASE_BACKUP: empty CopyData message");
    return true;
  }
  // Puts the current message back, to be returned by the next Next().
  void Unread() {
    pending_ = current_;
    current_ = {};
  }
  const CopyMessage& current() const { return current_; }

  // Progress messages may come anywhere; handles one if it is current.
  Result<bool> HandledProgress() {
    if (current_.type() != 'p') return false;
    if (current_.len != 9) return Internal("BASE_BACKUP: bad progress message");
    receiver_.OnProgress(GetInt64(reinterpret_cast<const uint8_t*>(current_.buf) + 1));
    return true;
  }

  // The libarchive read callback's work: the next piece of archive data, or an empty view at
  // the archive's end (the next 'n' or 'm' message, or the end of the COPY).
  Result<ByteView> NextArchiveData() {
    for (;;) {
      ASSIGN_OR_RETURN(bool more, Next());
      if (!more) return ByteView();
      ASSIGN_OR_RETURN(bool progress, HandledProgress());
      if (progress) continue;
      if (current_.type() == 'd') return current_.payload();
      if (current_.type() == 'n' || current_.type() == 'm') {
        Unread();
        return ByteView();
      }
      return Internal(std::string("BASE_BACKUP: unexpected message type '") +
                      current_.type() + "' in an archive");
    }
  }

 private:
  void Free() {
    if (current_.buf) PQfreemem(current_.buf);
    current_ = {};
  }

  Connection& conn_;
  BaseBackupReceiver& receiver_;
  CopyMessage current_, pending_;
  bool done_ = false;
};

struct ArchiveReadContext {
  BackupStream* stream;
  Status error;  // set when the callback failed
  bool at_end = false;
};

la_ssize_t ArchiveRead(struct archive* a, void* client, const void** buffer) {
  auto* ctx = static_cast<ArchiveReadContext*>(client);
  if (ctx->at_end) return 0;
  auto data = ctx->stream->NextArchiveData();
  if (!data.ok()) {
    ctx->error = data.status();
    archive_set_error(a, EIO, "%s", data.status().message().c_str());
    return ARCHIVE_FATAL;
  }
  if (data->empty()) ctx->at_end = true;
  *buffer = data->data();
  return static_cast<la_ssize_t>(data->size());
}

std::string CleanMemberPath(std::string path) {
  while (path.starts_with("./")) path.erase(0, 2);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// Reads one tar archive from the stream, member by member, up to its boundary.
Status ReadArchive(BackupStream& stream, BaseBackupReceiver& receiver,
                   const std::string& archive_name) {
  ArchiveReadContext ctx{&stream, Status::Ok()};
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(),
                                                              archive_read_free);
  if (!a) return Internal("cannot set up a tar reader");
  archive_read_support_format_tar(a.get());
  auto fail = [&](const std::string& what) -> Status {
    if (!ctx.error.ok()) return ctx.error;
    const char* msg = archive_error_string(a.get());
    return Corruption("base backup archive '" + archive_name + "': " + what + ": " +
                      (msg ? msg : "unknown tar error"));
  };
  if (archive_read_open(a.get(), &ctx, nullptr, ArchiveRead, nullptr) != ARCHIVE_OK) {
    return fail("cannot open");
  }
  for (;;) {
    struct archive_entry* entry = nullptr;
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return fail("cannot read the next member");
    TarMember m;
    m.path = CleanMemberPath(archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "");
    switch (archive_entry_filetype(entry)) {
      case AE_IFREG:
        m.type = TarMember::Type::kFile;
        m.size = static_cast<uint64_t>(archive_entry_size(entry));
        break;
      case AE_IFDIR:
        m.type = TarMember::Type::kDirectory;
        break;
      case AE_IFLNK:
        m.type = TarMember::Type::kSymlink;
        m.link_target = archive_entry_symlink(entry) ? archive_entry_symlink(entry) : "";
        break;
      default:
        return Corruption("base backup archive '" + archive_name + "': member '" + m.path +
                          "' has an unexpected type");
    }
    m.mode = static_cast<uint32_t>(archive_entry_perm(entry));
    m.mtime = archive_entry_mtime(entry);
    auto read = [&](uint8_t* buf, size_t cap) -> Result<size_t> {
      la_ssize_t n = archive_read_data(a.get(), buf, cap);
      if (n < 0) return fail("cannot read '" + m.path + "'");
      return static_cast<size_t>(n);
    };
    RETURN_IF_ERROR(receiver.OnMember(m, read));
    if (archive_read_data_skip(a.get()) < ARCHIVE_WARN) return fail("cannot skip '" + m.path + "'");
  }
  // Whatever follows the tar trailer up to the archive boundary (padding) is not content.
  while (!ctx.at_end) {
    const void* ignored;
    if (ArchiveRead(a.get(), &ctx, &ignored) < 0) return ctx.error;
  }
  return Status::Ok();
}

std::string BaseBackupCommand(const BaseBackupOptions& o) {
  std::string cmd = "BASE_BACKUP ( LABEL " + QuoteLiteral(o.label) + ", PROGRESS, CHECKPOINT " +
                    (o.fast_checkpoint ? "'fast'" : "'spread'") + ", WAIT " +
                    (o.wait_for_wal_archive ? "true" : "false");
  if (o.manifest) {
    cmd += ", MANIFEST 'yes', MANIFEST_CHECKSUMS " + QuoteLiteral(o.manifest_checksums);
  } else {
    cmd += ", MANIFEST 'no'";
  }
  if (o.include_wal) cmd += ", WAL true";
  if (o.max_rate_kb) cmd += ", MAX_RATE " + std::to_string(*o.max_rate_kb);
  return cmd + " )";
}

// Reads a "<lsn> <tli>" result (start and end of a base backup).
Status ReadPosition(Connection& conn, const PGresult* res, const char* what, Lsn* lsn,
                    uint32_t* tli) {
  if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
    return ResultError(conn.raw(), res, std::string("BASE_BACKUP (") + what + ")");
  }
  if (PQntuples(res) != 1 || PQnfields(res) < 2) {
    return Internal(std::string("BASE_BACKUP: unexpected ") + what + " result");
  }
  ASSIGN_OR_RETURN(*lsn, ParseLsn(Value(res, 0, 0)));
  ASSIGN_OR_RETURN(*tli, ParseTli(Value(res, 0, 1), "BASE_BACKUP"));
  return Status::Ok();
}

// Reads a NUL-terminated string from a message payload.
Result<std::string> CString(ByteView payload, size_t* pos) {
  for (size_t i = *pos; i < payload.size(); ++i) {
    if (payload[i] == 0) {
      std::string s(reinterpret_cast<const char*>(payload.data()) + *pos, i - *pos);
      *pos = i + 1;
      return s;
    }
  }
  return Internal("BASE_BACKUP: unterminated string in a message");
}

}  // namespace

// ---- simple commands ---------------------------------------------------------------------

Result<SystemInfo> IdentifySystem(Connection& conn) {
  ASSIGN_OR_RETURN(PgResultPtr res, OneRow(conn, "IDENTIFY_SYSTEM", 3));
  SystemInfo info;
  info.system_id = Value(res.get(), 0, 0);
  ASSIGN_OR_RETURN(info.timeline, ParseTli(Value(res.get(), 0, 1), "IDENTIFY_SYSTEM"));
  ASSIGN_OR_RETURN(info.xlogpos, ParseLsn(Value(res.get(), 0, 2)));
  return info;
}

Result<std::pair<std::string, std::string>> TimelineHistory(Connection& conn, uint32_t tli) {
  if (tli < 2) return InvalidArgument("timeline 1 has no history file");
  ASSIGN_OR_RETURN(PgResultPtr res, OneRow(conn, "TIMELINE_HISTORY " + std::to_string(tli), 2));
  // The content arrives as raw bytes, whatever its declared type.
  return std::make_pair(Value(res.get(), 0, 0), Value(res.get(), 0, 1));
}

Status CreatePhysicalSlot(Connection& conn, const std::string& slot) {
  RETURN_IF_ERROR(CheckSlotName(slot));
  if (!IsReplicationConnection(conn.raw())) {
    auto r = conn.Query("SELECT pg_create_physical_replication_slot(" + QuoteLiteral(slot) +
                        ", true)");
    return r.ok() ? Status::Ok() : r.status();
  }
  std::string cmd = "CREATE_REPLICATION_SLOT " + slot + " PHYSICAL RESERVE_WAL";
  PgResultPtr res(PQexec(conn.raw(), cmd.c_str()));
  ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    return ResultError(conn.raw(), res.get(), "creating replication slot '" + slot + "'");
  }
  return Status::Ok();
}

Status DropSlot(Connection& conn, const std::string& slot) {
  RETURN_IF_ERROR(CheckSlotName(slot));
  Status st;
  if (IsReplicationConnection(conn.raw())) {
    std::string cmd = "DROP_REPLICATION_SLOT " + slot;
    PgResultPtr res(PQexec(conn.raw(), cmd.c_str()));
    ExecStatusType s = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
      st = ResultError(conn.raw(), res.get(), "dropping replication slot '" + slot + "'");
    }
  } else {
    auto r = conn.Query("SELECT pg_drop_replication_slot(" + QuoteLiteral(slot) + ")");
    if (!r.ok()) st = r.status().WithContext("dropping replication slot '" + slot + "'");
  }
  return st;
}

Result<std::optional<Lsn>> SlotRestartLsn(Connection& conn, const std::string& slot) {
  RETURN_IF_ERROR(CheckSlotName(slot));
  std::optional<std::string> lsn_text;
  bool found = false;
  if (IsReplicationConnection(conn.raw())) {
    // A physical walsender cannot run SQL; READ_REPLICATION_SLOT (PostgreSQL 15+) can tell.
    if (conn.server_version() < 150000) {
      return FailedPrecondition("reading slot '" + slot + "' on '" + conn.Describe() +
                                "' needs PostgreSQL 15 over a replication connection: "
                                "HINT: use a normal connection");
    }
    ASSIGN_OR_RETURN(PgResultPtr res, OneRow(conn, "READ_REPLICATION_SLOT " + slot, 2));
    found = !PQgetisnull(res.get(), 0, 0);  // slot_type is NULL when there is no such slot
    if (found && !PQgetisnull(res.get(), 0, 1)) lsn_text = Value(res.get(), 0, 1);
  } else {
    ASSIGN_OR_RETURN(Rows rows, conn.Query("SELECT restart_lsn FROM pg_replication_slots "
                                           "WHERE slot_name = " + QuoteLiteral(slot)));
    found = !rows.rows.empty();
    if (found) lsn_text = rows.rows[0][0];
  }
  if (!found) {
    return NotFound("replication slot '" + slot + "' does not exist on '" + conn.Describe() +
                    "'");
  }
  if (!lsn_text) return std::optional<Lsn>();
  ASSIGN_OR_RETURN(Lsn lsn, ParseLsn(*lsn_text));
  return std::optional<Lsn>(lsn);
}

// ---- BASE_BACKUP -------------------------------------------------------------------------

Result<BaseBackupResult> BaseBackup(Connection& conn, const BaseBackupOptions& options,
                                    BaseBackupReceiver& receiver) {
  if (conn.server_version() < 150000) {
    return Unimplemented("base backup of '" + conn.Describe() +
                         "' needs PostgreSQL 15 or later (its version is " +
                         std::to_string(conn.server_version()) + ")");
  }
  PGconn* pg = conn.raw();
  std::string cmd = BaseBackupCommand(options);
  if (!PQsendQuery(pg, cmd.c_str())) return ResultError(pg, nullptr, "BASE_BACKUP");
  BaseBackupResult result;

  PgResultPtr start(PQgetResult(pg));
  Status st = ReadPosition(conn, start.get(), "start position", &result.start_lsn,
                           &result.start_tli);
  if (!st.ok()) {
    DrainResults(pg);
    return st;
  }
  // Tablespaces: spcoid, spclocation, size; the main directory has NULL oid and location.
  std::map<std::string, uint32_t> tablespace_oids;
  {
    PgResultPtr ts(PQgetResult(pg));
    if (!ts || PQresultStatus(ts.get()) != PGRES_TUPLES_OK || PQnfields(ts.get()) < 2) {
      Status e = ResultError(pg, ts.get(), "BASE_BACKUP (tablespace list)");
      DrainResults(pg);
      return e;
    }
    for (int i = 0; i < PQntuples(ts.get()); ++i) {
      if (PQgetisnull(ts.get(), i, 0)) continue;
      auto oid = ParseTli(Value(ts.get(), i, 0), "BASE_BACKUP tablespace oid");
      if (oid.ok()) tablespace_oids[Value(ts.get(), i, 1)] = *oid;
    }
  }
  {
    PgResultPtr copy(PQgetResult(pg));
    if (!copy || PQresultStatus(copy.get()) != PGRES_COPY_OUT) {
      Status e = ResultError(pg, copy.get(), "BASE_BACKUP (start of data)");
      DrainResults(pg);
      return e;
    }
  }

  {
    BackupStream stream(conn, receiver);
    for (;;) {
      ASSIGN_OR_RETURN(bool more, stream.Next());
      if (!more) break;
      ASSIGN_OR_RETURN(bool progress, stream.HandledProgress());
      if (progress) continue;
      char type = stream.current().type();
      if (type == 'n') {
        size_t pos = 0;
        ByteView payload = stream.current().payload();
        ASSIGN_OR_RETURN(std::string name, CString(payload, &pos));
        ASSIGN_OR_RETURN(std::string path, CString(payload, &pos));
        std::optional<uint32_t> oid;
        if (!path.empty()) {
          auto it = tablespace_oids.find(path);
          if (it != tablespace_oids.end()) oid = it->second;
        }
        RETURN_IF_ERROR(receiver.OnArchive(name, path, oid));
        RETURN_IF_ERROR(ReadArchive(stream, receiver, name));
      } else if (type == 'm') {
        for (;;) {
          ASSIGN_OR_RETURN(bool more_manifest, stream.Next());
          if (!more_manifest) break;
          ASSIGN_OR_RETURN(bool p, stream.HandledProgress());
          if (p) continue;
          if (stream.current().type() != 'd') {
            stream.Unread();
            break;
          }
          RETURN_IF_ERROR(receiver.OnManifestData(stream.current().payload()));
        }
      } else {
        return Internal(std::string("BASE_BACKUP: unexpected message type '") + type + "'");
      }
    }
  }

  // After the COPY: its own completion, then the end position, then the command's.
  bool have_end = false;
  while (PgResultPtr res{PQgetResult(pg)}) {
    ExecStatusType s = PQresultStatus(res.get());
    if (s == PGRES_TUPLES_OK && !have_end) {
      Status e = ReadPosition(conn, res.get(), "end position", &result.end_lsn, &result.end_tli);
      if (!e.ok()) {
        DrainResults(pg);
        return e;
      }
      have_end = true;
    } else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
      Status e = ResultError(pg, res.get(), "BASE_BACKUP (end)");
      DrainResults(pg);
      return e;
    }
  }
  if (!have_end) return Internal("BASE_BACKUP on '" + conn.Describe() + "': no end position");
  return result;
}

// ---- START_REPLICATION -------------------------------------------------------------------

namespace {

// Microseconds since 2000-01-01, PostgreSQL's epoch.
uint64_t PgNowMicros() {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return static_cast<uint64_t>(us - 946684800LL * 1000000LL);
}

Status SendStatus(PGconn* conn, Lsn flushed) {
  uint8_t msg[34];
  msg[0] = 'r';
  PutInt64(msg + 1, flushed);   // written
  PutInt64(msg + 9, flushed);   // flushed: lets the slot advance
  PutInt64(msg + 17, flushed);  // applied
  PutInt64(msg + 25, PgNowMicros());
  msg[33] = 0;  // no reply requested
  if (PQputCopyData(conn, reinterpret_cast<const char*>(msg), sizeof msg) <= 0 ||
      PQflush(conn) != 0) {
    return ResultError(conn, nullptr, "sending standby status");
  }
  return Status::Ok();
}

}  // namespace

Result<StreamEnd> StreamWal(Connection& conn, const StreamOptions& options,
                            WalStreamHandler& handler) {
  PGconn* pg = conn.raw();
  std::string cmd = "START_REPLICATION ";
  if (!options.slot.empty()) {
    RETURN_IF_ERROR(CheckSlotName(options.slot));
    cmd += "SLOT " + options.slot + " ";
  }
  cmd += "PHYSICAL " + FormatLsn(options.start_lsn);
  if (options.timeline != 0) cmd += " TIMELINE " + std::to_string(options.timeline);
  {
    PgResultPtr res(PQexec(pg, cmd.c_str()));
    if (!res || PQresultStatus(res.get()) != PGRES_COPY_BOTH) {
      return ResultError(pg, res.get(), cmd);
    }
  }
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::milliseconds(std::max(options.status_interval_ms, 1));
  auto next_status = Clock::now();  // one right away: the server learns where we stand
  Lsn expected = options.start_lsn;
  bool stopped = false;

  for (;;) {
    if (!handler.KeepGoing()) {
      stopped = true;
      break;
    }
    if (Clock::now() >= next_status) {
      RETURN_IF_ERROR(SendStatus(pg, handler.Flushed()));
      next_status = Clock::now() + interval;
    }
    char* buf = nullptr;
    int len = PQgetCopyData(pg, &buf, /*async=*/1);
    if (len == 0) {
      auto wait = std::chrono::duration_cast<std::chrono::microseconds>(next_status -
                                                                        Clock::now());
      wait = std::clamp(wait, std::chrono::microseconds(0), std::chrono::microseconds(200000));
      int sock = PQsocket(pg);
      fd_set fds;
      FD_ZERO(&fds);
      FD_SET(sock, &fds);
      timeval tv{static_cast<time_t>(wait.count() / 1000000),
                 static_cast<suseconds_t>(wait.count() % 1000000)};
      int r = select(sock + 1, &fds, nullptr, nullptr, &tv);
      if (r < 0 && errno != EINTR) {
        return IOError(std::string("waiting for WAL from '") + conn.Describe() +
                       "': " + std::strerror(errno));
      }
      if (r > 0 && !PQconsumeInput(pg)) return ResultError(pg, nullptr, "receiving WAL");
      continue;
    }
    if (len == -1) break;  // the server ended the stream (end of timeline)
    if (len < 0) return ResultError(pg, nullptr, "receiving WAL");
    std::unique_ptr<char, void (*)(void*)> owned(buf, PQfreemem);
    const auto* p = reinterpret_cast<const uint8_t*>(buf);
    if (p[0] == 'w') {
      if (len < 25) return Internal("START_REPLICATION: short XLogData message");
      Lsn start = GetInt64(p + 1);
      if (start != expected) {
        return Internal("START_REPLICATION on '" + conn.Describe() + "': WAL at " +
                        FormatLsn(start) + " where " + FormatLsn(expected) + " was expected");
      }
      ByteView data(p + 25, static_cast<size_t>(len - 25));
      RETURN_IF_ERROR(handler.OnWalData(start, data));
      expected = start + data.size();
    } else if (p[0] == 'k') {
      if (len < 18) return Internal("START_REPLICATION: short keepalive message");
      if (p[17]) next_status = Clock::now();  // reply requested
    } else {
      return Internal(std::string("START_REPLICATION: unexpected message type '") +
                      static_cast<char>(p[0]) + "'");
    }
  }

  StreamEnd end;
  if (stopped) {
    RETURN_IF_ERROR(SendStatus(pg, handler.Flushed()));
    if (PQputCopyEnd(pg, nullptr) <= 0 || PQflush(pg) != 0) {
      return ResultError(pg, nullptr, "ending replication");
    }
    // The server answers with its own CopyDone; WAL sent before that is not wanted.
    for (;;) {
      char* buf = nullptr;
      int len = PQgetCopyData(pg, &buf, /*async=*/0);
      if (buf) PQfreemem(buf);
      if (len == -1) break;
      if (len < -1) return ResultError(pg, nullptr, "ending replication");
    }
  }
  // Server-ended stream: libpq is now in COPY IN; our CopyDone completes the exchange.
  PgResultPtr res(PQgetResult(pg));
  if (res && PQresultStatus(res.get()) == PGRES_COPY_IN) {
    if (PQputCopyEnd(pg, nullptr) <= 0 || PQflush(pg) != 0) {
      return ResultError(pg, nullptr, "ending replication");
    }
    res.reset(PQgetResult(pg));
  }
  while (res) {
    ExecStatusType s = PQresultStatus(res.get());
    if (s == PGRES_TUPLES_OK) {
      // next_tli, next_tli_startpos
      if (PQntuples(res.get()) == 1 && PQnfields(res.get()) >= 2 && !stopped) {
        ASSIGN_OR_RETURN(uint32_t tli, ParseTli(Value(res.get(), 0, 0), "START_REPLICATION"));
        ASSIGN_OR_RETURN(end.next_start, ParseLsn(Value(res.get(), 0, 1)));
        end.next_timeline = tli;
      }
    } else if (s != PGRES_COMMAND_OK) {
      Status e = ResultError(pg, res.get(), "replication stream");
      DrainResults(pg);
      return e;
    }
    res.reset(PQgetResult(pg));
  }
  if (!stopped && !end.next_timeline) {
    return Unavailable("replication stream from '" + conn.Describe() +
                       "' ended without a next timeline");
  }
  return end;
}

}  // namespace reprise::pg
