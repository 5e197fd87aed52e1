// The postgres component in physical mode: a base backup over the replication protocol (no
// file access to the database host), each data-directory file stored on its own; relation
// files are cut on page boundaries into block maps, so a backup after scattered page changes
// stores those pages and a small delta map (docs/components/postgres.md).
//
// Backup: BASE_BACKUP with a CRC32C backup manifest; every received file is checked against
// the manifest before the point is written (a transfer error fails the backup, never a bad
// point). The point records system id, start/end LSN and timeline, the WAL segment that
// starts the backup, block and segment sizes and the tablespaces.
//
// Restore writes a data directory: to an empty directory, or with params.delta to an existing
// one, where only blocks whose content differs are written and files not in the backup are
// removed. global/pg_control is removed first and written last, after everything else is
// durable and every file matched the backup manifest, so a restore that is killed or fails
// leaves a directory PostgreSQL refuses to start, never one that starts on wrong data.
// Recovery settings (restore_command, targets) are the caller's: see orchestrate/pg_recovery.h.
#pragma once

#include <string>

#include "components/component.h"

namespace reprise {

struct PostgresPhysicalOptions {
  std::string conninfo;  // libpq, without password
  std::string password;  // from the plan's secret; never logged
  std::string label = "reprise";
};

class PostgresPhysicalComponent final : public Component {
 public:
  explicit PostgresPhysicalComponent(PostgresPhysicalOptions options)
      : options_(std::move(options)) {}
  std::string kind() const override { return "postgres"; }
  Result<nlohmann::json> Backup(BackupSink& sink) override;
  // params: delta (bool), os_user (string: chown everything to it when root),
  // tablespace_map ({"<oid>": "<dir>"}).
  Status Restore(const nlohmann::json& info, RestoreSource& source,
                 const RestoreOptions& options) override;

 private:
  PostgresPhysicalOptions options_;
};

// Whether a data-directory path names a relation file (cut into pages): "base/5/16384",
// "global/1262_vm", "base/5/16384.3", or a tablespace member "PG_15_.../5/16390_fsm".
bool IsRelationFile(const std::string& path);

}  // namespace reprise
