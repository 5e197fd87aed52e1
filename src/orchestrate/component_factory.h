// Builds components: from a plan's component spec for backup, from a point's recorded kind
// for restore. Kinds not built yet fail with kUnimplemented, said plainly.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "components/component.h"
#include "plan/plan.h"

namespace reprise {

Result<std::unique_ptr<Component>> MakeComponent(const ComponentSpec& spec);
Result<std::unique_ptr<Component>> MakeComponentForRestore(const std::string& kind);
// A files component for ad-hoc paths (`reprise backup PATH...`). Paths are made absolute.
Result<std::unique_ptr<Component>> MakeFilesComponent(const std::vector<std::string>& paths,
                                                      const std::vector<std::string>& excludes);

}  // namespace reprise
