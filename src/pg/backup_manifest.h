// PostgreSQL's backup_manifest (JSON, PostgreSQL 13+): the list of files with sizes and
// checksums, the WAL ranges needed, and the manifest's own SHA-256 checksum.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "pg/wal_names.h"

namespace reprise::pg {

struct ManifestFile {
  std::string path;
  uint64_t size = 0;
  std::string checksum_algorithm;  // "CRC32C", "SHA256", ... or "NONE"
  std::string checksum;            // hex, as written
};
struct ManifestWalRange {
  uint32_t timeline = 0;
  Lsn start = 0, end = 0;
};
struct BackupManifest {
  std::map<std::string, ManifestFile> files;  // by path
  std::vector<ManifestWalRange> wal_ranges;
};

// Parses and checks the manifest's own checksum (the SHA-256 of everything before the
// "Manifest-Checksum" line); kCorruption when it does not match.
Result<BackupManifest> ParseBackupManifest(std::string_view text);

// Computes the checksum of `data` with the algorithm a manifest names (CRC32C, SHA224,
// SHA256, SHA384, SHA512), incrementally.
class ManifestChecksummer {
 public:
  static Result<ManifestChecksummer> Make(const std::string& algorithm);
  void Update(ByteView data);
  std::string HexDigest();  // CRC32C as 8 hex digits of the little-endian bytes, as PG writes it
 private:
  std::string algorithm_;
  uint32_t crc_ = 0;
  std::shared_ptr<void> md_;  // EVP_MD_CTX
};

}  // namespace reprise::pg
