#!/usr/bin/env bash
# reprise against restic and borg on the same corpus, in one run.
#
# Corpus: a PostgreSQL 15 data directory (initdb + `pgbench -i -s $BENCH_SCALE`, server
# stopped, then copied cold) plus a copy of /usr/share (small files). At the default scale it
# is over 2 GB. For each tool: first backup, no-change backup, backup after a ~1% change, full
# restore; each measured for wall time, MB/s, CPU (user+sys), peak RSS (/usr/bin/time -v) and
# repository size. Prints a table with reprise/peer ratios and writes it as markdown to
# bench/results/<date>.md. Not a test; not run by CI.
#
#   bash scripts/setup.sh --with-peers && bash bench/bench.sh
#   BENCH_SCALE=10 bash bench/bench.sh          # quick run (~0.3 GB corpus)
#
# Environment:
#   BENCH_SCALE   pgbench scale factor (default 100, about 1.5 GB of PostgreSQL data)
#   BENCH_SHARE   directory copied for small files (default /usr/share; /usr/share/doc when
#                 BENCH_SCALE < 100)
#   BENCH_TOOLS   tools to run (default "reprise restic borg")
#   BENCH_DIR     where the work dir goes (default /var/tmp); needs ~4x the corpus size free
#   BENCH_CORPUS  use this existing directory as the corpus instead of building one
#   BENCH_VERIFY  1 = compare every restored file with diff -r (slow; default: count+bytes)
#   REPRISE_BIN   the reprise binary (default build/reprise)
#   BENCH_KEEP=1  keep the work dir
set -euo pipefail

cd "$(dirname "$0")/.."
root_dir=$(pwd)

die() {
  echo "bench: error: $*" >&2
  exit 1
}
log() { echo "bench: $*"; }

scale=${BENCH_SCALE:-100}
if [[ ! "$scale" =~ ^[1-9][0-9]*$ ]]; then die "BENCH_SCALE must be a positive number"; fi
if ((scale >= 100)); then share_default=/usr/share; else share_default=/usr/share/doc; fi
share=${BENCH_SHARE:-$share_default}
read -r -a tools <<<"${BENCH_TOOLS:-reprise restic borg}"
reprise_bin=${REPRISE_BIN:-$root_dir/build/reprise}
time_bin=/usr/bin/time

for t in "${tools[@]}"; do
  case "$t" in
    reprise) [[ -x "$reprise_bin" ]] ||
      die "no reprise binary at '$reprise_bin'. HINT: run 'bash scripts/setup.sh'" ;;
    restic | borg) command -v "$t" >/dev/null ||
      die "'$t' not installed. HINT: run 'bash scripts/setup.sh --with-peers'" ;;
    *) die "unknown tool '$t' in BENCH_TOOLS (known: reprise restic borg)" ;;
  esac
done
[[ -x "$time_bin" ]] || die "'$time_bin' missing. HINT: apt-get install time"

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/reprise-bench.XXXXXX")
chmod 755 "$work" # the postgres user must reach its data directory inside
pg_pid_file=""
cleanup() {
  if [[ -n "$pg_pid_file" && -f "$pg_pid_file" ]]; then
    stop_postgres || true
  fi
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept '$work'"; else rm -rf "$work"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
mb() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }

# ---------------------------------------------------------------------------------------------
# PostgreSQL, run as the postgres user on a free loopback port, only to make the corpus.
pg_bin=""
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
  if [[ -x "$d/initdb" && -x "$d/pgbench" ]]; then pg_bin=$d; break; fi
done

as_pg() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

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

pg_dir="$work/pg"
stop_postgres() {
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null
  pg_pid_file=""
}

build_pg_corpus() {
  local port
  [[ -n "$pg_bin" ]] ||
    die "PostgreSQL server binaries not found. HINT: run 'bash scripts/setup.sh --with-peers'"
  mkdir -p "$pg_dir"
  if ((EUID == 0)); then chown postgres: "$pg_dir"; fi
  as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust --no-sync -E UTF8 \
    >"$work/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$work/initdb.log")"
  port=$(free_port)
  log "PostgreSQL on 127.0.0.1:$port, pgbench -i -s $scale"
  pg_pid_file="$pg_dir/data/postmaster.pid"
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null ||
    die "PostgreSQL did not start: $(tail -n 5 "$pg_dir/server.log")"
  as_pg "$pg_bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -q -s "$scale" postgres \
    >"$work/pgbench.log" 2>&1 || die "pgbench -i failed: $(tail -n 5 "$work/pgbench.log")"
  # A checkpoint so that the cold copy holds the table data, not only WAL.
  as_pg "$pg_bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c CHECKPOINT postgres >/dev/null
  stop_postgres
  cp -a "$pg_dir/data" "$corpus/pgdata"
  rm -rf "$pg_dir"
}

# ---------------------------------------------------------------------------------------------
if [[ -n "${BENCH_CORPUS:-}" ]]; then
  [[ -d "$BENCH_CORPUS" ]] || die "BENCH_CORPUS '$BENCH_CORPUS' is not a directory"
  log "using the existing corpus '$BENCH_CORPUS' (it will be changed by the ~1% step)"
  corpus=$(cd "$BENCH_CORPUS" && pwd)
  corpus_note="existing directory"
else
  corpus="$work/corpus"
  mkdir -p "$corpus"
  t0=$(now)
  build_pg_corpus
  [[ -d "$share" ]] || die "BENCH_SHARE '$share' is not a directory"
  log "copying '$share' (small files)"
  cp -a "$share" "$corpus/share"
  corpus_note="PostgreSQL 15 data dir (pgbench -i -s $scale, copied cold) + copy of $share"
  log "corpus built in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }') s"
fi
corpus_bytes() { find "$corpus" -type f -printf '%s\n' | awk '{ n += $1 } END { printf "%d", n }'; }
corpus_files() { find "$corpus" -type f | wc -l; }
bytes=$(corpus_bytes)
files=$(corpus_files)
log "corpus: $(mb "$bytes") MB in $files files at '$corpus'"
((scale < 100)) || ((bytes >= 2000000000)) ||
  log "WARNING: the corpus is smaller than 2 GB"

# Can we drop the page cache? In a container usually not: then every run is warm-cache.
cache_state="warm (page cache could not be dropped; the corpus was just written)"
drop_caches() {
  sync
  if echo 3 2>/dev/null >/proc/sys/vm/drop_caches; then
    cache_state="cold (page cache dropped before every step)"
  fi
}

# ---------------------------------------------------------------------------------------------
# Tools. Each gets its own repository, cache and secrets under $work.
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n' >"$work/passphrase")
mkdir -p "$work/repos" "$work/cache"
export REPRISE_REPOSITORY="$work/repos/reprise" REPRISE_PASSWORD_FILE="$work/passphrase"
export RESTIC_REPOSITORY="$work/repos/restic" RESTIC_PASSWORD_FILE="$work/passphrase"
export RESTIC_CACHE_DIR="$work/cache/restic"
export BORG_REPO="$work/repos/borg" BORG_BASE_DIR="$work/cache/borg"
BORG_PASSPHRASE=$(cat "$work/passphrase")
export BORG_PASSPHRASE
unset REPRISE_PASSWORD

tool_version() {
  case "$1" in
    reprise)
      echo "$("$reprise_bin" --version 2>/dev/null | head -n 1)," \
        "source tree at $(git -C "$root_dir" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "$(git -C "$root_dir" status --porcelain 2>/dev/null | grep -q . && echo '(with local changes)')"
      ;;
    restic) restic version | head -n 1 ;;
    borg) borg --version ;;
  esac
}

tool_init() {
  case "$1" in
    reprise) "$reprise_bin" -q init ;;
    restic) restic init --quiet ;;
    borg) borg init -e repokey ;;
  esac
}

borg_archives=0
tool_cmd() { # tool op -> the command line, printed one word per line
  case "$1:$2" in
    reprise:backup) printf '%s\n' "$reprise_bin" -q backup "$corpus" ;;
    reprise:restore) printf '%s\n' "$reprise_bin" -q restore latest --target "$work/restore" ;;
    restic:backup) printf '%s\n' restic backup --quiet "$corpus" ;;
    restic:restore) printf '%s\n' restic restore --quiet latest --target "$work/restore" ;;
    borg:backup) printf '%s\n' borg create "::b$((borg_archives + 1))" "$corpus" ;;
    borg:restore) printf '%s\n' borg extract "::b$borg_archives" ;;
  esac
}

# measure TOOL STEP OP: runs the step under /usr/bin/time -v, records a result row.
declare -A wall cpu rss repo_mb mbps
measure() {
  local tool=$1 step=$2 op=$3 cmd t_start t_end tv="$work/time.out" dir=.
  mapfile -t cmd < <(tool_cmd "$tool" "$op")
  if [[ "$op" == restore ]]; then
    rm -rf "$work/restore"
    mkdir -p "$work/restore"
    [[ "$tool" == borg ]] && dir="$work/restore" # borg extracts into the current directory
  fi
  drop_caches
  t_start=$(now)
  if ! (cd "$dir" && "$time_bin" -v -o "$tv" "${cmd[@]}") >"$work/cmd.log" 2>&1; then
    log "  $tool $step: FAILED: $(tail -n 5 "$work/cmd.log")"
    wall[$tool:$step]="FAILED"
    return 0
  fi
  t_end=$(now)
  [[ "$tool:$op" != borg:backup ]] || borg_archives=$((borg_archives + 1))
  wall[$tool:$step]=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.2f", b - a }')
  cpu[$tool:$step]=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$tv")
  rss[$tool:$step]=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$tv")
  mbps[$tool:$step]=$(awk -v n="$bytes" -v s="${wall[$tool:$step]}" \
    'BEGIN { if (s <= 0) s = 0.01; printf "%.1f", n / 1e6 / s }')
  repo_mb[$tool:$step]=$(mb "$(du -sb "$work/repos/$tool" | cut -f1)")
  log "  $tool $step: ${wall[$tool:$step]} s, ${mbps[$tool:$step]} MB/s," \
    "cpu ${cpu[$tool:$step]} s, rss ${rss[$tool:$step]} MB, repo ${repo_mb[$tool:$step]} MB"
  if [[ "$op" == restore ]]; then verify_restore "$tool"; fi
}

verify_restore() {
  local tool=$1 got="$work/restore$corpus" n b
  if [[ ! -d "$got" ]]; then
    log "  $tool restore: WRONG: '$got' does not exist"
    wall[$tool:restore]="WRONG"
    return 0
  fi
  if [[ "${BENCH_VERIFY:-0}" == 1 ]]; then
    if ! diff -r --no-dereference "$corpus" "$got" >/dev/null; then
      log "  $tool restore: WRONG: diff -r found differences"
      wall[$tool:restore]="WRONG"
    fi
  else
    n=$(find "$got" -type f | wc -l)
    b=$(find "$got" -type f -printf '%s\n' | awk '{ n += $1 } END { printf "%d", n }')
    if [[ "$n" != "$files" || "$b" != "$bytes" ]]; then
      log "  $tool restore: WRONG: $n files / $b bytes, want $files / $bytes"
      wall[$tool:restore]="WRONG"
    fi
  fi
  rm -rf "$work/restore"
}

# About 1% of the corpus bytes rewritten as 1 MiB blocks at random offsets in the largest
# files (as a database does to its table files), plus files added and removed.
change_corpus() {
  local target=$((bytes / 100)) done_bytes=0 f size off i
  RANDOM=4242
  mapfile -t big < <(find "$corpus" -type f -size +8M -printf '%s %p\n' | sort -rn | head -n 8 |
    cut -d' ' -f2-)
  ((${#big[@]} > 0)) || die "no file over 8 MB in the corpus to change"
  i=0
  while ((done_bytes < target)); do
    f=${big[$((i % ${#big[@]}))]}
    size=$(stat -c %s "$f")
    off=$(((RANDOM * 32768 + RANDOM) % (size / 1048576)))
    head -c 1048576 /dev/urandom | dd of="$f" bs=1M seek="$off" conv=notrunc status=none
    done_bytes=$((done_bytes + 1048576))
    i=$((i + 1))
  done
  mkdir -p "$corpus/bench-added"
  for i in $(seq 1 50); do head -c $((RANDOM * 4)) /dev/urandom >"$corpus/bench-added/f$i"; done
  # (a process substitution: head closing the pipe early must not trip pipefail)
  mapfile -t gone < <(find "$corpus" -type f -size -64k -name '*.gz' | head -n 50)
  ((${#gone[@]} == 0)) || rm -f "${gone[@]}"
  changed_bytes=$done_bytes
}

# ---------------------------------------------------------------------------------------------
steps=(first no-change changed restore)
load_start=$(cut -d' ' -f1 /proc/loadavg)
for t in "${tools[@]}"; do
  tool_init "$t" >"$work/init-$t.log" 2>&1 || die "'$t' init failed: $(tail -n 5 "$work/init-$t.log")"
done
log "first backup"
for t in "${tools[@]}"; do measure "$t" first backup; done
log "no-change backup"
for t in "${tools[@]}"; do measure "$t" no-change backup; done
change_corpus
bytes=$(corpus_bytes)
files=$(corpus_files)
log "changed $(mb "$changed_bytes") MB ($(awk -v c="$changed_bytes" -v n="$bytes" \
  'BEGIN { printf "%.2f", 100 * c / n }')%) in place, added 50 files, removed up to 50"
log "backup after the change"
for t in "${tools[@]}"; do measure "$t" changed backup; done
log "full restore of the last backup"
for t in "${tools[@]}"; do measure "$t" restore restore; done

# ---------------------------------------------------------------------------------------------
date_tag=$(date +%F)
results_dir="$root_dir/bench/results"
mkdir -p "$results_dir"
out="$results_dir/$date_tag.md"
[[ ! -e "$out" ]] || out="$results_dir/$date_tag-$(date +%H%M%S).md"

ratio() { # a b -> a/b or "-"
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) print "-"; else printf "%.2f", a / b }'
}

{
  echo "# Benchmark: reprise vs restic vs borg ($date_tag)"
  echo
  echo "- corpus: $(mb "$bytes") MB in $files files: $corpus_note"
  echo "- change step: $(mb "$changed_bytes") MB rewritten in place as 1 MiB blocks in the"
  echo "  largest files, 50 files added, up to 50 small files removed"
  echo "- machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM," \
    "$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release), $(uname -r)"
  echo "- page cache: $cache_state"
  echo "- load average (1 min) at start: $load_start, at end: $(cut -d' ' -f1 /proc/loadavg)" \
    "(other work on the machine makes wall times noisy)"
  echo "- repositories and restores on the same local disk as the corpus"
  for t in "${tools[@]}"; do echo "- $t: $(tool_version "$t")"; done
  echo "- restic: repository format 2, compression auto (zstd); borg: repokey," \
    "compression lz4 (default), single-threaded"
  echo "- MB/s = corpus bytes / wall time (also for the no-change backup and the restore)"
  echo
  echo "| step | tool | wall s | MB/s | CPU s | peak RSS MB | repo MB |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for s in "${steps[@]}"; do
    for t in "${tools[@]}"; do
      echo "| $s | $t | ${wall[$t:$s]:--} | ${mbps[$t:$s]:--} | ${cpu[$t:$s]:--} |" \
        "${rss[$t:$s]:--} | ${repo_mb[$t:$s]:--} |"
    done
  done
  if [[ " ${tools[*]} " == *" reprise "* ]]; then
    echo
    echo "Ratios reprise / peer (below 1 is better for reprise):"
    echo
    echo "| step | peer | wall | CPU | peak RSS | repo size |"
    echo "|---|---|---:|---:|---:|---:|"
    for s in "${steps[@]}"; do
      for t in "${tools[@]}"; do
        [[ "$t" != reprise ]] || continue
        echo "| $s | $t | $(ratio "${wall[reprise:$s]:-}" "${wall[$t:$s]:-}") |" \
          "$(ratio "${cpu[reprise:$s]:-}" "${cpu[$t:$s]:-}") |" \
          "$(ratio "${rss[reprise:$s]:-}" "${rss[$t:$s]:-}") |" \
          "$(ratio "${repo_mb[reprise:$s]:-}" "${repo_mb[$t:$s]:-}") |"
      done
    done
  fi
} >"$out"

echo
cat "$out"
echo
log "results written to '${out#"$root_dir"/}'"
