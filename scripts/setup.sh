#!/usr/bin/env bash
# Sets up a Debian 12 machine to build and test reprise, then builds it into ./build.
#
# Idempotent: packages are installed only when dpkg says one is missing (so a second run is
# fast and works offline), and the build is incremental.
#
#   bash scripts/setup.sh                 # install build deps, configure and build
#   bash scripts/setup.sh --no-build      # install build deps only
#   bash scripts/setup.sh --with-peers    # also restic, borgbackup, pgBackRest, PostgreSQL 15 (bench/)
#   bash scripts/setup.sh --with-services # also the servers the tests run (Ceph RGW, PostgreSQL 15,
#                                         #   Redis, etcd, Knot DNS, an SMTP sink)
#   bash scripts/setup.sh --with-postgres # also PostgreSQL 15 (the main job's database drill)
#
# Environment: REPRISE_BUILD_DIR (default: build), REPRISE_JOBS (default: nproc).
set -euo pipefail

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
  echo "setup: error: $*" >&2
  exit 1
}

build=1
peers=0
services=0
postgres=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --with-peers) peers=1 ;;
    --with-services) services=1 ;;
    --with-postgres) postgres=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$arg'" ;;
  esac
done

cd "$(dirname "$0")/.."
root_dir=$(pwd)

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libssl-dev libzstd-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev googletest libcurl4-openssl-dev libpq-dev libarchive-dev
  libhiredis-dev libldns-dev libcpp-httplib-dev
  time git jq curl iproute2
)
if ((peers)); then
  packages+=(restic borgbackup postgresql-15 postgresql-contrib pgbackrest awscli)
fi
if ((postgres)); then
  packages+=(postgresql-15 postgresql-contrib)
fi
if ((services)); then
  # Real servers for the integration tests, started on loopback by tests/services/.
  packages+=(ceph-mon ceph-osd ceph-mgr radosgw ceph-common postgresql-15 postgresql-contrib
    redis-server redis-tools etcd-server etcd-client knot knot-dnsutils python3-aiosmtpd)
fi

# Prints the packages from the arguments that dpkg does not report as installed.
missing_packages() {
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [[ "$status" != "installed" ]]; then
      echo "$p"
    fi
  done
}

command -v dpkg-query >/dev/null 2>&1 ||
  die "dpkg-query not found: this script supports Debian 12 (bookworm) only"

mapfile -t missing < <(missing_packages "${packages[@]}")
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
  sudo_cmd=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 ||
      die "packages missing (${missing[*]}) and not root. HINT: run as root or install sudo"
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  # Server packages must not start their daemons on install: the tests start their own.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if ((EUID == 0)) && [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  trap 'rm -f "$log"; if ((made_policy)); then rm -f "$policy"; fi' EXIT
  if ! "${sudo_cmd[@]}" apt-get update -q >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "'apt-get update' failed (see above). HINT: check the network and /etc/apt/sources.list"
  fi
  if ! "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" \
    >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "'apt-get install' failed for: ${missing[*]}"
  fi
  mapfile -t still < <(missing_packages "${missing[@]}")
  ((${#still[@]} == 0)) || die "still not installed after apt-get: ${still[*]}"
  echo "setup: packages installed"
else
  echo "setup: all ${#packages[@]} packages already installed"
fi

if ((!build)); then
  exit 0
fi

build_dir=${REPRISE_BUILD_DIR:-build}
jobs=${REPRISE_JOBS:-$(nproc)}
echo "setup: building into '$build_dir' (Ninja, RelWithDebInfo, -j$jobs)"
if ! cmake -S "$root_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >/dev/null; then
  die "cmake configure failed (messages above)." \
    "HINT: if '$build_dir' was configured with another generator, delete it"
fi
log_file="$build_dir/setup-build.log"
start=$SECONDS
if ! cmake --build "$build_dir" -j "$jobs" >"$log_file" 2>&1; then
  if grep -q -E 'error|FAILED' "$log_file"; then
    grep -E -A5 'error|FAILED' "$log_file" | head -n 80 >&2 || true
  else
    tail -n 60 "$log_file" >&2
  fi
  die "build failed (full log: '$log_file')"
fi
if grep -q 'warning:' "$log_file"; then
  echo "setup: build has $(grep -c 'warning:' "$log_file") compiler warning(s), see '$log_file'"
fi
[[ -x "$build_dir/reprise" ]] || die "build finished but '$build_dir/reprise' is missing"
echo "setup: built '$build_dir/reprise' in $((SECONDS - start)) s"
