#!/usr/bin/env bash
# Client-observed outage of a VIP failover, vrrpd side by side with keepalived at the same
# advertisement interval, for three events on the master: its link cut (bridge port down), a
# graceful stop (SIGTERM) and the death of the tracked service (SIGKILL). A client namespace
# connects to a TCP service on the VIP every few ms; the outage is the longest time without an
# answer. Results go to the VRRP section of docs/benchmarks.md.
#
#   sudo scripts/bench/vrrp-failover.sh            # INTERVAL_MS=100 REPEAT=3 PROBE_MS=5
#
# Needs root (namespaces), keepalived and netcat (scripts/setup-deps.sh) and cargo.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
INTERVAL_MS="${INTERVAL_MS:-100}"
REPEAT="${REPEAT:-3}"
PROBE_MS="${PROBE_MS:-5}"
WINDOW_MS=4000
VIP=198.18.0.100

[ "$(id -u)" -eq 0 ] || { echo "vrrp-failover: needs root" >&2; exit 1; }
cargo build --release -q -p vrrpd --bins --examples
VRRPD="$ROOT/target/release/vrrpd"
PROBE="$ROOT/target/release/examples/failover_probe"

WORK="$(mktemp -d /tmp/vrrp-bench.XXXXXX)"
P="vb$$"
declare -A PID=()

cleanup() {
  for key in "${!PID[@]}"; do kill -9 "${PID[$key]}" 2>/dev/null || true; done
  for f in "$WORK"/*.vrrp.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  for ns in a b c sw; do ip netns del "$P-$ns" 2>/dev/null || true; done
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

lan() {
  ip netns add "$P-sw"
  ip -n "$P-sw" link add br0 type bridge stp_state 0 forward_delay 0
  ip -n "$P-sw" link set br0 up
  local i=0
  for h in a b c; do
    i=$((i + 1)); local addr="198.18.0.$i/24"; [ "$h" = c ] && addr=198.18.0.200/24
    ip netns add "$P-$h"
    ip link add eth0 netns "$P-$h" type veth peer name "p$h" netns "$P-sw"
    ip -n "$P-sw" link set "p$h" master br0
    ip -n "$P-sw" link set "p$h" up
    ip -n "$P-$h" link set lo up
    ip -n "$P-$h" addr add "$addr" dev eth0
    ip -n "$P-$h" link set eth0 up
  done
}

holds_vip() { ip -n "$P-$1" -o -4 addr show dev eth0 | grep -q " $VIP/"; }

wait_vip_on() { # host timeout_s
  local end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    if holds_vip "$1" && ! holds_vip "$( [ "$1" = a ] && echo b || echo a )"; then return 0; fi
    sleep 0.05
  done
  echo "vrrp-failover: VIP not on $1 after $2 s" >&2; return 1
}

start_service() { # host
  ip netns exec "$P-$1" "$PROBE" serve 8080 "$1" "$WORK/svc-$1.sock" &
  PID[svc-$1]=$!
  sleep 0.2
}

start_vrrpd() { # host priority
  cat > "$WORK/vrrpd-$1.yaml" <<YAML
control: { socket: $WORK/vrrpd-$1.ctl }
log: { level: warn }
instances:
  - name: front
    interface: eth0
    vrid: 51
    priority: $2
    advert_interval: ${INTERVAL_MS}ms
    virtual_addresses: [$VIP/24]
    track:
      - daemon: { name: service, socket: $WORK/svc-$1.sock, interval: 20ms, timeout: 15ms, fall: 2, rise: 2, weight: -100 }
YAML
  ip netns exec "$P-$1" "$VRRPD" -c "$WORK/vrrpd-$1.yaml" 2>>"$WORK/vrrpd-$1.log" &
  PID[vrrp-$1]=$!
}

start_keepalived() { # host priority
  local advert; advert=$(awk "BEGIN { printf \"%g\", $INTERVAL_MS / 1000 }")
  cat > "$WORK/check-$1.sh" <<SH
#!/bin/sh
exec nc -z -w 1 127.0.0.1 8080
SH
  chmod 755 "$WORK/check-$1.sh"
  cat > "$WORK/keepalived-$1.conf" <<CONF
global_defs {
  router_id $1
  script_user root
  enable_script_security
}
vrrp_script service {
  script "$WORK/check-$1.sh"
  interval 1
  timeout 1
  fall 1
  rise 1
  weight -100
}
vrrp_instance front {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $2
  advert_int $advert
  version 3
  virtual_ipaddress {
    $VIP/24
  }
  track_script {
    service
  }
}
CONF
  ip netns exec "$P-$1" keepalived -n -l -P -f "$WORK/keepalived-$1.conf" \
    -p "$WORK/keepalived-$1.pid" -r "$WORK/keepalived-$1.vrrp.pid" >>"$WORK/keepalived-$1.log" 2>&1 &
  PID[vrrp-$1]=$!
}

start_vrrp() { # impl host priority
  if [ "$1" = vrrpd ]; then start_vrrpd "$2" "$3"; else start_keepalived "$2" "$3"; fi
}

stop_vrrp() { # host signal
  local pid="${PID[vrrp-$1]:-}"
  [ -n "$pid" ] || return 0
  kill "-$2" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PID[vrrp-$1]"
  [ -f "$WORK/keepalived-$1.vrrp.pid" ] && kill -9 "$(cat "$WORK/keepalived-$1.vrrp.pid")" 2>/dev/null || true
  rm -f "$WORK/keepalived-$1.vrrp.pid" "$WORK/keepalived-$1.pid"
}

# Runs the probe while `event` happens 1 s in; prints the outage in ms.
measure() { # event
  local out="$WORK/probe.out"
  ip netns exec "$P-c" "$PROBE" probe "$VIP:8080" "$PROBE_MS" "$WINDOW_MS" > "$out" &
  local probe=$!
  sleep 1
  "$1"
  wait "$probe"
  grep -o 'outage_ms=[0-9]*' "$out" | cut -d= -f2
}

event_link_cut() { ip -n "$P-sw" link set pa down; }
event_graceful_stop() { stop_vrrp a TERM; }
event_service_death() { kill -9 "${PID[svc-a]}"; wait "${PID[svc-a]}" 2>/dev/null || true; unset "PID[svc-a]"; }

restore() { # impl
  ip -n "$P-sw" link set pa up
  # Events run in the probe's subshell: tell what is gone by asking the processes.
  kill -0 "${PID[svc-a]:-0}" 2>/dev/null || start_service a
  kill -0 "${PID[vrrp-a]:-0}" 2>/dev/null || start_vrrp "$1" a 150
  wait_vip_on a 30
  sleep 1.5 # let the backup settle as backup
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
maximum() { sort -n | tail -1; }

lan
start_service a
start_service b
declare -A RESULT=()
for impl in vrrpd keepalived; do
  start_vrrp "$impl" b 100
  start_vrrp "$impl" a 150
  wait_vip_on a 30
  sleep 2
  for event in link_cut graceful_stop service_death; do
    samples=()
    for _ in $(seq "$REPEAT"); do
      samples+=("$(measure "event_$event")")
      restore "$impl"
    done
    RESULT[$impl-$event]="$(printf '%s\n' "${samples[@]}" | median) / $(printf '%s\n' "${samples[@]}" | maximum)"
    echo "$impl $event: ${samples[*]} ms"
  done
  stop_vrrp a TERM
  stop_vrrp b TERM
  sleep 0.5
done

skew_ms=$(awk "BEGIN { printf \"%.0f\", (256 - 100) * $INTERVAL_MS / 256 }")
section="$WORK/section.md"
{
  echo "<!-- vrrp-failover:start -->"
  echo "## VRRP failover: client-observed outage"
  echo
  echo "Measured by \`sudo scripts/bench/vrrp-failover.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores,"
  echo "$(uname -r)): master priority 150, backup 100, advertisement interval ${INTERVAL_MS} ms for both"
  echo "daemons (keepalived $(keepalived --version 2>&1 | head -1 | awk '{print $2}'), VRRPv3), a client"
  echo "namespace connecting to a TCP service on the VIP every ${PROBE_MS} ms. Outage = longest time"
  echo "without an answer, median / worst of ${REPEAT} runs, in ms. vrrpd tracks the service over its"
  echo "control socket every 20 ms (fall 2); keepalived runs a check script every 1 s (its minimum)."
  echo
  echo "| event on the master | vrrpd | keepalived | target (vrrpd) |"
  echo "|---|---|---|---|"
  echo "| link cut (bridge port down) | ${RESULT[vrrpd-link_cut]} | ${RESULT[keepalived-link_cut]} | ≤ 3 × interval + skew + 20 = $((3 * INTERVAL_MS + skew_ms + 20)) |"
  echo "| graceful stop (SIGTERM) | ${RESULT[vrrpd-graceful_stop]} | ${RESULT[keepalived-graceful_stop]} | ≤ skew + 20 = $((skew_ms + 20)) |"
  echo "| tracked service killed | ${RESULT[vrrpd-service_death]} | ${RESULT[keepalived-service_death]} | ≤ 250 |"
  echo "<!-- vrrp-failover:end -->"
} > "$section"

doc="$ROOT/docs/benchmarks.md"
[ -f "$doc" ] || printf '# Benchmarks\n\n' > "$doc"
if grep -q '<!-- vrrp-failover:start -->' "$doc"; then
  awk -v file="$section" '
    /<!-- vrrp-failover:start -->/ { while ((getline line < file) > 0) print line; skip = 1; next }
    /<!-- vrrp-failover:end -->/ { skip = 0; next }
    !skip { print }' "$doc" > "$WORK/doc.md"
  cat "$WORK/doc.md" > "$doc"
else
  { echo; cat "$section"; } >> "$doc"
fi
cat "$section"
