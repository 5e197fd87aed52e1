// How the process's malloc is set up before anything else runs (main's first call).
//
// reprise moves data in 0.5-16 MiB buffers (chunks, compressed blobs, pack pieces, HTTP
// bodies) on dozens of threads. glibc's defaults suit small, long-lived allocations; for
// these, the cost that dominated a restore was page faults on fresh memory (a third of the
// kernel time of a 1 GiB restore from S3). See docs/architecture.md, "Memory".
#pragma once

#include <string_view>

namespace reprise::cli {

// Large buffers stay on the heap (mmap threshold 64 MiB, trim threshold 256 MiB), and one
// malloc arena per core (at least 2) unless MALLOC_ARENA_MAX is set. Call first, before any
// thread starts.
void TuneMalloc();

// Transparent huge pages for the heap, for the commands that move bulk data (`command`, the
// parsed subcommand: backup, restore, copy, check, prune, wal-stream, failover, rebuild,
// failback; not wal-push, whose whole run is ~90 ms, nor the short ones). When the kernel
// gives them only on request (/sys/kernel/mm/transparent_hugepage/enabled is "madvise"),
// re-executes this binary (the path /proc/self/exe links to, so that the process keeps its
// name; same argv) once with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, so that malloc asks for
// them. In the re-executed process, the variable is removed again, so that children
// (pg_dump, psql, hooks) do not inherit it. Skipped when GLIBC_TUNABLES is already set (the
// user's choice stands) or REPRISE_HUGE_PAGES=0; an exec that fails changes nothing. Call
// after the command line is parsed and before the command runs (nothing has started yet).
void AskForHugePages(char** argv, std::string_view command);

}  // namespace reprise::cli
