// User and group names of numeric ids, looked up once per id (getpwuid_r/getgrgid_r).
// Not thread-safe: one cache per walk.
#pragma once

#include <sys/types.h>

#include <string>
#include <unordered_map>

namespace reprise::files {

class OwnerNames {
 public:
  // Empty when the id has no name or the name is not valid UTF-8.
  const std::string& User(uid_t uid);
  const std::string& Group(gid_t gid);

 private:
  std::unordered_map<uid_t, std::string> users_;
  std::unordered_map<gid_t, std::string> groups_;
};

}  // namespace reprise::files
