#include "components/s3/s3_documents.h"

#include <sstream>

namespace reprise {

namespace {

class S3DocumentsComponent final : public Component {
 public:
  S3DocumentsComponent(S3DocumentsSpec spec, std::optional<StorageCredentials> credentials)
      : spec_(std::move(spec)), credentials_(std::move(credentials)) {}
  std::string kind() const override { return "s3"; }
  Result<nlohmann::json> Backup(BackupSink&) override {
    return Unimplemented("kind 's3' is being built");
  }
  Status Restore(const nlohmann::json&, RestoreSource&, const RestoreOptions&) override {
    return Unimplemented("kind 's3' is being built");
  }

 private:
  S3DocumentsSpec spec_;
  std::optional<StorageCredentials> credentials_;
};

}  // namespace

std::unique_ptr<Component> MakeS3DocumentsComponent(
    S3DocumentsSpec spec, std::optional<StorageCredentials> credentials) {
  return std::make_unique<S3DocumentsComponent>(std::move(spec), std::move(credentials));
}

Result<StorageCredentials> ParseCredentialsSecret(std::string_view text, std::string origin) {
  std::vector<std::string> parts;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t b = 0;
    while (b < line.size() && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
    if (b < line.size()) parts.push_back(line.substr(b));
  }
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidArgument(origin + " has " + std::to_string(parts.size()) +
                           " non-empty line(s): HINT: write 2 or 3 lines: the access key id, "
                           "the secret access key, and optionally a session token");
  }
  return StorageCredentials{.access_key_id = parts[0],
                            .secret_access_key = parts[1],
                            .session_token = parts.size() > 2 ? parts[2] : "",
                            .origin = std::move(origin)};
}

}  // namespace reprise
