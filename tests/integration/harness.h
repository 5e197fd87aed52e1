// Test harness for driving the real `reprise` binary: run it with an environment, capture
// its output, and compare directory trees entry by entry (bytes and metadata).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace reprise::testing {

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs argv[0] with the given extra environment ("NAME=value"), stdin from /dev/null.
RunResult RunCommand(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});

// Everything restore promises to keep about one filesystem object.
struct EntryFacts {
  std::string type;  // file dir symlink fifo other
  unsigned mode = 0;
  unsigned uid = 0, gid = 0;
  long long mtime_ns = 0;
  long long size = 0;
  long long blocks = 0;     // allocated 512-byte blocks (sparse files stay small)
  std::string target;       // symlink target
  std::string sha256;       // regular files
  std::string link_group;   // the first relative path sharing this inode, for hard links
  bool operator==(const EntryFacts&) const = default;
};

// Relative path -> facts, for every object under `root` (root itself is "").
std::map<std::string, EntryFacts> Snapshot(const std::string& root);
// A readable list of the differences ("" when equal). Sparse files: `blocks` is compared as
// "still sparse" (restored blocks <= source blocks + 64), not exactly.
std::string Diff(const std::map<std::string, EntryFacts>& want,
                 const std::map<std::string, EntryFacts>& got);

// A fresh temp directory, traversable by everyone, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& content);
std::string RandomText(size_t n, unsigned seed);
// The non-empty lines of `text` (a command's stderr, say).
std::vector<std::string> NonEmptyLines(const std::string& text);
// Writes `n` incompressible bytes (seeded), so that packs fill up.
void WriteNoise(const std::string& path, size_t n, unsigned seed);

}  // namespace reprise::testing
