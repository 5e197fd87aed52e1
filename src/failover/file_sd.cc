#include "failover/file_sd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace reprise::failover {

namespace {

using json = nlohmann::json;

bool ValidLabelName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open directory", dir, errno);
  Status st;
  if (::fsync(fd) != 0) st = ErrnoError("fsync directory", dir, errno);
  ::close(fd);
  return st;
}

}  // namespace

Status WriteFileSd(const std::string& path, const std::vector<std::string>& targets,
                   const std::map<std::string, std::string>& labels) {
  for (const auto& [name, value] : labels) {
    if (!ValidLabelName(name)) {
      return InvalidArgument("label name '" + name + "' for file_sd '" + path +
                             "' is not a Prometheus label name: HINT: use letters, digits and "
                             "'_', not starting with a digit");
    }
  }
  json group = {{"targets", targets}, {"labels", json::object()}};
  for (const auto& [name, value] : labels) group["labels"][name] = value;
  std::string text;
  try {
    text = json::array({group}).dump(2) + "\n";
  } catch (const json::exception& e) {  // a target or label that is not UTF-8
    return InvalidArgument("file_sd '" + path + "': " + e.what());
  }

  namespace fs = std::filesystem;
  fs::path target(path);
  std::string dir = target.parent_path().empty() ? "." : target.parent_path().string();
  std::string temp = dir + "/." + target.filename().string() + ".tmp-XXXXXX";
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) {
    return ErrnoError("create temp file", temp, errno)
        .WithContext("writing file_sd '" + path + "'");
  }
  Status st = WriteAll(fd, text, temp);
  if (st.ok() && ::fchmod(fd, 0644) != 0) st = ErrnoError("chmod", temp, errno);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoError("fsync", temp, errno);
  if (::close(fd) != 0 && st.ok()) st = ErrnoError("close", temp, errno);
  if (st.ok() && ::rename(temp.c_str(), path.c_str()) != 0) st = ErrnoError("rename", temp, errno);
  if (!st.ok()) {
    ::unlink(temp.c_str());
    return st.WithContext("writing file_sd '" + path + "'");
  }
  // The rename is durable only once the directory is synced.
  RETURN_IF_ERROR(SyncDir(dir).WithContext("writing file_sd '" + path + "'"));
  return Status::Ok();
}

Result<std::vector<std::string>> ReadFileSdTargets(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("open", path, errno);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return ErrnoError("read", path, errno);
  const std::string text = ss.str();
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const std::string bad = "file_sd '" + path + "' is not a JSON list of target groups";
  if (!doc.is_array()) return InvalidArgument(bad);
  std::vector<std::string> out;
  for (const auto& group : doc) {
    if (!group.is_object()) return InvalidArgument(bad + ": an entry is not an object");
    auto targets = group.find("targets");
    if (targets == group.end() || !targets->is_array()) {
      return InvalidArgument(bad + ": a group has no \"targets\" list");
    }
    for (const auto& t : *targets) {
      if (!t.is_string()) return InvalidArgument(bad + ": a target is not a string");
      out.push_back(t.get<std::string>());
    }
  }
  return out;
}

}  // namespace reprise::failover
