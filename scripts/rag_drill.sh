#!/usr/bin/env bash
# The main job: a disaster and a recovery of a whole local RAG stack, measured.
#
# Starts, on 127.0.0.1 and free ports, the stack of the seed's platform: PostgreSQL 15 (tables
# documents and chunks with embeddings), Redis 7 (user sessions), a Ceph RADOS Gateway standing
# in for MinIO (bucket rag-documents), and the Qdrant contract server (collection
# enterprise_rag; no real Qdrant runs here: tests/contract/ implements Qdrant's published API
# description), plus a directory of Kubernetes manifests with a Secret. Loads a sample corpus
# whose parts point at each other (vector -> chunk row -> document row -> object), writes one
# reprise plan for all of it (tiers, health checks, consistency checks), streams PostgreSQL's
# WAL with `reprise wal-stream`, and takes ONE recovery point of the whole stack
# (`reprise backup`: every component at once). A writer keeps committing numbered
# transactions. Then the disaster: every server is killed with SIGKILL and its data deleted
# (the bucket emptied, the collection gone, the manifests removed). `reprise restore latest
# --to-end` brings the stack back tier by tier; `reprise verify-stack` proves the parts
# consistent; the drill compares what came back with what was there and prints the measured
# RTO (disaster to a consistent stack) and RPO (committed transactions lost, and the age of the
# point for the other components).
#
#   bash scripts/rag_drill.sh            # after scripts/setup.sh --with-services
#
# Environment: DRILL_DOCS (documents, 10..1000, default 400; 4 chunks each), DRILL_DIR (where the work
# dir goes, default $TMPDIR or /tmp), DRILL_KEEP=1 (keep it), REPRISE_BUILD_DIR (default
# build), REPRISE_BIN (the reprise binary).
set -euo pipefail

cd "$(dirname "$0")/.."
root_dir=$(pwd)
build_dir="$root_dir/${REPRISE_BUILD_DIR:-build}"
bin=${REPRISE_BIN:-$build_dir/reprise}
qdrant_bin="$build_dir/qdrant-contract-server"

die() {
  echo "rag-drill: error: $*" >&2
  exit 1
}
say() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

[[ -x "$bin" ]] || die "no reprise binary at '$bin'. HINT: run 'bash scripts/setup.sh'"
[[ -x "$qdrant_bin" ]] || die "no Qdrant contract server at '$qdrant_bin'. HINT: bash scripts/setup.sh"
for tool in jq curl redis-server redis-cli psql; do
  command -v "$tool" >/dev/null || die "'$tool' not found. HINT: bash scripts/setup.sh --with-services"
done
pgbin=/usr/lib/postgresql/15/bin
[[ -x "$pgbin/initdb" ]] || die "PostgreSQL 15 is not installed. HINT: bash scripts/setup.sh --with-services"
[[ -x /usr/bin/radosgw ]] || die "Ceph RGW is not installed. HINT: bash scripts/setup.sh --with-services"

ndocs=${DRILL_DOCS:-400}
[[ "$ndocs" =~ ^[0-9]+$ ]] && ((ndocs >= 10 && ndocs <= 1000)) ||
  die "DRILL_DOCS must be a number from 10 to 1000"
nchunks=$((ndocs * 4))
dim=64

work=$(mktemp -d "${DRILL_DIR:-${TMPDIR:-/tmp}}/reprise-rag-drill.XXXXXX")
chmod 755 "$work"
pids=()
cleanup() {
  set +e
  local pid
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  [[ -f "$work/pg/postmaster.pid" ]] && kill -9 "$(head -1 "$work/pg/postmaster.pid")" 2>/dev/null
  [[ -f "$work/redis/redis.pid" ]] && kill -9 "$(cat "$work/redis/redis.pid")" 2>/dev/null
  bash "$root_dir/tests/services/rgw-stop.sh" "$work/rgw" --rm >/dev/null 2>&1
  if [[ "${DRILL_KEEP:-0}" == 1 ]]; then echo "rag-drill: kept '$work'"; else rm -rf "$work"; fi
}
trap cleanup EXIT

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }
# Below the kernel's ephemeral range (32768-60999), where a client socket could hold the port
# a server is restarted on.
free_port() {
  local p=$((15000 + RANDOM % 15000))
  while ! port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}
as_pg=()
if ((EUID == 0)); then as_pg=(runuser -u postgres --); fi

# ---------------------------------------------------------------------------------------------
say "starting the stack on 127.0.0.1"
# Ceph RGW as the documents' S3 (MinIO in the seed). Its test user's keys reach curl and
# reprise through files and the environment, never a command line.
bash tests/services/rgw-start.sh "$work/rgw" >"$work/rgw-start.log" 2>&1 ||
  die "Ceph RGW did not start (see $work/rgw-start.log)"
# shellcheck disable=SC1091
source "$work/rgw/env"
s3_ep=$REPRISE_TEST_S3_ENDPOINT
export DRILL_S3_KEY_ID=$REPRISE_TEST_S3_ACCESS_KEY DRILL_S3_SECRET=$REPRISE_TEST_S3_SECRET_KEY
# curl 7.88 signs with SigV4 but does not send the payload hash S3 wants: say it is unsigned.
(umask 077 && printf 'user = "%s:%s"\naws-sigv4 = "aws:amz:us-east-1:s3"\nheader = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\n' \
  "$DRILL_S3_KEY_ID" "$DRILL_S3_SECRET" >"$work/curl-s3.conf")
s3() { curl -sS -f --no-progress-meter -K "$work/curl-s3.conf" "$@"; }
s3 -X PUT "$s3_ep/rag-documents" >/dev/null || die "cannot create bucket rag-documents"

# PostgreSQL 15.
pg_port=$(free_port)
mkdir -p "$work/pg" "$work/pg-run" && chmod 700 "$work/pg"
if ((EUID == 0)); then chown postgres: "$work/pg" "$work/pg-run"; fi
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
  --no-sync >"$work/initdb.log" || die "initdb failed (see $work/initdb.log)"
printf "%s\n" "listen_addresses = '127.0.0.1'" "port = $pg_port" \
  "unix_socket_directories = '$work/pg-run'" "wal_level = replica" "max_wal_senders = 5" \
  "max_replication_slots = 5" >>"$work/pg/postgresql.conf"
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg-run/pg.log" -w start >/dev/null ||
  die "PostgreSQL did not start (see $work/pg-run/pg.log)"
psql_() { psql -X -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -Atq -v ON_ERROR_STOP=1 "$@"; }
pg_conn="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"

# Redis 7: sessions. Started and stopped by the same two commands the plan gives reprise.
redis_port=$(free_port)
mkdir -p "$work/redis"
redis_start="redis-server --bind 127.0.0.1 --port $redis_port --repl-diskless-sync-delay 0 --dir $work/redis --dbfilename dump.rdb --save '' --appendonly no --daemonize yes --pidfile $work/redis/redis.pid --logfile $work/redis/redis.log"
redis_stop="redis-cli -p $redis_port shutdown nosave >/dev/null 2>&1 || true"
sh -c "$redis_start" || die "redis-server did not start"
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# The Qdrant contract server (Qdrant's REST API as its OpenAPI file describes it).
q_port=$(free_port)
start_qdrant() {
  "$qdrant_bin" --port "$q_port" --data-dir "$1" >"$work/qdrant-$2.log" 2>&1 &
  qdrant_pid=$!
  disown "$qdrant_pid" # killed on purpose below: no job notices
  pids+=("$qdrant_pid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$q_port/" >/dev/null && return 0; sleep 0.1; done
  die "the Qdrant contract server did not start (see $work/qdrant-$2.log)"
}
start_qdrant "$work/qdrant" first
echo "postgres :$pg_port, redis :$redis_port, qdrant (contract server) :$q_port, S3 (RGW) $s3_ep"

# ---------------------------------------------------------------------------------------------
say "loading a corpus: $ndocs documents, $nchunks chunks with $dim-dim embeddings"
t0=$(now)
mkdir -p "$work/docs"
awk -v n="$ndocs" -v dir="$work/docs" 'BEGIN { srand(7)
  for (i = 1; i <= n; i++) { f = dir "/doc-" i ".txt"
    for (p = 0; p < 20 + int(rand() * 80); p++) printf "Document %d, paragraph %d: %d\n", i, p, int(rand() * 1e9) > f
    close(f) } }'
# One curl process uploads every object, several at a time.
for i in $(seq 1 "$ndocs"); do
  printf 'url = "%s/rag-documents/docs/doc-%d.txt"\nupload-file = "%s/docs/doc-%d.txt"\n' \
    "$s3_ep" "$i" "$work" "$i"
done >"$work/uploads.conf"
s3 --parallel --parallel-max 8 -H 'Content-Type: text/plain' -K "$work/uploads.conf" -o /dev/null >/dev/null ||
  die "uploading the documents failed"
psql_ -c "
  create table documents (doc_id text primary key, object_key text not null, title text not null);
  create table chunks (id bigint primary key, doc_id text not null references documents,
                       body text not null, embedding float4[] not null);
  insert into documents select 'doc-' || g, 'docs/doc-' || g || '.txt', 'Document ' || g
    from generate_series(1, $ndocs) g;
  insert into chunks select g, 'doc-' || ((g - 1) / 4 + 1), 'chunk ' || g,
      array(select random()::float4 from generate_series(1, $dim) where g > 0)
    from generate_series(1, $nchunks) g;
  create table ticks (id bigint primary key, at timestamptz not null default clock_timestamp());" \
  >/dev/null || die "loading PostgreSQL failed"
q() { curl -sS -f -H 'Content-Type: application/json' "$@"; }
q -X PUT "http://127.0.0.1:$q_port/collections/enterprise_rag" \
  -d "{\"vectors\": {\"size\": $dim, \"distance\": \"Cosine\"}}" >/dev/null ||
  die "creating the Qdrant collection failed"
for ((from = 1; from <= nchunks; from += 500)); do
  awk -v from="$from" -v to=$((from + 499 < nchunks ? from + 499 : nchunks)) -v dim="$dim" 'BEGIN {
    srand(from); printf "{\"points\": ["
    for (i = from; i <= to; i++) {
      printf "%s{\"id\": %d, \"vector\": [", (i > from ? "," : ""), i
      for (d = 0; d < dim; d++) printf "%s%.4f", (d ? "," : ""), rand()
      printf "], \"payload\": {\"chunk_id\": %d, \"doc_id\": \"doc-%d\"}}", i, int((i - 1) / 4) + 1
    }
    printf "]}" }' >"$work/points.json"
  q -X PUT "http://127.0.0.1:$q_port/collections/enterprise_rag/points?wait=true" \
    --data-binary "@$work/points.json" >/dev/null || die "loading Qdrant points failed"
done
awk -v n="$nchunks" 'BEGIN { srand(3); for (i = 1; i <= n / 2; i++)
  printf "HSET session:%d user u%d last_doc doc-%d turns %d\n", i, i % 97, 1 + int(rand() * n / 4), int(rand() * 40) }' |
  redis-cli -p "$redis_port" >/dev/null || die "loading Redis failed"
mkdir -p "$work/k8s"
cat >"$work/k8s/rag.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: rag-config, namespace: enterprise-rag}
data: {EMBEDDING_MODEL: all-MiniLM-L6-v2, TOP_K: "8"}
---
apiVersion: v1
kind: Secret
metadata: {name: rag-db, namespace: enterprise-rag}
data: {password: $(printf 'drill-db-password' | base64)}
EOF
echo "loaded in $(elapsed "$t0" "$(now)") s"

# ---------------------------------------------------------------------------------------------
(umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n' >"$work/passphrase")
cat >"$work/reprise.yaml" <<EOF
version: 1
name: rag-drill
objectives:
  rpo: {transactional: 5m, documents: 1h, embeddings: 1h, configuration: 24h}
secrets:
  repository_password: {file: $work/passphrase}
  documents_s3: {env: [DRILL_S3_KEY_ID, DRILL_S3_SECRET]}
sites:
  local:
    repository: $work/repo
    endpoints:
      postgres: "$pg_conn"
      redis: redis://127.0.0.1:$redis_port
      qdrant: http://127.0.0.1:$q_port
      documents: s3://rag-documents?endpoint=$s3_ep&region=us-east-1
components:
  postgres:
    kind: postgres
    class: transactional
    connection: "$pg_conn"
    data_directory: $work/pg
    wal: stream
    wal_spool: $work/wal-spool
  redis:
    kind: redis
    class: transactional
    connection: redis://127.0.0.1:$redis_port
    restore: {rdb_path: $work/redis/dump.rdb, stop_command: "$redis_stop", start_command: "$redis_start"}
  qdrant:
    kind: qdrant
    class: embeddings
    url: http://127.0.0.1:$q_port
    collections: [enterprise_rag]
  documents:
    kind: s3
    class: documents
    url: s3://rag-documents?endpoint=$s3_ep&region=us-east-1
    credentials: documents_s3
  k8s-config:
    kind: command
    class: configuration
    backup: "cat $work/k8s/rag.yaml"
    restore: "mkdir -p $work/k8s && cat > $work/k8s/rag.yaml"
    redact: kubernetes-secrets
tiers:
  - name: databases
    components: [postgres, redis]
    health:
      - {postgres: "$pg_conn", role: primary}
      - {redis: "redis://127.0.0.1:$redis_port", role: primary}
  - name: vectors-and-documents
    components: [qdrant, documents]
    health:
      - {http: "http://127.0.0.1:$q_port/collections/enterprise_rag", expect_status: 200}
  - name: configuration
    components: [k8s-config]
consistency:
  - name: every vector has its chunk row
    each: {qdrant: enterprise_rag, payload: chunk_id}
    exists_in: {postgres: "select 1 from chunks where id = \$1"}
  - name: every chunk has its document row
    each: {postgres: "select doc_id from chunks"}
    exists_in: {postgres: "select 1 from documents where doc_id = \$1"}
  - name: every document row has its object
    each: {postgres: "select object_key from documents"}
    exists_in: {documents: "\$1"}
EOF
export REPRISE_PLAN="$work/reprise.yaml"
unset REPRISE_REPOSITORY REPRISE_PASSWORD REPRISE_PASSWORD_FILE
r() { "$bin" --plan "$work/reprise.yaml" "$@"; }

say "reprise init, wal-stream, verify-stack on the live stack"
r init >/dev/null || die "reprise init failed"
r wal-stream --push-interval-ms 500 2>"$work/wal-stream.log" &
stream_pid=$!
disown "$stream_pid"
pids+=("$stream_pid")
for _ in $(seq 100); do grep -q "streaming from" "$work/wal-stream.log" && break; sleep 0.1; done
grep -q "streaming from" "$work/wal-stream.log" || die "wal-stream did not start: $(cat "$work/wal-stream.log")"
r verify-stack || die "the freshly loaded stack is not consistent"

# What must come back, recorded at the point.
snapshot() {
  printf 'documents rows %s\nchunks rows %s\n' "$(psql_ -c 'select count(*) from documents')" \
    "$(psql_ -c 'select count(*) from chunks')"
  printf 'chunks digest %s\n' "$(psql_ -c "select md5(string_agg(id || body || embedding::text, ',' order by id)) from chunks")"
  printf 'redis keys %s\n' "$(redis-cli -p "$redis_port" dbsize)"
  printf 'redis sample %s\n' "$(redis-cli -p "$redis_port" hgetall session:17 | tr '\n' ' ')"
  printf 'qdrant points %s\n' "$(q -X POST "http://127.0.0.1:$q_port/collections/enterprise_rag/points/count" -d '{"exact": true}' | jq .result.count)"
  printf 'objects %s\n' "$(s3 "$s3_ep/rag-documents?list-type=2" | grep -o '<Key>' | wc -l)"
  printf 'object doc-7 %s\n' "$(s3 "$s3_ep/rag-documents/docs/doc-7.txt" | sha256sum | cut -c1-16)"
  printf 'k8s configmap %s\n' "$(grep -c EMBEDDING_MODEL "$work/k8s/rag.yaml")"
}

say "reprise backup: one recovery point of the whole stack"
t0=$(now)
out=$(r --json backup) || die "the backup failed or is partial: $out"
t1=$(now)
point=$(jq -r .point <<<"$out")
backup_secs=$(elapsed "$t0" "$t1")
point_epoch=$t1
echo "point $point in $backup_secs s"
jq -r '.components[]? | "  \(.name) (\(.kind)): \(.status), \(.seconds // 0 | . * 100 | round / 100) s"' <<<"$out" || true
snapshot >"$work/state.at-point"
# The objects were not written after the point; only PostgreSQL keeps taking writes.
(
  i=0
  while :; do
    i=$((i + 1))
    psql_ -c "insert into ticks (id) values ($i)" >/dev/null 2>&1 || exit 0
    echo "$i"
  done
) >"$work/acked" &
pids+=("$!")
sleep 4

# ---------------------------------------------------------------------------------------------
say "disaster: every server killed, every data directory, object and collection gone"
disaster=$(now)
kill -9 "$(head -1 "$work/pg/postmaster.pid")"
kill -9 "$(cat "$work/redis/redis.pid")"
kill -9 "$qdrant_pid"
sleep 0.3
acked=$(tail -n 1 "$work/acked")
acked=${acked:-0}
rm -rf "$work/pg" "$work/redis" "$work/qdrant" "$work/k8s"
mkdir -p "$work/pg" "$work/redis" && chmod 700 "$work/pg"
if ((EUID == 0)); then chown postgres: "$work/pg"; fi
s3 "$s3_ep/rag-documents?list-type=2" | grep -o '<Key>[^<]*' | sed 's/<Key>//' |
  while read -r key; do s3 -X DELETE "$s3_ep/rag-documents/$key" >/dev/null; done
echo "acknowledged commits before the disaster: $acked"
# A replacement Qdrant, empty (in production: redeployed by its chart), on the same port.
for _ in $(seq 100); do port_free "$q_port" && break; sleep 0.1; done
start_qdrant "$work/qdrant-new" replacement
if r verify-stack >/dev/null 2>&1; then die "verify-stack passed on a destroyed stack"; fi
echo "verify-stack on the ruins: fails, as it must"

say "reprise restore latest --to-end: the stack, tier by tier"
restore_start=$(now)
r restore latest --to-end || die "the restore failed"
restored=$(now)
kill "$stream_pid" 2>/dev/null || true

say "reprise verify-stack on the restored stack"
r verify-stack || die "the restored stack is not consistent"
consistent=$(now)

say "comparing with the state at the point"
snapshot >"$work/state.restored"
diff -u "$work/state.at-point" "$work/state.restored" || die "the restored stack differs from the point"
grep -q 'drill-db-password' "$work/k8s/rag.yaml" && die "the Secret's value was stored in clear"
echo "identical: row counts and digest, Redis keys, Qdrant points, objects, manifests (Secret redacted)"
restored_max=$(psql_ -c "select coalesce(max(id), 0) from ticks")
holes=$(psql_ -c "select $restored_max - count(*) from ticks")
[[ "$holes" == 0 ]] || die "the restored counter has $holes holes"
lost=$((acked > restored_max ? acked - restored_max : 0))
lost_age=$(psql_ -c "select coalesce(round(extract(epoch from (to_timestamp($disaster) - max(at)))::numeric, 2), 0) from ticks")

say "figures"
printf '%-44s %s\n' \
  "corpus" "$ndocs documents, $nchunks chunks/vectors, $((nchunks / 2)) sessions" \
  "backup of the whole stack (one point)" "$backup_secs s" \
  "RTO: restore started -> stack restored" "$(elapsed "$restore_start" "$restored") s (every tier's health checks passed)" \
  "RTO: restore started -> proved consistent" "$(elapsed "$restore_start" "$consistent") s (after verify-stack)" \
  "RPO postgres (wal-stream, --to-end)" "$lost of $acked acknowledged commits lost; last restored commit $lost_age s before the disaster" \
  "RPO redis, qdrant, documents, config" "$(elapsed "$point_epoch" "$disaster") s (age of the point; nothing was written to them after it)"
echo
echo "rag-drill: OK: the whole stack was destroyed, restored in tier order and proved consistent"
