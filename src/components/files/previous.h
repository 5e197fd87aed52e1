// The previous backup's manifest, read forward in walk order alongside the walk, so an
// unchanged file can reuse its stored content without being read. Memory: one entry.
#pragma once

#include <memory>
#include <string>

#include "components/component.h"

namespace reprise::files {

// True when manifest path `a` comes before `b` in walk order: component by component, by
// bytes (so "a/b" < "a-b", unlike plain string order).
bool WalkOrderLess(const std::string& a, const std::string& b);

class PreviousManifest {
 public:
  explicit PreviousManifest(std::unique_ptr<ManifestCursor> cursor);
  // The previous entry for `path` (manifest form, raw bytes), or nullptr. Calls must come in
  // walk order; a path asked out of order is simply not found (the file is read again).
  const nlohmann::json* Find(const std::string& path);

 private:
  bool Advance();
  std::unique_ptr<ManifestCursor> cursor_;
  const nlohmann::json* current_ = nullptr;
  std::string current_path_;
  bool done_ = false;
};

}  // namespace reprise::files
