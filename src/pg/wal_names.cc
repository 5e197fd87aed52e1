#include "pg/wal_names.h"

#include <cinttypes>
#include <cstdio>

namespace reprise::pg {

namespace {

// Parses 1..max_digits hex digits (either case); nullopt on anything else.
std::optional<uint64_t> ParseHex(std::string_view s, size_t max_digits, bool upper_only = false) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else if (!upper_only && c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

uint64_t SegmentsPerXlogId(uint64_t segment_size) { return 0x100000000ull / segment_size; }

std::string Hex8(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08" PRIX64, v);
  return buf;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::string FormatLsn(Lsn lsn) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRIX64 "/%" PRIX64, lsn >> 32,
                static_cast<uint64_t>(lsn & 0xFFFFFFFFu));
  return buf;
}

Result<Lsn> ParseLsn(std::string_view text) {
  size_t slash = text.find('/');
  std::optional<uint64_t> hi, lo;
  if (slash != std::string_view::npos) {
    hi = ParseHex(text.substr(0, slash), 8);
    lo = ParseHex(text.substr(slash + 1), 8);
  }
  if (!hi || !lo) {
    return InvalidArgument("'" + std::string(text) +
                           "' is not a WAL position: HINT: write it as PostgreSQL does, "
                           "two hex numbers of up to 8 digits like '16/B374D848'");
  }
  return (*hi << 32) | *lo;
}

std::string SegmentName(uint32_t tli, Lsn lsn, uint64_t segment_size) {
  return SegmentNameOf({tli, lsn / segment_size}, segment_size);
}

std::string SegmentNameOf(SegmentId id, uint64_t segment_size) {
  uint64_t per = SegmentsPerXlogId(segment_size);
  return Hex8(id.tli) + Hex8(id.segno / per) + Hex8(id.segno % per);
}

std::optional<SegmentId> ParseSegmentName(std::string_view name, uint64_t segment_size) {
  if (name.size() != 24) return std::nullopt;
  auto tli = ParseHex(name.substr(0, 8), 8, true);
  auto log = ParseHex(name.substr(8, 8), 8, true);
  auto seg = ParseHex(name.substr(16, 8), 8, true);
  if (!tli || !log || !seg) return std::nullopt;
  uint64_t per = SegmentsPerXlogId(segment_size);
  if (*seg >= per) return std::nullopt;
  return SegmentId{static_cast<uint32_t>(*tli), *log * per + *seg};
}

Lsn SegmentStartLsn(SegmentId id, uint64_t segment_size) { return id.segno * segment_size; }

bool IsHistoryFileName(std::string_view name) {
  return name.size() == 16 && name.substr(8) == ".history" &&
         ParseHex(name.substr(0, 8), 8, true).has_value();
}

std::string HistoryFileName(uint32_t tli) { return Hex8(tli) + ".history"; }

Result<std::vector<TimelineSwitch>> ParseHistory(std::string_view text) {
  std::vector<TimelineSwitch> out;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    line = Trim(line);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](const std::string& why) {
      return InvalidArgument("timeline history line " + std::to_string(line_no) + " '" +
                             std::string(line) + "': " + why);
    };
    size_t t1 = line.find_first_of(" \t");
    if (t1 == std::string_view::npos) return bad("expected '<timeline> <switch position>'");
    std::string_view tli_text = line.substr(0, t1);
    std::string_view rest = Trim(line.substr(t1));
    size_t t2 = rest.find_first_of(" \t");
    std::string_view lsn_text = rest.substr(0, t2);
    std::string_view reason = t2 == std::string_view::npos ? "" : Trim(rest.substr(t2));
    uint64_t tli = 0;
    for (char c : tli_text) {
      if (c < '0' || c > '9' || tli > 0xFFFFFFFFull) return bad("timeline is not a number");
      tli = tli * 10 + static_cast<uint64_t>(c - '0');
    }
    if (tli == 0 || tli > 0xFFFFFFFFull) return bad("timeline out of range");
    auto lsn = ParseLsn(lsn_text);
    if (!lsn.ok()) return bad("bad switch position");
    if (!out.empty() && tli <= out.back().parent_tli) {
      return bad("timelines must increase from line to line");
    }
    out.push_back({static_cast<uint32_t>(tli), *lsn, std::string(reason)});
  }
  return out;
}

}  // namespace reprise::pg
