// Key files: the master key wrapped under a passphrase. A repository may have several; any one
// of them opens it. Key files are plaintext JSON (docs/repository-format.md, "Key files"):
//   {"version":1,"created":...,"host":...,"user":...,"kdf":"scrypt","n":..,"r":..,"p":..,
//    "salt":<b64>,"data":<b64 of Seal(scrypt(passphrase), master key JSON, aad="reprise-key-v1")>}
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "repo/crypto.h"
#include "storage/storage.h"

namespace reprise {

struct KeyInfo {
  Id id;  // SHA-256 of the key file
  std::string created, host, user;
  std::string kdf_name;  // "scrypt" (a passphrase) or "hmac-sha256" (a generated key file)
  ScryptParams kdf;
};

// A generated secret for a key file: 256 random bits, as text ("reprise-key-v1:<base64>").
// Such a secret needs no slow KDF, so a repository opens with it in microseconds: what
// wal-push (archive_command, once per WAL segment) needs.
std::string GenerateKeySecret();
bool IsGeneratedKeySecret(std::string_view secret);
// Wraps `master` under a generated secret (kdf "hmac-sha256": wrap key = HMAC-SHA256(salt,
// secret)). Refuses anything GenerateKeySecret did not make.
Result<Id> AddGeneratedKeyFile(Storage& storage, const MasterKey& master, std::string_view secret,
                               const Clock& clock);

// Wraps `master` under `passphrase` and stores a new key file; returns its id.
Result<Id> AddKeyFile(Storage& storage, const MasterKey& master, std::string_view passphrase,
                      const ScryptParams& kdf, const Clock& clock);
// Tries every key file (generated-secret slots first: they cost nothing to try);
// kUnauthenticated when none opens with the passphrase.
Result<std::pair<Id, MasterKey>> OpenWithPassphrase(Storage& storage, std::string_view passphrase);
Result<std::vector<KeyInfo>> ListKeyFiles(Storage& storage);

}  // namespace reprise
