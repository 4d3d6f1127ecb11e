#!/usr/bin/env bash
# Benchmarks proxyd against nginx and HAProxy, and direct to the backend, in one run:
# the same backend (nginx answering a fixed 13-byte body), the same worker count (1, then
# every core), the same wrk load, the same forwarding headers (X-Forwarded-For, -Proto, -Host
# and Forwarded, which proxyd always sends and nginx and HAProxy send when configured to, as
# most of their configurations are). Then the memory of each proxy holding 10,000 idle
# keep-alive client connections. Writes the table into docs/benchmarks.md (proxy section).
#
#   scripts/bench/proxy.sh            # DURATION=10s CONNECTIONS=64 by default
#
# Needs: wrk, nginx, haproxy, python3, a release build of proxyd (built here).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
CORES="$(nproc)"
WORK="$(mktemp -d /tmp/proxy-bench.XXXXXX)"
BACKEND_PORT=18990 NGINX_PORT=18991 HAPROXY_PORT=18992 PROXYD_PORT=18993
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# 10,000 idle clients, unless the file descriptor limit cannot hold them in every proxy
# (HAProxy sizes itself to about half the limit: client side plus server side).
FD_LIMIT="$(ulimit -n)"
IDLE="${IDLE:-$(( FD_LIMIT / 2 - 500 < 10000 ? FD_LIMIT / 2 - 500 : 10000 ))}"

cargo build --release -p proxyd --manifest-path "$ROOT/Cargo.toml" >/dev/null
PROXYD="${CARGO_TARGET_DIR:-$ROOT/target}/release/proxyd"

mkdir -p "$WORK/backend"
cat >"$WORK/backend/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/backend/nginx.pid;
error_log $WORK/backend/error.log;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACKEND_PORT reuseport; location / { return 200 "hello, world\n"; } }
}
CONF
nginx -p "$WORK/backend" -c "$WORK/backend/nginx.conf" & PIDS+=($!)

start_nginx() { # workers
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes $1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 19000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream app { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header Forwarded "for=\$remote_addr;host=\$host;proto=\$scheme";
    }
  }
}
CONF
  nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" & PIDS+=($!)
}

start_haproxy() { # workers
  cat >"$WORK/haproxy.cfg" <<CONF
global
  nbthread $1
defaults
  mode http
  timeout connect 1s
  timeout client 300s
  timeout server 30s
  timeout http-keep-alive 300s
frontend web
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend app
backend app
  http-reuse always
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header Forwarded "for=%[src];host=%[req.hdr(host)];proto=http"
  server s1 127.0.0.1:$BACKEND_PORT
CONF
  haproxy -f "$WORK/haproxy.cfg" -db & PIDS+=($!)
}

start_proxyd() { # workers
  cat >"$WORK/proxyd.yaml" <<CONF
workers: $1
control: { socket: $WORK/proxyd.sock }
log: { level: warn }
listeners:
  - { name: web, protocol: http, listen: "127.0.0.1:$PROXYD_PORT", idle_timeout: 300s }
pools:
  app:
    servers: [{ address: "127.0.0.1:$BACKEND_PORT" }]
    keepalive: { max_idle: 64, idle_timeout: 50s }
CONF
  sed -i "s/idle_timeout: 300s }/idle_timeout: 300s, pool: app }/" "$WORK/proxyd.yaml"
  "$PROXYD" -c "$WORK/proxyd.yaml" 2>"$WORK/proxyd.log" & PIDS+=($!)
}

stop_last() { local pid="${PIDS[-1]}"; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; unset 'PIDS[-1]'; }

wait_port() {
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$1/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2; exit 1
}

# Sums, over a process and its children (nginx's master and workers), what the awk program
# $3 prints from /proc/PID/$2.
sum_over() { # pid file awk-program
  local total=0
  for pid in $1 $(pgrep -P "$1" || true); do
    total=$((total + $(awk "$3" "/proc/$pid/$2" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# CPU time (user + system, in clock ticks) of a process and its children.
cpu_ticks() { sum_over "$1" stat '{print $14 + $15}'; }

# wrk against port $1 while process $2 serves: "requests/s p99_ms cpu_us_per_request"
measure() {
  wrk -t2 -c"$CONNECTIONS" -d5s "http://127.0.0.1:$1/" >/dev/null  # warm-up
  local before after
  before=$(cpu_ticks "$2")
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$1/" >"$WORK/wrk.out"
  after=$(cpu_ticks "$2")
  local rps p99 errors requests cpu
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$WORK/wrk.out")
  requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
  cpu=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "-" }')
  errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.out" | tr '\n' ' ')
  [ -n "$errors" ] && echo "  note ($1): $errors" >&2
  echo "$rps $p99 $cpu"
}

# RSS in KiB of a process and its children.
rss_of() { sum_over "$1" status '/VmRSS/ {print $2}'; }

# Opens $IDLE keep-alive connections, one request each, holds them, prints the RSS, closes.
idle_rss() { # port pid
  python3 - "$1" "$IDLE" <<'PY' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n")
    socks.append(s)
for s in socks:
    s.settimeout(10)
    data = b""
    try:
        while b"hello" not in data:
            chunk = s.recv(4096)
            if not chunk: break
            data += chunk
    except OSError:
        pass
time.sleep(6)
PY
  local client=$!
  sleep 4
  # Wait until the client has sent and read everything (it then sleeps).
  for _ in $(seq 1 60); do
    [ "$(ss -tn state established "( dport = :$1 )" | wc -l)" -ge "$IDLE" ] && break
    sleep 0.5
  done
  rss_of "$2"
  wait "$client" 2>/dev/null || true
}

wait_port "$BACKEND_PORT"
declare -A RPS P99 RSS CPU
read -r RPS[direct] P99[direct] CPU[direct] < <(measure "$BACKEND_PORT" "${PIDS[0]}")
for workers in 1 "$CORES"; do
  start_nginx "$workers"; wait_port "$NGINX_PORT"
  read -r RPS[nginx$workers] P99[nginx$workers] CPU[nginx$workers] < <(measure "$NGINX_PORT" "${PIDS[-1]}")
  RSS[nginx$workers]=$(idle_rss "$NGINX_PORT" "${PIDS[-1]}")
  stop_last
  start_haproxy "$workers"; wait_port "$HAPROXY_PORT"
  read -r RPS[haproxy$workers] P99[haproxy$workers] CPU[haproxy$workers] < <(measure "$HAPROXY_PORT" "${PIDS[-1]}")
  RSS[haproxy$workers]=$(idle_rss "$HAPROXY_PORT" "${PIDS[-1]}")
  stop_last
  start_proxyd "$workers"; wait_port "$PROXYD_PORT"
  read -r RPS[proxyd$workers] P99[proxyd$workers] CPU[proxyd$workers] < <(measure "$PROXYD_PORT" "${PIDS[-1]}")
  RSS[proxyd$workers]=$(idle_rss "$PROXYD_PORT" "${PIDS[-1]}")
  stop_last
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

TABLE="$WORK/table.md"
{
  echo "## Proxy (HTTP, L7)"
  echo
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')),"
  echo "$(nginx -v 2>&1 | sed 's/.*: //'), HAProxy $(haproxy -v | awk 'NR==1 {print $3}'), wrk -t2 -c$CONNECTIONS -d$DURATION, all on one host"
  echo "(so the load generator, the backend and the proxy share the cores). Backend: nginx returning a 13-byte body."
  echo "Every proxy adds the same forwarding headers (X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Forwarded)."
  echo "Produced by \`scripts/bench/proxy.sh\` (DURATION=$DURATION CONNECTIONS=$CONNECTIONS IDLE=$IDLE)."
  echo "CPU per request: the proxy's user + system time (all its processes) over the run, divided by the requests."
  echo
  echo "| target | workers | requests/s | p99 latency (ms) | vs HAProxy | vs nginx | CPU per request (µs) | RSS with $IDLE idle keep-alive clients (MiB) |"
  echo "|---|---|---|---|---|---|---|---|"
  echo "| direct to backend | - | ${RPS[direct]} | ${P99[direct]} | - | - | ${CPU[direct]} (the backend) | - |"
  for workers in 1 "$CORES"; do
    for t in nginx haproxy proxyd; do
      k="$t$workers"
      echo "| $t | $workers | ${RPS[$k]} | ${P99[$k]} | $(ratio "${RPS[$k]}" "${RPS[haproxy$workers]}") | $(ratio "${RPS[$k]}" "${RPS[nginx$workers]}") | ${CPU[$k]} | $(mib "${RSS[$k]}") |"
    done
  done
} >"$TABLE"
cat "$TABLE"

DOC="$ROOT/docs/benchmarks.md"
if [ ! -f "$DOC" ]; then
  printf '# Benchmarks\n\nSpeed and memory measured by the scripts in `scripts/bench/`, side by side with the\nprograms each daemon replaces, in one run on one machine. Tests never assert on speed.\n\n' >"$DOC"
fi
python3 - "$DOC" "$TABLE" <<'PY'
import re, sys
doc, table = open(sys.argv[1]).read(), open(sys.argv[2]).read().rstrip() + "\n"
# The generated part ends at the next heading (a "###" note of ours, another section) or an
# HTML marker of another section.
pattern = re.compile(r"## Proxy \(HTTP, L7\)\n.*?(?=\n##+ |\n<!-- |\Z)", re.S)
doc = pattern.sub(lambda _: table, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + table
open(sys.argv[1], "w").write(doc)
PY
echo "written to $DOC"
