#include "components/files/metadata.h"

#include <limits>

#include "common/bytes.h"

namespace reprise::files {

using nlohmann::json;

namespace {

constexpr struct {
  FileType type;
  std::string_view name;
} kTypeNames[] = {
    {FileType::kFile, "file"},         {FileType::kDir, "dir"},
    {FileType::kSymlink, "symlink"},   {FileType::kFifo, "fifo"},
    {FileType::kCharDev, "chardev"},   {FileType::kBlockDev, "blockdev"},
    {FileType::kHardlink, "hardlink"},
};

std::optional<FileType> TypeFromName(std::string_view name) {
  for (const auto& t : kTypeNames) {
    if (t.name == name) return t.type;
  }
  return std::nullopt;
}

Status BadField(std::string_view key, std::string_view why) {
  return Corruption("manifest entry field '" + std::string(key) + "' " + std::string(why));
}

// Parsed text gives number_unsigned; JSON built in memory from signed ints gives
// number_integer: both are fine when not negative.
bool IsNonNegative(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

Result<uint64_t> GetUint(const json& entry, std::string_view key, uint64_t max) {
  auto it = entry.find(key);
  if (it == entry.end()) return BadField(key, "is missing");
  if (!IsNonNegative(*it)) {
    return BadField(key, "is not a non-negative integer");
  }
  uint64_t v = it->get<uint64_t>();
  if (v > max) return BadField(key, "is out of range");
  return v;
}

Result<int64_t> GetInt(const json& entry, std::string_view key) {
  auto it = entry.find(key);
  if (it == entry.end()) return BadField(key, "is missing");
  if (!it->is_number_integer()) return BadField(key, "is not an integer");
  if (it->is_number_unsigned() &&
      it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return BadField(key, "is out of range");
  }
  return it->get<int64_t>();
}

// Optional text field: empty when absent.
Result<std::string> GetOptionalString(const json& entry, std::string_view key) {
  auto it = entry.find(key);
  if (it == entry.end()) return std::string();
  if (!it->is_string()) return BadField(key, "is not a string");
  return it->get<std::string>();
}

Result<std::vector<Extent>> GetExtents(const json& entry, uint64_t size) {
  const json& list = entry.at("extents");
  if (!list.is_array()) return BadField("extents", "is not an array");
  std::vector<Extent> extents;
  uint64_t end = 0;
  for (const json& pair : list) {
    if (!pair.is_array() || pair.size() != 2 || !IsNonNegative(pair[0]) ||
        !IsNonNegative(pair[1])) {
      return BadField("extents", "holds something that is not an [offset, length] pair");
    }
    Extent e{.offset = pair[0].get<uint64_t>(), .length = pair[1].get<uint64_t>()};
    if (e.offset < end || e.length > size || e.offset > size - e.length) {
      return BadField("extents", "has extents out of order or past the file size");
    }
    end = e.offset + e.length;
    extents.push_back(e);
  }
  return extents;
}

Status ParseCommon(const json& entry, EntryMeta& meta) {
  constexpr uint64_t kMaxId = std::numeric_limits<uint32_t>::max();
  ASSIGN_OR_RETURN(uint64_t mode, GetUint(entry, "mode", 07777));
  ASSIGN_OR_RETURN(uint64_t uid, GetUint(entry, "uid", kMaxId));
  ASSIGN_OR_RETURN(uint64_t gid, GetUint(entry, "gid", kMaxId));
  ASSIGN_OR_RETURN(meta.mtime_ns, GetInt(entry, "mtime_ns"));
  ASSIGN_OR_RETURN(meta.user, GetOptionalString(entry, "user"));
  ASSIGN_OR_RETURN(meta.group, GetOptionalString(entry, "group"));
  meta.mode = static_cast<uint32_t>(mode);
  meta.uid = static_cast<uint32_t>(uid);
  meta.gid = static_cast<uint32_t>(gid);
  return Status::Ok();
}

Status ParseFileFields(const json& entry, EntryMeta& meta) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  ASSIGN_OR_RETURN(meta.size, GetUint(entry, "size", kMax));
  if (entry.contains("nlink")) {
    ASSIGN_OR_RETURN(meta.nlink, GetUint(entry, "nlink", kMax));
  }
  if (entry.contains("ctime_ns")) {
    ASSIGN_OR_RETURN(meta.ctime_ns, GetInt(entry, "ctime_ns"));
  }
  if (entry.contains("ino")) {
    ASSIGN_OR_RETURN(meta.ino, GetUint(entry, "ino", kMax));
  }
  meta.sparse = entry.contains("extents");
  if (meta.sparse) {
    ASSIGN_OR_RETURN(meta.extents, GetExtents(entry, meta.size));
  }
  return Status::Ok();
}

Status ParseTypeSpecific(const json& entry, EntryMeta& meta) {
  switch (meta.type) {
    case FileType::kFile: {
      return ParseFileFields(entry, meta);
    }
    case FileType::kSymlink: {
      ASSIGN_OR_RETURN(meta.target, GetName(entry, "target"));
      return Status::Ok();
    }
    case FileType::kCharDev:
    case FileType::kBlockDev: {
      ASSIGN_OR_RETURN(meta.rdev, GetUint(entry, "rdev", std::numeric_limits<uint64_t>::max()));
      return Status::Ok();
    }
    case FileType::kDir:
    case FileType::kFifo:
    case FileType::kHardlink:
      return Status::Ok();
  }
  return Status::Ok();
}

Result<EntryMeta> ParseEntry(const json& entry) {
  if (!entry.is_object()) return Corruption("manifest entry is not a JSON object");
  EntryMeta meta;
  ASSIGN_OR_RETURN(meta.path, GetName(entry, "path"));
  auto type = entry.find("type");
  if (type == entry.end() || !type->is_string()) return BadField("type", "is missing");
  std::optional<FileType> t = TypeFromName(type->get<std::string>());
  if (!t) return BadField("type", "names an unknown type '" + type->get<std::string>() + "'");
  meta.type = *t;
  if (meta.type == FileType::kHardlink) {
    ASSIGN_OR_RETURN(meta.link, GetName(entry, "link"));
    return meta;
  }
  RETURN_IF_ERROR(ParseCommon(entry, meta));
  RETURN_IF_ERROR(ParseTypeSpecific(entry, meta));
  return meta;
}

}  // namespace

std::string_view TypeName(FileType type) {
  for (const auto& t : kTypeNames) {
    if (t.type == type) return t.name;
  }
  return "unknown";
}

std::optional<FileType> TypeOfMode(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return FileType::kFile;
    case S_IFDIR:
      return FileType::kDir;
    case S_IFLNK:
      return FileType::kSymlink;
    case S_IFIFO:
      return FileType::kFifo;
    case S_IFCHR:
      return FileType::kCharDev;
    case S_IFBLK:
      return FileType::kBlockDev;
    default:
      return std::nullopt;  // S_IFSOCK and anything new
  }
}

void PutName(json& entry, const std::string& key, std::string_view bytes) {
  if (IsValidUtf8(bytes)) {
    entry[key] = std::string(bytes);
  } else {
    entry[key + "_b64"] = Base64Encode(AsBytes(bytes));
  }
}

Result<std::string> GetName(const json& entry, const std::string& key) {
  auto plain = entry.find(key);
  auto b64 = entry.find(key + "_b64");
  if ((plain == entry.end()) == (b64 == entry.end())) {
    return BadField(key, "must be present exactly once (as '" + key + "' or '" + key + "_b64')");
  }
  if (plain != entry.end()) {
    if (!plain->is_string()) return BadField(key, "is not a string");
    return plain->get<std::string>();
  }
  if (!b64->is_string()) return BadField(key + "_b64", "is not a string");
  Result<Bytes> raw = Base64Decode(b64->get_ref<const std::string&>());
  if (!raw.ok()) return BadField(key + "_b64", "is not base64");
  return std::string(AsString(*raw));
}

json EntryToJson(const EntryMeta& meta) {
  json e = json::object();
  PutName(e, "path", meta.path);
  e["type"] = TypeName(meta.type);
  if (meta.type == FileType::kHardlink) {
    PutName(e, "link", meta.link);
    return e;
  }
  e["mode"] = meta.mode;
  e["uid"] = meta.uid;
  e["gid"] = meta.gid;
  if (!meta.user.empty()) e["user"] = meta.user;
  if (!meta.group.empty()) e["group"] = meta.group;
  e["mtime_ns"] = meta.mtime_ns;
  switch (meta.type) {
    case FileType::kFile:
      e["size"] = meta.size;
      if (meta.nlink > 1) e["nlink"] = meta.nlink;
      e["ctime_ns"] = meta.ctime_ns;
      e["ino"] = meta.ino;
      if (meta.sparse) {
        json extents = json::array();
        for (const Extent& x : meta.extents) extents.push_back(json::array({x.offset, x.length}));
        e["extents"] = std::move(extents);
      }
      break;
    case FileType::kSymlink:
      PutName(e, "target", meta.target);
      break;
    case FileType::kCharDev:
    case FileType::kBlockDev:
      e["rdev"] = meta.rdev;
      break;
    default:
      break;
  }
  return e;
}

Result<EntryMeta> EntryFromJson(const json& entry) {
  try {
    return ParseEntry(entry);
  } catch (const json::exception& e) {
    return Corruption(std::string("manifest entry is malformed: ") + e.what());
  }
}

int64_t TimespecToNs(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct timespec NsToTimespec(int64_t ns) {
  int64_t sec = ns / 1'000'000'000;
  int64_t rem = ns % 1'000'000'000;
  if (rem < 0) {  // before 1970: tv_nsec must stay in [0, 1e9)
    rem += 1'000'000'000;
    sec -= 1;
  }
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = static_cast<long>(rem);
  return ts;
}

}  // namespace reprise::files
