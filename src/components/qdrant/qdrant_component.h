// kind: qdrant (docs/components/qdrant.md). Backup: for every collection (or those named), on
// every peer, create a snapshot through the REST API, stream it into the repository checking
// its SHA-256 against the server's checksum, then delete it from the server. Restore: upload
// the snapshot (multipart, priority=snapshot, checksum) or let the server recover it from a
// URL that reprise serves; 202 Accepted is polled until done; a snapshot taken by another
// Qdrant minor version is refused unless params {"force": true}.
#pragma once

#include <memory>
#include <string>

#include "components/component.h"
#include "plan/plan.h"

namespace reprise {

// `api_key`: the resolved secret, "" for none. A restore-only component (empty spec.url)
// restores to RestoreOptions::target.
std::unique_ptr<Component> MakeQdrantComponent(QdrantSpec spec, std::string api_key);

}  // namespace reprise
