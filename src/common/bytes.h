// Byte buffers and their text encodings.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace reprise {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView AsBytes(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsString(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string HexEncode(ByteView data);
Result<Bytes> HexDecode(std::string_view hex);
std::string Base64Encode(ByteView data);
Result<Bytes> Base64Decode(std::string_view text);

// True when `s` is valid UTF-8 (JSON strings must be).
bool IsValidUtf8(std::string_view s);

// A 256-bit identifier (blob, pack, index, point, key, lock), shown as 64 hex digits.
struct Id {
  std::array<uint8_t, 32> bytes{};

  std::string Hex() const { return HexEncode(bytes); }
  std::string Short() const { return Hex().substr(0, 8); }
  static Result<Id> FromHex(std::string_view hex);
  static Id Random();
  bool IsZero() const;

  auto operator<=>(const Id&) const = default;
};

struct IdHash {
  size_t operator()(const Id& id) const noexcept {
    size_t h;
    static_assert(sizeof(h) <= sizeof(id.bytes));
    __builtin_memcpy(&h, id.bytes.data(), sizeof(h));
    return h;
  }
};

}  // namespace reprise
