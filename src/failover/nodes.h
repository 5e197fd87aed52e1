// What failover does to one database node: fence, wait for catch-up, promote, prove writable,
// demote. PostgreSQL through libpq, Redis through hiredis. Every call is idempotent (fencing a
// fenced node, promoting a primary are no-ops), so a resumed failover can repeat a step.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace reprise::failover {

struct PgNode {
  std::string conninfo;  // libpq, no password
  std::string password;  // from a secret; may be empty
};

// Rejects new writes: ALTER SYSTEM SET default_transaction_read_only = on, reload, terminate
// every other client session (their open transactions roll back; nothing committed is lost),
// then returns pg_current_wal_lsn(): everything committed is at or before it.
// Well-behaved clients are fenced; a client that turns read-only off itself is not (a
// fence_command in the plan can do more, e.g. change pg_hba.conf or stop the server).
Result<uint64_t> FencePostgres(const PgNode& node);
// Undoes FencePostgres (ALTER SYSTEM RESET default_transaction_read_only, reload).
Status UnfencePostgres(const PgNode& node);
// The primary's current WAL position without fencing (unplanned failover: last known).
Result<uint64_t> PostgresLsn(const PgNode& node);
// Polls the replica until pg_last_wal_replay_lsn() >= lsn or the timeout passes; returns the
// replay position reached (which is < lsn on timeout; not an error).
Result<uint64_t> WaitPostgresReplay(const PgNode& replica, uint64_t lsn,
                                    std::chrono::milliseconds timeout);
// The replica's received and replayed positions right now (max of both).
Result<uint64_t> PostgresReplicaLsn(const PgNode& replica);
// pg_promote(wait => true); OK when it is already a primary. Then clears a fence left in its
// configuration by an earlier failover.
Status PromotePostgres(const PgNode& node);
// A fenced primary whose WAL goes to an archive (archive_mode on): switches to a new segment
// and waits until the archiver has archived the one holding `lsn`. Returns false when the
// server does not archive (archive_mode off: WAL reaches reprise by wal-stream, if at all);
// kUnavailable when the archiver has not caught up in time.
Result<bool> AwaitPostgresArchived(const PgNode& node, uint64_t lsn,
                                   std::chrono::milliseconds timeout);
// Retries a WAL-writing statement (pg_logical_emit_message) until it succeeds or the timeout
// passes: the moment the new primary accepts writes.
Status AwaitPostgresWrite(const PgNode& node, std::chrono::milliseconds timeout);

struct RedisNode {
  std::string url;       // redis://host:port[/db]
  std::string password;  // may be empty
};

// CLIENT PAUSE <pause> WRITE, then returns master_repl_offset.
Result<uint64_t> FenceRedis(const RedisNode& node, std::chrono::milliseconds pause);
Status UnfenceRedis(const RedisNode& node);  // CLIENT UNPAUSE
Result<uint64_t> RedisOffset(const RedisNode& node);  // master or replica offset
// Polls until the replica's slave_repl_offset >= offset or the timeout passes; returns the
// offset reached.
Result<uint64_t> WaitRedisOffset(const RedisNode& replica, uint64_t offset,
                                 std::chrono::milliseconds timeout);
Status PromoteRedis(const RedisNode& node);  // REPLICAOF NO ONE
// Makes `node` a replica of `primary_url` (REPLICAOF host port) and unpauses it: the old
// primary's permanent fence after a failover, and the first step of a failback.
Status DemoteRedis(const RedisNode& node, const std::string& primary_url);
// Retries SET reprise:failover:probe (60 s TTL) until it succeeds or the timeout passes.
Status AwaitRedisWrite(const RedisNode& node, std::chrono::milliseconds timeout);

}  // namespace reprise::failover
