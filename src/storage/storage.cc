#include "storage/storage.h"

#include <filesystem>
#include <string_view>
#include <system_error>

#include "storage/local/local_storage.h"
#include "storage/retry_storage.h"
#include "storage/s3/credentials.h"
#include "storage/s3/s3_storage.h"

namespace reprise {

namespace {

constexpr std::string_view kAccepted =
    "HINT: use a path (/backups/rag), a file URL (file:///backups/rag) or "
    "s3://bucket/prefix?endpoint=https://host&region=name";

}  // namespace

Result<std::unique_ptr<Storage>> OpenStorage(const std::string& url) {
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
    ASSIGN_OR_RETURN(std::unique_ptr<S3Storage> s3_storage, OpenS3Storage(url, s3::ProcessEnv()));
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
