#include "pg/backup_manifest.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "pg/crc32c.h"

namespace reprise::pg {

namespace {

const EVP_MD* DigestFor(const std::string& algorithm) {
  if (algorithm == "SHA224") return EVP_sha224();
  if (algorithm == "SHA256") return EVP_sha256();
  if (algorithm == "SHA384") return EVP_sha384();
  if (algorithm == "SHA512") return EVP_sha512();
  return nullptr;
}

std::string Sha256Hex(std::string_view text) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  return HexEncode(ByteView(md, len));
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Result<BackupManifest> ParseBackupManifest(std::string_view text) {
  // The checksum covers everything up to and including the newline that precedes the
  // "Manifest-Checksum" line.
  size_t mark = text.rfind("\n\"Manifest-Checksum\"");
  if (mark == std::string_view::npos) {
    return Corruption("backup manifest has no 'Manifest-Checksum' line");
  }
  std::string computed = Sha256Hex(text.substr(0, mark + 1));
  BackupManifest m;
  try {
    auto j = nlohmann::json::parse(text);
    int version = j.at("PostgreSQL-Backup-Manifest-Version").get<int>();
    if (version != 1 && version != 2) {
      return Unimplemented("backup manifest version " + std::to_string(version) +
                           " is not supported (reprise reads versions 1 and 2)");
    }
    std::string stored = Lower(j.at("Manifest-Checksum").get<std::string>());
    if (stored != computed) {
      return Corruption("backup manifest checksum mismatch: it says '" + stored +
                        "', its contents hash to '" + computed + "'");
    }
    for (const auto& f : j.at("Files")) {
      ManifestFile file;
      if (f.contains("Path")) {
        file.path = f.at("Path").get<std::string>();
      } else {
        auto raw = HexDecode(f.at("Encoded-Path").get<std::string>());
        if (!raw.ok()) return Corruption("backup manifest has a bad 'Encoded-Path'");
        file.path = std::string(AsString(*raw));
      }
      file.size = f.at("Size").get<uint64_t>();
      file.checksum_algorithm = f.value("Checksum-Algorithm", std::string("NONE"));
      file.checksum = Lower(f.value("Checksum", std::string()));
      std::string key = file.path;
      if (!m.files.emplace(key, std::move(file)).second) {
        return Corruption("backup manifest lists '" + key + "' twice");
      }
    }
    if (j.contains("WAL-Ranges")) {
      for (const auto& w : j.at("WAL-Ranges")) {
        ManifestWalRange r;
        r.timeline = w.at("Timeline").get<uint32_t>();
        ASSIGN_OR_RETURN(r.start, ParseLsn(w.at("Start-LSN").get<std::string>()));
        ASSIGN_OR_RETURN(r.end, ParseLsn(w.at("End-LSN").get<std::string>()));
        m.wal_ranges.push_back(r);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Corruption(std::string("backup manifest is not valid: ") + e.what());
  }
  return m;
}

Result<ManifestChecksummer> ManifestChecksummer::Make(const std::string& algorithm) {
  ManifestChecksummer c;
  c.algorithm_ = algorithm;
  if (algorithm == "CRC32C" || algorithm == "NONE") return c;
  const EVP_MD* md = DigestFor(algorithm);
  if (!md) {
    return InvalidArgument("unknown manifest checksum algorithm '" + algorithm +
                           "': HINT: use CRC32C, SHA224, SHA256, SHA384, SHA512 or NONE");
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, md, nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    return Internal("cannot set up " + algorithm + " digest");
  }
  c.md_ = std::shared_ptr<void>(ctx, [](void* p) { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(p)); });
  return c;
}

void ManifestChecksummer::Update(ByteView data) {
  if (algorithm_ == "CRC32C") {
    crc_ = Crc32c(crc_, data.data(), data.size());
  } else if (md_) {
    EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(md_.get()), data.data(), data.size());
  }
}

std::string ManifestChecksummer::HexDigest() {
  if (algorithm_ == "CRC32C") {
    // PostgreSQL copies the uint32 into the output as it sits in memory (little-endian here).
    uint8_t b[4] = {static_cast<uint8_t>(crc_), static_cast<uint8_t>(crc_ >> 8),
                    static_cast<uint8_t>(crc_ >> 16), static_cast<uint8_t>(crc_ >> 24)};
    return HexEncode(ByteView(b, 4));
  }
  if (!md_) return "";
  uint8_t out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(md_.get()), out, &len);
  return HexEncode(ByteView(out, len));
}

}  // namespace reprise::pg
