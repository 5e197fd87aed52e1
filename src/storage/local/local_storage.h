// A repository on a local (or mounted) filesystem. Put writes "<key>.tmp-<random>", fsyncs
// it, renames it over the key and fsyncs the directory, so a crash leaves either the old
// object or the new one. Leftover temp files are ignored by List and removed by Cleanup().
//
// Ownership: when root writes into a repository whose root directory belongs to another user
// (e.g. postgres, whose archive_command writes WAL into it), new files and directories are
// given to that user, so that root's backups never lock the other writer out.
#pragma once

#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <sys/types.h>
#include <unordered_map>

#include "storage/storage.h"

namespace reprise {

class LocalStorage final : public Storage {
 public:
  explicit LocalStorage(std::filesystem::path root);

  std::string Location() const override;
  Result<Bytes> Get(const std::string& key) override;
  Result<Bytes> GetRange(const std::string& key, uint64_t offset, uint64_t length) override;
  Status Put(const std::string& key, ByteView data) override;
  Result<std::unique_ptr<ObjectWriter>> OpenWriter(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Result<ObjectInfo> Stat(const std::string& key) override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;

  // Removes temp files left by killed writers (older than `min_age_seconds`).
  Status Cleanup(int64_t min_age_seconds);

 private:
  // An open object kept for ranged reads: restoring many small files reads many blobs from
  // the same few packs, and opening the pack each time costs more than reading the blob.
  struct OpenFile {
    int fd = -1;
    uint64_t size = 0;
    ~OpenFile();
  };
  Result<std::shared_ptr<OpenFile>> OpenForRead(const std::string& key);
  void Forget(const std::string& key);  // drops a cached descriptor (Put, Delete)

  std::filesystem::path PathOf(const std::string& key) const;
  std::filesystem::path root_;
  std::optional<std::pair<uid_t, gid_t>> owner_;  // see "Ownership"
  std::mutex cache_mu_;
  std::unordered_map<std::string, std::shared_ptr<OpenFile>> open_files_;
  std::deque<std::string> open_order_;  // oldest first, for eviction
};

}  // namespace reprise
