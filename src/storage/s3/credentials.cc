#include "storage/s3/credentials.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>

namespace reprise::s3 {
namespace {

constexpr std::string_view kHint =
    "HINT: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put a profile in "
    "~/.aws/credentials (or the file named by AWS_SHARED_CREDENTIALS_FILE) and name it with "
    "AWS_PROFILE";

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// profile -> (key -> value) of an INI file; "[profile x]" (the config file's form) is read
// as "x" too.
std::map<std::string, std::map<std::string, std::string>> ParseIni(std::istream& in) {
  std::map<std::string, std::map<std::string, std::string>> out;
  std::string line, section;
  bool in_section = false;
  while (std::getline(in, line)) {
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      section = Trim(std::string_view(t).substr(1, t.size() - 2));
      if (section.starts_with("profile ")) section = Trim(section.substr(8));
      in_section = true;
      out[section];
      continue;
    }
    size_t eq = t.find('=');
    if (!in_section || eq == std::string::npos) continue;
    out[section][Lower(Trim(std::string_view(t).substr(0, eq)))] =
        Trim(std::string_view(t).substr(eq + 1));
  }
  return out;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

Result<Credentials> ResolveCredentials(const EnvLookup& env) {
  auto id = env("AWS_ACCESS_KEY_ID");
  auto secret = env("AWS_SECRET_ACCESS_KEY");
  if (id && secret) {
    return Credentials{.access_key_id = *id,
                       .secret_access_key = *secret,
                       .session_token = env("AWS_SESSION_TOKEN").value_or("")};
  }
  if (id || secret) {
    return Unauthenticated(std::string(id ? "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY"
                                          : "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID") +
                           " is not: HINT: set both, or neither to use ~/.aws/credentials");
  }

  std::string path;
  if (auto f = env("AWS_SHARED_CREDENTIALS_FILE")) {
    path = *f;
  } else if (auto home = env("HOME")) {
    path = *home + "/.aws/credentials";
  }
  std::string profile = env("AWS_PROFILE").value_or("default");
  if (path.empty())
    return Unauthenticated(
        "no s3 credentials: AWS_ACCESS_KEY_ID is not set and there is no "
        "HOME to find ~/.aws/credentials in: " +
        std::string(kHint));

  std::ifstream in(path);
  if (!in) {
    int err = errno;
    if (err == ENOENT) {
      return Unauthenticated("no s3 credentials: AWS_ACCESS_KEY_ID is not set and '" + path +
                             "' does not exist: " + std::string(kHint));
    }
    return ErrnoError("open credentials file", path, err);
  }
  auto ini = ParseIni(in);
  auto it = ini.find(profile);
  if (it == ini.end()) {
    return Unauthenticated("no s3 credentials: profile '" + profile + "' is not in '" + path +
                           "': " + std::string(kHint));
  }
  const auto& p = it->second;
  auto get = [&](const char* k) -> std::string {
    auto f = p.find(k);
    return f == p.end() ? "" : f->second;
  };
  Credentials c{.access_key_id = get("aws_access_key_id"),
                .secret_access_key = get("aws_secret_access_key"),
                .session_token = get("aws_session_token")};
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return Unauthenticated(
        "profile '" + profile + "' in '" + path +
        "' lacks aws_access_key_id or aws_secret_access_key: " + std::string(kHint));
  }
  return c;
}

std::string DefaultRegion(const EnvLookup& env) {
  if (auto r = env("AWS_REGION")) return *r;
  if (auto r = env("AWS_DEFAULT_REGION")) return *r;
  return "us-east-1";
}

}  // namespace reprise::s3
