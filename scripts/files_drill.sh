#!/usr/bin/env bash
# A second drill (the main job is scripts/demo.sh, the whole RAG stack): a disaster and a
# recovery of a local directory, then of a PostgreSQL cluster under write load.
#
# Sets up everything (scripts/setup.sh), then in a temporary directory: generates a dataset
# (text-like files, random binary, many small files, a sparse file, links), creates a
# repository, backs the dataset up, changes about 1% of it, backs up again, destroys the
# dataset (rm -rf), restores the latest point and proves the restored tree identical to the
# lost one (a manifest of path, type, mode, size, mtime and sha256 of every entry, and diff -r).
# Prints the figures: time and MB/s of each step, stored bytes, dedup ratio, RTO and RPO.
#
# Then the database drill: a PostgreSQL 15 cluster (pgbench tables and a table of documents
# with 384-float embeddings) streamed by `reprise wal-stream`, backed up into the same
# repository while a writer commits numbered transactions; the primary is killed with SIGKILL
# and its data directory deleted; `reprise restore --to-end --start` brings it back and the
# drill prints the measured RTO (disaster -> restored server recovered) and RPO (committed
# transactions lost, and their age), and checks the restored data is consistent.
#
#   bash scripts/files_drill.sh
#
# Environment: DEMO_SIZE_MB (default 400), DEMO_PG_SCALE (pgbench scale, default 10; 0 skips
# the database drill), DEMO_DIR (where the temp dir goes, default $TMPDIR
# or /tmp), DEMO_KEEP=1 (keep the temp dir), REPRISE_BUILD_DIR (default build), REPRISE_BIN
# (use this binary and skip setup.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
root_dir=$(pwd)

die() {
  echo "files-drill: error: $*" >&2
  exit 1
}
say() { printf '\n== %s\n' "$*"; }

if [[ -n "${REPRISE_BIN:-}" ]]; then
  bin=$REPRISE_BIN
else
  bash scripts/setup.sh --with-postgres
  bin="$root_dir/${REPRISE_BUILD_DIR:-build}/reprise"
fi
[[ -x "$bin" ]] || die "no reprise binary at '$bin'. HINT: run 'bash scripts/setup.sh'"
command -v jq >/dev/null || die "jq not found. HINT: run 'bash scripts/setup.sh --no-build'"

size_mb=${DEMO_SIZE_MB:-400}
if [[ ! "$size_mb" =~ ^[0-9]+$ ]] || ((size_mb < 20)); then
  die "DEMO_SIZE_MB must be a number >= 20, not '$size_mb'"
fi

work=$(mktemp -d "${DEMO_DIR:-${TMPDIR:-/tmp}}/reprise-demo.XXXXXX")
pg_pids=()
cleanup() {
  local pid d
  for pid in "${pg_pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for d in "$work/pg-data" "$work/pg-restored"; do
    if [[ -f "$d/postmaster.pid" ]]; then kill -9 "$(head -1 "$d/postmaster.pid")" 2>/dev/null || true; fi
  done
  if [[ "${DEMO_KEEP:-0}" == 1 ]]; then
    echo "files-drill: kept '$work'"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

data="$work/data"           # the directory we protect
repo="$work/repo"           # the repository (a local path here; S3 later)
restored="$work/restored"   # the "new disk" we restore onto
reference="$work/reference" # a copy kept only to prove equality with diff -r
mkdir -p "$data" "$restored"

# The passphrase lives in a 0600 file and never appears on a command line.
(umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n' >"$work/passphrase")
export REPRISE_REPOSITORY="$repo"
export REPRISE_PASSWORD_FILE="$work/passphrase"
unset REPRISE_PASSWORD

now() { date +%s.%N; }
# elapsed START END -> seconds with 2 decimals
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# mbps BYTES SECONDS
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.1f", n / 1e6 / s }'; }
mb() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }

# Bytes a backup has to read: apparent sizes of regular files (holes count: they are read as
# zeros by naive tools; reprise skips them, which only makes it look slower here).
logical_bytes() { find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { printf "%d", n }'; }

# One line per entry: path, type, mode, size (not for directories: their st_size depends on
# the file system's history), mtime with nanoseconds, sha256 for regular files.
manifest() {
  local dir=$1 sums
  sums=$(mktemp)
  (cd "$dir" && find . -type f -print0 | xargs -0 -r sha256sum) >"$sums"
  (cd "$dir" && find . -printf '%p\t%y\t%m\t%s\t%T@\n') |
    awk -F'\t' -v OFS='\t' -v sums="$sums" '
      BEGIN { while ((getline l < sums) > 0) h[substr(l, 67)] = substr(l, 1, 64) }
      { size = ($2 == "d") ? "-" : $4; print $1, $2, $3, size, $5, ($2 == "f") ? h[$1] : "-" }' |
    LC_ALL=C sort
  rm -f "$sums"
}

# ---------------------------------------------------------------------------------------------
say "generating a ~${size_mb} MB dataset in '$data'"
t0=$(now)
text_mb=$((size_mb * 35 / 100))
bin_mb=$((size_mb * 40 / 100))
small_count=$((size_mb * 15))
# Text-like (log lines, compress well, all unique so dedup does not flatter the figures).
mkdir -p "$data/logs"
for i in $(seq 1 20); do
  awk -v seed="$i" -v bytes=$((text_mb * 1000000 / 20)) 'BEGIN {
    srand(seed); split("GET POST PUT DELETE", m, " "); split("INFO WARN ERROR DEBUG", lv, " ")
    t = 1700000000 + seed * 86400
    while (n < bytes) {
      t += int(rand() * 3)
      l = sprintf("%d %s %s /api/v%d/items/%d?user=%d status=%d bytes=%d ms=%.3f\n", t,
                  lv[1 + int(rand() * 4)], m[1 + int(rand() * 4)], 1 + int(rand() * 3),
                  int(rand() * 100000), int(rand() * 5000), 200 + int(rand() * 4) * 100,
                  int(rand() * 65536), rand() * 900)
      printf "%s", l; n += length(l)
    }
  }' >"$data/logs/app-$i.log"
done
# Random binary (incompressible), plus two exact duplicates that dedup should store once.
mkdir -p "$data/blobs"
for i in $(seq 1 10); do
  head -c $((bin_mb * 1000000 / 12)) /dev/urandom >"$data/blobs/object-$i.bin"
done
cp "$data/blobs/object-1.bin" "$data/blobs/object-1-copy.bin"
cp "$data/blobs/object-2.bin" "$data/blobs/object 2 (copy).bin"
# Many small files in nested directories, of assorted sizes.
awk -v count="$small_count" -v dir="$data/small" 'BEGIN {
  srand(42)
  for (d = 0; d < 40; d++) system("mkdir -p \"" dir "/d" d "/sub\"")
  for (i = 0; i < count; i++) {
    f = sprintf("%s/d%d/%sfile-%05d.txt", dir, i % 40, (i % 3 == 0) ? "sub/" : "", i)
    n = 1 + int(rand() * rand() * 60)
    for (j = 0; j < n; j++) printf "record %d.%d value=%d\n", i, j, int(rand() * 1e9) > f
    close(f)
  }
}'
# A sparse file: a quarter of the dataset's size apparent, two 1 MB data regions.
sparse_mb=$((size_mb / 4))
truncate -s "${sparse_mb}M" "$data/disk.img"
head -c 1000000 /dev/urandom | dd of="$data/disk.img" bs=1M seek=2 conv=notrunc status=none
head -c 1000000 /dev/urandom |
  dd of="$data/disk.img" bs=1M seek=$((sparse_mb - 3)) conv=notrunc status=none
# Edge cases a restore must keep: empty file, empty dir, symlinks, a hard link, odd modes.
: >"$data/empty-file"
mkdir -p "$data/empty-dir"
ln -s logs/app-1.log "$data/latest.log"
ln -s /nonexistent/target "$data/dangling-link"
ln "$data/logs/app-2.log" "$data/app-2-hardlink.log"
chmod 0600 "$data/blobs/object-3.bin"
chmod 0755 "$data/logs/app-3.log"
chmod 0700 "$data/small/d7"
t1=$(now)
bytes1=$(logical_bytes "$data")
files1=$(find "$data" -type f | wc -l)
disk1=$(du -s -B1 "$data" | cut -f1)
echo "dataset: $(mb "$bytes1") MB in $files1 files ($(mb "$disk1") MB on disk, the rest are holes)," \
  "made in $(elapsed "$t0" "$t1") s"

# ---------------------------------------------------------------------------------------------
say "reprise init"
"$bin" init
[[ -f "$repo/config" ]] || die "'reprise init' succeeded but '$repo/config' does not exist"

# run_backup LABEL -> sets backup_point, backup_secs
run_backup() {
  local label=$1 out t_start t_end
  t_start=$(now)
  out=$("$bin" --json backup "$data") || die "'reprise backup' ($label) failed"
  t_end=$(now)
  backup_point=$(jq -r '.point // empty' <<<"$out")
  [[ -n "$backup_point" ]] || die "'reprise backup --json' printed no point id: $out"
  backup_secs=$(elapsed "$t_start" "$t_end")
}

say "backup 1 (full)"
run_backup "first"
point1=$backup_point
secs1=$backup_secs
echo "point $point1: $(mb "$bytes1") MB in $secs1 s = $(mbps "$bytes1" "$secs1") MB/s"
stored1=$(du -sb "$repo" | cut -f1)

# ---------------------------------------------------------------------------------------------
say "changing about 1% of the data"
sleep 1 # so that changed files get a visibly different mtime
# Append to some logs, overwrite the middle of some binaries, add and delete a few files.
for i in 4 9 14; do
  awk -v seed=$((100 + i)) 'BEGIN { srand(seed); for (k = 0; k < 10000; k++)
    printf "%d INFO appended line %d value=%d\n", 1800000000 + k, k, int(rand() * 1e9) }' \
    >>"$data/logs/app-$i.log"
done
for i in 5 8; do
  head -c 1000000 /dev/urandom |
    dd of="$data/blobs/object-$i.bin" bs=1M seek=3 conv=notrunc status=none
done
mkdir -p "$data/new"
for i in 1 2 3; do head -c 300000 /dev/urandom >"$data/new/upload-$i.bin"; done
echo "a new note" >"$data/small/d3/new-note.txt"
rm -f "$data/small/d1/file-00001.txt" "$data/small/d2/file-00002.txt"
rm -rf "$data/small/d39/sub"
bytes2=$(logical_bytes "$data")
files2=$(find "$data" -type f | wc -l)
echo "now $(mb "$bytes2") MB in $files2 files"

say "backup 2 (incremental)"
run_backup "second"
point2=$backup_point
secs2=$backup_secs
echo "point $point2: $(mb "$bytes2") MB scanned in $secs2 s = $(mbps "$bytes2" "$secs2") MB/s"
stored2=$(du -sb "$repo" | cut -f1)

# The state that must come back, recorded before the disaster.
manifest "$data" >"$work/manifest.before"
cp -a "$data" "$reference"

# ---------------------------------------------------------------------------------------------
say "disaster: rm -rf '$data'"
disaster_epoch=$(date +%s.%N)
rm -rf "$data"
[[ ! -e "$data" ]] || die "could not remove '$data'"

say "reprise restore latest"
t_start=$(now)
"$bin" restore latest --target "$restored" || die "'reprise restore latest' failed"
t_end=$(now)
restore_secs=$(elapsed "$t_start" "$t_end")
[[ -d "$restored$data" ]] || die "restore finished but '$restored$data' does not exist"
echo "restored $(mb "$bytes2") MB in $restore_secs s = $(mbps "$bytes2" "$restore_secs") MB/s"

say "verifying the restored tree"
manifest "$restored$data" >"$work/manifest.after"
entries=$(wc -l <"$work/manifest.before")
if ! diff -u "$work/manifest.before" "$work/manifest.after" >"$work/manifest.diff"; then
  head -n 40 "$work/manifest.diff" >&2
  die "restored tree differs from the original ($(grep -c '^[-+][^-+]' "$work/manifest.diff") \
manifest lines; first ones above)"
fi
echo "manifest: $entries entries identical (path, type, mode, size, mtime ns, sha256)"
diff -r --no-dereference "$reference" "$restored$data" >/dev/null ||
  die "'diff -r' found differences between the original and the restored tree"
echo "diff -r: no differences"

# ---------------------------------------------------------------------------------------------
"$bin" check >/dev/null || die "'reprise check' failed after the demo"

stats=$("$bin" --json stats) || die "'reprise stats --json' failed"
# dedup ratio: what restoring every point gives / unique data; compression: unique / stored.
dedup=$(jq -r '.dedup_ratio // empty' <<<"$stats")
compression=$(jq -r '.compression_ratio // empty' <<<"$stats")
ratio() { if [[ -n "$1" ]]; then awk -v r="$1" 'BEGIN { printf "%.2fx", r }'; else echo n/a; fi; }

point_time=$("$bin" --json points | jq -r --arg id "$point2" \
  '.[] | select(.id == $id or .short_id == $id) | .time' | head -n 1)
rpo="n/a"
if [[ -n "$point_time" ]] && point_epoch=$(date -d "$point_time" +%s.%N 2>/dev/null); then
  rpo="$(elapsed "$point_epoch" "$disaster_epoch") s"
fi
repo_bytes=$(du -sb "$repo" | cut -f1)

say "figures"
printf '%-34s %s\n' \
  "dataset (logical)" "$(mb "$bytes2") MB, $files2 files" \
  "backup 1 (full)" "$secs1 s, $(mbps "$bytes1" "$secs1") MB/s" \
  "backup 2 (after ~1% change)" "$secs2 s, $(mbps "$bytes2" "$secs2") MB/s" \
  "restore (latest)" "$restore_secs s, $(mbps "$bytes2" "$restore_secs") MB/s" \
  "stored after backup 1" "$(mb "$stored1") MB" \
  "stored after backup 2" "$(mb "$stored2") MB (+$(mb $((stored2 - stored1))) MB)" \
  "repository size (du -sb)" "$(mb "$repo_bytes") MB" \
  "dedup ratio (reprise stats)" "$(ratio "$dedup") (both points / unique data)" \
  "compression ratio (reprise stats)" "$(ratio "$compression")" \
  "RTO (measured restore time)" "$restore_secs s" \
  "RPO (age of restored point)" "$rpo"
echo
echo "demo: OK: the directory was destroyed and restored identically"

# =============================================================================================
# The database drill.
pg_scale=${DEMO_PG_SCALE:-10}
pgbin=/usr/lib/postgresql/15/bin
if [[ "$pg_scale" == 0 ]]; then
  echo "demo: database drill skipped (DEMO_PG_SCALE=0)"
  exit 0
fi
[[ "$pg_scale" =~ ^[0-9]+$ ]] || die "DEMO_PG_SCALE must be a number, not '$pg_scale'"
[[ -x "$pgbin/initdb" ]] ||
  die "PostgreSQL 15 is not installed. HINT: bash scripts/setup.sh --with-postgres"
as_pg=()
if ((EUID == 0)); then as_pg=(runuser -u postgres --); fi
chmod 755 "$work"
port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
pg_port=$((20000 + RANDOM % 20000))
while ! port_free "$pg_port"; do pg_port=$((pg_port + 1)); done
pg_port2=$((pg_port + 1))
while ! port_free "$pg_port2"; do pg_port2=$((pg_port2 + 1)); done
pgdata="$work/pg-data"
pgrun="$work/pg-run" # the server's socket and log: a directory its user may write
mkdir -p "$pgrun"
if ((EUID == 0)); then chown postgres: "$pgrun"; fi
psql_() { psql -X -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atq -v ON_ERROR_STOP=1 "${@:2}"; }

say "database: PostgreSQL 15 on 127.0.0.1:$pg_port, pgbench scale $pg_scale + documents"
mkdir -p "$pgdata" && chmod 700 "$pgdata"
if ((EUID == 0)); then chown postgres: "$pgdata"; fi
"${as_pg[@]}" "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
  --no-sync >"$work/initdb.log" || die "initdb failed (see $work/initdb.log)"
{
  echo "listen_addresses = '127.0.0.1'"
  echo "port = $pg_port"
  echo "unix_socket_directories = '$pgrun'"
  echo "wal_level = replica"
  echo "max_wal_senders = 5"
  echo "max_replication_slots = 5"
  echo "shared_buffers = 128MB"
} >>"$pgdata/postgresql.conf"
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -l "$pgrun/pg.log" -w start >/dev/null ||
  die "PostgreSQL did not start (see $pgrun/pg.log)"
t0=$(now)
"$pgbin/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -i -s "$pg_scale" -q postgres \
  >"$work/pgbench-init.log" 2>&1 || die "pgbench -i failed (see $work/pgbench-init.log)"
docs=$((pg_scale * 2000))
psql_ "$pg_port" -c "
  create table documents (id bigserial primary key, doc_id text not null,
                          object_key text not null, body text not null,
                          embedding float4[] not null);
  insert into documents (doc_id, object_key, body, embedding)
    select 'doc-' || g, 'docs/' || g || '.pdf', repeat('chunk of document ' || g || ' ', 20),
           array(select random()::float4 from generate_series(1, 384) where g > 0)
    from generate_series(1, $docs) g;
  create table ticks (id bigint primary key, at timestamptz not null default clock_timestamp());" ||
  die "loading documents failed"
t1=$(now)
db_bytes=$(psql_ "$pg_port" -c "select pg_database_size('postgres')")
echo "database: $(mb "$db_bytes") MB ($docs documents), loaded in $(elapsed "$t0" "$t1") s"

{
  echo "version: 1"
  echo "name: demo-db"
  echo "sites:"
  echo "  local: {repository: $repo}"
  echo "components:"
  echo "  db:"
  echo "    kind: postgres"
  echo "    class: transactional"
  echo "    connection: \"host=127.0.0.1 port=$pg_port user=postgres\""
  echo "    wal: stream"
  echo "    wal_spool: $work/wal-spool"
} >"$work/db.yaml"

say "reprise wal-stream (background): WAL reaches the repository as it is written"
"$bin" --plan "$work/db.yaml" wal-stream --push-interval-ms 500 2>"$work/wal-stream.log" &
stream_pid=$!
pg_pids+=("$stream_pid")
for _ in $(seq 1 100); do
  grep -q "streaming from" "$work/wal-stream.log" && break
  sleep 0.1
done
grep -q "streaming from" "$work/wal-stream.log" ||
  die "wal-stream did not start: $(cat "$work/wal-stream.log")"

say "backup of the database (base backup over the replication protocol)"
t0=$(now)
out=$("$bin" --plan "$work/db.yaml" --json backup) || die "database backup failed: $out"
t1=$(now)
db_backup_secs=$(elapsed "$t0" "$t1")
echo "point $(jq -r .point <<<"$out"): $(mb "$db_bytes") MB in $db_backup_secs s" \
  "= $(mbps "$db_bytes" "$db_backup_secs") MB/s"

say "writing: pgbench load, and a counter committed one transaction at a time"
"$pgbin/pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -n -c 2 -T 600 postgres \
  >"$work/pgbench-run.log" 2>&1 &
pg_pids+=("$!")
# An id is printed only after its INSERT has committed: these are the acknowledged commits.
(
  i=0
  while :; do
    i=$((i + 1))
    psql_ "$pg_port" -c "insert into ticks (id) values ($i)" >/dev/null 2>&1 || exit 0
    echo "$i"
  done
) >"$work/acked" &
pg_pids+=("$!")
sleep 5

say "disaster: SIGKILL the primary and delete its data directory"
disaster=$(now)
kill -9 "$(head -1 "$pgdata/postmaster.pid")"
sleep 0.3
rm -rf "$pgdata"
acked=$(tail -n 1 "$work/acked")
acked=${acked:-0}
echo "acknowledged commits of the counter: $acked"

say "reprise restore latest --to-end --start"
"$bin" --plan "$work/db.yaml" restore latest --component db --target-dir "$work/pg-restored" \
  --to-end --start --port "$pg_port2" --no-archive || die "database restore failed"
t1=$(now)
rto=$(elapsed "$disaster" "$t1")
kill "$stream_pid" 2>/dev/null || true

say "verifying the restored database"
restored_max=$(psql_ "$pg_port2" -c "select coalesce(max(id), 0) from ticks")
lost=$((acked - restored_max))
((lost >= 0)) || lost=0
lost_age=$(psql_ "$pg_port2" -c "select round(extract(epoch from
  (to_timestamp($disaster) - max(at)))::numeric, 2) from ticks")
holes=$(psql_ "$pg_port2" -c "select $restored_max - count(*) from ticks")
[[ "$holes" == 0 ]] || die "the restored counter has $holes holes below its maximum"
balance=$(psql_ "$pg_port2" -c "select (select sum(abalance) from pgbench_accounts) =
  (select coalesce(sum(delta), 0) from pgbench_history)")
[[ "$balance" == t ]] || die "restored pgbench tables are inconsistent (balances != history)"
ndocs=$(psql_ "$pg_port2" -c "select count(*) from documents")
[[ "$ndocs" == "$docs" ]] || die "restored $ndocs documents, expected $docs"
echo "documents: $ndocs; pgbench balances = history; counter: no holes up to $restored_max"
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg-restored" stop -m fast >/dev/null 2>&1 || true

say "database figures"
printf '%-36s %s\n' \
  "database size" "$(mb "$db_bytes") MB" \
  "base backup" "$db_backup_secs s" \
  "RTO (disaster -> recovered, serving)" "$rto s" \
  "RPO (commits lost)" "$lost of $acked acknowledged" \
  "RPO (age of last restored commit)" "$lost_age s before the disaster"
echo
echo "demo: OK: the database was killed, deleted and recovered to the last streamed WAL"
