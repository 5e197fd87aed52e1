// Repositories written by earlier releases stay readable (tests/golden/README.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/bytes.h"
#include "harness.h"
#include "repo/crypto.h"

namespace reprise::testing {
namespace {

namespace fs = std::filesystem;

std::string Sha256Of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return Sha256(AsBytes(ss.str())).Hex();
}

TEST(GoldenRepository, Version1OpensChecksAndRestores) {
  TempDir tmp;
  // Work on a copy: commands take locks, and the golden files must never change.
  std::string repo = tmp.path() + "/repo";
  fs::copy(fs::path(REPRISE_SOURCE_DIR) / "tests/golden/v1", repo, fs::copy_options::recursive);
  std::string pw = tmp.path() + "/pw";
  WriteFile(pw, "golden-v1\n");
  std::vector<std::string> env = {"REPRISE_REPOSITORY=" + repo, "REPRISE_PASSWORD_FILE=" + pw};

  auto check = RunCommand({REPRISE_BINARY, "check", "--read-data"}, env);
  EXPECT_EQ(check.exit_code, 0) << check.err;

  std::string target = tmp.path() + "/out";
  auto restore = RunCommand({REPRISE_BINARY, "restore", "latest", "--target", target}, env);
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  std::string root = target + "/tmp/golden-src/golden";
  EXPECT_EQ(Sha256Of(root + "/a.txt"),
            "3585ff92a190a8dc23da1c2dde1cdd4662d0e0b15ae68ad04e635d9097425bd0");
  EXPECT_EQ(Sha256Of(root + "/dir/b.bin"),
            "b2aa5e3af4c585ab3845f438c284ba8b277ca8c13130a06435e7deaa3c5680d4");
  EXPECT_EQ(fs::read_symlink(root + "/link"), "a.txt");
}

}  // namespace
}  // namespace reprise::testing
