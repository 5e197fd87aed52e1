#!/usr/bin/env bash
# wal-push latency: times `reprise wal-push` as PostgreSQL's archive_command runs it (one process
# per 16 MiB segment, repository on local disk, opened with a generated key file) and prints
# p50/p99; optionally counts the instructions of one push with callgrind (repeatable on a busy
# machine, unlike wall time).
#
#   bench/wal_push_latency.sh [-n N] [--segments DIR] [--callgrind] [--keep] REPRISE [REPRISE_B]
#   bench/wal_push_latency.sh [-n N] [--segments DIR] --make-segments
#
# With two binaries, each pushes every segment into its own repository, A and B in turn
# (A B, B A, A B, ... so neither always runs first), and both are reported side by side.
#
# Segments: real WAL of a throwaway PostgreSQL 15 (pgbench -s 5 plus documents with random
# float4[384] embeddings, as bench/pg_bench.sh step 6 makes them), made once into DIR (default
# /var/tmp/reprise-wal-segments) and reused while DIR holds at least N; delete DIR to make new
# ones. Making them needs root (the server runs as the 'postgres' user) and takes ~1-2 minutes.
#
# Output: per binary, p50 / p99 (nearest rank) / mean in ms over N pushes, the repository's
# growth in MB (packs, index files and WAL records) against the segments' size and their
# `zstd -3` size, and with --callgrind the instructions (Ir, all threads) of one push.
set -euo pipefail

n=30
seg_dir=/var/tmp/reprise-wal-segments
callgrind=0
keep=0
make_only=0
bins=()
while (($#)); do
  case "$1" in
    -n) n=$2; shift 2 ;;
    --segments) seg_dir=$2; shift 2 ;;
    --callgrind) callgrind=1; shift ;;
    --keep) keep=1; shift ;;
    --make-segments) make_only=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option '$1'" >&2; exit 2 ;;
    *) bins+=("$(realpath "$1")"); shift ;;
  esac
done
((make_only || (${#bins[@]} >= 1 && ${#bins[@]} <= 2))) || { echo "give one or two reprise binaries" >&2; exit 2; }
[[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1)) || { echo "-n needs a positive number" >&2; exit 2; }

log() { echo "[$(date +%T)] $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Segments.
count_segments() {
  find "$seg_dir" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' 2>/dev/null | wc -l
}

make_segments() {
  local pg_bin=/usr/lib/postgresql/15/bin
  [[ -x "$pg_bin/initdb" ]] || { echo "PostgreSQL 15 is not installed ($pg_bin)" >&2; exit 1; }
  ((EUID == 0)) || { echo "making segments needs root (the server runs as postgres)" >&2; exit 1; }
  local pg
  pg=$(mktemp -d /var/tmp/walperf-pg.XXXXXX)
  chmod 755 "$pg"
  mkdir -p "$pg/capture"
  chown -R postgres: "$pg"
  as_pg() { runuser -u postgres -- "$@"; }
  psql_q() { as_pg "$pg_bin/psql" -h "$pg" -U postgres -X -q -t -A -v ON_ERROR_STOP=1 \
    -d postgres "$@"; }
  log "making $n segments with a throwaway PostgreSQL 15 in $pg"
  as_pg "$pg_bin/initdb" -D "$pg/data" -U postgres -A trust --no-sync -E UTF8 >"$pg/initdb.log"
  as_pg "$pg_bin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 120 \
    -o "-c listen_addresses='' -k $pg -c fsync=off -c autovacuum=off -c archive_mode=on" \
    start >/dev/null
  # shellcheck disable=SC2064
  trap "runuser -u postgres -- $pg_bin/pg_ctl -D $pg/data -m immediate stop >/dev/null 2>&1;
        rm -rf $pg" EXIT
  # archive_command is set with ALTER SYSTEM, never with -c (which would override it).
  psql_q -c "ALTER SYSTEM SET archive_command = '/bin/true'" -c "SELECT pg_reload_conf()" \
    >/dev/null
  as_pg "$pg_bin/pgbench" -h "$pg" -U postgres -i -q -s 5 postgres >"$pg/pgbench-init.log" 2>&1
  psql_q -c "CREATE TABLE documents (id bigserial PRIMARY KEY, doc_id text, body text,
    embedding float4[])"
  # From here on every completed segment is copied (as bench/pg_bench.sh step 6 does).
  psql_q -c "ALTER SYSTEM SET archive_command =
    'cp %p $pg/capture/%f.tmp && mv $pg/capture/%f.tmp $pg/capture/%f'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  local i got
  for i in $(seq 1 $((n * 2 + 10))); do
    got=$(find "$pg/capture" -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l)
    ((got < n)) || break
    as_pg "$pg_bin/pgbench" -h "$pg" -U postgres -n -c 2 -t 500 postgres >/dev/null 2>&1
    psql_q -c "INSERT INTO documents (doc_id, body, embedding)
      SELECT 'doc-' || md5(random()::text), repeat(md5(random()::text) || ' ', 12),
             ARRAY(SELECT (random() * 2 - 1 + 0 * g)::float4 FROM generate_series(1, 384))
      FROM generate_series(1, 5000) g" >/dev/null
  done
  mkdir -p "$seg_dir"
  find "$pg/capture" -regextype posix-extended -regex '.*/[0-9A-F]{24}' | sort | head -n "$n" |
    xargs -r cp -t "$seg_dir"
  chmod -R a+rX "$seg_dir"
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg/data" -m fast -w stop >/dev/null
  rm -rf "$pg"
  trap - EXIT
}

if (($(count_segments) < n)); then make_segments; fi
((!make_only)) || exit 0
mapfile -t segs < <(find "$seg_dir" -maxdepth 1 -regextype posix-extended \
  -regex '.*/[0-9A-F]{24}' | sort | head -n "$n")
((${#segs[@]} == n)) || { echo "only ${#segs[@]} segments in $seg_dir" >&2; exit 1; }
seg_bytes=$(cat "${segs[@]}" | wc -c)
seg_zst=$(cat "${segs[@]}" | zstd -3 -q -c | wc -c)

# ---------------------------------------------------------------------------------------------
# Repositories: one per binary, each made by its own binary, with a passphrase and a generated
# key file; the plan names the key file (as in bench/pg_bench.sh).
work=$(mktemp -d /var/tmp/walperf-run.XXXXXX)
((keep)) || trap 'rm -rf "$work"' EXIT
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n' >"$work/passphrase")
for i in "${!bins[@]}"; do
  r=$work/repo$i
  "${bins[$i]}" -q -r "$r" --password-file "$work/passphrase" init >/dev/null
  "${bins[$i]}" -q -r "$r" --password-file "$work/passphrase" key add \
    --generate-key-file "$work/wal$i.key" >/dev/null
  cat >"$work/plan$i.yaml" <<EOF
version: 1
name: walperf
secrets:
  repository_password: {file: $work/wal$i.key}
sites:
  primary: {repository: $r}
components:
  db:
    kind: postgres
    class: transactional
    connection: "host=127.0.0.1 port=5432 user=postgres"
  cg:
    kind: postgres
    class: transactional
    connection: "host=127.0.0.1 port=5432 user=postgres"
EOF
  size0[$i]=$(du -sb "$r" | cut -f1)
done

push() { # INDEX COMPONENT FILE
  "${bins[$1]}" -q --plan "$work/plan$1.yaml" wal-push --component "$2" "$3"
}

# Warm-up: the page cache holds the segments and the binaries, as on a server that just wrote
# them (PostgreSQL archives a segment moments after writing it).
cat "${segs[@]}" "${bins[@]}" >/dev/null

log "pushing $n segments with ${#bins[@]} binar$( ((${#bins[@]} == 1)) && echo y || echo ies)"
k=0
for f in "${segs[@]}"; do
  order=("${!bins[@]}")
  if ((${#bins[@]} == 2 && k % 2 == 1)); then order=(1 0); fi
  for i in "${order[@]}"; do
    t0=$(date +%s%N)
    push "$i" db "$f" || { echo "wal-push failed (binary ${bins[$i]}, $f)" >&2; exit 1; }
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000)) >>"$work/us$i"
  done
  k=$((k + 1))
done

percentile() { # FILE P: nearest rank, ms with one decimal
  sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END {
    r = int(p / 100 * NR); if (r < p / 100 * NR) r++; if (r < 1) r = 1
    printf "%.1f", v[r] / 1000 }'
}
mean() { awk '{ s += $1 } END { printf "%.1f", s / NR / 1000 }' "$1"; }

# Callgrind: one push of the first segment under another component (so it is new), counting
# the instructions of every thread of the process.
ir() { # INDEX
  local out=$work/callgrind$1.out
  valgrind --tool=callgrind --callgrind-out-file="$out" "${bins[$1]}" -q \
    --plan "$work/plan$1.yaml" wal-push --component cg "${segs[0]}" 2>"$work/callgrind$1.log" ||
    { echo "callgrind run failed: $(tail -n 3 "$work/callgrind$1.log")" >&2; exit 1; }
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

echo "segments: $n from $seg_dir, $(awk -v b="$seg_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB" \
  "(zstd -3: $(awk -v b="$seg_zst" 'BEGIN { printf "%.1f", b / 1e6 }') MB)"
for i in "${!bins[@]}"; do
  grown=$(($(du -sb "$work/repo$i" | cut -f1) - size0[$i]))
  line="${bins[$i]}: p50 $(percentile "$work/us$i" 50) ms, p99 $(percentile "$work/us$i" 99) ms,"
  line+=" mean $(mean "$work/us$i") ms; stored $(awk -v b="$grown" 'BEGIN { printf "%.1f", b / 1e6 }') MB"
  if ((callgrind)); then
    line+="; callgrind: $(ir "$i") instructions for one push"
  fi
  echo "$line"
done
((!keep)) || echo "kept: $work" >&2
