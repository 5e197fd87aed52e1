// The `redis` component: one RDB snapshot of a Redis server (docs/components/redis.md).
//
// Backup takes the RDB over the replication protocol (StreamRdb, as `redis-cli --rdb` does)
// or, with method kBgsave, runs BGSAVE and reads the server's dump file (the file must be
// readable from this host). Either way the bytes are checked (RDB header, EOF opcode, CRC64)
// while they stream into one content. The manifest holds a single entry:
//   {"type":"rdb","rdb_version":10,"redis_version":"7.0.15","bytes":n,
//    "keys":{"db0":1200,...},"expires":{"db0":3},"sample":[{"db":0,"key":"k","type":"hash"}],
//    "contents":[[...]]}
// ("keys_before" is added when the key counts changed during the transfer.) Backup returns
// {"method","rdb_version","redis_version","master_repl_offset","keys"}.
//
// Restore writes dump.rdb and has the server load it: it refuses a target whose Redis reads
// only older RDB versions (MaxRdbVersion) unless params["force"] is true, and a target
// running with appendonly yes (it would load its AOF, not the RDB). Then: the stop command,
// dump.rdb written atomically (temp file, fsync, rename, same owner and mode as the file it
// replaces), the start command, a wait for PING and loading:0, and the checks: key counts per
// database and the sampled keys with their types. A mismatch is kCorruption with the numbers.
//
// Thread-safety: one Backup or Restore at a time per object.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "components/component.h"

namespace reprise {

struct RedisComponentOptions {
  std::string url;       // redis://host[:port][/db]: the server to back up / restore into
  std::string password;  // the secret's value; empty: no AUTH
  enum Method { kReplication, kBgsave } method = kReplication;
  // bgsave: the server's dump file, read after BGSAVE. Empty: CONFIG GET dir + dbfilename.
  std::string rdb_path;
  // Restore: where dump.rdb goes (a file, or a directory to put dump.rdb in) when
  // RestoreOptions::target is empty.
  std::string restore_rdb_path;
  // Restore: shell commands (sh -c) that stop and start the server ("systemctl stop redis",
  // "kubectl scale ... --replicas=0", "pg_ctl-like script stop"). They must return once done
  // (a start command that leaves a daemon must detach it from its stdout and stderr).
  std::string controller_stop, controller_start;

  std::chrono::milliseconds timeout{10000};  // connect and each command
  std::chrono::milliseconds stall_timeout{60000};         // replication: no byte for this long
  std::chrono::milliseconds bgsave_timeout{3600 * 1000};  // BGSAVE to finish
  std::chrono::milliseconds controller_timeout{120 * 1000};  // each stop / start command
  std::chrono::milliseconds load_timeout{600 * 1000};  // restore: server up and loaded
  int sample_size = 16;                                // keys sampled for the restore check
  // Test hook: passed to StreamRdb (changes received RDB bytes). Unset in production.
  std::function<void(uint64_t offset, std::span<uint8_t> data)> test_tamper;
};

// The newest RDB version a Redis of this version ("7.0.15") reads: 3.2 -> 7, 4.0 -> 8,
// 5.0..6.2 -> 9, 7.0 -> 10, 7.2 -> 11, 7.4 and 8.x -> 12; older -> 6; newer than known -> 12.
// 0 when the version cannot be parsed.
int MaxRdbVersion(std::string_view redis_version);

class RedisComponent final : public Component {
 public:
  explicit RedisComponent(RedisComponentOptions options);
  std::string kind() const override { return "redis"; }
  Result<nlohmann::json> Backup(BackupSink& sink) override;
  // options.target: where to write dump.rdb (file or directory), else restore_rdb_path.
  // options.params: {"force": true} restores into an older Redis anyway.
  Status Restore(const nlohmann::json& info, RestoreSource& source,
                 const RestoreOptions& options) override;

 private:
  RedisComponentOptions options_;
};

}  // namespace reprise
