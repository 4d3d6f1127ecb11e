#!/usr/bin/env bash
# make demo: start the daemons with the example configs from deploy/examples/, show the
# combined `hactl status`, exercise the control channel (reload, a refused bad file), and stop
# everything again, also when interrupted.
#
# The full-stack demo (namespaces, MariaDB, VIP failover under traffic) replaces this as the
# daemons' data paths land.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "make demo runs as root (it uses /run/ha for the control sockets)" >&2
  exit 1
fi

BIN=target/debug
WORK=$(mktemp -d /tmp/ha-demo.XXXXXX)
SOCKETS=/run/ha
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "checking the example configurations"
for d in vrrpd proxyd dbrouterd; do
  printf '%-10s ' "$d"; "$BIN/$d" --check -c "deploy/examples/$d.yaml"
done

step "starting vrrpd, proxyd and dbrouterd (logs in $WORK)"
for d in vrrpd proxyd dbrouterd; do
  cp "deploy/examples/$d.yaml" "$WORK/$d.yaml"
  "$BIN/$d" -c "$WORK/$d.yaml" 2>"$WORK/$d.log" &
  pids+=("$!")
done
for d in vrrpd proxyd dbrouterd; do
  for _ in $(seq 1 100); do
    "$BIN/hactl" --socket-dir "$SOCKETS" status "$d" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

step "hactl status"
"$BIN/hactl" --socket-dir "$SOCKETS" status || true

step "hactl reload proxyd (valid file)"
"$BIN/hactl" --socket-dir "$SOCKETS" reload proxyd

step "hactl reload proxyd after breaking its file: refused, the old config keeps running"
sed -i 's/balance: round_robin/balance: fastest/' "$WORK/proxyd.yaml"
"$BIN/hactl" --socket-dir "$SOCKETS" reload proxyd || true

step "metrics of proxyd (control channel and process)"
curl -s http://127.0.0.1:9101/metrics | grep -E '^(ha_control|process_resident)' || true

if [ -t 0 ]; then
  step "running; press Enter to stop"
  read -r _
fi
step "stopping"
