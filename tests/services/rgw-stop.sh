#!/usr/bin/env bash
# Stops what rgw-start.sh started, by the PIDs in DIR/pids (never by name), and with --rm
# deletes DIR.
#
#   tests/services/rgw-stop.sh DIR        # SIGTERM rgw, osd, mon one after the other (~1 s)
#   tests/services/rgw-stop.sh DIR --rm   # the data goes anyway: SIGKILL all, delete DIR
#
# Stopping something that is not running (or a DIR without pids) is fine: exit 0.
set -uo pipefail

[[ $# -ge 1 && $# -le 2 ]] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
D=$(realpath -m "$1")
RM=0
if [[ $# -eq 2 ]]; then
  [[ "$2" == --rm ]] || { echo "rgw-stop: unknown option '$2'" >&2; exit 2; }
  RM=1
fi

# A killed daemon stays a zombie until its parent reaps it: count zombies as stopped.
alive() {
  [[ -r "/proc/$1/status" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

if [[ -f "$D/pids" ]]; then
  if ((RM)); then
    while read -r _ pid; do kill -KILL "$pid" 2>/dev/null; done <"$D/pids"
    while read -r _ pid; do
      for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
    done <"$D/pids"
  else
    tac "$D/pids" | while read -r _ pid; do
      kill -TERM "$pid" 2>/dev/null || continue
      for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && kill -KILL "$pid" 2>/dev/null
    done
  fi
  rm -f "$D/pids"
fi
((RM)) && rm -rf "$D"
exit 0
