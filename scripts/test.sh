#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs the whole test suite with CTest:
# unit tests, integration tests against the real binary, and the end-to-end shell tests
# (crash safety, corruption), and the S3 tests against a real Ceph RGW on loopback.
# Exits with CTest's exit code.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -L unit         # extra arguments go to ctest (here: one label)
#
# Environment: REPRISE_BUILD_DIR (default: build), as for scripts/setup.sh.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/setup.sh --with-services

build_dir=${REPRISE_BUILD_DIR:-build}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

start=$SECONDS
rc=0
# pipefail: the pipeline's status is ctest's unless tee itself fails.
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j2 "$@" 2>&1 |
  tee "$log" || rc=$?

# CTest's own summary reads "95% tests passed, 1 tests failed out of 20".
total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n 1)
echo
echo "== summary: $(basename "$build_dir") in $((SECONDS - start)) s, ctest exit code $rc"
if [[ -n "$total" && -n "$failed" ]]; then
  grep -E '^\s+[0-9]+ - .*\((Failed|Timeout|Not Run|SEGFAULT|Exception|Subprocess aborted)' "$log" |
    sed 's/^[[:space:]]*/   failed: /' || true
  echo "tests: $((total - failed)) passed, $failed failed"
else
  echo "tests: ctest printed no summary (see the output above)"
fi
exit "$rc"
