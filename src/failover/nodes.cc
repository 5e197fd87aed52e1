#include "failover/nodes.h"

#include <thread>

#include <fmt/format.h>

#include "pg/connection.h"
#include "pg/wal_names.h"
#include "redis/client.h"

namespace reprise::failover {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kPoll{100};

Result<std::unique_ptr<pg::Connection>> OpenPg(const PgNode& node) {
  return pg::Connection::Open(node.conninfo, false, node.password);
}

Result<std::string> One(pg::Connection& conn, const std::string& sql) {
  ASSIGN_OR_RETURN(pg::Rows rows, conn.Query(sql));
  if (rows.rows.size() != 1 || rows.rows[0].empty() || !rows.rows[0][0]) {
    return Internal(fmt::format("'{}' on '{}' returned no value", sql, conn.Describe()));
  }
  return *rows.rows[0][0];
}

Result<std::unique_ptr<redis::Client>> OpenRedis(const RedisNode& node) {
  ASSIGN_OR_RETURN(redis::Address address, redis::ParseAddress(node.url));
  return redis::Client::Connect(address, node.password, milliseconds(5000));
}

}  // namespace

Result<uint64_t> FencePostgres(const PgNode& node) {
  ASSIGN_OR_RETURN(auto conn, OpenPg(node));
  ASSIGN_OR_RETURN(std::string in_recovery, One(*conn, "SELECT pg_is_in_recovery()"));
  if (in_recovery == "t") {
    return FailedPrecondition(fmt::format(
        "'{}' is in recovery (a replica), not the primary to fence", conn->Describe()));
  }
  RETURN_IF_ERROR(
      conn->Query("ALTER SYSTEM SET default_transaction_read_only = on").status());
  RETURN_IF_ERROR(conn->Query("SELECT pg_reload_conf()").status());
  // The reload reaches other backends asynchronously; sessions are terminated after it so
  // that their reconnections see the new default.
  std::this_thread::sleep_for(milliseconds(200));
  RETURN_IF_ERROR(conn->Query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                              "backend_type = 'client backend' AND pid <> pg_backend_pid()")
                      .status());
  ASSIGN_OR_RETURN(std::string lsn, One(*conn, "SELECT pg_current_wal_lsn()"));
  return pg::ParseLsn(lsn);
}

Status UnfencePostgres(const PgNode& node) {
  ASSIGN_OR_RETURN(auto conn, OpenPg(node));
  RETURN_IF_ERROR(conn->Query("ALTER SYSTEM RESET default_transaction_read_only").status());
  return conn->Query("SELECT pg_reload_conf()").status();
}

Result<uint64_t> PostgresLsn(const PgNode& node) {
  ASSIGN_OR_RETURN(auto conn, OpenPg(node));
  ASSIGN_OR_RETURN(std::string lsn,
                   One(*conn, "SELECT CASE WHEN pg_is_in_recovery() THEN "
                              "pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END"));
  return pg::ParseLsn(lsn);
}

Result<uint64_t> PostgresReplicaLsn(const PgNode& replica) {
  ASSIGN_OR_RETURN(auto conn, OpenPg(replica));
  ASSIGN_OR_RETURN(std::string lsn,
                   One(*conn, "SELECT GREATEST(COALESCE(pg_last_wal_receive_lsn(), '0/0'), "
                              "COALESCE(pg_last_wal_replay_lsn(), '0/0'))"));
  return pg::ParseLsn(lsn);
}

Result<uint64_t> WaitPostgresReplay(const PgNode& replica, uint64_t lsn, milliseconds timeout) {
  ASSIGN_OR_RETURN(auto conn, OpenPg(replica));
  Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    ASSIGN_OR_RETURN(std::string text,
                     One(*conn, "SELECT COALESCE(pg_last_wal_replay_lsn(), '0/0')"));
    ASSIGN_OR_RETURN(uint64_t replay, pg::ParseLsn(text));
    if (replay >= lsn || Clock::now() >= deadline) return replay;
    std::this_thread::sleep_for(kPoll);
  }
}

Status PromotePostgres(const PgNode& node) {
  ASSIGN_OR_RETURN(auto conn, OpenPg(node));
  ASSIGN_OR_RETURN(std::string in_recovery, One(*conn, "SELECT pg_is_in_recovery()"));
  if (in_recovery == "t") {
    ASSIGN_OR_RETURN(std::string promoted, One(*conn, "SELECT pg_promote(true, 60)"));
    if (promoted != "t") {
      return Unavailable(fmt::format("pg_promote() on '{}' did not finish within 60 s",
                                     conn->Describe()));
    }
  }
  RETURN_IF_ERROR(conn->Query("ALTER SYSTEM RESET default_transaction_read_only").status());
  return conn->Query("SELECT pg_reload_conf()").status();
}

Result<bool> AwaitPostgresArchived(const PgNode& node, uint64_t lsn, milliseconds timeout) {
  ASSIGN_OR_RETURN(auto conn, OpenPg(node));
  ASSIGN_OR_RETURN(std::string mode, One(*conn, "SHOW archive_mode"));
  if (mode == "off") return false;
  // The segment holding the last byte before `lsn` (at a segment boundary, the one before).
  ASSIGN_OR_RETURN(std::string want,
                   One(*conn, fmt::format("SELECT pg_walfile_name('{}')",
                                          pg::FormatLsn(lsn > 0 ? lsn - 1 : 0))));
  // The fence made new sessions read-only; this one only switches segments.
  RETURN_IF_ERROR(conn->Query("SET default_transaction_read_only = off").status());
  RETURN_IF_ERROR(conn->Query("SELECT pg_switch_wal()").status());
  Clock::time_point deadline = Clock::now() + timeout;
  // After the switch the segment is complete: it is archived once its .ready status file is
  // gone (pg_stat_archiver's last_archived_wal may name a later .backup file instead).
  const std::string ready_sql = fmt::format(
      "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name = '{}.ready'", want);
  std::string last;
  while (true) {
    ASSIGN_OR_RETURN(std::string pending, One(*conn, ready_sql));
    if (pending == "0") return true;
    if (Clock::now() >= deadline) {
      ASSIGN_OR_RETURN(last, One(*conn, "SELECT coalesce(last_archived_wal, '') || ' (' || "
                                        "failed_count || ' failed attempts)' FROM "
                                        "pg_stat_archiver"));
      return Unavailable(fmt::format(
          "'{}' has not archived '{}' (the segment holding its last write); last archived: {}",
          conn->Describe(), want, last));
    }
    std::this_thread::sleep_for(kPoll);
  }
}

Status AwaitPostgresWrite(const PgNode& node, milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  Status last;
  while (true) {
    Result<std::unique_ptr<pg::Connection>> conn = OpenPg(node);
    if (conn.ok()) {
      // Writes a WAL record without touching any table; fails on a read-only server.
      last = (*conn)
                 ->Query("SELECT pg_logical_emit_message(false, 'reprise', 'failover probe')")
                 .status();
      if (last.ok()) return last;
    } else {
      last = conn.status();
    }
    if (Clock::now() >= deadline) {
      return Unavailable(fmt::format("the new primary accepted no write within {} ms: {}",
                                     timeout.count(), last.message()));
    }
    std::this_thread::sleep_for(kPoll);
  }
}

Result<uint64_t> FenceRedis(const RedisNode& node, milliseconds pause) {
  ASSIGN_OR_RETURN(auto client, OpenRedis(node));
  RETURN_IF_ERROR(
      client->Command({"CLIENT", "PAUSE", std::to_string(pause.count()), "WRITE"}).status());
  ASSIGN_OR_RETURN(redis::ReplicationState state, redis::GetReplicationState(*client));
  return state.offset;
}

Status UnfenceRedis(const RedisNode& node) {
  ASSIGN_OR_RETURN(auto client, OpenRedis(node));
  return client->Command({"CLIENT", "UNPAUSE"}).status();
}

Result<uint64_t> RedisOffset(const RedisNode& node) {
  ASSIGN_OR_RETURN(auto client, OpenRedis(node));
  ASSIGN_OR_RETURN(redis::ReplicationState state, redis::GetReplicationState(*client));
  return state.offset;
}

Result<uint64_t> WaitRedisOffset(const RedisNode& replica, uint64_t offset, milliseconds timeout) {
  ASSIGN_OR_RETURN(auto client, OpenRedis(replica));
  Clock::time_point deadline = Clock::now() + timeout;
  while (true) {
    ASSIGN_OR_RETURN(redis::ReplicationState state, redis::GetReplicationState(*client));
    if (state.offset >= offset || Clock::now() >= deadline) return state.offset;
    std::this_thread::sleep_for(kPoll);
  }
}

Status PromoteRedis(const RedisNode& node) {
  ASSIGN_OR_RETURN(auto client, OpenRedis(node));
  return client->Command({"REPLICAOF", "NO", "ONE"}).status();
}

Status DemoteRedis(const RedisNode& node, const std::string& primary_url) {
  ASSIGN_OR_RETURN(redis::Address primary, redis::ParseAddress(primary_url));
  ASSIGN_OR_RETURN(auto client, OpenRedis(node));
  RETURN_IF_ERROR(
      client->Command({"REPLICAOF", primary.host, std::to_string(primary.port)}).status());
  return client->Command({"CLIENT", "UNPAUSE"}).status();
}

Status AwaitRedisWrite(const RedisNode& node, milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  Status last;
  while (true) {
    Result<std::unique_ptr<redis::Client>> client = OpenRedis(node);
    if (client.ok()) {
      last = (*client)->Command({"SET", "reprise:failover:probe", "1", "EX", "60"}).status();
      if (last.ok()) return last;
    } else {
      last = client.status();
    }
    if (Clock::now() >= deadline) {
      return Unavailable(fmt::format("the new Redis primary accepted no write within {} ms: {}",
                                     timeout.count(), last.message()));
    }
    std::this_thread::sleep_for(kPoll);
  }
}

}  // namespace reprise::failover
