// Writes that bypass the page cache (O_DIRECT), shared by the local storage's object writer
// and the restore's file writer: data written once and not read back soon (packs, restored
// database files) is not copied into the page cache, and fsync has little left to flush.
// O_DIRECT needs 4 KiB-aligned buffers, lengths and offsets (kDirectAlign); a filesystem that
// refuses it gets ordinary writes.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace reprise {

inline constexpr size_t kDirectAlign = 4096;

// open(path, O_WRONLY | O_CREAT | `flags` | O_DIRECT, mode), retried without O_DIRECT when the
// filesystem refuses it (EINVAL); `direct` says which. -1 and errno as open() on failure.
int OpenDirect(const char* path, int flags, mode_t mode, bool* direct);

// Turns O_DIRECT off on `fd` (for an unaligned tail), and `direct` with it.
Status DropDirect(int fd, std::atomic<bool>& direct, std::string_view path);

// pwrite() of all of `data` at `offset`, retrying on EINTR; on EINVAL while `direct` (an
// alignment this filesystem does not take) it drops O_DIRECT and goes on with ordinary writes.
Status PwriteAll(int fd, ByteView data, uint64_t offset, std::atomic<bool>& direct,
                 std::string_view path);

}  // namespace reprise
