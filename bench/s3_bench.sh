#!/usr/bin/env bash
# reprise against restic and the aws CLI on real S3 servers (two Ceph RGWs on loopback), in
# one run: backup, backup after a ~1% change, restore, and copy between two sites.
#
# Two throw-away RGWs (site A and site B) are started with tests/services/rgw-start.sh in the
# work directory and stopped at exit, also on failure. The data set (default 1 GiB) is a mix:
# small files copied from /usr/share, binaries from /usr/lib and /usr/bin (compressible 2-3x),
# generated logs and CSV tables (very compressible) and random blobs (incompressible). Each
# tool starts from the same pristine copy of it and sees the same deterministic ~1% change.
#
#   reprise  init, backup, backup after the change, restore to an empty dir (s3://A);
#            init B --copy-keys-from A, copy A -> B (same key), restore from B (verified);
#            copy A -> B' (a repository of its own key: re-encrypting)
#   restic   init, backup, backup, restore (s3:A); init B --from-repo A
#            --copy-chunker-params, copy A -> B, restore from B (verified)
#   aws      s3 cp --recursive of the data set to A, s3 sync --delete after the change,
#            s3 cp --recursive back (the raw-throughput reference); and the copy reference:
#            s3 sync of reprise's raw repository objects from A to a local dir, then to B
#            (the aws CLI copies between two buckets server-side only on one endpoint)
# Every step is timed by /usr/bin/time (wall, CPU user+sys, peak RSS). Each restore is also
# timed until its files are on disk (the restore, then `sync -f` of the target: reprise syncs
# before it exits, restic and aws do not, so "as the tool exits" flatters them). Restores are compared
# with the source by diff -r; a difference or a failed step makes the run exit 1 (after the
# results are written). Prints a table with reprise/restic ratios and writes it as markdown to
# bench/results/<date>-s3.md. Not a test; not run by CI.
#
#   bash scripts/setup.sh --with-peers --with-services && bash bench/s3_bench.sh
#   BENCH_SIZE_MB=512 bash bench/s3_bench.sh          # smaller data set
#
# Environment:
#   BENCH_SIZE_MB      data set size in MiB (default 1024; 64 to 1536: each RGW keeps its
#                      objects in a 2 GiB memstore OSD)
#   BENCH_TOOLS        tools to run (default "reprise restic aws")
#   BENCH_REENCRYPT    0 = skip the re-encrypting copy (default 1)
#   BENCH_RGW_NODELAY  0 = RGW's stock beast frontend; default 1: tcp_nodelay=1 (without it
#                      every small ranged GET waits ~40 ms for a delayed ACK)
#   BENCH_DROP_CACHES  0 = do not drop the page cache before each step (default 1, when root)
#   BENCH_DIR          where the work dir goes (default /var/tmp); needs ~4x the data set
#   REPRISE_BIN        the reprise binary (default build/reprise)
#   BENCH_KEEP=1       keep the work dir (the RGWs are stopped anyway)
# Credentials: a user "bench" with the same random key is created on both RGWs (reprise copy
# reads one set of S3 credentials for both repositories); every tool gets it through
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, restic its password through RESTIC_PASSWORD,
# reprise through REPRISE_PASSWORD_FILE: nothing secret on a tool's command line.
set -euo pipefail

cd "$(dirname "$0")/.."
root_dir=$(pwd)

die() {
  echo "s3_bench: error: $*" >&2
  exit 1
}
log() { echo "s3_bench: $*"; }
usage() { sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; }
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$arg'" ;;
  esac
done

size_mb=${BENCH_SIZE_MB:-1024}
# shellcheck disable=SC2015
[[ "$size_mb" =~ ^[1-9][0-9]*$ ]] && ((size_mb >= 64 && size_mb <= 1536)) ||
  die "BENCH_SIZE_MB must be a number from 64 to 1536, not '$size_mb'"
read -r -a tools <<<"${BENCH_TOOLS:-reprise restic aws}"
reprise_bin=${REPRISE_BIN:-$root_dir/build/reprise}
time_bin=/usr/bin/time
has_tool() { [[ " ${tools[*]} " == *" $1 "* ]]; }

for t in "${tools[@]}"; do
  case "$t" in
    reprise) [[ -x "$reprise_bin" ]] ||
      die "no reprise binary at '$reprise_bin'. HINT: run 'bash scripts/setup.sh'" ;;
    restic) command -v restic >/dev/null ||
      die "'restic' not installed. HINT: run 'bash scripts/setup.sh --with-peers'" ;;
    aws) ;;
    *) die "unknown tool '$t' in BENCH_TOOLS (known: reprise restic aws)" ;;
  esac
done
# aws is needed in any case: it creates the buckets, measures and empties them.
command -v aws >/dev/null || die "'aws' not installed. HINT: run 'bash scripts/setup.sh --with-peers'"
[[ -x "$time_bin" ]] || die "'$time_bin' missing. HINT: apt-get install time"
command -v python3 >/dev/null || die "'python3' missing (it makes the data set)"
for b in curl zstd; do command -v "$b" >/dev/null || die "'$b' missing. HINT: apt-get install $b"; done
command -v radosgw-admin >/dev/null ||
  die "Ceph RGW not installed. HINT: run 'bash scripts/setup.sh --with-services'"

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/reprise-s3bench.XXXXXX")
mkdir -p "$work"/{logs,bin,aws,cache}
rgw_dirs=()
cleanup() {
  local d
  for d in "${rgw_dirs[@]}"; do
    "$root_dir/tests/services/rgw-stop.sh" "$d" >/dev/null 2>&1 || true
  done
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept '$work'"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
mb() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }
load1() { cut -d' ' -f1 /proc/loadavg; }
load_start=$(load1)
load_max=$load_start

# ---------------------------------------------------------------------------------------------
# Two RGWs, one user with the same key on both.
env_of() { # FILE VAR: the value of VAR in an rgw-start.sh env file
  (
    # shellcheck disable=SC1090
    source "$1"
    printf '%s' "${!2}"
  )
}
start_rgw() { # NAME -> sets ep_NAME, conf_NAME
  local d="$work/rgw-$1" rc=0
  rgw_dirs+=("$d")
  "$root_dir/tests/services/rgw-start.sh" "$d" >"$work/logs/rgw-start-$1.log" 2>&1 || rc=$?
  if ((rc == 77)); then
    die "Ceph is not installed: $(tail -n 1 "$work/logs/rgw-start-$1.log")." \
      "HINT: run 'bash scripts/setup.sh --with-services'"
  fi
  ((rc == 0)) || die "RGW of site $1 did not start: $(tail -n 3 "$work/logs/rgw-start-$1.log")"
  printf -v "ep_$1" '%s' "$(env_of "$d/env" REPRISE_TEST_S3_ENDPOINT)"
  printf -v "conf_$1" '%s' "$(env_of "$d/env" CEPH_CONF)"
}
# tcp_nodelay=1 on RGW's beast frontend (off by default in Ceph 16): without it, a response
# whose headers and small body go out as two segments waits for the client's delayed ACK
# (~40 ms), which makes every small ranged GET cost ~40 ms. BENCH_RGW_NODELAY=0 keeps the
# stock setting. rgw-start.sh has no option for it: its radosgw is restarted with the option.
alive() { [[ -r "/proc/$1/status" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }
rgw_nodelay() { # NAME
  local d="$work/rgw-$1" pid ep_var=ep_$1
  pid=$(awk '$1 == "rgw" { print $2 }' "$d/pids" | tail -n 1)
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
  ! alive "$pid" || die "radosgw of site $1 (pid $pid) did not stop"
  sed -i 's/^\(rgw frontends = beast endpoint=[^ ]*\)$/\1 tcp_nodelay=1/' "$d/ceph.conf"
  grep -q 'tcp_nodelay=1' "$d/ceph.conf" || die "could not set tcp_nodelay in '$d/ceph.conf'"
  radosgw -c "$d/ceph.conf" -n client.rgw.a -f </dev/null >"$d/log/rgw-nodelay.out" 2>&1 &
  echo "rgw $!" >>"$d/pids"
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "${!ep_var}/" 2>/dev/null && return 0
    sleep 0.2
  done
  die "radosgw of site $1 did not come back with tcp_nodelay=1 (see $d/log/)"
}
log "starting two Ceph RGWs (sites A and B)"
start_rgw A
start_rgw B
rgw_setting="stock beast frontend (tcp_nodelay off)"
if [[ "${BENCH_RGW_NODELAY:-1}" == 1 ]]; then
  rgw_nodelay A
  rgw_nodelay B
  rgw_setting="beast frontend with tcp_nodelay=1 (BENCH_RGW_NODELAY=1)"
fi
# shellcheck disable=SC2154 # set by start_rgw through printf -v
log "site A: $ep_A, site B: $ep_B"

bench_ak=BENCH$(python3 -c 'import secrets; print(secrets.token_hex(8).upper())')
bench_sk=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
for s in A B; do
  conf_var=conf_$s
  radosgw-admin -c "${!conf_var}" user create --uid=bench --display-name=bench \
    --access-key="$bench_ak" --secret-key="$bench_sk" >"$work/logs/user-$s.json" 2>&1 ||
    die "radosgw-admin user create failed on site $s: $(tail -n 3 "$work/logs/user-$s.json")"
done

# The aws CLI: path-style addressing, no checksums RGW 16 does not know; endpoints per command.
cat >"$work/aws/config" <<EOF
[default]
region = us-east-1
request_checksum_calculation = when_required
response_checksum_validation = when_required
s3 =
  addressing_style = path
EOF
: >"$work/aws/credentials"
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_CA_BUNDLE
unset REPRISE_PASSWORD REPRISE_REPOSITORY RESTIC_REPOSITORY RESTIC_PASSWORD_FILE
export AWS_ACCESS_KEY_ID=$bench_ak AWS_SECRET_ACCESS_KEY=$bench_sk
export AWS_CONFIG_FILE=$work/aws/config AWS_SHARED_CREDENTIALS_FILE=$work/aws/credentials
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n' >"$work/passphrase")
export REPRISE_PASSWORD_FILE=$work/passphrase
RESTIC_PASSWORD=$(cat "$work/passphrase")
export RESTIC_PASSWORD RESTIC_FROM_PASSWORD=$RESTIC_PASSWORD
export RESTIC_CACHE_DIR=$work/cache/restic

awsa() { aws --endpoint-url "$ep_A" "$@"; }
awsb() { aws --endpoint-url "$ep_B" "$@"; }
awsa s3 mb s3://bench >"$work/logs/mb-A.log" 2>&1 || die "aws s3 mb on A: $(cat "$work/logs/mb-A.log")"
awsb s3 mb s3://bench >"$work/logs/mb-B.log" 2>&1 || die "aws s3 mb on B: $(cat "$work/logs/mb-B.log")"

s3_bytes() { # EP PREFIX -> total bytes of the objects under s3://bench/PREFIX/
  aws --endpoint-url "$1" s3 ls --recursive --summarize "s3://bench/$2/" |
    awk '/Total Size:/ { print $3 }'
}
# Deletes s3://bench/PREFIX/ on the site and has RGW free the space now (its garbage
# collector otherwise waits two hours, and the memstore OSDs hold 2 GiB).
s3_clear() { # SITE PREFIX
  local ep_var=ep_$1 conf_var=conf_$1
  aws --endpoint-url "${!ep_var}" s3 rm --recursive --quiet "s3://bench/$2/" \
    >>"$work/logs/clear.log" 2>&1 || die "could not empty s3://bench/$2/ on site $1"
  radosgw-admin -c "${!conf_var}" gc process --include-all >>"$work/logs/clear.log" 2>&1 || true
}

reprise_a="s3://bench/reprise?endpoint=$ep_A&region=us-east-1"
reprise_b="s3://bench/reprise?endpoint=$ep_B&region=us-east-1"
reprise_b2="s3://bench/reprise-reencrypted?endpoint=$ep_B&region=us-east-1"
restic_a="s3:$ep_A/bench/restic"
restic_b="s3:$ep_B/bench/restic"
restic_opts=(-o s3.bucket-lookup=path -o s3.region=us-east-1)

# ---------------------------------------------------------------------------------------------
# The data set: built once into $work/pristine; each tool starts from a copy at $work/data.
cat >"$work/bin/mkdata.py" <<'EOF'
"""mkdata.py DST BYTES: a mixed data set of about BYTES bytes under DST.
15% small files of /usr/share, 35% binaries (/usr/lib/x86_64-linux-gnu, /usr/bin), 25% generated
logs and CSV tables, 25% random blobs; a source that runs short is made up by generated text."""
import os, random, shutil, sys

dst, total = sys.argv[1], int(sys.argv[2])
rnd = random.Random(20261124)
MiB = 1 << 20


def copy_tree(roots, budget, lo, hi, sub):
    done = 0
    for root in roots:
        for d, dirs, names in os.walk(root):
            dirs.sort()
            for n in sorted(names):
                p = os.path.join(d, n)
                try:
                    if os.path.islink(p) or not os.path.isfile(p):
                        continue
                    size = os.path.getsize(p)
                    if size < lo or size > hi or done + size > budget:
                        continue
                    out = os.path.join(dst, sub, os.path.relpath(p, "/"))
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    shutil.copyfile(p, out)
                except OSError:
                    continue
                done += size
                if done >= budget * 0.98:
                    return done
    return done


WORDS = ("GET POST PUT DELETE /api/v1/documents /api/v1/search /healthz /api/v1/embed "
         "ok slow timeout retry cache-hit cache-miss user=alice user=bob user=carol "
         "tenant=acme tenant=globex shard=3 shard=7 INFO WARN ERROR DEBUG").split()


def text_file(path, size, csv):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t = 1764000000.0
    with open(path, "w") as f:
        written = 0
        while written < size:
            lines = []
            for _ in range(2000):
                t += rnd.random() * 0.05
                if csv:
                    lines.append("%d,%s,%d,%.4f,%.4f,%s\n" % (
                        rnd.getrandbits(40), rnd.choice(WORDS), rnd.randrange(1000000),
                        rnd.random(), rnd.gauss(0, 1), "%016x" % rnd.getrandbits(64)))
                else:
                    lines.append("%.3f host%02d svc[%d]: %s %s %s latency_ms=%d req=%08x\n" % (
                        t, rnd.randrange(24), rnd.randrange(400, 4000), rnd.choice(WORDS),
                        rnd.choice(WORDS), rnd.choice(WORDS), rnd.randrange(2000),
                        rnd.getrandbits(32)))
            s = "".join(lines)
            f.write(s)
            written += len(s)


def generated(budget, sub, csv):
    i, done = 0, 0
    while done < budget:
        n = min(budget - done, rnd.choice((8, 16, 32)) * MiB)
        text_file(os.path.join(dst, sub, "%s-%03d.%s" % (sub, i, "csv" if csv else "log")), n, csv)
        done += n
        i += 1


def random_blobs(budget):
    i, done = 0, 0
    os.makedirs(os.path.join(dst, "blobs"), exist_ok=True)
    while done < budget:
        n = min(budget - done, rnd.randrange(1, 48) * MiB + rnd.randrange(MiB))
        with open(os.path.join(dst, "blobs", "blob-%03d.bin" % i), "wb") as f:
            f.write(os.urandom(n))
        done += n
        i += 1


small = copy_tree(["/usr/share"], total * 15 // 100, 1, 256 * 1024, "files")
binaries = copy_tree(["/usr/lib/x86_64-linux-gnu", "/usr/bin"], total * 35 // 100, 64 * 1024,
                     64 * MiB, "files")
random_blobs(total * 25 // 100)
rest = total - small - binaries - total * 25 // 100
generated(rest // 2, "logs", False)
generated(rest - rest // 2, "tables", True)
EOF

# The ~1% change, the same for every tool: 1 MiB blocks rewritten in place at seeded offsets
# in the 8 largest files (text in text files, random bytes in the others), 20 files added, 20
# small files removed.
cat >"$work/bin/change.py" <<'EOF'
"""change.py DIR: changes about 1% of DIR's bytes, the same way every time; prints the bytes."""
import os, random, sys

top = sys.argv[1]
rnd = random.Random(4242)
MiB = 1 << 20
files = []
for d, dirs, names in os.walk(top):
    dirs.sort()
    for n in sorted(names):
        p = os.path.join(d, n)
        files.append((os.path.getsize(p), p))
total = sum(s for s, _ in files)
big = [p for s, p in sorted(files, key=lambda x: (-x[0], x[1]))[:8] if s >= 8 * MiB]
if not big:
    sys.exit("change.py: no file of 8 MiB or more")
changed, i = 0, 0
while changed < total // 100:
    p = big[i % len(big)]
    size = os.path.getsize(p)
    off = rnd.randrange(size // MiB) * MiB
    if p.endswith((".log", ".csv")):
        block = "".join("%d,changed,%08x\n" % (i, rnd.getrandbits(32)) for _ in range(80000))
        block = block.encode()[:MiB]
    else:
        block = rnd.randbytes(MiB)
    with open(p, "r+b") as f:
        f.seek(off)
        f.write(block)
    changed += len(block)
    i += 1
os.makedirs(os.path.join(top, "added"), exist_ok=True)
for j in range(20):
    with open(os.path.join(top, "added", "new-%02d.bin" % j), "wb") as f:
        data = rnd.randbytes(rnd.randrange(1, 256) * 1024)
        f.write(data)
        changed += len(data)
# (only files with a sibling: an empty directory has no S3 object, so aws could not restore it)
dirs = {}
for _, p in files:
    dirs[os.path.dirname(p)] = dirs.get(os.path.dirname(p), 0) + 1
small = [p for s, p in files if s < 64 * 1024 and dirs[os.path.dirname(p)] > 1]
for p in small[::max(1, len(small) // 20)][:20]:
    if dirs[os.path.dirname(p)] > 1:
        dirs[os.path.dirname(p)] -= 1
        os.remove(p)
print(changed)
EOF

data=$work/data
log "making a data set of about $size_mb MiB"
t0=$(now)
python3 "$work/bin/mkdata.py" "$work/pristine" $((size_mb * 1048576)) ||
  die "could not make the data set"
data_bytes() { find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { printf "%d", n }'; }
bytes0=$(data_bytes "$work/pristine")
files0=$(find "$work/pristine" -type f | wc -l)
log "data set: $(mb "$bytes0") MB in $files0 files, made in" \
  "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"
zstd_bytes=$(tar -C "$work/pristine" -cf - . | zstd -3 -T1 -c | wc -c)
log "zstd -3 of the whole data set: $(mb "$zstd_bytes") MB"

reset_data() {
  rm -rf "$data" "$work/restore"
  cp -a "$work/pristine" "$data"
}
changed_bytes=0
change_data() {
  changed_bytes=$(python3 "$work/bin/change.py" "$data") || die "could not change the data set"
}

# ---------------------------------------------------------------------------------------------
cache_state="warm (page cache could not be dropped)"
drop_caches() {
  [[ "${BENCH_DROP_CACHES:-1}" == 1 ]] || { cache_state="warm (BENCH_DROP_CACHES=0)"; return 0; }
  sync
  if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
    cache_state="cold (page cache dropped before every step; RGW keeps its objects in memory)"
  fi
}

# measure KEY BYTES CMD...: runs CMD under /usr/bin/time; records wall, cpu, rss, mbps[KEY].
# A failed command is recorded as FAILED (and makes the run exit 1 at the end).
declare -A wall cpu rss mbps repo_bytes
failures=()
measure() {
  local key=$1 n=$2 t0 t1 tv="$work/logs/time.out" l u s m
  shift 2
  [[ "${keep_cache:-0}" == 1 ]] || drop_caches
  l=$(load1)
  load_max=$(awk -v a="$load_max" -v b="$l" 'BEGIN { print (b > a ? b : a) }')
  t0=$(now)
  if ! "$time_bin" -f '%U %S %M' -o "$tv" "$@" >"$work/logs/$key.log" 2>&1; then
    log "  $key: FAILED: $*"
    sed 's/^/    /' "$work/logs/$key.log" | tail -n 15
    wall[$key]=FAILED
    failures+=("$key failed: $(tail -n 1 "$work/logs/$key.log")")
    return 1
  fi
  t1=$(now)
  wall[$key]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  read -r u s m < <(tail -n 1 "$tv")
  cpu[$key]=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
  rss[$key]=$(awk -v m="$m" 'BEGIN { printf "%.0f", m / 1024 }')
  if [[ "$n" =~ ^[0-9]+$ ]] && ((n > 0)); then
    mbps[$key]=$(awk -v n="$n" -v s="${wall[$key]}" \
      'BEGIN { if (s <= 0) s = 0.01; printf "%.1f", n / 1e6 / s }')
  fi
  log "  $key: ${wall[$key]} s${mbps[$key]:+, ${mbps[$key]} MB/s}, cpu ${cpu[$key]} s," \
    "peak rss ${rss[$key]} MB (load $l)"
}

# synced KEY BYTES DIR: after the restore KEY into DIR, times `sync -f DIR` (KEY:sync) and
# records KEY-durable = KEY + KEY:sync. A restore is done when its files are on disk: reprise
# ends its restores with syncfs, restic and the aws CLI leave the writing back to the kernel.
# The page cache is not dropped first (dropping it syncs, which would hide what is timed).
synced() {
  local key=$1 n=$2 dir=$3
  [[ "${wall[$key]:-}" =~ ^[0-9.]+$ ]] || return 0
  keep_cache=1 measure "$key:sync" 0 sync -f "$dir" || return 0
  sum_steps "$key-durable" "$n" "$key" "$key:sync"
}

# verify KEY DIR: DIR must hold exactly the files of $data, byte for byte.
verify() {
  local key=$1 got=$2
  if [[ "${wall[$key]:-}" == FAILED ]]; then return 0; fi
  if [[ ! -d "$got" ]]; then
    log "  $key: WRONG: '$got' does not exist"
    wall[$key]=WRONG
    failures+=("$key: '$got' does not exist")
  elif ! diff -r --no-dereference "$data" "$got" >"$work/logs/$key.diff" 2>&1; then
    log "  $key: WRONG: the restored files differ from the source:"
    sed 's/^/    /' "$work/logs/$key.diff" | head -n 10
    wall[$key]=WRONG
    failures+=("$key: restored files differ from the source ($(wc -l <"$work/logs/$key.diff") diff lines)")
  else
    log "  $key: restored files equal the source (diff -r)"
  fi
  rm -rf "$work/restore"
}

# ---------------------------------------------------------------------------------------------
# The tools, one after the other (each cleans up after itself, except reprise, whose
# repository on A is the source of the copy reference).
run_restic() {
  local b
  log "restic"
  reset_data
  measure restic:init 0 restic -r "$restic_a" "${restic_opts[@]}" init || return 0
  measure restic:first "$bytes0" restic -r "$restic_a" "${restic_opts[@]}" backup --quiet "$data" ||
    return 0
  change_data
  b=$(data_bytes "$data")
  measure restic:changed "$b" restic -r "$restic_a" "${restic_opts[@]}" backup --quiet "$data" ||
    true
  mkdir -p "$work/restore"
  measure restic:restore "$b" restic -r "$restic_a" "${restic_opts[@]}" restore --quiet latest \
    --target "$work/restore" || true
  synced restic:restore "$b" "$work/restore"
  verify restic:restore "$work/restore$data"
  repo_bytes[restic]=$(s3_bytes "$ep_A" restic)
  measure restic:init-b 0 restic -r "$restic_b" "${restic_opts[@]}" init --from-repo "$restic_a" \
    --copy-chunker-params || return 0
  measure restic:copy "${repo_bytes[restic]}" restic -r "$restic_b" "${restic_opts[@]}" copy \
    --from-repo "$restic_a" || return 0
  mkdir -p "$work/restore"
  measure restic:restore-b "$b" restic -r "$restic_b" "${restic_opts[@]}" restore --quiet latest \
    --target "$work/restore" || true
  synced restic:restore-b "$b" "$work/restore"
  verify restic:restore-b "$work/restore$data"
  s3_clear A restic
  s3_clear B restic
}

run_aws() {
  local b
  log "aws CLI (raw files)"
  reset_data
  measure aws:first "$bytes0" aws --endpoint-url "$ep_A" s3 cp --recursive --quiet "$data" \
    s3://bench/raw/ || return 0
  change_data
  b=$(data_bytes "$data")
  measure aws:changed "$b" aws --endpoint-url "$ep_A" s3 sync --delete --quiet "$data" \
    s3://bench/raw/ || true
  mkdir -p "$work/restore"
  measure aws:restore "$b" aws --endpoint-url "$ep_A" s3 cp --recursive --quiet s3://bench/raw/ \
    "$work/restore/" || true
  synced aws:restore "$b" "$work/restore"
  verify aws:restore "$work/restore"
  s3_clear A raw
}

run_reprise() {
  local b n
  log "reprise"
  reset_data
  measure reprise:init 0 "$reprise_bin" -q -r "$reprise_a" init || return 0
  measure reprise:first "$bytes0" "$reprise_bin" -q -r "$reprise_a" backup "$data" || return 0
  change_data
  b=$(data_bytes "$data")
  measure reprise:changed "$b" "$reprise_bin" -q -r "$reprise_a" backup "$data" || true
  mkdir -p "$work/restore"
  measure reprise:restore "$b" "$reprise_bin" -q -r "$reprise_a" restore latest \
    --target "$work/restore" || true
  synced reprise:restore "$b" "$work/restore"
  verify reprise:restore "$work/restore$data"
  repo_bytes[reprise]=$(s3_bytes "$ep_A" reprise)
  measure reprise:init-b 0 "$reprise_bin" -q -r "$reprise_b" init --copy-keys-from "$reprise_a" ||
    return 0
  measure reprise:copy "${repo_bytes[reprise]}" "$reprise_bin" -q copy --from "$reprise_a" \
    --to "$reprise_b" || return 0
  n=$("$reprise_bin" -r "$reprise_b" --json points | python3 -c \
    'import json, sys; d = json.load(sys.stdin); print(len(d if isinstance(d, list) else d["points"]))' \
    2>>"$work/logs/points-b.log") || n="?"
  [[ "$n" == 2 ]] || failures+=("reprise: site B lists $n points after the copy, not 2")
  mkdir -p "$work/restore"
  measure reprise:restore-b "$b" "$reprise_bin" -q -r "$reprise_b" restore latest \
    --target "$work/restore" || true
  synced reprise:restore-b "$b" "$work/restore"
  verify reprise:restore-b "$work/restore$data"

  # The copy reference: reprise's repository objects, A -> local disk -> B.
  log "aws CLI: s3 sync of reprise's raw repository from A to B (through $work/sync)"
  mkdir -p "$work/sync"
  measure aws:copy-down "${repo_bytes[reprise]}" aws --endpoint-url "$ep_A" s3 sync --quiet \
    s3://bench/reprise/ "$work/sync/" &&
    measure aws:copy-up "${repo_bytes[reprise]}" aws --endpoint-url "$ep_B" s3 sync --quiet \
      "$work/sync/" s3://bench/raw-reprise/ &&
    sum_steps aws:copy "${repo_bytes[reprise]}" aws:copy-down aws:copy-up
  rm -rf "$work/sync"
  s3_clear B raw-reprise

  if [[ "${BENCH_REENCRYPT:-1}" == 1 ]]; then
    measure reprise:init-b2 0 "$reprise_bin" -q -r "$reprise_b2" init || return 0
    measure reprise:copy-reenc "${repo_bytes[reprise]}" "$reprise_bin" -q copy \
      --from "$reprise_a" --to "$reprise_b2" || true
  fi
}

sum_steps() { # KEY BYTES KEY1 KEY2: KEY = KEY1 + KEY2 (wall, cpu; rss: the larger)
  local key=$1 n=$2 a=$3 b=$4
  wall[$key]=$(awk -v a="${wall[$a]}" -v b="${wall[$b]}" 'BEGIN { printf "%.2f", a + b }')
  cpu[$key]=$(awk -v a="${cpu[$a]}" -v b="${cpu[$b]}" 'BEGIN { printf "%.2f", a + b }')
  rss[$key]=$(awk -v a="${rss[$a]}" -v b="${rss[$b]}" 'BEGIN { print (a > b ? a : b) }')
  mbps[$key]=$(awk -v n="$n" -v s="${wall[$key]}" \
    'BEGIN { if (s <= 0) s = 0.01; printf "%.1f", n / 1e6 / s }')
  log "  $key: ${wall[$key]} s, ${mbps[$key]} MB/s"
}

t_run=$(now)
if has_tool restic; then run_restic; fi
if has_tool aws; then run_aws; fi
if has_tool reprise; then run_reprise; fi
bytes1=$(data_bytes "$data")
files1=$(find "$data" -type f | wc -l)
load_end=$(load1)
log "all steps done in $(awk -v a="$t_run" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"

# ---------------------------------------------------------------------------------------------
date_tag=$(date +%F)
results_dir="$root_dir/bench/results"
mkdir -p "$results_dir"
out="$results_dir/$date_tag-s3.md"
[[ ! -e "$out" ]] || out="$results_dir/$date_tag-s3-$(date +%H%M%S).md"

ratio() { # a b -> a/b or "-"
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "-"; else printf "%.2f", a / b }'
}
speedup() { # a b -> "b/a x" or "-"
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || a == 0) print "-"; else printf "%.2fx", b / a }'
}
met() { # a b want: "met" when b/a >= want
  awk -v a="$1" -v b="$2" -v w="$3" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || a == 0) print "unknown";
    else if (b / a >= w) print "**met**"; else print "**not met**" }'
}
v() { echo "${wall[$1]:--}"; }
row() { # label reprise-key restic-key aws-key
  echo "| $1 | $(v "$2") | $(v "$3") | $(v "$4") | $(ratio "${wall[$2]:-}" "${wall[$3]:-}") |" \
    "${mbps[$2]:--} | ${mbps[$3]:--} | ${mbps[$4]:--} |"
}
version_of() {
  case "$1" in
    reprise) echo "$("$reprise_bin" --version 2>/dev/null | head -n 1)," \
      "source tree at $(git -C "$root_dir" rev-parse --short HEAD 2>/dev/null || echo '?')" \
      "$(git -C "$root_dir" status --porcelain 2>/dev/null | grep -q . && echo '(with local changes)')" ;;
    restic) restic version | head -n 1 ;;
    aws) aws --version 2>&1 | head -n 1 ;;
    rgw) radosgw --version 2>/dev/null | head -n 1 ;;
  esac
}

{
  echo "# Benchmark: reprise vs restic vs aws CLI on S3 (Ceph RGW), $date_tag"
  echo
  echo "- data set: $(mb "$bytes0") MB in $files0 files (zstd -3 of all of it:" \
    "$(mb "$zstd_bytes") MB): small files of /usr/share, binaries of /usr/lib and /usr/bin," \
    "generated logs and CSV tables, random blobs; after the change $(mb "$bytes1") MB in" \
    "$files1 files"
  echo "- change step: $(mb "$changed_bytes") MB: 1 MiB blocks rewritten in place in the 8" \
    "largest files, 20 files added, 20 small files removed; the same for every tool, each" \
    "starting from the same pristine copy"
  echo "- S3: two Ceph RGWs on 127.0.0.1 (tests/services/rgw-start.sh: 1 mon, 1 memstore OSD" \
    "each), site A and site B; $rgw_setting; $(version_of rgw)"
  echo "- machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM," \
    "$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release), $(uname -r);" \
    "the RGWs, the OSDs and the tools share these cores"
  echo "- page cache: $cache_state"
  echo "- load average (1 min) at start: $load_start, at end: $load_end, highest before a" \
    "step: $load_max (a shared machine: other work makes wall times noisy)"
  for t in reprise restic aws; do
    if has_tool "$t"; then echo "- $t: $(version_of "$t")"; fi
  done
  echo "- reprise: defaults (zstd level 2, 16 MiB packs, connections=16); restic: defaults" \
    "(compression auto, s3.connections 5), path-style; aws: defaults (10 concurrent requests," \
    "multipart from 8 MiB), path-style"
  echo "- repository on A after the second backup: reprise $(mb "${repo_bytes[reprise]:-0}") MB," \
    "restic $(mb "${repo_bytes[restic]:-0}") MB"
  echo "- MB/s: data set bytes / wall time for backups and restores (also for the backup after" \
    "the change); repository bytes / wall time for copies (each tool its own repository; the" \
    "aws row moves reprise's repository)"
  echo "- copy reference: the aws CLI copies bucket to bucket only server-side within one" \
    "endpoint, so between two sites it is \`aws s3 sync s3://A/reprise dir\` then" \
    "\`aws s3 sync dir s3://B/raw-reprise\` (sum of both; down ${wall[aws:copy-down]:--} s," \
    "up ${wall[aws:copy-up]:--} s)"
  echo
  echo "| step | reprise s | restic s | aws s | reprise/restic | reprise MB/s | restic MB/s | aws MB/s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  row "init A" reprise:init restic:init -
  row "first backup (aws: s3 cp --recursive)" reprise:first restic:first aws:first
  row "backup after ~1% change (aws: s3 sync --delete)" reprise:changed restic:changed aws:changed
  row "restore to an empty dir, as the tool exits (aws: s3 cp --recursive)" reprise:restore restic:restore aws:restore
  row "restore to an empty dir, until on disk (+ sync -f)" reprise:restore-durable restic:restore-durable aws:restore-durable
  row "init B (reprise --copy-keys-from, restic --copy-chunker-params)" reprise:init-b restic:init-b -
  row "copy A -> B (aws: s3 sync of reprise's repository via disk)" reprise:copy restic:copy aws:copy
  row "restore from B (verified), as the tool exits" reprise:restore-b restic:restore-b -
  row "restore from B, until on disk (+ sync -f)" reprise:restore-b-durable restic:restore-b-durable -
  if [[ "${BENCH_REENCRYPT:-1}" == 1 ]]; then
    row "copy A -> B', re-encrypting (own key)" reprise:copy-reenc - -
  fi
  echo
  echo "CPU (user+sys) and peak RSS:"
  echo
  echo "| step | reprise CPU s | restic CPU s | aws CPU s | reprise RSS MB | restic RSS MB | aws RSS MB |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for s in first changed restore copy restore-b; do
    echo "| $s | ${cpu[reprise:$s]:--} | ${cpu[restic:$s]:--} | ${cpu[aws:$s]:--} |" \
      "${rss[reprise:$s]:--} | ${rss[restic:$s]:--} | ${rss[aws:$s]:--} |"
  done
  echo
  echo "Targets (issue 3):"
  echo
  echo "| target | measured | met? |"
  echo "|---|---|---|"
  echo "| first backup >= 2x restic | $(speedup "${wall[reprise:first]:-}" "${wall[restic:first]:-}") |" \
    "$(met "${wall[reprise:first]:-}" "${wall[restic:first]:-}" 2) |"
  echo "| backup after the change >= 2x restic | $(speedup "${wall[reprise:changed]:-}" "${wall[restic:changed]:-}") |" \
    "$(met "${wall[reprise:changed]:-}" "${wall[restic:changed]:-}" 2) |"
  echo "| restore >= 2x restic, as the tools exit (restic's files may still be in the page cache) |" \
    "$(speedup "${wall[reprise:restore]:-}" "${wall[restic:restore]:-}") |" \
    "$(met "${wall[reprise:restore]:-}" "${wall[restic:restore]:-}" 2) |"
  echo "| restore >= 2x restic, until the files are on disk |" \
    "$(speedup "${wall[reprise:restore-durable]:-}" "${wall[restic:restore-durable]:-}") |" \
    "$(met "${wall[reprise:restore-durable]:-}" "${wall[restic:restore-durable]:-}" 2) |"
  echo "| copy >= 2x restic | $(speedup "${wall[reprise:copy]:-}" "${wall[restic:copy]:-}") |" \
    "$(met "${wall[reprise:copy]:-}" "${wall[restic:copy]:-}" 2) |"
  echo "| copy at least as fast as aws s3 sync of the raw repository |" \
    "$(speedup "${wall[reprise:copy]:-}" "${wall[aws:copy]:-}") |" \
    "$(met "${wall[reprise:copy]:-}" "${wall[aws:copy]:-}" 1) |"
  if ((${#failures[@]} > 0)); then
    echo
    echo "FAILURES:"
    echo
    for f in "${failures[@]}"; do echo "- $f"; done
  fi
} >"$out"

echo
cat "$out"
echo
log "results written to '${out#"$root_dir"/}'"
if ((${#failures[@]} > 0)); then
  for f in "${failures[@]}"; do echo "s3_bench: FAILED: $f" >&2; done
  exit 1
fi
