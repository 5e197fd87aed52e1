#!/usr/bin/env bash
# Crash safety: SIGKILL `reprise backup`, `reprise forget --prune` and `reprise prune` at
# random moments; after every kill the repository must pass `check`, and every point it lists
# must restore exactly as it was backed up.
#
#   bash tests/e2e/crash_test.sh /path/to/reprise
#
# Environment: CRASH_SEED (random seed, printed; set it to replay a run), CRASH_BACKUP_KILLS
# and CRASH_PRUNE_KILLS (default 30 each), CRASH_DATA_MB (default 64), CRASH_KEEP=1 (keep the
# temp dir). Runs in about 3-6 minutes on 2 cores.
set -euo pipefail

bin=${1:-}
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "usage: bash tests/e2e/crash_test.sh /path/to/reprise (got '${bin}')" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

seed=${CRASH_SEED:-$(( $(date +%s) % 100000 ))}
RANDOM=$seed
backup_kills_wanted=${CRASH_BACKUP_KILLS:-30}
prune_kills_wanted=${CRASH_PRUNE_KILLS:-30}
data_mb=${CRASH_DATA_MB:-64}

work=$(mktemp -d "${TMPDIR:-/tmp}/reprise-crash.XXXXXX")
cleanup() {
  local pid
  for pid in $(jobs -p); do kill -KILL "$pid" 2>/dev/null || true; done
  if [[ "${CRASH_KEEP:-0}" == 1 ]]; then echo "crash: kept '$work'"; else rm -rf "$work"; fi
}
trap cleanup EXIT

data="$work/data"
repo="$work/repo"
manifests="$work/manifests"
mkdir -p "$data" "$manifests"
(umask 077 && printf 'crash-test-passphrase-%s' "$seed" >"$work/passphrase")
export REPRISE_REPOSITORY="$repo"
export REPRISE_PASSWORD_FILE="$work/passphrase"
unset REPRISE_PASSWORD

failures=0
unlocks=0
log() { echo "crash: $*"; }
fail() {
  failures=$((failures + 1))
  echo "crash: FAILURE: $*" >&2
  if ((failures >= 3)); then
    echo "crash: stopping after $failures failures (seed $seed)" >&2
    exit 1
  fi
}
die() {
  echo "crash: error: $* (seed $seed)" >&2
  exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Sorted lines of path, type, mode, size (not for dirs), mtime (ns) and sha256 of each entry.
manifest() {
  local dir=$1 sums
  sums=$(mktemp -p "$work")
  (cd "$dir" && find . -type f -print0 | xargs -0 -r sha256sum) >"$sums"
  (cd "$dir" && find . -printf '%p\t%y\t%m\t%s\t%T@\n') |
    awk -F'\t' -v OFS='\t' -v sums="$sums" '
      BEGIN { while ((getline l < sums) > 0) h[substr(l, 67)] = substr(l, 1, 64) }
      { size = ($2 == "d") ? "-" : $4; print $1, $2, $3, size, $5, ($2 == "f") ? h[$1] : "-" }' |
    LC_ALL=C sort
  rm -f "$sums"
}

# rand_below N -> a number in [0, N)
rand_below() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }

make_dataset() {
  local i
  mkdir -p "$data/docs" "$data/logs" "$data/bin"
  # Several hundred small and medium text files.
  awk -v dir="$data/docs" -v seed="$seed" 'BEGIN {
    srand(seed)
    for (d = 0; d < 12; d++) system("mkdir -p \"" dir "/d" d "\"")
    for (i = 0; i < 480; i++) {
      f = sprintf("%s/d%d/doc-%04d.txt", dir, i % 12, i)
      n = 1 + int(rand() * rand() * 1500)
      for (j = 0; j < n; j++) printf "doc %d line %d value %d\n", i, j, int(rand() * 1e9) > f
      close(f)
    }
  }'
  # Larger files: compressible logs and incompressible binaries.
  for i in $(seq 1 8); do
    awk -v seed="$((seed + i))" -v bytes=$((data_mb * 1000000 * 35 / 100 / 8)) 'BEGIN {
      srand(seed)
      while (n < bytes) {
        l = sprintf("%d event=%d user=%d ms=%.3f\n", 1700000000 + n, int(rand() * 1e6),
                    int(rand() * 5000), rand() * 900)
        printf "%s", l; n += length(l)
      }
    }' >"$data/logs/log-$i.txt"
  done
  for i in $(seq 1 8); do
    head -c $((data_mb * 1000000 * 50 / 100 / 8)) /dev/urandom >"$data/bin/blob-$i.bin"
  done
  ln -s logs/log-1.txt "$data/current.log"
  : >"$data/empty"
}

mutation=0
# A few changes of every kind, so that each backup has new data to write.
mutate() {
  mutation=$((mutation + 1))
  local i f
  for i in 1 2; do
    f="$data/bin/blob-$((1 + $(rand_below 8))).bin"
    head -c 65536 /dev/urandom |
      dd of="$f" bs=65536 seek="$(rand_below 40)" conv=notrunc status=none
  done
  for i in 1 2 3; do
    f="$data/docs/d$(rand_below 12)/doc-$(printf '%04d' "$(rand_below 480)").txt"
    if [[ -f "$f" ]]; then echo "mutation $mutation line $i $RANDOM" >>"$f"; fi
  done
  echo "mutation $mutation" >>"$data/logs/log-$((1 + $(rand_below 8))).txt"
  # One fresh larger file per round; the previous one goes, so its data becomes garbage.
  rm -f "$data"/new-*.bin
  head -c $((1000000 + $(rand_below 2000000))) /dev/urandom >"$data/new-$mutation.bin"
  mkdir -p "$data/docs/added"
  echo "added in mutation $mutation" >"$data/docs/added/note-$mutation.txt"
  if ((mutation % 3 == 0)); then
    rm -f "$data/docs/d$(rand_below 12)/doc-$(printf '%04d' "$(rand_below 480)").txt"
  fi
}

# Runs reprise; when it reports the repository locked (exit 10), removes the stale lock left
# by a killed process with `reprise unlock` and tries once more. Sets $rc.
reprise_cmd() {
  rc=0
  "$bin" "$@" >"$work/out" 2>"$work/err" || rc=$?
  if ((rc == 10)); then
    unlocks=$((unlocks + 1))
    log "NOTE: '$*' refused with exit 10 (locked): running 'reprise unlock' first"
    "$bin" unlock >>"$work/err" 2>&1 || "$bin" unlock --force >>"$work/err" 2>&1 ||
      die "'reprise unlock' failed: $(tail -n 5 "$work/err")"
    rc=0
    "$bin" "$@" >"$work/out" 2>"$work/err" || rc=$?
  fi
}

run_check() {
  local context=$1
  reprise_cmd check
  if ((rc != 0)); then
    fail "'reprise check' exit $rc after $context: $(tail -n 8 "$work/err" "$work/out")"
    return 1
  fi
}

# Sets the array $points to the ids `reprise points` lists.
list_points() {
  reprise_cmd --json points
  ((rc == 0)) || die "'reprise points --json' exit $rc: $(tail -n 5 "$work/err")"
  mapfile -t points < <(jq -r '.[].id' "$work/out")
}

# Gives every listed point a manifest: a point not seen before was written by the last backup
# (maybe one that was killed right after writing it) and so holds the tree as it is now.
adopt_new_points() {
  local current=$1 id
  list_points
  for id in "${points[@]}"; do
    if [[ ! -f "$manifests/$id" ]]; then
      cp "$current" "$manifests/$id"
      log "point ${id:0:12} written by the last backup"
    fi
  done
}

verify_point() {
  local id=$1 target="$work/restore"
  rm -rf "$target"
  if [[ ! -f "$manifests/$id" ]]; then
    fail "point '$id' is listed but no backup of this test made it"
    return 1
  fi
  reprise_cmd restore "$id" --target "$target"
  if ((rc != 0)); then
    fail "'reprise restore $id' exit $rc: $(tail -n 5 "$work/err")"
    return 1
  fi
  if ! manifest "$target$data" | diff -q - "$manifests/$id" >/dev/null; then
    manifest "$target$data" | diff - "$manifests/$id" | head -n 10 >&2
    fail "point '$id' does not restore identically (diff above: < restored, > original)"
    return 1
  fi
  rm -rf "$target"
}

verify_all_listed() {
  local id n=0
  list_points
  for id in "${points[@]}"; do
    verify_point "$id" || true
    n=$((n + 1))
  done
  restored_points=$n
}

# kill_at DELAY_MS ARGS... : starts reprise ARGS, SIGKILLs it after DELAY_MS. Sets $killed
# (1 when the kill hit a running process) and $rc (the exit code when it finished first).
kill_at() {
  local delay_ms=$1 pid
  shift
  "$bin" "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  sleep "$(awk -v ms="$delay_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
  killed=0
  if kill -KILL "$pid" 2>/dev/null; then killed=1; fi
  rc=0
  # (braces and 2>/dev/null: no "Killed" job report from bash)
  { wait "$pid"; } 2>/dev/null || rc=$?
  # A process that exited just before the signal was sent is not reported as killed.
  if ((killed && rc != 137)); then killed=0; fi
}

# ---------------------------------------------------------------------------------------------
log "seed $seed, work dir '$work', binary '$bin'"
make_dataset
log "dataset: $(du -sb "$data" | cut -f1) bytes in $(find "$data" -type f | wc -l) files"

reprise_cmd init
((rc == 0)) || die "'reprise init' exit $rc: $(cat "$work/err")"

backup_ok() {
  local what=$1
  local t_start
  manifest "$data" >"$work/current"
  t_start=$(now_ms)
  reprise_cmd --json backup "$data"
  last_backup_ms=$(($(now_ms) - t_start))
  ((rc == 0)) || die "$what: 'reprise backup' exit $rc: $(tail -n 5 "$work/err")"
  last_point=$(jq -r '.point' "$work/out")
  [[ "$last_point" =~ ^[0-9a-f]+$ ]] || die "$what: no point id in '$(cat "$work/out")'"
  cp "$work/current" "$manifests/$last_point"
}

# Good points, with changes between them; the last backup is timed.
backup_ok "first point"
mutate
backup_ok "second point"
mutate
backup_ok "third point"
backup_ms=$last_backup_ms
((backup_ms > 0)) || backup_ms=1
log "3 good points; an incremental backup takes $backup_ms ms"
run_check "the good points" || die "the repository fails check before any crash"

# ---------------------------------------------------------------------------------------------
# The machine may be shared: durations are measured again every 5 attempts (with a run that
# is not killed), so the kill moments keep covering a whole run.
log "phase 1: SIGKILL during backup (delays uniform in [0, 1.2 x backup time])"
phase_start=$SECONDS
backup_kills=0
backup_finished=0
attempt=0
while ((backup_kills < backup_kills_wanted)); do
  attempt=$((attempt + 1))
  ((attempt <= backup_kills_wanted * 3)) ||
    die "only $backup_kills of $attempt backups could be killed: they finish too fast"
  mutate
  manifest "$data" >"$work/current"
  delay=$(rand_below $((backup_ms * 12 / 10 + 1)))
  kill_at "$delay" --json backup "$data"
  if ((killed)); then
    backup_kills=$((backup_kills + 1))
  elif ((rc == 0)); then
    backup_finished=$((backup_finished + 1))
    id=$(jq -r '.point' "$work/out")
    [[ "$id" =~ ^[0-9a-f]+$ ]] || fail "finished backup printed no point id: $(cat "$work/out")"
    cp "$work/current" "$manifests/$id"
  elif ((rc == 10)); then
    log "NOTE: backup refused with exit 10 (locked)"
  else
    fail "backup (not killed, delay $delay ms) exit $rc: $(tail -n 5 "$work/err")"
  fi
  run_check "backup killed at $delay ms" || true
  adopt_new_points "$work/current"
  if ((attempt % 5 == 0)); then
    verify_all_listed
    log "attempt $attempt: $backup_kills killed, $backup_finished finished," \
      "$restored_points points restored and verified"
    mutate
    backup_ok "timing backup"
    backup_ms=$((last_backup_ms > 0 ? last_backup_ms : 1))
  fi
done
phase1_s=$((SECONDS - phase_start))

# ---------------------------------------------------------------------------------------------
two_backups() {
  local i
  for i in 1 2; do
    mutate
    backup_ok "garbage round"
  done
}

# Times an uninterrupted 'forget --keep-last 2 --prune' (sets forget_prune_ms) and, after a
# plain forget, 'prune' (sets prune_ms), each with fresh garbage to remove.
time_prunes() {
  local t
  two_backups
  t=$(now_ms)
  reprise_cmd forget --keep-last 2 --prune
  ((rc == 0)) || die "'reprise forget --keep-last 2 --prune' exit $rc: $(tail -n 5 "$work/err")"
  forget_prune_ms=$(($(now_ms) - t))
  two_backups
  reprise_cmd forget --keep-last 2
  ((rc == 0)) || die "'reprise forget --keep-last 2' exit $rc: $(tail -n 5 "$work/err")"
  t=$(now_ms)
  reprise_cmd prune
  ((rc == 0)) || die "'reprise prune' exit $rc: $(tail -n 5 "$work/err")"
  prune_ms=$(($(now_ms) - t))
  run_check "uninterrupted prunes" || die "the repository fails check after an uninterrupted prune"
}

log "phase 2: SIGKILL during forget --prune and prune"
phase_start=$SECONDS
# Clear phase 1's garbage first, so the timed runs look like the ones that get killed.
reprise_cmd forget --keep-last 2 --prune
((rc == 0)) || die "'reprise forget --keep-last 2 --prune' exit $rc: $(tail -n 5 "$work/err")"
time_prunes
log "forget --prune takes $forget_prune_ms ms, prune takes $prune_ms ms"

prune_kills=0
prune_finished=0
attempt=0
while ((prune_kills < prune_kills_wanted)); do
  attempt=$((attempt + 1))
  ((attempt <= prune_kills_wanted * 3)) ||
    die "only $prune_kills of $attempt prunes could be killed: they finish too fast"
  two_backups
  if ((attempt % 2 == 1)); then
    what="forget --keep-last 2 --prune"
    delay=$(rand_below $((forget_prune_ms * 12 / 10 + 1)))
    kill_at "$delay" forget --keep-last 2 --prune
  else
    what="prune"
    reprise_cmd forget --keep-last 2
    ((rc == 0)) || fail "'reprise forget --keep-last 2' exit $rc: $(tail -n 5 "$work/err")"
    delay=$(rand_below $((prune_ms * 12 / 10 + 1)))
    kill_at "$delay" prune
  fi
  if ((killed)); then
    prune_kills=$((prune_kills + 1))
  elif ((rc == 0)); then
    prune_finished=$((prune_finished + 1))
  elif ((rc == 10)); then
    log "NOTE: '$what' refused with exit 10 (locked)"
  else
    fail "'$what' (not killed, delay $delay ms) exit $rc: $(tail -n 5 "$work/err")"
  fi
  run_check "'$what' killed at $delay ms" || true
  verify_all_listed
  if ((attempt % 5 == 0)); then
    log "attempt $attempt: $prune_kills killed, $prune_finished finished," \
      "$restored_points points restored and verified each time"
    time_prunes
  fi
done
phase2_s=$((SECONDS - phase_start))

# ---------------------------------------------------------------------------------------------
log "final: check --read-data"
reprise_cmd check --read-data
if ((rc != 0)); then
  fail "'reprise check --read-data' exit $rc at the end: $(tail -n 8 "$work/err" "$work/out")"
fi
verify_all_listed

if ((unlocks > 0)); then
  log "NOTE: a stale lock from a killed process needed 'reprise unlock' $unlocks time(s)"
fi
log "backup phase ${phase1_s} s ($backup_finished backups finished before the kill)," \
  "prune phase ${phase2_s} s ($prune_finished prunes finished before the kill)"
echo "crash: $backup_kills backup kills, $prune_kills prune kills, $failures failures (seed $seed)"
((failures == 0)) || exit 1
