#include "repo/keys.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/sysinfo.h"
#include "repo/format.h"

namespace reprise {

namespace {

nlohmann::json MasterToJson(const MasterKey& m) {
  return {{"encryption", Base64Encode(m.encryption)},
          {"id", Base64Encode(m.id)},
          {"chunker", Base64Encode(m.chunker)}};
}

Result<MasterKey> MasterFromJson(const nlohmann::json& j) {
  MasterKey m;
  for (auto [name, field] : {std::pair{"encryption", &m.encryption}, std::pair{"id", &m.id},
                             std::pair{"chunker", &m.chunker}}) {
    if (!j.contains(name) || !j[name].is_string())
      return Corruption(std::string("master key lacks '") + name + "'");
    ASSIGN_OR_RETURN(Bytes b, Base64Decode(j[name].get<std::string>()));
    if (b.size() != 32) return Corruption(std::string("master key '") + name + "' is not 32 bytes");
    std::copy(b.begin(), b.end(), field->begin());
  }
  return m;
}

Result<nlohmann::json> ParseKeyFile(ByteView file) {
  auto j = nlohmann::json::parse(file.begin(), file.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Corruption("key file is not JSON");
  for (const char* f : {"kdf", "salt", "data"})
    if (!j.contains(f) || !j[f].is_string()) return Corruption(std::string("key file lacks '") + f + "'");
  if (j["kdf"] == "hmac-sha256") return j;
  for (const char* f : {"n", "r", "p"})
    if (!j.contains(f) || !j[f].is_number_unsigned())
      return Corruption(std::string("key file lacks '") + f + "'");
  if (j["kdf"] != "scrypt") return Corruption("key file uses an unknown kdf");
  return j;
}

constexpr std::string_view kSecretPrefix = "reprise-key-v1:";

// The wrap key of a generated-secret key file.
Key256 HmacWrapKey(ByteView salt, std::string_view secret) {
  Key256 salt_key;
  std::copy(salt.begin(), salt.end(), salt_key.begin());
  return HmacSha256(salt_key, AsBytes(secret));
}

// Seals the master key under `wrap` and stores a key file made of the common fields, the
// KDF's own fields (`kdf`) and the salt; returns its id.
Result<Id> StoreKeyFile(Storage& storage, const MasterKey& master, const Key256& wrap,
                        ByteView salt, nlohmann::json kdf, const Clock& clock) {
  std::string plain = MasterToJson(master).dump();
  Bytes sealed = Seal(wrap, AsBytes(plain), AsBytes(kAadKey));
  nlohmann::json j = {{"version", kFormatVersion},
                      {"created", FormatRfc3339(clock.NowUnixNanos())},
                      {"host", HostName()},
                      {"user", UserName()}};
  j.update(kdf);
  j["salt"] = Base64Encode(salt);
  j["data"] = Base64Encode(sealed);
  std::string text = j.dump(2) + "\n";
  Id id = Sha256(AsBytes(text));
  RETURN_IF_ERROR(storage.Put(KeyFileKey(id), AsBytes(text)));
  return id;
}

ScryptParams KdfOf(const nlohmann::json& j) {
  if (j["kdf"] != "scrypt") return ScryptParams{.n = 0, .r = 0, .p = 0};
  return ScryptParams{.n = j["n"].get<uint64_t>(), .r = j["r"].get<uint32_t>(),
                      .p = j["p"].get<uint32_t>()};
}

}  // namespace

Result<Id> AddKeyFile(Storage& storage, const MasterKey& master, std::string_view passphrase,
                      const ScryptParams& kdf, const Clock& clock) {
  Bytes salt = RandomBytes(32);
  ASSIGN_OR_RETURN(Key256 wrap, DeriveKey(passphrase, salt, kdf));
  return StoreKeyFile(storage, master, wrap, salt,
                      {{"kdf", "scrypt"}, {"n", kdf.n}, {"r", kdf.r}, {"p", kdf.p}}, clock);
}

std::string GenerateKeySecret() {
  return std::string(kSecretPrefix) + Base64Encode(RandomBytes(32));
}

bool IsGeneratedKeySecret(std::string_view secret) {
  if (secret.substr(0, kSecretPrefix.size()) != kSecretPrefix) return false;
  auto raw = Base64Decode(secret.substr(kSecretPrefix.size()));
  return raw.ok() && raw->size() == 32;
}

Result<Id> AddGeneratedKeyFile(Storage& storage, const MasterKey& master, std::string_view secret,
                               const Clock& clock) {
  if (!IsGeneratedKeySecret(secret))
    return InvalidArgument("not a generated key secret: only secrets made by 'reprise key add "
                           "--generate-key-file' may skip the passphrase KDF");
  Bytes salt = RandomBytes(32);
  return StoreKeyFile(storage, master, HmacWrapKey(salt, secret), salt, {{"kdf", "hmac-sha256"}},
                      clock);
}

Result<std::pair<Id, MasterKey>> OpenWithPassphrase(Storage& storage, std::string_view passphrase) {
  ASSIGN_OR_RETURN(auto objects, storage.List(std::string(kKeysDir)));
  if (objects.empty())
    return NotFound("no key files in '" + storage.Location() +
                    "': it is not a reprise repository. HINT: create one with 'reprise init'");
  struct Slot {
    std::string key;
    nlohmann::json j;
  };
  std::vector<Slot> slots;
  for (const auto& o : objects) {
    ASSIGN_OR_RETURN(Bytes file, storage.Get(o.key));
    auto j = ParseKeyFile(file);
    if (!j.ok()) continue;
    slots.push_back(Slot{o.key, std::move(*j)});
  }
  // Generated-secret slots first: an HMAC costs nothing next to scrypt.
  std::stable_partition(slots.begin(), slots.end(),
                        [](const Slot& s) { return s.j["kdf"] == "hmac-sha256"; });
  const bool generated = IsGeneratedKeySecret(passphrase);
  size_t tried = 0;
  for (const auto& slot : slots) {
    const nlohmann::json* j = &slot.j;
    const bool hmac = slot.j["kdf"] == "hmac-sha256";
    if (hmac && !generated) continue;
    ++tried;
    auto salt = Base64Decode((*j)["salt"].get<std::string>());
    auto data = Base64Decode((*j)["data"].get<std::string>());
    if (!salt.ok() || !data.ok()) continue;
    Key256 wrap;
    if (hmac) {
      if (salt->size() != 32) continue;
      wrap = HmacWrapKey(*salt, passphrase);
    } else {
      ASSIGN_OR_RETURN(wrap, DeriveKey(passphrase, *salt, KdfOf(*j)));
    }
    auto secret = Open(wrap, *data, AsBytes(kAadKey));
    if (!secret.ok()) continue;
    auto mj = nlohmann::json::parse(secret->begin(), secret->end(), nullptr, false);
    if (mj.is_discarded()) return Corruption("key file '" + slot.key + "' holds a bad master key");
    ASSIGN_OR_RETURN(MasterKey master, MasterFromJson(mj));
    ASSIGN_OR_RETURN(Id id, Id::FromHex(slot.key.substr(kKeysDir.size())));
    return std::pair{id, master};
  }
  return Unauthenticated("wrong passphrase for repository '" + storage.Location() + "': none of " +
                         std::to_string(tried) +
                         " key file(s) opens with it. HINT: check --password-file or "
                         "REPRISE_PASSWORD_FILE");
}

Result<std::vector<KeyInfo>> ListKeyFiles(Storage& storage) {
  ASSIGN_OR_RETURN(auto objects, storage.List(std::string(kKeysDir)));
  std::vector<KeyInfo> out;
  for (const auto& o : objects) {
    ASSIGN_OR_RETURN(Bytes file, storage.Get(o.key));
    ASSIGN_OR_RETURN(auto j, ParseKeyFile(file));
    KeyInfo k;
    ASSIGN_OR_RETURN(k.id, Id::FromHex(o.key.substr(kKeysDir.size())));
    k.created = j.value("created", "");
    k.host = j.value("host", "");
    k.user = j.value("user", "");
    k.kdf = KdfOf(j);
    k.kdf_name = j["kdf"].get<std::string>();
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace reprise
