// Taking an RDB snapshot from a live Redis over the replication protocol, as `redis-cli --rdb`
// does, and checking RDB bytes as they stream past.
//
// StreamRdb opens a plain TCP connection (hiredis cannot hand over a SYNC payload), sends AUTH
// when a password is given, `REPLCONF capa eof` (so a diskless master may stream to us) and
// `REPLCONF rdb-only 1` (Redis >= 7.0: no command stream after the RDB; an error reply from an
// older server is ignored), then `SYNC`. It reads the `$<len>` header (skipping the newlines
// the master sends as keepalives while it forks and writes) or the diskless
// `$EOF:<40-byte mark>` header, and passes the RDB bytes to `sink` in order as they arrive.
// The bytes are checked on the way (RdbVerifier): a bad header, a missing EOF opcode or a
// CRC64 mismatch fails with kCorruption after the sink has seen the bytes, so the caller must
// drop what it stored.
//
// Errors: connection failures, a stall longer than `stall_timeout` and a connection closed
// early are kUnavailable; a wrong password kUnauthenticated; another error reply to SYNC
// (a replica that is itself syncing, `SYNC` renamed away, ...) kFailedPrecondition.
// Messages name the server as "host:port", never the password.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "redis/client.h"

namespace reprise::redis {

// CRC-64/Jones as Redis computes it (crc64.c): polynomial 0xad93d23594c935a9, reflected input
// and output, initial value 0, no final xor. Crc64(0, "123456789") == 0xe9c6d914c4b8d9ca.
// Continue a running CRC by passing the previous result as `crc`.
uint64_t Crc64(uint64_t crc, ByteView data);

// Checks an RDB stream: "REDIS" + 4 decimal digits, and at the end the EOF opcode (0xff)
// followed (RDB >= 5) by the CRC64 of everything before it, little-endian. A stored CRC of 0
// means the server runs with `rdbchecksum no`: accepted, with checksummed() false.
// Memory: a few bytes, whatever the stream's size.
class RdbVerifier {
 public:
  // Feed the stream in order. Fails (kCorruption) as soon as the header is known to be bad.
  Status Update(ByteView data);
  // The stream ended: checks the header was complete, the EOF opcode and the CRC.
  Status Finish();

  int version() const { return version_; }  // 0 until the header was read
  bool checksummed() const { return checksummed_; }
  uint64_t size() const { return size_; }

 private:
  Status Take(ByteView data);  // bytes that are certainly not part of the trailer
  std::string header_;         // the first 9 bytes, while they come in
  int version_ = 0;
  bool checksummed_ = false;
  uint64_t crc_ = 0;
  uint64_t size_ = 0;
  uint8_t last_ = 0;           // the last byte given to Take (the EOF opcode at the end)
  uint8_t tail_[8] = {};       // held back: the trailing CRC when the stream ends
  size_t tail_len_ = 0;
};

struct RdbStreamOptions {
  Address address;
  std::string password;  // AUTH <password> when not empty (ACL users: not supported yet)
  std::chrono::milliseconds connect_timeout{10000};
  // No byte at all for this long (newline keepalives count) fails the transfer.
  std::chrono::milliseconds stall_timeout{60000};
  bool rdb_only = true;  // send REPLCONF rdb-only 1
  // Test hook: may change the received RDB bytes (offset = their position in the RDB)
  // before they are checked and passed on. Unset in production.
  std::function<void(uint64_t offset, std::span<uint8_t> data)> tamper;
};

struct RdbStreamResult {
  int rdb_version = 0;
  uint64_t bytes = 0;
  bool diskless = false;      // the master streamed it ($EOF: form) instead of sending a file
  bool rdb_only = false;      // the server accepted REPLCONF rdb-only
  bool checksummed = false;   // a CRC64 was present and matched
};

Result<RdbStreamResult> StreamRdb(const RdbStreamOptions& options,
                                  const std::function<Status(ByteView)>& sink);

}  // namespace reprise::redis
