// How the process's malloc is set up before anything else runs (main's first call).
//
// reprise moves data in 0.5-16 MiB buffers (chunks, compressed blobs, pack pieces, HTTP
// bodies) on dozens of threads. glibc's defaults suit small, long-lived allocations; for
// these, the cost that dominated a restore was page faults on fresh memory (a third of the
// kernel time of a 1 GiB restore from S3). See docs/architecture.md, "Memory".
#pragma once

namespace reprise::cli {

// 1. Transparent huge pages for the heap, for the commands that move bulk data (backup,
//    restore, copy, check, prune, wal-stream, failover, rebuild, failback; not wal-push,
//    whose whole run is ~90 ms, nor the short ones): when the kernel gives them only on request
//    (/sys/kernel/mm/transparent_hugepage/enabled is "madvise"), re-executes this binary
//    (the path /proc/self/exe links to, so that the process keeps its name; same argv) once
//    with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, so that malloc asks for them; the variable
//    is removed again on arrival, so that children (pg_dump, psql, hooks) do not inherit it.
//    Skipped when GLIBC_TUNABLES is already set (the user's choice stands) or
//    REPRISE_HUGE_PAGES=0; an exec that fails changes nothing.
// 2. Large buffers stay on the heap (mmap threshold 64 MiB, trim threshold 256 MiB).
// 3. One malloc arena per core (at least 2) unless MALLOC_ARENA_MAX is set.
void TuneMalloc(char** argv);

}  // namespace reprise::cli
