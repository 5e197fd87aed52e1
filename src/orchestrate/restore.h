// Restores the components of one point. Components are restored in the point's order (the
// tiered, parallel whole-stack restore comes with the stack components).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "components/component.h"
#include "orchestrate/component_factory.h"
#include "plan/plan.h"
#include "repo/point.h"
#include "repo/repository.h"

namespace reprise {

struct RestoreJob {
  std::vector<std::string> components;  // empty: all that succeeded in the point
  RestoreOptions options;
  // The plan, when there is one: components whose restore needs its settings (a command
  // component's restore command) are built from the component of the same name.
  const Plan* plan = nullptr;
  SecretLookup secrets;
};

struct ComponentRestoreReport {
  std::string name, kind;
  double seconds = 0;
  uint64_t bytes = 0;
};

struct RestoreReport {
  std::vector<ComponentRestoreReport> components;
  double seconds = 0;
  uint64_t bytes = 0;
};

Result<RestoreReport> RunRestore(Repository& repo, const Point& point, const RestoreJob& job,
                                 const std::function<void(const std::string&, uint64_t)>& tick);

}  // namespace reprise
