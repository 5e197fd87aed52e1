#include "common/duration.h"

#include <array>
#include <cctype>
#include <limits>

#include <fmt/format.h>

namespace reprise {
namespace {

struct DurationUnit {
  char symbol;
  int64_t seconds;
};

// Largest first: the order in which parts must appear and in which FormatDuration emits them.
constexpr std::array<DurationUnit, 6> kDurationUnits{{
    {'y', 365 * 86400},
    {'w', 7 * 86400},
    {'d', 86400},
    {'h', 3600},
    {'m', 60},
    {'s', 1},
}};

constexpr std::string_view kDurationHint =
    "HINT: write a number followed by a unit, e.g. 90s, 15m, 2h, 7d, 1w, 1y or 1h30m";

Status BadDuration(std::string_view text, std::string_view why) {
  return InvalidArgument(fmt::format("invalid duration '{}': {}; {}", text, why, kDurationHint));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

struct SizeUnit {
  std::string_view name;  // lowercase
  uint64_t factor;
};

constexpr uint64_t kKB = 1000;
constexpr uint64_t kMB = kKB * 1000;
constexpr uint64_t kGB = kMB * 1000;
constexpr uint64_t kTB = kGB * 1000;
constexpr uint64_t kPB = kTB * 1000;
constexpr uint64_t kKi = 1024;
constexpr uint64_t kMi = kKi << 10;
constexpr uint64_t kGi = kMi << 10;
constexpr uint64_t kTi = kGi << 10;
constexpr uint64_t kPi = kTi << 10;
constexpr std::array<SizeUnit, 12> kSizeUnits{{
    {"b", 1},
    {"kb", kKB},
    {"mb", kMB},
    {"gb", kGB},
    {"tb", kTB},
    {"pb", kPB},
    {"kib", kKi},
    {"mib", kMi},
    {"gib", kGi},
    {"tib", kTi},
    {"pib", kPi},
    {"", 1},
}};

constexpr std::string_view kSizeHint =
    "HINT: write a number followed by a unit, e.g. 512B, 16MB (10^6) or 4MiB (2^20)";

Status BadSize(std::string_view text, std::string_view why) {
  return InvalidArgument(fmt::format("invalid size '{}': {}; {}", text, why, kSizeHint));
}

}  // namespace

Result<std::chrono::seconds> ParseDuration(std::string_view text) {
  if (text.empty()) return BadDuration(text, "it is empty");
  if (text[0] == '-') return BadDuration(text, "durations cannot be negative");
  int64_t total = 0;
  size_t i = 0;
  size_t next_unit = 0;  // index into kDurationUnits: parts must go from large to small units
  while (i < text.size()) {
    if (!IsDigit(text[i])) {
      return BadDuration(text, fmt::format("expected a digit at '{}'", text.substr(i)));
    }
    int64_t value = 0;
    while (i < text.size() && IsDigit(text[i])) {
      int digit = text[i] - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) {
        return BadDuration(text, "it is too large");
      }
      value = value * 10 + digit;
      ++i;
    }
    if (i == text.size()) {
      return BadDuration(text, "the number has no unit");
    }
    if (text[i] == '.' || text[i] == ',') {
      return BadDuration(text, "fractions are not supported");
    }
    char symbol = text[i];
    size_t unit = next_unit;
    while (unit < kDurationUnits.size() && kDurationUnits[unit].symbol != symbol) ++unit;
    if (unit == kDurationUnits.size()) {
      for (const auto& u : kDurationUnits) {
        if (u.symbol == symbol) return BadDuration(text, "units must go from largest to smallest");
      }
      return BadDuration(text, fmt::format("unknown unit '{}'", symbol));
    }
    ++i;
    int64_t factor = kDurationUnits[unit].seconds;
    if (value > std::numeric_limits<int64_t>::max() / factor ||
        total > std::numeric_limits<int64_t>::max() - value * factor) {
      return BadDuration(text, "it is too large");
    }
    total += value * factor;
    next_unit = unit + 1;
  }
  return std::chrono::seconds(total);
}

std::string FormatDuration(std::chrono::seconds d) {
  int64_t s = d.count();
  if (s == 0) return "0s";
  std::string out;
  uint64_t rest;
  if (s < 0) {
    out = "-";
    rest = static_cast<uint64_t>(-(s + 1)) + 1;  // safe for INT64_MIN
  } else {
    rest = static_cast<uint64_t>(s);
  }
  for (const auto& u : kDurationUnits) {
    uint64_t n = rest / static_cast<uint64_t>(u.seconds);
    if (n > 0) {
      out += fmt::format("{}{}", n, u.symbol);
      rest -= n * static_cast<uint64_t>(u.seconds);
    }
  }
  return out;
}

Result<uint64_t> ParseSize(std::string_view text) {
  size_t i = 0;
  uint64_t whole = 0;
  if (text.empty()) return BadSize(text, "it is empty");
  if (text[0] == '-') return BadSize(text, "sizes cannot be negative");
  if (!IsDigit(text[0])) return BadSize(text, "it does not start with a number");
  while (i < text.size() && IsDigit(text[i])) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (whole > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
      return BadSize(text, "it is too large");
    }
    whole = whole * 10 + digit;
    ++i;
  }
  // Fraction kept as numerator / 10^digits, at most 9 digits (more precision is meaningless).
  uint64_t frac = 0;
  uint64_t frac_scale = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (i >= text.size() || !IsDigit(text[i])) return BadSize(text, "expected digits after '.'");
    while (i < text.size() && IsDigit(text[i])) {
      if (frac_scale < 1000000000) {
        frac = frac * 10 + static_cast<uint64_t>(text[i] - '0');
        frac_scale *= 10;
      }
      ++i;
    }
  }
  while (i < text.size() && text[i] == ' ') ++i;
  std::string unit;
  for (; i < text.size(); ++i) {
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  }
  for (const auto& u : kSizeUnits) {
    if (u.name != unit) continue;
    if (unit.empty() && frac_scale != 1) return BadSize(text, "a fraction needs a unit");
    if (whole > std::numeric_limits<uint64_t>::max() / u.factor) {
      return BadSize(text, "it is too large");
    }
    uint64_t bytes = whole * u.factor;
    // frac < frac_scale <= 10^9 and factor <= 2^50: split to avoid overflow.
    uint64_t frac_bytes =
        (u.factor / frac_scale) * frac + (u.factor % frac_scale) * frac / frac_scale;
    if (bytes > std::numeric_limits<uint64_t>::max() - frac_bytes) {
      return BadSize(text, "it is too large");
    }
    return bytes + frac_bytes;
  }
  return BadSize(text, fmt::format("unknown unit '{}'", text.substr(text.size() - unit.size())));
}

std::string FormatSize(uint64_t bytes) {
  static constexpr std::array<std::string_view, 6> kNames{"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < kKi) return fmt::format("{} B", bytes);
  size_t idx = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024.0 && idx + 1 < kNames.size()) {
    v /= 1024.0;
    ++idx;
  }
  // Truncate (not round) to one decimal so "1023.96 KiB" never shows as "1024.0 KiB".
  double truncated = static_cast<double>(static_cast<uint64_t>(v * 10.0)) / 10.0;
  if (truncated == static_cast<double>(static_cast<uint64_t>(truncated))) {
    return fmt::format("{} {}", static_cast<uint64_t>(truncated), kNames[idx]);
  }
  return fmt::format("{:.1f} {}", truncated, kNames[idx]);
}

}  // namespace reprise
