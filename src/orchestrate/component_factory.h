// Builds components: from a plan's component spec for backup, from a point's recorded kind
// for restore. Kinds not built yet fail with kUnimplemented, said plainly.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "components/component.h"
#include "plan/plan.h"

namespace reprise {

// Looks up a plan secret's value by name (the CLI reads the file or environment it names).
using SecretLookup = std::function<Result<std::string>(const std::string& name)>;

Result<std::unique_ptr<Component>> MakeComponent(const ComponentSpec& spec,
                                                 const SecretLookup& secrets = nullptr);
// For restore: a component of `kind`. When `spec` (the plan's component of the same name) is
// given and of that kind, kinds whose restore needs the plan's settings (command: the restore
// command) are built from it; otherwise a restore-only component is made.
Result<std::unique_ptr<Component>> MakeComponentForRestore(const std::string& kind,
                                                           const ComponentSpec* spec = nullptr,
                                                           const SecretLookup& secrets = nullptr);
// A files component for ad-hoc paths (`reprise backup PATH...`). Paths are made absolute.
Result<std::unique_ptr<Component>> MakeFilesComponent(const std::vector<std::string>& paths,
                                                      const std::vector<std::string>& excludes);

}  // namespace reprise
