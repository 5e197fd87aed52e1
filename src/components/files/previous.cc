#include "components/files/previous.h"

#include "components/files/metadata.h"

namespace reprise::files {

bool WalkOrderLess(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    // '/' ends a component: it sorts before every byte.
    if (a[i] == '/') return true;
    if (b[i] == '/') return false;
    return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
  }
  return a.size() < b.size();
}

PreviousManifest::PreviousManifest(std::unique_ptr<ManifestCursor> cursor)
    : cursor_(std::move(cursor)) {
  done_ = !cursor_ || !Advance();
}

bool PreviousManifest::Advance() {
  for (;;) {
    auto next = cursor_->Next();
    // A damaged previous manifest only costs the optimisation: read everything again.
    if (!next.ok() || !*next) {
      current_ = nullptr;
      return false;
    }
    auto path = GetName(**next, "path");
    if (!path.ok()) continue;
    current_ = *next;
    current_path_ = std::move(*path);
    return true;
  }
}

const nlohmann::json* PreviousManifest::Find(const std::string& path) {
  while (!done_ && WalkOrderLess(current_path_, path)) done_ = !Advance();
  if (done_ || current_path_ != path) return nullptr;
  return current_;
}

}  // namespace reprise::files
