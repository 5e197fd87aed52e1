// PostgreSQL WAL positions and file names, pure functions (no server needed).
//
//   LSN "16/B374D848" <-> uint64; segment file "000000010000001600000000" (timeline, log, seg)
//   for a segment size (16 MiB by default, a power of two from 1 MiB to 1 GiB);
//   history file "00000002.history"; its lines "<parent tli>\t<switch lsn>\t<reason>".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace reprise::pg {

using Lsn = uint64_t;
inline constexpr uint64_t kDefaultSegmentSize = 16ull << 20;

std::string FormatLsn(Lsn lsn);                    // "16/B374D848"
Result<Lsn> ParseLsn(std::string_view text);       // kInvalidArgument naming the text

// The segment that holds `lsn` on timeline `tli`.
std::string SegmentName(uint32_t tli, Lsn lsn, uint64_t segment_size = kDefaultSegmentSize);
struct SegmentId {
  uint32_t tli = 0;
  uint64_t segno = 0;  // lsn / segment_size
};
// Parses a 24-hex-digit segment name (nothing else: no suffix).
std::optional<SegmentId> ParseSegmentName(std::string_view name,
                                          uint64_t segment_size = kDefaultSegmentSize);
std::string SegmentNameOf(SegmentId id, uint64_t segment_size = kDefaultSegmentSize);
Lsn SegmentStartLsn(SegmentId id, uint64_t segment_size = kDefaultSegmentSize);

bool IsHistoryFileName(std::string_view name);  // "0000000A.history"
std::string HistoryFileName(uint32_t tli);

struct TimelineSwitch {
  uint32_t parent_tli = 0;
  Lsn switch_lsn = 0;  // where the parent timeline ends and the child begins
  std::string reason;
};
// Parses a history file's text (comments and blank lines allowed).
Result<std::vector<TimelineSwitch>> ParseHistory(std::string_view text);

}  // namespace reprise::pg
