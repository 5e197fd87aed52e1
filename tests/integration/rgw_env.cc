#include "rgw_env.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>

namespace reprise::testing {

std::optional<RgwEnv> LoadRgwEnv() {
  std::map<std::string, std::string> vars;
  if (const char* file = std::getenv("REPRISE_TEST_S3_ENV_FILE"); file && *file) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("export ")) line.erase(0, 7);
      size_t eq = line.find('=');
      if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  auto get = [&](const std::string& name) -> std::string {
    if (const char* v = std::getenv(name.c_str()); v && *v) return v;
    auto it = vars.find(name);
    return it == vars.end() ? "" : it->second;
  };
  RgwEnv e{get("REPRISE_TEST_S3_ENDPOINT"),
           get("REPRISE_TEST_S3_REGION"),
           get("REPRISE_TEST_S3_ACCESS_KEY"),
           get("REPRISE_TEST_S3_SECRET_KEY"),
           get("REPRISE_TEST_S3_OTHER_ACCESS_KEY"),
           get("REPRISE_TEST_S3_OTHER_SECRET_KEY"),
           get("REPRISE_TEST_S3_BUCKET"),
           get("REPRISE_TEST_S3_USER"),
           get("REPRISE_TEST_S3_APPEND_USER"),
           get("REPRISE_TEST_S3_APPEND_ACCESS_KEY"),
           get("REPRISE_TEST_S3_APPEND_SECRET_KEY")};
  if (e.endpoint.empty() || e.access_key.empty() || e.secret_key.empty()) return std::nullopt;
  if (e.region.empty()) e.region = "us-east-1";
  if (e.bucket_prefix.empty()) e.bucket_prefix = "reprise-test";
  return e;
}

std::string RandomHex(size_t n) {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard lk(mu);
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back("0123456789abcdef"[rng() % 16]);
  return out;
}

}  // namespace reprise::testing
