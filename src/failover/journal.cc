#include "failover/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace reprise::failover {

namespace fs = std::filesystem;

const StepRecord* Journal::Find(const std::string& step) const {
  for (const StepRecord& s : steps) {
    if (s.name == step) return &s;
  }
  return nullptr;
}

bool Journal::Done(const std::string& step) const {
  const StepRecord* s = Find(step);
  return s && (s->status == "done" || s->status == "skipped");
}

nlohmann::json Journal::ToJson() const {
  nlohmann::json j = {{"id", id},       {"kind", kind},   {"from", from},
                      {"to", to},       {"reason", reason}, {"state", state},
                      {"started_unix_ms", started_unix_ms}, {"figures", figures}};
  j["steps"] = nlohmann::json::array();
  for (const StepRecord& s : steps) {
    j["steps"].push_back({{"name", s.name},
                          {"status", s.status},
                          {"at", s.at},
                          {"detail", s.detail},
                          {"facts", s.facts}});
  }
  return j;
}

Result<Journal> Journal::FromJson(const nlohmann::json& j) {
  try {
    Journal out;
    out.id = j.at("id").get<std::string>();
    out.kind = j.at("kind").get<std::string>();
    out.from = j.at("from").get<std::string>();
    out.to = j.at("to").get<std::string>();
    out.reason = j.at("reason").get<std::string>();
    out.state = j.at("state").get<std::string>();
    out.started_unix_ms = j.at("started_unix_ms").get<int64_t>();
    out.figures = j.value("figures", nlohmann::json::object());
    for (const auto& s : j.at("steps")) {
      out.steps.push_back({s.at("name").get<std::string>(), s.at("status").get<std::string>(),
                           s.value("at", 0.0), s.value("detail", std::string()),
                           s.value("facts", nlohmann::json::object())});
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return Corruption(fmt::format("malformed failover journal: {}", e.what()));
  }
}

Status WriteFileAtomic(const std::string& path, const std::string& data) {
  std::string tmp = fmt::format("{}.tmp.{}", path, getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("open", tmp, errno);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return ErrnoError("write", tmp, err);
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return ErrnoError("fsync", tmp, err);
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return ErrnoError("rename", path, err);
  }
  std::string dir = fs::path(path).parent_path().string();
  int dfd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

namespace {

Result<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("open", path, errno);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Status JournalStore::Save(const Journal& journal) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return IOError(fmt::format("creating '{}': {}", dir_, ec.message()));
  chmod(dir_.c_str(), 0700);
  return WriteFileAtomic(fmt::format("{}/{}.json", dir_, journal.id),
                         journal.ToJson().dump(2) + "\n");
}

Result<Journal> JournalStore::Load(const std::string& id) {
  std::string path = fmt::format("{}/{}.json", dir_, id);
  ASSIGN_OR_RETURN(std::string text, ReadAll(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Corruption(fmt::format("'{}' is not valid JSON", path));
  Result<Journal> journal = Journal::FromJson(j);
  if (!journal.ok()) return journal.status().WithContext(fmt::format("reading '{}'", path));
  return journal;
}

Result<std::vector<Journal>> JournalStore::List() {
  std::vector<Journal> out;
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return out;
  std::vector<std::string> ids;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 5 && name.ends_with(".json")) ids.push_back(name.substr(0, name.size() - 5));
  }
  if (ec) return IOError(fmt::format("listing '{}': {}", dir_, ec.message()));
  std::sort(ids.begin(), ids.end());  // ids start with a UTC timestamp
  for (const std::string& id : ids) {
    ASSIGN_OR_RETURN(Journal j, Load(id));
    out.push_back(std::move(j));
  }
  return out;
}

Result<std::optional<Journal>> JournalStore::Running() {
  ASSIGN_OR_RETURN(std::vector<Journal> all, List());
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->state == "running") return std::optional<Journal>(std::move(*it));
  }
  return std::optional<Journal>();
}

Result<std::string> JournalStore::ActiveSite() {
  std::string path = dir_ + "/active";
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::string();
  ASSIGN_OR_RETURN(std::string text, ReadAll(path));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

Status JournalStore::SetActiveSite(const std::string& site) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return IOError(fmt::format("creating '{}': {}", dir_, ec.message()));
  return WriteFileAtomic(dir_ + "/active", site + "\n");
}

}  // namespace reprise::failover
