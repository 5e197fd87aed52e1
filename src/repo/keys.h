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
  ScryptParams kdf;
};

// Wraps `master` under `passphrase` and stores a new key file; returns its id.
Result<Id> AddKeyFile(Storage& storage, const MasterKey& master, std::string_view passphrase,
                      const ScryptParams& kdf, const Clock& clock);
// Tries every key file; kUnauthenticated when none opens with the passphrase.
Result<std::pair<Id, MasterKey>> OpenWithPassphrase(Storage& storage, std::string_view passphrase);
Result<std::vector<KeyInfo>> ListKeyFiles(Storage& storage);

}  // namespace reprise
