// What the repository unit tests share: a per-test directory and options that make a test
// repository quick to create (scrypt at N=1024 instead of the production cost).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "repo/repository.h"

namespace reprise::testing_support {

// Options with a cheap key derivation; the rest as `reprise init` sets it.
inline InitOptions FastInitOptions() {
  InitOptions options;
  options.kdf = ScryptParams{.n = 1024, .r = 8, .p = 1};
  return options;
}

// <tmp>/<prefix>-<pid>-<running test's name>, emptied: a fresh directory per test, so that
// tests run by parallel processes never meet.
inline std::filesystem::path FreshTestDir(const std::string& prefix) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      (prefix + "-" + std::to_string(getpid()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace reprise::testing_support
