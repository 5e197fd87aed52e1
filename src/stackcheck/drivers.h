// The two halves of a consistency check (plan.h, ConsistencyCheck), one pair per component
// kind: a ValueSource yields the values of `each`, a MembershipTest says which of a batch of
// values `exists_in` finds. A new kind plugs in with one entry in the driver table
// (drivers.cc) and one file implementing its pair.
//
// Errors are values and mean "the check could not run": never "not found". A value that
// cannot exist on the other side at all (text where PostgreSQL wants an integer, a string that
// is not a valid object key) is not found, i.e. an orphan.
//
// Thread-safety: a source or a test is used by one thread at a time.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "plan/plan.h"
#include "storage/storage.h"

namespace reprise::stackcheck {

// How to reach one component of a live (or restored) stack, resolved from the plan and, with
// --site, the site's endpoints (stack_check.h, ResolveEndpoint).
struct Endpoint {
  std::string component;  // its name in the plan, for messages
  ComponentKind kind = ComponentKind::kPostgres;
  // postgres: libpq conninfo | redis: redis://host:port[/db] | qdrant: http(s) URL |
  // s3: s3://bucket[/prefix]?endpoint=...
  std::string address;
  std::string password;  // postgres / redis password, qdrant API key; "" for none
  std::optional<StorageCredentials> credentials;  // s3; nullopt: AWS_* / credentials file
  std::string ca_file;                            // qdrant (https)
  // redis and qdrant: connect and each request. postgres: libpq's connect_timeout (10 s
  // unless the conninfo sets it); s3: the S3 client's own connect and stall limits.
  std::chrono::milliseconds timeout{30000};
};

// Yields the values of `each` in batches of at most `batch_size` (the last may be smaller),
// in the order the server gives them; values may repeat. Stops at the first error of `sink`
// and returns it.
class ValueSource {
 public:
  virtual ~ValueSource() = default;
  using Sink = std::function<Status(std::vector<std::string> batch)>;
  virtual Status Each(size_t batch_size, const Sink& sink) = 0;
};

class MembershipTest {
 public:
  virtual ~MembershipTest() = default;
  // found[i] says whether `exists_in` finds values[i].
  virtual Result<std::vector<bool>> Find(const std::vector<std::string>& values) = 0;
};

// Open for a side of a check: connect and validate the side's query for the endpoint's kind
// (kInvalidArgument, naming the component, when it cannot work, e.g. an exists_in query
// without "$1"). kUnimplemented for kinds without a driver.
Result<std::unique_ptr<ValueSource>> OpenValueSource(const Endpoint& endpoint,
                                                     const ConsistencyCheck::Side& side);
Result<std::unique_ptr<MembershipTest>> OpenMembershipTest(const Endpoint& endpoint,
                                                           const ConsistencyCheck::Side& side);

// The per-kind openers the driver table (drivers.cc) lists.
Result<std::unique_ptr<ValueSource>> OpenPostgresSource(const Endpoint& e,
                                                        const ConsistencyCheck::Side& side);
Result<std::unique_ptr<MembershipTest>> OpenPostgresTest(const Endpoint& e,
                                                         const ConsistencyCheck::Side& side);
Result<std::unique_ptr<ValueSource>> OpenRedisSource(const Endpoint& e,
                                                     const ConsistencyCheck::Side& side);
Result<std::unique_ptr<MembershipTest>> OpenRedisTest(const Endpoint& e,
                                                      const ConsistencyCheck::Side& side);
Result<std::unique_ptr<ValueSource>> OpenQdrantSource(const Endpoint& e,
                                                      const ConsistencyCheck::Side& side);
Result<std::unique_ptr<MembershipTest>> OpenQdrantTest(const Endpoint& e,
                                                       const ConsistencyCheck::Side& side);
Result<std::unique_ptr<ValueSource>> OpenS3Source(const Endpoint& e,
                                                  const ConsistencyCheck::Side& side);
Result<std::unique_ptr<MembershipTest>> OpenS3Test(const Endpoint& e,
                                                   const ConsistencyCheck::Side& side);

// `pattern` with every "$1" replaced by `value` (s3 and redis exists_in).
std::string SubstituteValue(const std::string& pattern, const std::string& value);

}  // namespace reprise::stackcheck
