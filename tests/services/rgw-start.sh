#!/usr/bin/env bash
# Starts a throw-away single-node Ceph cluster (1 mon, 1 memstore OSD) and a RADOS Gateway
# (S3) on 127.0.0.1, as plain background processes, for the S3 storage tests.
#
#   tests/services/rgw-start.sh DIR      # DIR must not exist or be empty
#   tests/services/rgw-stop.sh DIR --rm  # stops exactly what this started, deletes DIR
#
# Every port comes from a free-port search; nothing listens beyond 127.0.0.1.
# Writes DIR/pids ("name pid" per daemon) and DIR/env (shell export lines):
#   REPRISE_TEST_S3_ENDPOINT      http://127.0.0.1:PORT
#   REPRISE_TEST_S3_REGION        the region to sign with (RGW accepts any: us-east-1)
#   REPRISE_TEST_S3_ACCESS_KEY    REPRISE_TEST_S3_SECRET_KEY        (user "reprise")
#   REPRISE_TEST_S3_USER          "reprise", the uid that owns the test buckets
#   REPRISE_TEST_S3_OTHER_ACCESS_KEY REPRISE_TEST_S3_OTHER_SECRET_KEY (user "stranger": no
#                                 rights on the first user's buckets, for access-denied tests)
#   REPRISE_TEST_S3_APPEND_USER   "appendonly": no rights of its own; a test grants it put/get/
#   REPRISE_TEST_S3_APPEND_ACCESS_KEY REPRISE_TEST_S3_APPEND_SECRET_KEY  list through a bucket
#                                 policy (append-only repositories, docs/storage-s3.md)
#   REPRISE_TEST_S3_BUCKET        a prefix for bucket names (tests create their own buckets)
# Exit codes: 0 up; 77 Ceph is not installed (tests skip); 1 it failed (see DIR/log/).
# If it fails half-way, still run rgw-stop.sh DIR: DIR/pids lists what was started.
set -euo pipefail

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
[[ $# -eq 1 && "$1" != -h && "$1" != --help ]] || { usage >&2; exit 2; }
D=$(realpath -m "$1")

for bin in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph curl ss; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    echo "rgw-start: '$bin' is not installed. HINT: apt-get install -y --no-install-recommends" \
      "ceph-mon ceph-osd radosgw ceph-common curl iproute2" >&2
    exit 77
  fi
done
if [[ -d "$D" && -n "$(ls -A "$D")" ]]; then
  echo "rgw-start: '$D' is not empty" >&2
  exit 1
fi

# Prints a port nobody listens on and that is not in "${picked[@]}" (it runs in a $(...)
# subshell, so the caller records the pick).
picked=()
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    [[ " ${picked[*]-} " == *" $p "* ]] && continue
    ss -Hltn "sport = :$p" | grep -q . && continue
    echo "$p"
    return 0
  done
  echo "rgw-start: no free port found" >&2
  return 1
}
MON_PORT=$(free_port)
picked+=("$MON_PORT")
MON_V1_PORT=$(free_port)
picked+=("$MON_V1_PORT")
RGW_PORT=$(free_port)
picked+=("$RGW_PORT")

AK=REPRISETESTKEY$(printf '%06d' $((RANDOM * 7 % 1000000)))
SK=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
OTHER_AK=STRANGERKEY$(printf '%09d' $((RANDOM * 13 % 1000000000)))
OTHER_SK=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
APPEND_AK=APPENDONLYKEY$(printf '%07d' $((RANDOM * 11 % 10000000)))
APPEND_SK=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)

mkdir -p "$D"/{run,log,mon/ceph-a,osd/ceph-0,rgw}
: >"$D/pids"
FSID=$(cat /proc/sys/kernel/random/uuid)
CONF="$D/ceph.conf"
cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
mon data = $D/mon/\$cluster-\$id
osd data = $D/osd/\$cluster-\$id
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
# commit paxos proposals (pool creation) quickly: start-up in ~2 s instead of ~13 s
paxos propose interval = 0.05
paxos min wait = 0.01
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = 2147483648
osd op num shards = 1
osd op num threads per shard = 2
[client.rgw.a]
# radosgw forces ms_mon_client_mode=secure + cephx by default; undo that for auth=none
ms mon client mode = crc
auth client required = none
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $D/rgw
rgw thread pool size = 32
EOF

# Ceph's daemons get stdin from /dev/null and their own log files: a caller piping this
# script's output must see EOF when the script ends.
monmaptool --create --clobber --fsid "$FSID" \
  --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]" "$D/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" >"$D/log/mon-mkfs.out" 2>&1
ceph-mon -c "$CONF" -i a -f </dev/null >"$D/log/mon.out" 2>&1 &
echo "mon $!" >>"$D/pids"
export CEPH_CONF="$CONF"
for _ in $(seq 1 100); do
  ceph --connect-timeout 2 mon stat >/dev/null 2>&1 && break
  sleep 0.2
done
ceph --connect-timeout 2 mon stat >/dev/null 2>&1 ||
  { echo "rgw-start: ceph-mon did not come up (see $D/log/)" >&2; exit 1; }

OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph osd new "$OSD_UUID")
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >"$D/log/osd-mkfs.out" 2>&1
ceph-osd -c "$CONF" -i "$OSD_ID" -f </dev/null >"$D/log/osd.out" 2>&1 &
echo "osd $!" >>"$D/pids"
for _ in $(seq 1 150); do
  ceph osd dump 2>/dev/null | grep -q "^osd.$OSD_ID up" && break
  sleep 0.2
done

radosgw -c "$CONF" -n client.rgw.a -f </dev/null >"$D/log/rgw.out" 2>&1 &
echo "rgw $!" >>"$D/pids"
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "http://127.0.0.1:$RGW_PORT/" 2>/dev/null && break
  sleep 0.2
done
curl -fsS -o /dev/null "http://127.0.0.1:$RGW_PORT/" 2>/dev/null ||
  { echo "rgw-start: radosgw did not come up (see $D/log/)" >&2; exit 1; }

radosgw-admin -c "$CONF" user create --uid=reprise --display-name=reprise \
  --access-key="$AK" --secret-key="$SK" >"$D/log/user.json" 2>"$D/log/user.err"
radosgw-admin -c "$CONF" user create --uid=stranger --display-name=stranger \
  --access-key="$OTHER_AK" --secret-key="$OTHER_SK" >"$D/log/other.json" 2>"$D/log/other.err"
radosgw-admin -c "$CONF" user create --uid=appendonly --display-name=appendonly \
  --access-key="$APPEND_AK" --secret-key="$APPEND_SK" >"$D/log/append.json" 2>"$D/log/append.err"

umask 077
cat >"$D/env" <<EOF
export CEPH_CONF=$CONF
export REPRISE_TEST_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
export REPRISE_TEST_S3_REGION=us-east-1
export REPRISE_TEST_S3_ACCESS_KEY=$AK
export REPRISE_TEST_S3_SECRET_KEY=$SK
export REPRISE_TEST_S3_USER=reprise
export REPRISE_TEST_S3_OTHER_ACCESS_KEY=$OTHER_AK
export REPRISE_TEST_S3_OTHER_SECRET_KEY=$OTHER_SK
export REPRISE_TEST_S3_APPEND_USER=appendonly
export REPRISE_TEST_S3_APPEND_ACCESS_KEY=$APPEND_AK
export REPRISE_TEST_S3_APPEND_SECRET_KEY=$APPEND_SK
export REPRISE_TEST_S3_BUCKET=reprise-test
EOF
echo "rgw-start: radosgw up on http://127.0.0.1:$RGW_PORT (dir $D)"
