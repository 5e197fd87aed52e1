#!/usr/bin/env bash
# reprise against pgBackRest and pg_basebackup on one live PostgreSQL 15 cluster, in one run.
#
# Data: `pgbench -i -s $SCALE` plus a table documents(id, doc_id, body, embedding float4[384])
# with $DOCS rows (random embeddings, as a RAG store holds). Steps, each timed (wall, CPU, peak
# RSS via /usr/bin/time; repository sizes via du -sb):
#   1. full backup: reprise backup, pgbackrest --type=full, pg_basebackup
#   2. small change (pgbench transactions + new documents, changed pages counted), backup:
#      reprise (another full base backup: dedup + block maps keep it small), pgbackrest --type=incr
#   3. heavy change (pgbench -T $HEAVY_SECONDS -c 2), backup
#   4. full restore of backup 3 into an empty directory
#   5. small change, backup 4, delta restore of backup 4 over the directory of step 4; both
#      restored clusters are then started and checked against the live one
#   6. wal-push latency: p50/p99 over $WAL_SEGMENTS real 16 MiB segments, one process each (as
#      archive_command runs it): reprise wal-push vs pgbackrest archive-push
# Prints a table with reprise/pgBackRest ratios and writes it as markdown to
# bench/results/<date>-pg.md. Not a test; not run by CI. Run as root (PostgreSQL and pgBackRest
# run as the 'postgres' user through runuser; reprise runs as root, except wal-push).
#
#   bash scripts/setup.sh --with-peers && bash bench/pg_bench.sh
#   bash bench/pg_bench.sh --quick              # small trial: SCALE=5 DOCS=20000
#
# Environment:
#   SCALE          pgbench scale factor (default 100, about 1.5 GB; --quick: 5)
#   DOCS           rows in documents (default 200000, about 0.4 GB; --quick: 20000)
#   SMALL_TX       pgbench transactions of a small change (default 15 x SCALE, at least 100)
#   SMALL_DOCS     documents added by a small change (default DOCS / 200)
#   HEAVY_SECONDS  duration of the heavy change (default 30)
#   WAL_SEGMENTS   segments pushed for the wal-push latency (default 40)
#   WORK           work directory (default /var/tmp/reprise-pgbench; emptied first if it is one
#                  of ours). Needs about 6x the database size free.
#   REPRISE_BIN    the reprise binary (default: build it with scripts/setup.sh into ./build)
#   BENCH_KEEP=1   keep the work directory (and leave nothing running)
set -euo pipefail

cd "$(dirname "$0")/.."
root_dir=$(pwd)

die() {
  echo "pg_bench: error: $*" >&2
  exit 1
}
log() { echo "pg_bench: $*"; }
usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; }

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$arg'" ;;
  esac
done
if ((quick)); then
  scale=${SCALE:-5}
  docs=${DOCS:-20000}
else
  scale=${SCALE:-100}
  docs=${DOCS:-200000}
fi
num() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive number, not '$2'"; }
num SCALE "$scale"
num DOCS "$docs"
small_tx=${SMALL_TX:-$((scale * 15 > 100 ? scale * 15 : 100))}
small_docs=${SMALL_DOCS:-$((docs / 200 > 0 ? docs / 200 : 1))}
heavy_s=${HEAVY_SECONDS:-30}
wal_segments=${WAL_SEGMENTS:-40}
num SMALL_TX "$small_tx"
num SMALL_DOCS "$small_docs"
num HEAVY_SECONDS "$heavy_s"
num WAL_SEGMENTS "$wal_segments"
time_bin=/usr/bin/time

((EUID == 0)) || die "run as root: PostgreSQL and pgBackRest run as 'postgres' through runuser"
id postgres >/dev/null 2>&1 ||
  die "no 'postgres' user. HINT: run 'bash scripts/setup.sh --with-peers'"
[[ -x "$time_bin" ]] || die "'$time_bin' missing. HINT: apt-get install time"
command -v jq >/dev/null || die "'jq' missing. HINT: apt-get install jq"
command -v python3 >/dev/null || die "'python3' missing (counts the changed pages)"
pg_bin=/usr/lib/postgresql/15/bin
for b in initdb pg_ctl pgbench psql pg_basebackup; do
  [[ -x "$pg_bin/$b" ]] ||
    die "PostgreSQL 15 '$pg_bin/$b' missing. HINT: run 'bash scripts/setup.sh --with-peers'"
done
have_pgbr=1
if ! command -v pgbackrest >/dev/null; then
  have_pgbr=0
  log "WARNING: pgBackRest is not installed: its column is skipped." \
    "HINT: run 'bash scripts/setup.sh --with-peers'"
fi
if [[ -z "${REPRISE_BIN:-}" ]]; then
  log "building reprise with scripts/setup.sh"
  bash scripts/setup.sh >/dev/null || die "scripts/setup.sh failed"
  REPRISE_BIN=$root_dir/${REPRISE_BUILD_DIR:-build}/reprise
fi
[[ -x "$REPRISE_BIN" ]] || die "no reprise binary at '$REPRISE_BIN'"

work=${WORK:-/var/tmp/reprise-pgbench}
marker=.reprise-pgbench
if [[ -e "$work" ]]; then
  if [[ -f "$work/$marker" ]]; then
    [[ ! -f "$work/pg/data/postmaster.pid" ]] ||
      runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
    rm -rf "$work"
  elif [[ -n "$(ls -A "$work")" ]]; then
    die "WORK '$work' exists, is not empty and is not a pg_bench work directory"
  fi
fi
mkdir -p "$work"/{bin,repos,restore,logs,pg,sock}
touch "$work/$marker"
chmod 755 "$work" "$work/bin" "$work/repos" "$work/restore"
chown postgres: "$work/pg" "$work/sock" "$work/logs"

now() { date +%s.%N; }
mb() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }
dusb() { du -sb "$1" | cut -f1; }
as_pg() { runuser -u postgres -- "$@"; }

# The binary is copied so that a rebuild during the run changes nothing and 'postgres' can run it.
cp "$REPRISE_BIN" "$work/bin/reprise"
reprise=$work/bin/reprise

pgdata=$work/pg/data
pg_running=0
verify_dirs=()
cleanup() {
  local d
  for d in "${verify_dirs[@]}"; do
    [[ ! -f "$d/postmaster.pid" ]] || as_pg "$pg_bin/pg_ctl" -D "$d" -m immediate -w stop \
      >/dev/null 2>&1 || true
  done
  if ((pg_running)); then
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept '$work'"; else rm -rf "$work"; fi
}
trap cleanup EXIT

port_in_use() {
  if command -v ss >/dev/null; then
    [[ -n "$(ss -Htln "( sport = :$1 )" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
free_port() {
  local p i
  for i in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! port_in_use "$p"; then echo "$p"; return 0; fi
  done
  die "no free TCP port found on 127.0.0.1 after $i tries"
}

port=$(free_port)
psql_q() { as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -X -q -t -A -v ON_ERROR_STOP=1 \
  -d postgres "$@"; }

# PostgreSQL settings: fsync=off (the load is not measured; the tools' own fsyncs are),
# autovacuum=off with an explicit VACUUM after each change (so that vacuum does not change pages
# between one tool's backup and the next one's). Archiving is on only after the load;
# archive_mode is given on the command line, so restored copies do not archive.
pg_opts="-p $port -k $work/sock -c listen_addresses=127.0.0.1 -c fsync=off -c autovacuum=off"
archive_opts="-c archive_mode=on"
start_pg() { # extra options
  as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$work/pg/server.log" -w -t 120 -o "$pg_opts $1" \
    start >/dev/null || die "PostgreSQL did not start: $(tail -n 5 "$work/pg/server.log")"
  pg_running=1
}
stop_pg() {
  as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
  pg_running=0
}

# ---------------------------------------------------------------------------------------------
# The cluster and its data.
t_load=$(now)
as_pg "$pg_bin/initdb" -D "$pgdata" -U postgres -A trust --no-sync -E UTF8 \
  >"$work/logs/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$work/logs/initdb.log")"
start_pg ""
log "PostgreSQL 15 on 127.0.0.1:$port; loading pgbench -s $scale and $docs documents"
as_pg "$pg_bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -q -s "$scale" postgres \
  >"$work/logs/pgbench-init.log" 2>&1 ||
  die "pgbench -i failed: $(tail -n 5 "$work/logs/pgbench-init.log")"

# add_docs N: N documents, each with a 384-float random embedding (the reference to g makes
# PostgreSQL compute the array for every row, not once).
add_docs() {
  local left=$1 n
  while ((left > 0)); do
    n=$((left > 20000 ? 20000 : left))
    psql_q -c "INSERT INTO documents (doc_id, body, embedding)
      SELECT 'doc-' || md5(random()::text),
             repeat(md5(random()::text) || ' ', 12),
             ARRAY(SELECT (random() * 2 - 1 + 0 * g)::float4 FROM generate_series(1, 384))
      FROM generate_series(1, $n) g" >/dev/null
    left=$((left - n))
  done
}
psql_q -c "CREATE TABLE documents (id bigserial PRIMARY KEY, doc_id text, body text,
  embedding float4[])" >/dev/null
add_docs "$docs"
psql_q -c "VACUUM ANALYZE" >/dev/null
db_bytes=$(psql_q -c "SELECT pg_database_size('postgres')")

# Archiving: each completed segment goes to pgBackRest and then to reprise (both need the WAL
# of their backups: pgBackRest checks it, and reprise restore refuses a point whose WAL is
# missing). pgBackRest refuses to back up unless archive_command names pgbackrest, so it is
# called directly, not through a wrapper script.
plan=$work/reprise.yaml
pgbr_conf=$work/pgbackrest.conf
pgbr() { as_pg pgbackrest --config="$pgbr_conf" --stanza=bench "$@"; }
archive_cmd="$reprise -q --plan $plan wal-push --component db %p"
if ((have_pgbr)); then
  archive_cmd="pgbackrest --config=$pgbr_conf --stanza=bench archive-push %p && $archive_cmd"
fi
psql_q -c "ALTER SYSTEM SET archive_command = '$archive_cmd'" >/dev/null
stop_pg

# reprise: a repository with a passphrase, opened through a generated key file (no scrypt on
# every wal-push). The repository belongs to postgres, which runs wal-push.
repo_reprise=$work/repos/reprise
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n' >"$work/passphrase")
"$reprise" -q -r "$repo_reprise" --password-file "$work/passphrase" init \
  >"$work/logs/reprise-init.log" 2>&1 ||
  die "reprise init failed: $(tail -n 5 "$work/logs/reprise-init.log")"
"$reprise" -q -r "$repo_reprise" --password-file "$work/passphrase" key add \
  --generate-key-file "$work/wal.key" >>"$work/logs/reprise-init.log" 2>&1 ||
  die "reprise key add failed: $(tail -n 5 "$work/logs/reprise-init.log")"
chown postgres: "$work/wal.key"
cat >"$plan" <<EOF
version: 1
name: pgbench
secrets:
  repository_password: {file: $work/wal.key}
sites:
  primary: {repository: $repo_reprise}
components:
  db:
    kind: postgres
    class: transactional
    connection: "host=127.0.0.1 port=$port user=postgres"
    os_user: postgres
EOF
chmod 644 "$plan"
# Root-run reprise commands may create files that the postgres-run wal-push must write to.
fix_owner() { chown -R postgres: "$repo_reprise"; }
fix_owner

# pgBackRest: local repository, zstd (its default level, 3), 2 processes, AES-256-CBC (reprise
# always encrypts), fast start checkpoint.
repo_pgbr=$work/repos/pgbackrest
if ((have_pgbr)); then
  mkdir -p "$repo_pgbr" "$work/pgbackrest"
  chown postgres: "$repo_pgbr" "$work/pgbackrest"
  cat >"$pgbr_conf" <<EOF
[global]
repo1-path=$repo_pgbr
repo1-retention-full=99
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=$(head -c 24 /dev/urandom | base64 | tr -d '\n')
compress-type=zst
process-max=2
start-fast=y
log-path=$work/pgbackrest
lock-path=$work/pgbackrest
spool-path=$work/pgbackrest
log-level-console=warn
log-level-file=info

[bench]
pg1-path=$pgdata
pg1-port=$port
pg1-socket-path=$work/sock
pg1-user=postgres
EOF
  chown postgres: "$pgbr_conf"
  chmod 600 "$pgbr_conf"
fi

start_pg "$archive_opts"
if ((have_pgbr)); then
  pgbr stanza-create >"$work/logs/stanza-create.log" 2>&1 ||
    die "pgbackrest stanza-create failed: $(tail -n 5 "$work/logs/stanza-create.log")"
fi
log "data loaded in $(awk -v a="$t_load" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s:" \
  "database $(mb "$db_bytes") MB"

# ---------------------------------------------------------------------------------------------
# Helpers for the steps.

# Waits until every completed segment is archived (no .ready file left).
wait_archived() {
  local i
  for i in $(seq 1 1200); do
    if ! compgen -G "$pgdata/pg_wal/archive_status/*.ready" >/dev/null; then return 0; fi
    sleep 0.5
  done
  die "WAL archiving is stuck: $(grep -v '^\s*$' "$work/pg/server.log" | tail -n 8)"
}

cache_state="warm (page cache could not be dropped)"
drop_caches() {
  sync
  if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
    cache_state="cold (page cache dropped before every backup and restore)"
  fi
}

# run_timed KEY USER CMD...: runs CMD (as USER: root or postgres) under /usr/bin/time; records
# wall[KEY] (s), cpu[KEY] (user+sys s of the process tree) and rss[KEY] (MB, largest process).
declare -A wall cpu rss val
run_timed() {
  local key=$1 user=$2 t0 t1 tv="$work/logs/time.out"
  shift 2
  if [[ "$user" == postgres ]]; then set -- runuser -u postgres -- "$@"; fi
  drop_caches
  t0=$(now)
  if ! "$time_bin" -f '%U %S %M' -o "$tv" "$@" >"$work/logs/$key.log" 2>&1; then
    log "  $key: FAILED: $*"
    sed 's/^/    /' "$work/logs/$key.log" | tail -n 15
    wall[$key]=FAILED
    return 1
  fi
  t1=$(now)
  wall[$key]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  read -r u s m < <(tail -n 1 "$tv")
  cpu[$key]=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
  rss[$key]=$(awk -v m="$m" 'BEGIN { printf "%.0f", m / 1024 }')
  log "  $key: ${wall[$key]} s, cpu ${cpu[$key]} s, peak rss ${rss[$key]} MB"
}

# Changed pages: a per-8-KiB-block hash of every relation file, compared with the previous one.
cat >"$work/bin/pagehash.py" <<'EOF'
"""pagehash.py DATADIR OLD NEW CHANGED: hashes every 8 KiB block of the relation files under
DATADIR into NEW, appends the blocks that differ from OLD (or are new) to CHANGED, prints
'changed total'."""
import hashlib, os, pickle, re, sys

data_dir, old_path, new_path, changed_path = sys.argv[1:5]
rel = re.compile(r"^\d+(_(fsm|vm|init))?(\.\d+)?$")
old = {}
if os.path.exists(old_path):
    with open(old_path, "rb") as f:
        old = pickle.load(f)
new, changed, total = {}, 0, 0
with open(changed_path, "wb") as out:
    for top in ("base", "global", "pg_tblspc"):
        for d, _, names in os.walk(os.path.join(data_dir, top), followlinks=True):
            for n in names:
                if not rel.match(n):
                    continue
                p = os.path.join(d, n)
                key = os.path.relpath(p, data_dir)
                prev = old.get(key, b"")
                digests = []
                with open(p, "rb") as f:
                    i = 0
                    while True:
                        block = f.read(8192)
                        if not block:
                            break
                        h = hashlib.blake2b(block, digest_size=8).digest()
                        digests.append(h)
                        if prev[i * 8:i * 8 + 8] != h:
                            changed += 1
                            out.write(block)
                        i += 1
                total += len(digests)
                new[key] = b"".join(digests)
with open(new_path, "wb") as f:
    pickle.dump(new, f)
print(changed, total)
EOF

hash_n=0
# count_changes STEP: checkpoint, then records changed pages and their zstd -3 size.
count_changes() {
  local step=$1 out c t z
  psql_q -c CHECKPOINT >/dev/null
  out=$(python3 "$work/bin/pagehash.py" "$pgdata" "$work/pages.$hash_n" \
    "$work/pages.$((hash_n + 1))" "$work/changed.blocks")
  rm -f "$work/pages.$hash_n"
  hash_n=$((hash_n + 1))
  read -r c t <<<"$out"
  z=$(zstd -3 -q -c "$work/changed.blocks" | wc -c)
  rm -f "$work/changed.blocks"
  val[$step:pages]=$c
  val[$step:total_pages]=$t
  val[$step:pct]=$(awk -v c="$c" -v t="$t" 'BEGIN { printf "%.2f", 100 * c / t }')
  val[$step:raw_mb]=$(mb $((c * 8192)))
  val[$step:zst_mb]=$(mb "$z")
  log "  changed pages: $c of $t (${val[$step:pct]}%), $(mb $((c * 8192))) MB," \
    "$(mb "$z") MB with zstd -3"
}

size_before() { # STEP: repository sizes once the change's WAL is archived
  psql_q -c "SELECT pg_switch_wal()" >/dev/null
  wait_archived
  val[$1:reprise:before]=$(dusb "$repo_reprise")
  ((!have_pgbr)) || val[$1:pgbackrest:before]=$(dusb "$repo_pgbr")
}
size_after() { # STEP
  local t
  wait_archived
  for t in reprise pgbackrest; do
    [[ "$t" == reprise ]] || ((have_pgbr)) || continue
    local r=$repo_reprise
    [[ "$t" == reprise ]] || r=$repo_pgbr
    val[$1:$t:after]=$(dusb "$r")
    val[$1:$t:growth]=$(mb $((${val[$1:$t:after]} - ${val[$1:$t:before]})))
    val[$1:$t:repo]=$(mb "${val[$1:$t:after]}")
    val[$1:$t:wal]=$(mb $((${val[$1:$t:before]} - ${val[$1:$t:prev]})))
  done
}
prev_sizes() { # STEP: sizes after the previous backup, to tell the WAL archived meanwhile
  val[$1:reprise:prev]=$(dusb "$repo_reprise")
  ((!have_pgbr)) || val[$1:pgbackrest:prev]=$(dusb "$repo_pgbr")
}

declare -A point label
backup_reprise() { # STEP
  if run_timed "reprise:$1" root "$reprise" --json --plan "$plan" backup; then
    point[$1]=$(jq -r '.point // empty' "$work/logs/reprise:$1.log" | tail -n 1)
  fi
  fix_owner
}
backup_pgbr() { # STEP TYPE
  ((have_pgbr)) || return 0
  if run_timed "pgbackrest:$1" postgres pgbackrest --config="$pgbr_conf" --stanza=bench \
    --type="$2" backup; then
    label[$1]=$(pgbr info --output=json | jq -r '.[0].backup[-1].label')
  fi
}

small_change() {
  as_pg "$pg_bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -c 2 -t $((small_tx / 2)) \
    postgres >"$work/logs/pgbench-small.log" 2>&1 ||
    die "pgbench failed: $(tail -n 5 "$work/logs/pgbench-small.log")"
  add_docs "$small_docs"
  psql_q -c VACUUM >/dev/null
}

db_state() {
  psql_q -h 127.0.0.1 -p "${1:-$port}" -c "SELECT (SELECT count(*) || '/' ||
    coalesce(sum(length(body)), 0) FROM documents) || '/' ||
    (SELECT sum(abalance) FROM pgbench_accounts) || '/' || (SELECT count(*) FROM pgbench_history)"
}

# ---------------------------------------------------------------------------------------------
load_start=$(cut -d' ' -f1 /proc/loadavg)
log "1. full backup"
wait_archived
python3 "$work/bin/pagehash.py" "$pgdata" /nonexistent "$work/pages.0" /dev/null >/dev/null
backup_reprise full
backup_pgbr full full
mkdir -p "$work/repos/basebackup"
chown postgres: "$work/repos/basebackup"
run_timed "pg_basebackup:full" postgres "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$port" \
  -U postgres -D "$work/repos/basebackup" -Fp -X fetch -c fast || true
# The replication protocol's own floor: the same BASE_BACKUP streamed as one tar to /dev/null
# (no client-side disk, compression or encryption). A tool that backs up through the protocol,
# as reprise does, cannot be faster than this.
run_timed "pg_basebackup:floor" postgres sh -c "'$pg_bin/pg_basebackup' -h 127.0.0.1 \
  -p '$port' -U postgres -D - -Ft -X none -c fast >/dev/null" || true
wait_archived
val[full:reprise:repo]=$(mb "$(dusb "$repo_reprise")")
((!have_pgbr)) || val[full:pgbackrest:repo]=$(mb "$(dusb "$repo_pgbr")")
val[full:pg_basebackup:repo]=$(mb "$(dusb "$work/repos/basebackup")")
rm -rf "$work/repos/basebackup"
log "  repository MB: reprise ${val[full:reprise:repo]}," \
  "pgbackrest ${val[full:pgbackrest:repo]:--}, pg_basebackup ${val[full:pg_basebackup:repo]}"

log "2. small change ($small_tx pgbench transactions, $small_docs documents), backup"
prev_sizes small
small_change
count_changes small
size_before small
backup_reprise small
backup_pgbr small incr
size_after small

log "3. heavy change (pgbench -T $heavy_s -c 2), backup"
prev_sizes heavy
as_pg "$pg_bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -c 2 -T "$heavy_s" postgres \
  >"$work/logs/pgbench-heavy.log" 2>&1 ||
  die "pgbench failed: $(tail -n 5 "$work/logs/pgbench-heavy.log")"
heavy_tx=$(awk '/number of transactions actually processed/ { print $NF }' \
  "$work/logs/pgbench-heavy.log" | cut -d/ -f1)
psql_q -c VACUUM >/dev/null
count_changes heavy
size_before heavy
backup_reprise heavy
backup_pgbr heavy incr
size_after heavy

log "4. full restore of backup 3 into an empty directory"
restore_dir() { echo "$work/restore/$1"; }
restore_reprise() { # STEP POINT [--delta]
  run_timed "reprise:$1" root "$reprise" --plan "$plan" restore "$2" --component db \
    --target-dir "$(restore_dir reprise)" "${@:3}" || true
  fix_owner
}
restore_pgbr() { # STEP LABEL [--delta]
  ((have_pgbr)) || return 0
  if [[ -z "$2" ]]; then
    log "  pgbackrest:$1: skipped: its backup failed"
    wall[pgbackrest:$1]=FAILED
    return 0
  fi
  run_timed "pgbackrest:$1" postgres pgbackrest --config="$pgbr_conf" --stanza=bench \
    --set="$2" --pg1-path="$(restore_dir pgbackrest)" "${@:3}" restore || true
}
for t in reprise pgbackrest; do
  mkdir -p "$(restore_dir $t)"
  chown postgres: "$(restore_dir $t)"
  chmod 700 "$(restore_dir $t)"
done
[[ -n "${point[heavy]:-}" ]] || die "reprise backup 3 has no point id"
restore_reprise restore "${point[heavy]}"
restore_pgbr restore "${label[heavy]:-}"
val[restore:reprise:size]=$(mb "$(dusb "$(restore_dir reprise)")")
((!have_pgbr)) || val[restore:pgbackrest:size]=$(mb "$(dusb "$(restore_dir pgbackrest)")")

log "5. small change, backup 4, delta restore of backup 4 over the restore of step 4"
prev_sizes small2
small_change
count_changes small2
size_before small2
want_state=$(db_state)
backup_reprise small2
backup_pgbr small2 incr
size_after small2
[[ -n "${point[small2]:-}" ]] || die "reprise backup 4 has no point id"
restore_reprise delta "${point[small2]}" --delta
restore_pgbr delta "${label[small2]:-}" --delta

# Both delta-restored directories are started (recovery from their archives) and compared with
# the live cluster as it was at backup 4.
declare -A verdict
verify_restore() { # TOOL
  local t=$1 d vport state i
  d=$(restore_dir "$t")
  if [[ "${wall[$t:delta]:-}" == FAILED || ! -f "$d/PG_VERSION" ]]; then
    verdict[$t]="not restored"
    return 0
  fi
  vport=$(free_port)
  verify_dirs+=("$d")
  if ! as_pg "$pg_bin/pg_ctl" -D "$d" -l "$work/logs/verify-$t.log" -w -t 300 \
    -o "-p $vport -k $work/sock -c listen_addresses=127.0.0.1 -c archive_mode=off" \
    start >/dev/null 2>&1; then
    verdict[$t]="WRONG: does not start"
    log "  $t: restored cluster does not start: $(tail -n 5 "$work/logs/verify-$t.log")"
    return 0
  fi
  for i in $(seq 1 600); do
    [[ "$(psql_q -p "$vport" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" != f ]] || break
    sleep 0.5
  done
  state=$(db_state "$vport" 2>&1 || true)
  as_pg "$pg_bin/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 || true
  if [[ "$state" == "$want_state" ]]; then
    verdict[$t]="ok"
  else
    verdict[$t]="WRONG: got '$state', want '$want_state'"
  fi
  log "  $t restored cluster: ${verdict[$t]}"
}
verify_restore reprise
((!have_pgbr)) || verify_restore pgbackrest
rm -rf "$work/restore"

log "6. wal-push latency over $wal_segments segments"
wait_archived
mkdir -p "$work/wal-capture"
chown postgres: "$work/wal-capture"
capture=$work/wal-capture
psql_q -c "ALTER SYSTEM SET archive_command =
  'cp %p $capture/%f.tmp && mv $capture/%f.tmp $capture/%f'" -c "SELECT pg_reload_conf()" >/dev/null
for i in $(seq 1 200); do
  n=$(find "$work/wal-capture" -name '[0-9A-F]*' ! -name '*.tmp' | wc -l)
  ((n < wal_segments)) || break
  as_pg "$pg_bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -c 2 -t 500 postgres \
    >/dev/null 2>&1 || die "pgbench failed while making WAL"
  add_docs 5000
done
mapfile -t segs < <(find "$work/wal-capture" -regextype posix-extended \
  -regex '.*/[0-9A-F]{24}' | sort | head -n "$wal_segments")
((${#segs[@]} == wal_segments)) || die "only ${#segs[@]} WAL segments captured"
# Each segment is pushed by one tool and then the other, so both see the same load.
cat >"$work/bin/time-push.sh" <<'EOF'
#!/bin/bash
# time-push.sh OUT_DIR TOOL... -- FILE...: appends the microseconds of each push, one process
# per file (as archive_command runs it), to OUT_DIR/push-TOOL.us.
out=$1
shift
tools=()
while [[ "$1" != -- ]]; do tools+=("$1"); shift; done
shift
for f in "$@"; do
  for tool in "${tools[@]}"; do
    t0=$(date +%s%N)
    case "$tool" in
      reprise) "$REPRISE" -q --plan "$PLAN" wal-push --component db "$f" ;;
      pgbackrest) pgbackrest --config="$PGBR_CONF" --stanza=bench archive-push "$f" ;;
    esac 2>>"$out/push-$tool.err" || { echo "$tool failed on $f" >&2; exit 1; }
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000)) >>"$out/push-$tool.us"
  done
done
EOF
chmod 755 "$work/bin/time-push.sh"
percentile() { # FILE P: nearest rank, in ms
  sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END {
    r = int(p / 100 * NR); if (r < p / 100 * NR) r++; if (r < 1) r = 1
    printf "%.0f", v[r] / 1000 }'
}
push_tools=(reprise)
((!have_pgbr)) || push_tools+=(pgbackrest)
if as_pg env REPRISE="$reprise" PLAN="$plan" PGBR_CONF="$pgbr_conf" \
  "$work/bin/time-push.sh" "$work/logs" "${push_tools[@]}" -- "${segs[@]}" \
  2>"$work/logs/push.err"; then
  for t in "${push_tools[@]}"; do
    val[push:$t:p50]=$(percentile "$work/logs/push-$t.us" 50)
    val[push:$t:p99]=$(percentile "$work/logs/push-$t.us" 99)
    log "  $t: p50 ${val[push:$t:p50]} ms, p99 ${val[push:$t:p99]} ms"
  done
else
  log "  wal-push FAILED: $(cat "$work/logs/push.err")"
  for t in "${push_tools[@]}"; do
    [[ ! -s "$work/logs/push-$t.err" ]] || tail -n 5 "$work/logs/push-$t.err" | sed 's/^/    /'
    val[push:$t:p50]=FAILED
  done
fi
seg_zst=$(cat "${segs[@]}" | zstd -3 -q -c | wc -c)

# ---------------------------------------------------------------------------------------------
date_tag=$(date +%F)
results_dir="$root_dir/bench/results"
mkdir -p "$results_dir"
out="$results_dir/$date_tag-pg.md"
((!quick)) || out="$results_dir/$date_tag-pg-quick.md"
[[ ! -e "$out" ]] || out="${out%.md}-$(date +%H%M%S).md"

ratio() { # a b -> a/b or "-"
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "-"; else printf "%.2f", a / b }'
}
row() { # label reprise pgbackrest [pg_basebackup]
  echo "| $1 | ${2:--} | ${3:--} | ${4:--} | $(ratio "${2:-}" "${3:-}") |"
}
timed_rows() { # KEY what
  row "$2, wall s" "${wall[reprise:$1]:-}" "${wall[pgbackrest:$1]:-}" \
    "${wall[pg_basebackup:$1]:-}"
  row "$2, CPU s" "${cpu[reprise:$1]:-}" "${cpu[pgbackrest:$1]:-}" "${cpu[pg_basebackup:$1]:-}"
  row "$2, peak RSS MB" "${rss[reprise:$1]:-}" "${rss[pgbackrest:$1]:-}" \
    "${rss[pg_basebackup:$1]:-}"
}
change_rows() { # STEP what
  timed_rows "$1" "$2 backup"
  row "$2: WAL archived by the change, MB" "${val[$1:reprise:wal]:-}" \
    "${val[$1:pgbackrest:wal]:-}"
  row "**$2: repository growth by the backup, MB**" "${val[$1:reprise:growth]:-}" \
    "${val[$1:pgbackrest:growth]:-}"
  row "$2: growth / zstd size of the changed pages" \
    "$(ratio "${val[$1:reprise:growth]:-}" "${val[$1:zst_mb]}")" \
    "$(ratio "${val[$1:pgbackrest:growth]:-}" "${val[$1:zst_mb]}")"
}
pgbr_version=$( ((have_pgbr)) && pgbackrest version || echo "not installed")
{
  echo "# Benchmark: reprise vs pgBackRest vs pg_basebackup, PostgreSQL ($date_tag)"
  echo
  echo "- cluster: PostgreSQL $("$pg_bin/postgres" --version | awk '{ print $3 }'),"\
    "\`pgbench -i -s $scale\` + $docs documents (384 random float4 each):" \
    "database $(mb "$db_bytes") MB; fsync=off, autovacuum=off (VACUUM after each change)"
  echo "- small change: $small_tx pgbench transactions (-c 2) + $small_docs documents, then" \
    "VACUUM: ${val[small:pages]} of ${val[small:total_pages]} relation pages changed" \
    "(${val[small:pct]}%), ${val[small:raw_mb]} MB, ${val[small:zst_mb]} MB with zstd -3"
  echo "- heavy change: pgbench -T $heavy_s -c 2 ($heavy_tx transactions), VACUUM:" \
    "${val[heavy:pages]} of ${val[heavy:total_pages]} pages changed (${val[heavy:pct]}%)," \
    "${val[heavy:raw_mb]} MB, ${val[heavy:zst_mb]} MB with zstd -3"
  echo "- small change 2 (before backup 4): ${val[small2:pages]} of" \
    "${val[small2:total_pages]} pages (${val[small2:pct]}%), ${val[small2:raw_mb]} MB," \
    "${val[small2:zst_mb]} MB with zstd -3"
  echo "- machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM," \
    "$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release), $(uname -r)"
  echo "- page cache: $cache_state"
  echo "- load average (1 min) at start: $load_start, at end: $(cut -d' ' -f1 /proc/loadavg)"
  echo "- reprise: $("$reprise" --version 2>/dev/null | head -n 1), source tree at" \
    "$(git -C "$root_dir" rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "$(git -C "$root_dir" status --porcelain 2>/dev/null | grep -q . && echo '(with local changes)');" \
    "every backup is a full base backup (BASE_BACKUP), deduplicated against the repository;" \
    "runs as root, wal-push as postgres; repository opened with a generated key file"
  echo "- pgBackRest: $pgbr_version; compress-type=zst (level 3), process-max=2," \
    "repo1-cipher-type=aes-256-cbc, start-fast=y, archive-check=y; backup 1 --type=full, the" \
    "others --type=incr (whole changed files); runs as postgres"
  echo "- pg_basebackup: -Fp -X fetch -c fast, with its default fsync (the other two make their" \
    "repositories durable too); a plain uncompressed copy, only for the full backup"
  echo "- archive_command: pgBackRest archive-push, then reprise wal-push, for every segment;" \
    "sizes are taken after pg_switch_wal() once archiving has caught up, so \"growth by the" \
    "backup\" excludes the WAL of the change (shown on its own row)"
  echo "- restores: reprise restore (also fetches and verifies the WAL the point needs into the" \
    "data directory) vs pgbackrest restore (WAL comes later through restore_command);" \
    "delta: backup 4 over the restore of backup 3, after which both clusters are started:" \
    "reprise ${verdict[reprise]:-?}, pgBackRest ${verdict[pgbackrest]:--}"
  echo "- wal-push: ${#segs[@]} segments of this cluster (pgbench + document inserts;" \
    "$(mb "$seg_zst") MB with zstd -3 from $(mb $((${#segs[@]} * 16777216))) MB), pushed one" \
    "process each as postgres, reprise and pgBackRest in turn, timed from start to exit;" \
    "p99 is nearest-rank (with 40 pushes: the slowest)"
  echo
  echo "| step | reprise | pgBackRest | pg_basebackup | reprise/pgBackRest |"
  echo "|---|---:|---:|---:|---:|"
  timed_rows full "1. full backup"
  row "1. BASE_BACKUP streamed to /dev/null (the protocol's floor), wall s" "" "" \
    "${wall[pg_basebackup:floor]:-}"
  row "1. repository after the full backup, MB" "${val[full:reprise:repo]:-}" \
    "${val[full:pgbackrest:repo]:-}" "${val[full:pg_basebackup:repo]:-}"
  change_rows small "2. small change"
  change_rows heavy "3. heavy change"
  timed_rows restore "4. full restore"
  row "4. restored data directory, MB" "${val[restore:reprise:size]:-}" \
    "${val[restore:pgbackrest:size]:-}"
  change_rows small2 "5. small change 2"
  timed_rows delta "5. delta restore"
  row "6. wal-push p50, ms" "${val[push:reprise:p50]:-}" "${val[push:pgbackrest:p50]:-}"
  row "6. wal-push p99, ms" "${val[push:reprise:p99]:-}" "${val[push:pgbackrest:p99]:-}"
  row "repository at the end, MB" "${val[small2:reprise:repo]:-}" \
    "${val[small2:pgbackrest:repo]:-}"
} >"$out"

echo
cat "$out"
echo
log "results written to '${out#"$root_dir"/}'"
