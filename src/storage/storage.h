// Storage: where a repository's objects live. The repository layer names every object with a
// relative key ("config", "keys/<id>", "data/ab/<id>", "index/<id>", "points/<id>",
// "locks/<id>"); a backend stores bytes under keys and knows nothing of what they mean.
//
// Contract every backend keeps (tests/unit/storage_conformance_test.cc checks it):
// - Put is atomic and durable: when it returns OK the whole object is stored and survives a
//   crash or power loss; if the process dies during Put, the key is absent or holds the old
//   value, never a prefix. Put replaces an existing object.
// - Get/GetRange return exactly the stored bytes; a missing key is kNotFound. GetRange past
//   the end is kInvalidArgument.
// - Delete of a missing key is OK (idempotent).
// - List(prefix) returns every object whose key starts with `prefix` (recursively), in no
//   particular order; temp files of unfinished Puts are never listed.
// - Transient failures are kUnavailable (the caller may retry); a backend never retries
//   inside itself (retry is a wrapper).
// - All methods are safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace reprise {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
};

// An object written piece by piece (a WAL pack while its blobs are still being sealed).
// Nothing is visible under the key before Commit returns OK; a writer destroyed without a
// successful Commit leaves nothing behind.
class ObjectWriter {
 public:
  virtual ~ObjectWriter() = default;
  // Room for the object's next `n` bytes, to be filled in place and then passed to Append;
  // valid until the next call on this writer.
  virtual uint8_t* Reserve(size_t n) = 0;
  // The first `n` bytes at Reserve's pointer (n at most what was reserved) come next.
  virtual Status Append(size_t n) = 0;
  // Makes the object durable and visible under its key (as Put does).
  virtual Status Commit() = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  // Where this is, for messages: "/backups/rag", "s3://bucket/prefix".
  virtual std::string Location() const = 0;

  virtual Result<Bytes> Get(const std::string& key) = 0;
  virtual Result<Bytes> GetRange(const std::string& key, uint64_t offset, uint64_t length) = 0;
  virtual Status Put(const std::string& key, ByteView data) = 0;
  // A writer for `key`. The default collects the bytes and Puts them on Commit; the local
  // backend streams them to a temp file as they come, bypassing the page cache (O_DIRECT).
  virtual Result<std::unique_ptr<ObjectWriter>> OpenWriter(const std::string& key);
  virtual Status Delete(const std::string& key) = 0;
  virtual Result<ObjectInfo> Stat(const std::string& key) = 0;
  virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) = 0;
};

// The key rules every backend enforces: relative, '/'-separated, no empty, "." or ".."
// component, no NUL, no ".tmp-" (reserved for unfinished writes). With `is_prefix` (a List
// prefix such as "", "data/" or "data/ab") the last component may be empty or partial.
Status ValidateStorageKey(std::string_view key, bool is_prefix);

// Opens a backend from a repository URL: "/path", "file:///path", or
// "s3://bucket/prefix?endpoint=...&region=...&path_style=1" (docs/storage-s3.md; S3 is
// wrapped in RetryStorage). The location need not exist yet: `init` creates it on first Put
// (an S3 bucket must exist).
Result<std::unique_ptr<Storage>> OpenStorage(const std::string& url);

// Credentials the caller found for a repository (a plan site's `credentials` secret). For an
// s3:// URL they replace the AWS_* variables and the credentials file entirely; a local
// repository needs none and ignores them. `origin` names where they came from, for messages
// ("secret 's3_dr' of site 'dr'"); no message ever holds the values.
struct StorageCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" unless temporary credentials
  std::string origin;
};

// OpenStorage(url), with `credentials` when not null.
Result<std::unique_ptr<Storage>> OpenStorage(const std::string& url,
                                             const StorageCredentials* credentials);

}  // namespace reprise
