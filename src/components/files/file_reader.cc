#include "components/files/file_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "components/files/posix.h"

namespace reprise::files {

namespace {

// The data regions of `fd` below `size`, or nullopt when the filesystem cannot tell (the file
// is then read whole, which is always correct).
std::optional<std::vector<Extent>> DataRegions(int fd, uint64_t size) {
  std::vector<Extent> regions;
  uint64_t offset = 0;
  while (offset < size) {
    off_t data = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      return std::nullopt;
    }
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return std::nullopt;
    uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
    if (end <= static_cast<uint64_t>(data)) break;
    regions.push_back(
        {.offset = static_cast<uint64_t>(data), .length = end - static_cast<uint64_t>(data)});
    offset = end;
  }
  return regions;
}

bool IsWholeFile(const std::vector<Extent>& regions, uint64_t size) {
  return regions.size() == 1 && regions[0].offset == 0 && regions[0].length == size;
}

struct Copied {
  uint64_t bytes = 0;
  int read_errno = 0;  // non-zero: reading the file failed
};

// Copies up to `limit` bytes from `offset` (or to EOF when limit is nullopt) into `writer`.
// Sink failures are the error; file read failures are reported in Copied::read_errno.
Result<Copied> CopyRange(int fd, uint64_t offset, std::optional<uint64_t> limit,
                         ContentWriter& writer, BackupSink& sink, Bytes& buffer) {
  Copied copied;
  for (;;) {
    size_t want = buffer.size();
    if (limit) want = static_cast<size_t>(std::min<uint64_t>(want, *limit - copied.bytes));
    if (want == 0) return copied;
    ssize_t n = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset + copied.bytes));
    if (n < 0) {
      if (errno == EINTR) continue;
      copied.read_errno = errno;
      return copied;
    }
    if (n == 0) return copied;  // EOF, possibly early: the caller compares sizes
    RETURN_IF_ERROR(writer.Write(ByteView(buffer.data(), static_cast<size_t>(n))));
    copied.bytes += static_cast<uint64_t>(n);
    sink.progress().bytes_read.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
}

void WarnUnreadable(BackupSink& sink, const std::string& path, int err) {
  sink.Warn("cannot read '" + Printable(path) + "': " + std::strerror(err) +
            "; the file is not saved");
}

// Whole file to EOF in one content.
Result<std::optional<FileData>> ReadWhole(int fd, const std::string& path, BackupSink& sink,
                                          Bytes& buffer) {
  std::unique_ptr<ContentWriter> writer = sink.NewContent();
  ASSIGN_OR_RETURN(Copied copied, CopyRange(fd, 0, std::nullopt, *writer, sink, buffer));
  ContentFuture future = writer->Close();  // on a read error, dropped unreferenced
  if (copied.read_errno != 0) {
    WarnUnreadable(sink, path, copied.read_errno);
    return std::optional<FileData>();
  }
  FileData data;
  data.size = copied.bytes;
  data.contents.push_back(std::move(future));
  return std::optional<FileData>(std::move(data));
}

// Data regions only, one content each; the apparent size is kept.
Result<std::optional<FileData>> ReadSparse(int fd, uint64_t size, std::vector<Extent> regions,
                                           const std::string& path, BackupSink& sink,
                                           Bytes& buffer) {
  FileData data;
  data.sparse = true;
  data.size = size;
  for (Extent& region : regions) {
    std::unique_ptr<ContentWriter> writer = sink.NewContent();
    ASSIGN_OR_RETURN(Copied copied,
                     CopyRange(fd, region.offset, region.length, *writer, sink, buffer));
    ContentFuture future = writer->Close();
    if (copied.read_errno != 0) {
      WarnUnreadable(sink, path, copied.read_errno);
      return std::optional<FileData>();
    }
    region.length = copied.bytes;  // shorter when the file shrank meanwhile (warned below)
    data.extents.push_back(region);
    data.contents.push_back(std::move(future));
  }
  return std::optional<FileData>(std::move(data));
}

void WarnIfChanged(int fd, const struct stat& before, const FileData& data, const std::string& path,
                   BackupSink& sink) {
  struct stat after;
  bool changed = ::fstat(fd, &after) != 0 || after.st_size != before.st_size ||
                 TimespecToNs(after.st_mtim) != TimespecToNs(before.st_mtim);
  if (!data.sparse) changed = changed || data.size != static_cast<uint64_t>(before.st_size);
  if (changed) {
    sink.Warn("'" + Printable(path) + "' changed while it was being read; the saved copy (" +
              std::to_string(data.size) + " bytes) may be inconsistent");
  }
}

}  // namespace

Result<std::optional<FileData>> ReadFileData(int fd, const struct stat& st, const std::string& path,
                                             BackupSink& sink, Bytes& buffer) {
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  const auto size = static_cast<uint64_t>(st.st_size);
  std::optional<std::vector<Extent>> regions;
  if (static_cast<uint64_t>(st.st_blocks) * 512 < size) regions = DataRegions(fd, size);

  std::optional<FileData> data;
  if (regions && !IsWholeFile(*regions, size)) {
    ASSIGN_OR_RETURN(data, ReadSparse(fd, size, std::move(*regions), path, sink, buffer));
  } else {
    ASSIGN_OR_RETURN(data, ReadWhole(fd, path, sink, buffer));
  }
  if (data) WarnIfChanged(fd, st, *data, path, sink);
  return data;
}

}  // namespace reprise::files
