// The `command` component: runs a shell command and stores its stdout as one stream (for
// `kubectl get ... -o yaml`, `helm get values`, a Keycloak realm export); on restore, pipes the
// stream into another command, or writes it to a file. See docs/components/command.md.
//
// Backup runs `sh -c <backup>` with stdin from /dev/null, and streams its stdout into one
// content. A non-zero exit, a signal or the timeout fails the component with the last lines
// of the command's stderr (never its environment, never the command text, which the plan
// author may have put a secret into). With `redact` = "kubernetes-secrets" the output is
// buffered whole (at most `redact_max_bytes`, an error above), redacted with
// RedactKubernetesSecrets (redact.h) and only then stored: no unredacted byte reaches the
// repository, and a command that fails or prints something that is not YAML stores nothing.
//
// Manifest: one entry {"type":"stdout","bytes":N,"sha256":<hex of the stored bytes>,
//   "redacted":bool,"contents":[[...]]}.
// Backup returns {"command":<backup>,"exit_code":0,"bytes":N,"redact":<redact or null>,
//   "name":<name>} plus "secrets_redacted":K when redacting.
//
// Restore: the command is RestoreOptions.params["restore"] when that key is present (a string;
// "" forces the file), else `restore`. With a command: `sh -c <restore>` gets the stored bytes
// on stdin (its stdout is discarded); a non-zero exit, or the command exiting before it read
// everything, fails the restore. Without: the bytes are written atomically (temp file, fsync,
// rename) with mode 0600 to RestoreOptions.target, a file path, or, when target is a directory
// (or ends in '/'), to <target>/<name>.out; an existing file is replaced only with
// RestoreOptions.overwrite. Either way the SHA-256 of what was read is checked against the
// manifest (kCorruption on a mismatch; a file is then not left behind).
//
// Thread-safety: Backup and Restore may run on different objects at once; one object is used
// by one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>

#include "components/component.h"

namespace reprise {

struct CommandComponentOptions {
  std::string name;     // the plan's component name: messages and the default restore file
  std::string backup;   // sh -c; its stdout is stored
  std::string restore;  // sh -c; gets the stored bytes on stdin. Empty: write a file
  std::map<std::string, std::string> env;  // extra environment (secrets go here)
  std::string run_as;                      // OS user for both commands (needs root)
  std::string cwd;                         // working directory; empty = "/"
  std::chrono::seconds timeout{3600};      // per command run; 0 = none
  std::string redact;                      // "" or "kubernetes-secrets"
  size_t redact_max_bytes = size_t{256} << 20;  // output buffered for redaction, at most
};

class CommandComponent final : public Component {
 public:
  explicit CommandComponent(CommandComponentOptions options);
  std::string kind() const override { return "command"; }
  Result<nlohmann::json> Backup(BackupSink& sink) override;
  Status Restore(const nlohmann::json& info, RestoreSource& source,
                 const RestoreOptions& options) override;

 private:
  CommandComponentOptions options_;
};

}  // namespace reprise
