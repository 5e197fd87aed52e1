#include "components/files/owners.h"

#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <vector>

#include "common/bytes.h"

namespace reprise::files {

namespace {

// Calls a getXXid_r function, growing the buffer on ERANGE. Empty when there is no name.
template <typename Record, typename Id, typename Lookup, typename NameOf>
std::string LookUp(Id id, Lookup lookup, NameOf name_of) {
  std::vector<char> buffer(1024);
  Record record{};
  Record* found = nullptr;
  for (;;) {
    int err = lookup(id, &record, buffer.data(), buffer.size(), &found);
    if (err == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (err != 0 || found == nullptr) return std::string();
    std::string name = name_of(*found);
    return IsValidUtf8(name) ? name : std::string();
  }
}

}  // namespace

const std::string& OwnerNames::User(uid_t uid) {
  auto it = users_.find(uid);
  if (it != users_.end()) return it->second;
  std::string name =
      LookUp<struct passwd>(uid, getpwuid_r, [](const struct passwd& p) { return p.pw_name; });
  return users_.emplace(uid, std::move(name)).first->second;
}

const std::string& OwnerNames::Group(gid_t gid) {
  auto it = groups_.find(gid);
  if (it != groups_.end()) return it->second;
  std::string name =
      LookUp<struct group>(gid, getgrgid_r, [](const struct group& g) { return g.gr_name; });
  return groups_.emplace(gid, std::move(name)).first->second;
}

}  // namespace reprise::files
