// Consistency checks between the components of a live or restored stack (the plan's
// `consistency` section; docs/commands/verify-stack.md): every value a check's `each` side
// yields must be found by its `exists_in` side; the values that are not are its orphans.
//
// Memory stays bounded for big sets: values stream through in batches; a value already tested
// is not tested again while it is in a bounded cache, and orphans are counted once each as long
// as at most kMaxDistinctOrphans of them are remembered (beyond that a repeated orphan may be
// counted twice; the report says so).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "orchestrate/component_factory.h"
#include "plan/plan.h"
#include "stackcheck/drivers.h"

namespace reprise::stackcheck {

inline constexpr size_t kMaxDistinctOrphans = 1u << 20;

struct CheckOptions {
  size_t max_orphans = 20;  // orphans listed per check (all are counted)
  size_t batch_size = 500;  // values handed to the membership test at once
  size_t cache_entries = 1u << 20;  // values remembered as already tested
  std::chrono::milliseconds timeout{30000};  // Endpoint::timeout
  // Called after each batch with the values examined so far (progress on a terminal).
  std::function<void(const std::string& check, uint64_t examined)> progress;
};

struct CheckResult {
  std::string name;
  ConsistencyCheck::Side each, exists_in;
  uint64_t examined = 0;  // values `each` yielded (repeats included)
  uint64_t tested = 0;    // values asked of `exists_in` (repeats within the cache skipped)
  uint64_t orphans = 0;   // distinct values not found
  bool orphans_approximate = false;  // more than kMaxDistinctOrphans: repeats may count twice
  std::vector<std::string> first_orphans;  // the first max_orphans of them, in order found
  double seconds = 0;
  // Not OK: the check could not run to its end; the counts are what it saw before that. The
  // message names the component and server, not the check (the result has its name).
  Status error;

  bool passed() const { return error.ok() && orphans == 0; }
  // {name, each: {component, query, field}, exists_in: {...}, ok, examined, tested, orphans,
  //  orphans_approximate, first_orphans, seconds, error (null or the message)}
  nlohmann::json ToJson() const;
};

// Runs one check against already opened sides.
CheckResult RunCheck(const ConsistencyCheck& check, ValueSource& each, MembershipTest& exists_in,
                     const CheckOptions& options);

// How to reach `component` of the plan: its own spec or, with `site` (not null), the site's
// endpoints (endpoints.postgres + postgres_password, redis + redis_password, qdrant,
// documents); the qdrant API key, CA file and the s3 credentials stay the component's. A
// site without the endpoint is an error unless it is the primary site, which then uses the
// component's own spec. Secrets are read through `secrets`.
Result<Endpoint> ResolveEndpoint(const Plan& plan, const std::string& component,
                                 const Site* site, const SecretLookup& secrets,
                                 const CheckOptions& options);

// Resolves both sides, opens them and runs the check. Failing to resolve or open a side is a
// result whose error says so (the check "could not run"), never zero orphans.
CheckResult RunPlanCheck(const Plan& plan, const ConsistencyCheck& check, const Site* site,
                         const SecretLookup& secrets, const CheckOptions& options);

}  // namespace reprise::stackcheck
