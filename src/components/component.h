// Component: turns a live system into manifest entries and content streams for backup, and
// takes them back for restore. A component never touches storage: it writes through a
// BackupSink and reads through a RestoreSource, both provided by the engine (repo/engine.h),
// which chunks, deduplicates, compresses, encrypts and packs.
//
// The manifest of a component is a sequence of JSON objects (entries) whose fields the
// component chooses, except one that the engine owns: "contents", a list of content lists,
// one per ContentFuture passed to AddEntry, each content list being [[<blob id hex>, <len>], ...].
// The engine resolves the futures and writes entries in the order they were added.
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/result.h"

namespace reprise {

struct ChunkRef {
  Id id;
  uint32_t length = 0;
};

// The chunks of one stream, in order.
struct Content {
  std::vector<ChunkRef> chunks;
  uint64_t size = 0;
  // Fixed-block contents are recorded as a block map blob (docs/repository-format.md, "Block
  // maps") whose id is this; in the manifest they read {"map": <id hex>, "size": n}. Parsed
  // back from a manifest, such a content has `map` set and `chunks` empty until resolved
  // (RestoreSource::Resolve).
  std::optional<Id> map;
};

// How a content stream is cut.
struct ContentOptions {
  // Cut into blocks of exactly this many bytes (the last may be shorter) instead of
  // content-defined chunks, and record them in a block map. For files that change in place
  // at fixed offsets (database pages): a changed page costs one block, not a whole chunk.
  uint32_t fixed_block = 0;
  // With fixed_block: the same object's content in the previous point (its {"map": ...}), or
  // null. The new map then records only the blocks that differ from it.
  nlohmann::json previous;
};
nlohmann::json ContentToJson(const Content& content);
Result<Content> ContentFromJson(const nlohmann::json& j);

using ContentFuture = std::shared_future<Result<Content>>;

// One stream being written. Write() may block to bound memory (backpressure).
class ContentWriter {
 public:
  virtual ~ContentWriter() = default;
  virtual Status Write(ByteView data) = 0;
  // Ends the stream. The future resolves once every chunk is stored (or failed).
  virtual ContentFuture Close() = 0;
};

struct BackupProgress {
  // Updated by components, read by the progress display. Relaxed counters.
  std::atomic<uint64_t> entries{0};
  std::atomic<uint64_t> bytes_read{0};
};

// Reads a manifest forward, one entry at a time.
class ManifestCursor {
 public:
  virtual ~ManifestCursor() = default;
  // The next entry, or nullptr at the end. The pointer is valid until the next call.
  virtual Result<const nlohmann::json*> Next() = 0;
};

// An entry whose content is still being read (by another thread): null `entry` means the
// object turned out not to be saveable (it was warned about) and adds nothing.
struct DeferredEntry {
  nlohmann::json entry;
  std::vector<ContentFuture> contents;
};
using EntryFuture = std::shared_future<Result<DeferredEntry>>;

class BackupSink {
 public:
  virtual ~BackupSink() = default;
  // The manifest this component saved last time (the newest earlier point of this host with a
  // component of the same name and kind that succeeded), or null when there is none. A
  // component may use it to skip reading what has not changed since.
  virtual std::unique_ptr<ManifestCursor> Previous() { return nullptr; }
  // True when every chunk of `content` (an element of a previous entry's "contents") is still
  // in the repository, so it may be reused without reading the data again.
  virtual bool Reusable(const nlohmann::json& content) { return false; }
  // A content already stored (reused from a previous entry), as a future for AddEntry.
  static ContentFuture Ready(Content content);
  virtual std::unique_ptr<ContentWriter> NewContent() = 0;
  // A stream cut as `options` say. Sinks without block maps cut it as NewContent() does.
  virtual std::unique_ptr<ContentWriter> NewContent(const ContentOptions& options) {
    return NewContent();
  }
  // Appends an entry; `contents` become entry["contents"] once resolved, in order.
  virtual Status AddEntry(nlohmann::json entry, std::vector<ContentFuture> contents) = 0;
  // Appends an entry that another thread is still producing; it keeps its place in the order.
  // Lets a component read several files at once. The default waits for it.
  virtual Status AddEntryLater(EntryFuture entry);
  // A non-fatal problem (file vanished, permission denied): recorded in the point, counted,
  // shown to the user; the backup goes on and is marked as having warnings.
  virtual void Warn(std::string message) = 0;
  virtual BackupProgress& progress() = 0;
};

class RestoreSource {
 public:
  virtual ~RestoreSource() = default;
  // Calls `fn` for each manifest entry in order; stops at the first error.
  virtual Status ForEachEntry(const std::function<Status(const nlohmann::json&)>& fn) = 0;
  // Reads one content list (an element of entry["contents"]) and calls `sink` with its bytes
  // in order. Every chunk is authenticated before it is passed on; on a damaged chunk this
  // returns kCorruption naming the blob and its pack, after having passed only good bytes.
  virtual Status ReadContent(const nlohmann::json& content,
                             const std::function<Status(ByteView)>& sink) = 0;
  // Several content lists at once, for many small files: `sink(i, bytes)` gets the bytes of
  // contents[i], in order, content after content. A repository reads the chunks of all of them
  // in as few ranged reads as their places in the packs allow (one GET for a run of small
  // files backed up together, instead of one each). The default reads them one by one.
  virtual Status ReadContents(const std::vector<const nlohmann::json*>& contents,
                              const std::function<Status(size_t, ByteView)>& sink) {
    for (size_t i = 0; i < contents.size(); ++i) {
      RETURN_IF_ERROR(ReadContent(*contents[i], [&](ByteView b) { return sink(i, b); }));
    }
    return Status::Ok();
  }
  // The chunks of a content list in order, block maps resolved (for delta restore).
  virtual Result<Content> Resolve(const nlohmann::json& content) {
    return ContentFromJson(content);
  }
  // The id a chunk holding exactly `data` has in this repository: lets a component compare
  // what is already on disk with a chunk before fetching it.
  virtual std::optional<Id> ChunkIdOf(ByteView data) { return std::nullopt; }
  // One chunk's bytes, authenticated.
  virtual Result<Bytes> ReadChunk(const ChunkRef& chunk) {
    return Unimplemented("reading single chunks");
  }
  // Says that the restore will read every content of the manifest, in manifest order (a
  // whole restore, no filter, no delta): a repository may then plan its reads, fetching each
  // pack's needed span once instead of blob by blob. Called before ForEachEntry, or never.
  virtual Status ExpectFullRead() { return Status::Ok(); }
};

struct RestoreOptions {
  std::string target;      // directory to restore into (component-specific meaning)
  bool overwrite = false;  // replace existing files in the target
  std::vector<std::string> include;  // restore only these paths (prefix match), empty = all
  // Non-fatal problems (an owner that cannot be set, a device that needs privileges). When
  // unset, components print them to stderr as "warning: ...".
  std::function<void(const std::string&)> warn;
  // Kind-specific settings (postgres: {"delta": true, "os_user": "postgres",
  // "tablespace_map": {"16400": "/new/place"}}); components ignore keys they do not know.
  nlohmann::json params = nlohmann::json::object();
};

class Component {
 public:
  virtual ~Component() = default;
  virtual std::string kind() const = 0;
  // Saves the live system. Returns what the point records about this component (positions,
  // roots, counts), as a JSON object.
  virtual Result<nlohmann::json> Backup(BackupSink& sink) = 0;
  // Brings it back from a point. `info` is what Backup returned.
  virtual Status Restore(const nlohmann::json& info, RestoreSource& source,
                         const RestoreOptions& options) = 0;
};

}  // namespace reprise
