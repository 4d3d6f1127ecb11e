#!/usr/bin/env bash
# make demo: the whole stack on this machine, in network namespaces (addresses in 198.18.0.0/15,
# nothing leaves the machine), under client traffic, with one component of each layer broken in
# turn. `make demo` has installed the dependencies (scripts/setup-deps.sh) and built the workspace.
#
#   client 198.18.0.200 ──▶ VIP 198.18.0.100:80
#   lb1 .11, lb2 .12     vrrpd (tracks proxyd over its control socket) + proxyd
#   app1 .21, app2 .22   demo-app + dbrouterd sidecar
#   primary .31, standby .32, replica1 .33, replica2 .34   MariaDB with GTID replication
#
# The stack, the traffic, the faults and the verdicts are integration-tests/src/stack (the code the
# chaos tests run), driven by integration-tests/src/bin/ha-demo.rs. Faults, in order: proxyd killed
# on the master LB, the master LB's link cut, an app server killed, a replica killed, the primary
# killed; each is repaired before the next (dbrouterd fails over to the standby; the killed primary,
# started again, is fenced and rejoined as a replica of the new writer). Per fault it prints `hactl status` of the nodes involved before and after, the errors
# the client saw, and at the end one table.
#
# HA_DEMO_FAULTS=proxyd,link,app,replica,primary picks a subset. Everything (processes,
# namespaces, files) is removed at the end, also when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "make demo runs as root (network namespaces, VRRP raw sockets, MariaDB servers)" >&2
  exit 1
fi

BIN=${CARGO_TARGET_DIR:-target}/debug
for b in ha-demo vrrpd proxyd dbrouterd demo-app hactl; do
  [[ -x $BIN/$b ]] || { echo "demo: $BIN/$b is not built; run: make demo" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/ha-demo.XXXXXX)
chmod 755 "$WORK"
driver=

cleanup() {
  local status=$? ns pid
  trap - EXIT INT TERM
  if [[ -n $driver ]] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$driver" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$driver" 2>/dev/null || true
  fi
  [[ -n $driver ]] && wait "$driver" 2>/dev/null || true
  # The driver removes all of this itself when it ends normally; after an interruption, whatever
  # is left: processes in the demo's namespaces, the namespaces, the MariaDB servers, the files.
  if [[ -n $driver ]]; then
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^ha-demo-$driver-" || true); do
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    done
  fi
  [[ -f $WORK/db/.topology ]] && bash scripts/db/topology.sh stop "$WORK/db" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted; cleaning up" >&2; exit 130' INT TERM

# In the background (so an interrupt reaches this script's trap at once), waited for.
"$BIN/ha-demo" "$WORK" &
driver=$!
wait "$driver"
