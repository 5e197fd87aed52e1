// PostgreSQL logical mode: pg_dump / pg_restore, portable across major versions (a dump of an
// older server restores into a newer one). One custom-format dump per database, plus the
// cluster's globals (roles, tablespaces) from pg_dumpall --globals-only.
//
// Manifest entries, in this order:
//   {"type":"globals","format":"sql","contents":[[...]]}                (unless globals=false)
//   {"type":"pg_dump","database":"app","format":"custom","server_version":"15.8",
//    "contents":[[...]]}                                                 (one per database)
// Backup returns {"mode":"logical","databases":[...],"server_version":"15.8",
//   "server_version_num":150008,"pg_dump_version":"15.8","globals":true}.
//
// Connections: `conninfo` is a libpq connection string or URI. Its settings reach the tools
// through the environment (PGHOST, PGPORT, PGUSER, PGPASSWORD ...), never through argv, so
// a password does not show up in `ps`; settings without an environment variable (keepalives
// ...) go into a --dbname connection string. Each database is a separate pg_dump run, so
// the databases are each consistent but not with one another.
//
// Restore: globals first through psql (errors such as "role ... already exists" do not stop
// it: each is passed to RestoreOptions::warn); then each database is staged into a file under
// `work_dir` (pg_restore -j needs a seekable file, removed right after) and restored with
// pg_restore -j `jobs`. A missing database is created from the dump (pg_restore --create,
// keeping its encoding and locale); an existing empty one is restored into; an existing one
// holding tables is replaced (--clean --if-exists) only with RestoreOptions::overwrite.
// RestoreOptions::include, when not empty, names the databases to restore.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "components/component.h"

namespace reprise {

struct LogicalOptions {
  std::string conninfo;                // libpq conninfo / URI; its dbname is the maintenance db
  std::vector<std::string> databases;  // empty = every connectable non-template database
  std::string bin_dir = "/usr/lib/postgresql/15/bin";  // empty = look the tools up in PATH
  int jobs = 2;                                        // pg_restore -j
  std::string run_as;                      // OS user for the tools (needs root), e.g. "postgres"
  std::map<std::string, std::string> env;  // extra environment (PGPASSWORD, PGSSLMODE ...)
  bool globals = true;                     // save / apply roles and tablespaces
  bool no_owner = false;                   // restore: --no-owner (keep owners by default)
  std::string work_dir;                    // restore staging; empty = $TMPDIR or /var/tmp
  std::chrono::milliseconds timeout{0};    // per tool run; 0 = none
};

Result<nlohmann::json> LogicalBackup(const LogicalOptions& options, BackupSink& sink);

// `info` is what LogicalBackup returned; `target` says where to restore to.
Status LogicalRestore(const nlohmann::json& info, RestoreSource& source,
                      const LogicalOptions& target, const RestoreOptions& options);

}  // namespace reprise
