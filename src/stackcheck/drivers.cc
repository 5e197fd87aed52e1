#include "stackcheck/drivers.h"

namespace reprise::stackcheck {

namespace {

struct Driver {
  ComponentKind kind;
  Result<std::unique_ptr<ValueSource>> (*open_source)(const Endpoint&,
                                                      const ConsistencyCheck::Side&);
  Result<std::unique_ptr<MembershipTest>> (*open_test)(const Endpoint&,
                                                       const ConsistencyCheck::Side&);
};

constexpr Driver kDrivers[] = {
    {ComponentKind::kPostgres, OpenPostgresSource, OpenPostgresTest},
    {ComponentKind::kRedis, OpenRedisSource, OpenRedisTest},
    {ComponentKind::kQdrant, OpenQdrantSource, OpenQdrantTest},
    {ComponentKind::kS3, OpenS3Source, OpenS3Test},
};

Result<const Driver*> DriverFor(const Endpoint& e) {
  for (const Driver& d : kDrivers) {
    if (d.kind == e.kind) return &d;
  }
  return Unimplemented("component '" + e.component + "': consistency checks cannot read kind '" +
                       std::string(ComponentKindName(e.kind)) + "'");
}

}  // namespace

Result<std::unique_ptr<ValueSource>> OpenValueSource(const Endpoint& endpoint,
                                                     const ConsistencyCheck::Side& side) {
  ASSIGN_OR_RETURN(const Driver* d, DriverFor(endpoint));
  return d->open_source(endpoint, side);
}

Result<std::unique_ptr<MembershipTest>> OpenMembershipTest(const Endpoint& endpoint,
                                                           const ConsistencyCheck::Side& side) {
  ASSIGN_OR_RETURN(const Driver* d, DriverFor(endpoint));
  return d->open_test(endpoint, side);
}

std::string SubstituteValue(const std::string& pattern, const std::string& value) {
  std::string out;
  out.reserve(pattern.size() + value.size());
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '$' && i + 1 < pattern.size() && pattern[i + 1] == '1') {
      out += value;
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

}  // namespace reprise::stackcheck
