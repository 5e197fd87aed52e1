#include "storage/storage.h"

#include <filesystem>
#include <string_view>
#include <system_error>

#include "storage/local/local_storage.h"

namespace reprise {

namespace {

constexpr std::string_view kAccepted =
    "HINT: use a path (/backups/rag), a file URL (file:///backups/rag) or, once the S3 backend "
    "is built, s3://bucket/prefix";

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
    return Unimplemented("repository url '" + url +
                         "': s3 repositories come with the S3 backend (not built yet)");
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
