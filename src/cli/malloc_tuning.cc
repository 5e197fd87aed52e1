#include "cli/malloc_tuning.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>

namespace reprise::cli {
namespace {

// Set, with GLIBC_TUNABLES, only across our own re-exec.
constexpr const char* kReexecMarker = "REPRISE_MALLOC_REEXEC";
constexpr const char* kHugeTunable = "glibc.malloc.hugetlb=1";

// Commands that move bulk data through large buffers. The re-exec costs a process start
// (7 ms of a 90 ms wal-push of a 16 MiB segment), which short commands would only pay for.
bool MovesBulkData(std::string_view command) {
  static constexpr std::string_view kBulk[] = {"backup",   "restore", "copy",
                                               "check",    "prune",   "wal-stream",
                                               "failover", "rebuild", "failback"};
  return std::find(std::begin(kBulk), std::end(kBulk), command) != std::end(kBulk);
}

bool HugePagesOnRequest() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  return std::getline(f, modes) && modes.find("[madvise]") != std::string::npos;
}

}  // namespace

void AskForHugePages(char** argv, std::string_view command) {
  if (const char* marker = std::getenv(kReexecMarker)) {
    // We are the re-executed process: glibc has read the tunable; our children must not.
    if (std::strcmp(marker, "1") == 0) ::unsetenv("GLIBC_TUNABLES");
    ::unsetenv(kReexecMarker);
    return;
  }
  if (std::getenv("GLIBC_TUNABLES") != nullptr) return;
  if (const char* opt = std::getenv("REPRISE_HUGE_PAGES"); opt && std::strcmp(opt, "0") == 0)
    return;
  if (!MovesBulkData(command) || !HugePagesOnRequest()) return;
  if (::setenv("GLIBC_TUNABLES", kHugeTunable, 1) != 0) return;
  if (::setenv(kReexecMarker, "1", 1) != 0) {
    ::unsetenv("GLIBC_TUNABLES");
    return;
  }
  // The binary's own path, not /proc/self/exe: the process's name (ps, pgrep, top) is the
  // file name exec'd, and must stay "reprise", not "exe".
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n > 0 && static_cast<size_t>(n) < sizeof(path) - 1) {
    path[n] = '\0';
    std::string_view self(path, static_cast<size_t>(n));
    if (!self.ends_with(" (deleted)")) ::execv(path, argv);
  }
  // No /proc, or the binary was replaced or removed since: go on with the defaults.
  ::unsetenv("GLIBC_TUNABLES");
  ::unsetenv(kReexecMarker);
}

void TuneMalloc() {
  // Chunk, compression and pack buffers are 1-16 MiB and short-lived: keep them on the heap
  // and reuse their pages instead of mapping and faulting in fresh ones for each (a wal-push
  // of one 16 MiB segment otherwise spends more time in page faults than in compression).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  // One malloc arena per core, not glibc's eight: a restore's dozens of threads (writers,
  // readers, the read plan's fetcher) then reuse each other's freed buffers instead of each
  // faulting in pages of its own arena.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) {
    mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));
  }
}

}  // namespace reprise::cli
