#include "storage/storage.h"

#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>

#include "storage/local/local_storage.h"
#include "storage/retry_storage.h"
#include "storage/s3/credentials.h"
#include "storage/s3/s3_storage.h"

namespace reprise {

namespace {

class BufferedObjectWriter final : public ObjectWriter {
 public:
  BufferedObjectWriter(Storage& storage, std::string key)
      : storage_(storage), key_(std::move(key)) {}
  uint8_t* Reserve(size_t n) override {
    if (data_.size() < size_ + n) data_.resize(size_ + n);
    reserved_ = n;
    return data_.data() + size_;
  }
  Status Append(size_t n) override {
    if (n > reserved_) return Internal("ObjectWriter: appending more than reserved");
    reserved_ = 0;
    size_ += n;
    return Status::Ok();
  }
  Status Commit() override { return storage_.Put(key_, ByteView(data_.data(), size_)); }

 private:
  Storage& storage_;
  std::string key_;
  Bytes data_;
  size_t size_ = 0, reserved_ = 0;
};

}  // namespace

Result<std::unique_ptr<ObjectWriter>> Storage::OpenWriter(const std::string& key) {
  RETURN_IF_ERROR(ValidateStorageKey(key, false));
  return std::unique_ptr<ObjectWriter>(new BufferedObjectWriter(*this, key));
}

namespace {
constexpr std::string_view kTempMarker = ".tmp-";

Status InvalidKey(std::string_view key, std::string_view why) {
  return InvalidArgument("invalid storage key '" + std::string(key) + "': " + std::string(why));
}

}  // namespace

// Checks the components of a relative, '/'-separated key. With `is_prefix` (List prefixes
// such as "", "data/" or "data/ab") the last component may be empty or partial.
Status ValidateStorageKey(std::string_view key, bool is_prefix) {
  if (key.empty()) {
    if (is_prefix) return Status::Ok();
    return InvalidKey(key, "it is empty");
  }
  if (key.front() == '/') return InvalidKey(key, "it is absolute");
  if (key.find('\0') != std::string_view::npos) return InvalidKey(key, "it contains a NUL byte");
  if (!is_prefix && key.find(kTempMarker) != std::string_view::npos)
    return InvalidKey(key, "'.tmp-' is reserved for temporary files");
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    bool last = slash == std::string_view::npos;
    std::string_view part = key.substr(start, last ? std::string_view::npos : slash - start);
    if (part.empty() && !(last && is_prefix)) return InvalidKey(key, "it has an empty component");
    // A prefix's last component is a name prefix ("data/a" matches "data/ab/..."), so "."
    // there is harmless; but ".." and "." as directory components would leave or alias root.
    if ((part == "." || part == "..") && !(last && is_prefix))
      return InvalidKey(key, "it has a '" + std::string(part) + "' component");
    if (last) break;
    start = slash + 1;
  }
  return Status::Ok();
}



namespace {

constexpr std::string_view kAccepted =
    "HINT: use a path (/backups/rag), a file URL (file:///backups/rag) or "
    "s3://bucket/prefix?endpoint=https://host&region=name";

}  // namespace

Result<std::unique_ptr<Storage>> OpenStorage(const std::string& url) {
  return OpenStorage(url, nullptr);
}

Result<std::unique_ptr<Storage>> OpenStorage(const std::string& url,
                                             const StorageCredentials* credentials) {
  std::string_view u = url;
  if (u.empty()) return InvalidArgument("repository url is empty: " + std::string(kAccepted));

  std::string path;
  if (u.starts_with("file://")) {
    path = std::string(u.substr(7));
    if (path.empty() || path.front() != '/') {
      return InvalidArgument("repository url '" + url +
                             "' is not a local file URL: it must be file:// followed by an "
                             "absolute path, as in file:///backups/rag");
    }
  } else if (u.starts_with("s3://")) {
    // The environment is read here, at the front door, and handed down.
    std::optional<s3::Credentials> given;
    if (credentials) {
      given = s3::Credentials{.access_key_id = credentials->access_key_id,
                              .secret_access_key = credentials->secret_access_key,
                              .session_token = credentials->session_token};
    }
    ASSIGN_OR_RETURN(std::unique_ptr<S3Storage> s3_storage,
                     OpenS3Storage(url, s3::ProcessEnv(), given ? &*given : nullptr,
                                   credentials ? credentials->origin : ""));
    return std::unique_ptr<Storage>(std::make_unique<RetryStorage>(std::move(s3_storage)));
  } else if (u.find("://") != std::string_view::npos) {
    return InvalidArgument("repository url '" + url + "' has an unsupported scheme: " +
                           std::string(kAccepted));
  } else {
    path = url;
  }

  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) {
    return IOError("cannot make repository path '" + path + "' absolute: " + ec.message());
  }
  return std::unique_ptr<Storage>(std::make_unique<LocalStorage>(abs));
}

}  // namespace reprise
