// kind: s3 (docs/components/s3.md): the objects of a bucket (under a prefix) with their
// content type and user metadata. Incremental: an object whose ETag, size and last-modified
// equal those of the previous point is not downloaded again. Restore to the same or another
// bucket/endpoint (RestoreOptions::target, an s3:// URL), optionally deleting objects that
// were not in the point (params {"delete": true}).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "components/component.h"
#include "plan/plan.h"
#include "storage/storage.h"

namespace reprise {

// `credentials`: from the plan's secret (nullopt: AWS_* environment / credentials file).
// A restore-only component (empty spec.url) restores to RestoreOptions::target.
std::unique_ptr<Component> MakeS3DocumentsComponent(
    S3DocumentsSpec spec, std::optional<StorageCredentials> credentials);

// A secret holding S3 credentials: 2 or 3 lines (access key id, secret key, session token),
// as a site's credentials file is written, or an env secret's variables joined by '\n'.
Result<StorageCredentials> ParseCredentialsSecret(std::string_view text, std::string origin);

// What a restore did. Component::Restore returns only a Status; this is the same restore
// with its counts (tests, and callers that report them).
struct S3RestoreReport {
  std::string target;         // "s3://bucket/prefix"
  uint64_t objects = 0;       // in the point (after RestoreOptions::include)
  uint64_t uploaded = 0;      // PUT (single or multipart)
  uint64_t uploaded_bytes = 0;
  uint64_t unchanged = 0;     // already in the target with the same ETag, size and attributes
  uint64_t deleted = 0;       // params {"delete": true}: target objects not in the point
};

// Restores the point's objects as Component::Restore does. `spec` gives connections and the
// default target (spec.url) when options.target is empty.
Result<S3RestoreReport> RestoreS3Documents(const nlohmann::json& info, RestoreSource& source,
                                           const RestoreOptions& options,
                                           const S3DocumentsSpec& spec,
                                           const std::optional<StorageCredentials>& credentials);

}  // namespace reprise
