// Where the S3 tests find their Ceph RGW: tests/services/rgw-start.sh writes DIR/env, and
// REPRISE_TEST_S3_ENV_FILE=DIR/env (or the same variables in the environment) points at it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace reprise::testing {

struct RgwEnv {
  std::string endpoint, region, access_key, secret_key;
  std::string other_access_key, other_secret_key;  // a second user, for access-denied tests
  std::string bucket_prefix;
  // The uid owning the buckets, and a user with no rights of its own that tests grant
  // put/get/list through a bucket policy (append-only repositories). Empty when not set up.
  std::string user, append_user, append_access_key, append_secret_key;
};

// Null when no server is configured: the tests then skip, saying kRgwSkipReason.
std::optional<RgwEnv> LoadRgwEnv();

// `n` random hex digits, for bucket and prefix names no other run uses. Thread-safe.
std::string RandomHex(size_t n);

inline constexpr char kRgwSkipReason[] =
    "no S3 server to test against: run `tests/services/rgw-start.sh DIR` and then either "
    "`source DIR/env` or set REPRISE_TEST_S3_ENV_FILE=DIR/env (needs Ceph: apt-get install "
    "ceph-mon ceph-osd radosgw ceph-common)";

}  // namespace reprise::testing
