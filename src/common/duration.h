// Durations and sizes as people write them in plans and flags.
//
// Durations: one or more <integer><unit> parts, largest unit first, no spaces:
//   "90s", "15m", "2h", "7d", "1w", "1y", "1h30m", "0s".
// Units: s (second), m (minute), h (hour), d (day = 24h), w (week = 7d), y (year = 365d).
// Months are not a unit (their length varies); write "30d". A bare number is refused (ambiguous).
//
// Sizes: <number>[ ]<unit>, number may have a fraction ("1.5GiB"); units case-insensitive:
//   B; kB KB MB GB TB PB (powers of 1000); KiB MiB GiB TiB PiB (powers of 1024).
// A bare integer is a number of bytes. Fractions of a byte are rounded down.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace reprise {

// kInvalidArgument with a message naming the text, e.g. "invalid duration '15': ... HINT: ...".
// Negative values and values that overflow int64 seconds are refused.
Result<std::chrono::seconds> ParseDuration(std::string_view text);

// Shortest exact form in the units above: 5400s -> "1h30m", 604800s -> "1w", 0 -> "0s".
// Negative durations get a leading '-'.
std::string FormatDuration(std::chrono::seconds d);

// kInvalidArgument on bad syntax, unknown unit, or a value above UINT64_MAX bytes.
Result<uint64_t> ParseSize(std::string_view text);

// Human form with binary units and at most one decimal: 1536 -> "1.5 KiB", 100 -> "100 B".
std::string FormatSize(uint64_t bytes);

}  // namespace reprise
