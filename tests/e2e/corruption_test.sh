#!/usr/bin/env bash
# Damage must be found, named and never turned into wrong files:
#  1. bytes flipped in the middle of a data pack: `check --read-data` exits 12 naming the pack
#     and an affected point; restoring that point exits non-zero and every file it leaves in
#     the target has the right content;
#  2. a truncated index file: `check` exits non-zero and names it;
#  3. a wrong passphrase: exit 11 and a message containing "passphrase".
#
#   bash tests/e2e/corruption_test.sh /path/to/reprise
#
# Environment: CORRUPT_KEEP=1 keeps the temp dir.
set -euo pipefail

bin=${1:-}
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "usage: bash tests/e2e/corruption_test.sh /path/to/reprise (got '${bin}')" >&2
  exit 2
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

work=$(mktemp -d "${TMPDIR:-/tmp}/reprise-corrupt.XXXXXX")
cleanup() {
  if [[ "${CORRUPT_KEEP:-0}" == 1 ]]; then echo "corrupt: kept '$work'"; else rm -rf "$work"; fi
}
trap cleanup EXIT

data="$work/data"
repo="$work/repo"
mkdir -p "$data"
(umask 077 && printf 'the right passphrase' >"$work/passphrase")
(umask 077 && printf 'a wrong passphrase' >"$work/wrong-passphrase")
export REPRISE_REPOSITORY="$repo"
export REPRISE_PASSWORD_FILE="$work/passphrase"
unset REPRISE_PASSWORD

failures=0
passed=0
log() { echo "corrupt: $*"; }
ok() {
  passed=$((passed + 1))
  echo "corrupt: ok: $*"
}
fail() {
  failures=$((failures + 1))
  echo "corrupt: FAILURE: $*" >&2
}
die() {
  echo "corrupt: error: $*" >&2
  exit 1
}

# run ARGS... -> $rc, $out (stdout and stderr together)
run() {
  rc=0
  out=$("$bin" "$@" 2>&1) || rc=$?
}

# Lines "sha256  ./relative/path" for every regular file, sorted by path.
file_sums() {
  (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

# mentions TEXT ID: true when TEXT holds ID in full or its first 8 hex digits (short form).
mentions() {
  grep -q -e "$2" -e "${2:0:8}" <<<"$1"
}

# ---------------------------------------------------------------------------------------------
log "dataset and two points in '$work'"
mkdir -p "$data/text" "$data/bin"
for i in $(seq 1 6); do
  awk -v seed="$i" 'BEGIN { srand(seed); for (k = 0; k < 40000; k++)
    printf "row %d of file %d: %d\n", k, seed, int(rand() * 1e9) }' >"$data/text/t$i.txt"
done
for i in $(seq 1 6); do head -c 3000000 /dev/urandom >"$data/bin/b$i.bin"; done
for i in $(seq 1 50); do echo "small file $i" >"$data/text/small-$i.txt"; done

run init
((rc == 0)) || die "'reprise init' exit $rc: $out"
run --json backup "$data"
((rc == 0)) || die "first backup exit $rc: $out"
point1=$(jq -r '.point' <<<"$out")
file_sums "$data" >"$work/sums-$point1"

head -c 500000 /dev/urandom >"$data/bin/added.bin"
echo "one more line" >>"$data/text/t1.txt"
run --json backup "$data"
((rc == 0)) || die "second backup exit $rc: $out"
point2=$(jq -r '.point' <<<"$out")
file_sums "$data" >"$work/sums-$point2"
[[ "$point1" =~ ^[0-9a-f]+$ && "$point2" =~ ^[0-9a-f]+$ ]] ||
  die "backup --json printed no point ids ('$point1', '$point2')"

run check --read-data
((rc == 0)) || die "'check --read-data' fails on an undamaged repository (exit $rc): $out"
cp -a "$repo" "$work/pristine"

run --json points
((rc == 0)) || die "'reprise points --json' exit $rc: $out"
mapfile -t all_ids < <(jq -r '.[] | .id' <<<"$out")
((${#all_ids[@]} == 2)) || die "expected 2 points, 'points --json' lists ${#all_ids[@]}: $out"

# ---------------------------------------------------------------------------------------------
log "1. flipping bytes in the middle of a data pack"
# The largest pack holds file contents (the random binaries dominate the dataset).
pack_file=$(find "$repo/data" -type f -printf '%s %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
[[ -n "$pack_file" ]] || die "no pack files under '$repo/data'"
pack_id=$(basename "$pack_file")
[[ "$pack_id" =~ ^[0-9a-f]{64}$ ]] || fail "pack file name '$pack_id' is not 64 hex digits"
pack_size=$(stat -c %s "$pack_file")
perl -e '
  my ($path, $offset) = @ARGV;
  open(my $f, "+<:raw", $path) or die "open $path: $!";
  seek($f, $offset, 0) or die; read($f, my $buf, 16) == 16 or die "short read";
  $buf ^= "\xff" x 16;
  seek($f, $offset, 0) or die; print $f $buf or die; close($f) or die;
' "$pack_file" $((pack_size / 2))
log "damaged 16 bytes at offset $((pack_size / 2)) of pack $pack_id ($pack_size bytes)"

run check --read-data
echo "$out" | sed 's/^/  check> /' | head -n 20
if ((rc == 12)); then ok "check --read-data exits 12"; else fail "check --read-data exit $rc, want 12"; fi
if mentions "$out" "$pack_id"; then
  ok "check names the damaged pack"
else
  fail "check output does not name the damaged pack '$pack_id'"
fi
affected=""
for id in "${all_ids[@]}"; do
  if mentions "$out" "$id"; then
    affected=$id
    break
  fi
done
if [[ -n "$affected" ]]; then
  ok "check names an affected point (${affected:0:12})"
else
  fail "check output names none of the points (${all_ids[*]})"
  affected=$point2
fi

target="$work/target"
run restore "$affected" --target "$target"
echo "$out" | sed 's/^/  restore> /' | head -n 10
if ((rc != 0)); then
  ok "restore of the damaged point exits $rc"
else
  fail "restore of the damaged point '$affected' exits 0"
fi
# Every file left behind must be one of the point's files, with the right content.
wrong=0
present=0
if [[ -d "$target" ]]; then
  while IFS= read -r -d '' f; do
    rel=${f#"$target$data"}
    if [[ "$rel" == "$f" ]]; then
      fail "restore left an unexpected file outside the restored tree: '$f'"
      wrong=$((wrong + 1))
      continue
    fi
    want=$(awk -v p=".$rel" 'substr($0, 67) == p { print substr($0, 1, 64) }' \
      "$work/sums-$affected")
    got=$(sha256sum <"$f" | cut -c1-64)
    if [[ -z "$want" ]]; then
      fail "restore left a file that is not in the point: '$f'"
      wrong=$((wrong + 1))
    elif [[ "$got" != "$want" ]]; then
      fail "restore left '$f' with wrong content (sha256 $got, want $want)"
      wrong=$((wrong + 1))
    else
      present=$((present + 1))
    fi
  done < <(find "$target" -type f -print0)
fi
total=$(wc -l <"$work/sums-$affected")
if ((wrong == 0)); then
  ok "no wrong file after the failed restore ($present of $total files restored, all correct)"
fi

# ---------------------------------------------------------------------------------------------
log "2. truncating an index file"
rm -rf "$repo"
cp -a "$work/pristine" "$repo"
index_file=$(find "$repo/index" -type f | sort | head -n 1)
[[ -n "$index_file" ]] || die "no index files under '$repo/index'"
index_size=$(stat -c %s "$index_file")
truncate -s $((index_size / 2)) "$index_file"
index_id=$(basename "$index_file")
run check
echo "$out" | sed 's/^/  check> /' | head -n 10
if ((rc != 0)); then ok "check exits $rc"; else fail "check exits 0 with a truncated index file"; fi
if mentions "$out" "$index_id"; then
  ok "check names the damaged index file"
else
  fail "check output does not name the truncated index file '$index_id'"
fi

# ---------------------------------------------------------------------------------------------
log "3. wrong passphrase"
rm -rf "$repo"
cp -a "$work/pristine" "$repo"
rc=0
out=$(REPRISE_PASSWORD_FILE="$work/wrong-passphrase" "$bin" points 2>&1) || rc=$?
echo "$out" | sed 's/^/  points> /' | head -n 5
if ((rc == 11)); then ok "wrong passphrase exits 11"; else fail "wrong passphrase exit $rc, want 11"; fi
if grep -qi passphrase <<<"$out"; then
  ok "the message mentions the passphrase"
else
  fail "the wrong-passphrase message does not contain 'passphrase'"
fi
run check
((rc == 0)) || fail "the right passphrase no longer works after a wrong one (exit $rc): $out"

echo "corrupt: $passed passed, $failures failed"
((failures == 0))
