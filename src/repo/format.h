// Names and constants of the repository format (docs/repository-format.md is the spec;
// keep the two in step). Changing any value here changes the format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"

namespace reprise {

inline constexpr int kFormatVersion = 1;

// Object keys.
inline constexpr std::string_view kConfigKey = "config";
inline constexpr std::string_view kKeysDir = "keys/";
inline constexpr std::string_view kDataDir = "data/";
inline constexpr std::string_view kIndexDir = "index/";
inline constexpr std::string_view kPointsDir = "points/";
inline constexpr std::string_view kLocksDir = "locks/";
inline constexpr std::string_view kWalDir = "wal/";  // wal/<component>/<file name>

inline std::string PackKey(const Id& id) {
  std::string hex = id.Hex();
  return std::string(kDataDir) + hex.substr(0, 2) + "/" + hex;
}
inline std::string IndexKey(const Id& id) { return std::string(kIndexDir) + id.Hex(); }
inline std::string PointKey(const Id& id) { return std::string(kPointsDir) + id.Hex(); }
inline std::string LockKey(const Id& id) { return std::string(kLocksDir) + id.Hex(); }
inline std::string KeyFileKey(const Id& id) { return std::string(kKeysDir) + id.Hex(); }

// Associated data that binds a sealed file to its kind (a point cannot pass for an index).
inline constexpr std::string_view kAadConfig = "reprise-config-v1";
inline constexpr std::string_view kAadKey = "reprise-key-v1";
inline constexpr std::string_view kAadIndex = "reprise-index-v1";
inline constexpr std::string_view kAadPoint = "reprise-point-v1";
inline constexpr std::string_view kAadLock = "reprise-lock-v1";
inline constexpr std::string_view kAadWal = "reprise-wal-v1";
inline constexpr std::string_view kAadPackHeader = "reprise-pack-header-v1";

enum class BlobType : uint8_t { kData = 0, kTree = 1 };
std::string_view BlobTypeName(BlobType t);

// A blob's place in a pack.
struct BlobLocation {
  Id pack;
  BlobType type = BlobType::kData;
  uint64_t offset = 0;      // of the sealed blob in the pack
  uint32_t length = 0;      // sealed length
  uint32_t raw_length = 0;  // plaintext length
};

}  // namespace reprise
