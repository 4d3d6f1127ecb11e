#!/usr/bin/env bash
# Benchmarks the database path in one run, on one MariaDB topology (scripts/db/topology.sh):
# sysbench oltp_point_select and oltp_read_write (server-side prepared statements)
#   - direct to the primary,
#   - through HAProxy in TCP mode to the primary (it parses nothing: the floor a proxy costs),
#   - through dbrouterd (release build): writes to the primary, reads to the two replicas.
# Writes the table into docs/benchmarks.md (the section between the db markers).
#
#   scripts/bench/db.sh            # DURATION=10 ROUNDS=3 THREADS=16 TABLES=4 TABLE_SIZE=10000 by default
#
# Each workload runs ROUNDS rounds of direct, HAProxy, dbrouterd one after another, and the
# table shows each target's median round: on a shared machine the background load drifts, and
# alternating short runs spreads the drift over all three instead of landing on one.
#
# Needs: sysbench, haproxy, mariadb (server and client), a release build of dbrouterd (built here).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-16}"
TABLES="${TABLES:-4}"
TABLE_SIZE="${TABLE_SIZE:-10000}"
BASE_PORT="${BASE_PORT:-23400}"
HAPROXY_PORT=$((BASE_PORT + 10)) DBROUTERD_PORT=$((BASE_PORT + 11))
WORK="$(mktemp -d /tmp/db-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$ROOT/scripts/db/topology.sh" stop "$WORK/db" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -p dbrouterd --manifest-path "$ROOT/Cargo.toml" >/dev/null
DBROUTERD="$ROOT/target/release/dbrouterd"

TOPOLOGY_OWNER_PID=$$ "$ROOT/scripts/db/topology.sh" start "$WORK/db" "$BASE_PORT" >/dev/null
PRIMARY=$BASE_PORT REPLICA1=$((BASE_PORT + 2)) REPLICA2=$((BASE_PORT + 3))

cat >"$WORK/haproxy.cfg" <<CONF
global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
listen mysql
  bind 127.0.0.1:$HAPROXY_PORT
  server primary 127.0.0.1:$PRIMARY
CONF
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 & PIDS+=($!)
HAPROXY_PID=$!

cat >"$WORK/dbrouterd.yaml" <<CONF
workers: auto
control: { socket: $WORK/dbrouterd.sock }
log: { level: warn }
listeners:
  - { name: app, listen: 127.0.0.1:$DBROUTERD_PORT, pool: app }
users:
  - { name: app, password: apppw }
backends:
  - { name: db1, address: 127.0.0.1:$PRIMARY, role: writer }
  - { name: db3, address: 127.0.0.1:$REPLICA1, role: replica }
  - { name: db4, address: 127.0.0.1:$REPLICA2, role: replica }
monitor: { user: monitor, password: monitorpw }
pools:
  app:
    writers: [db1]
    readers: [db3, db4]
    balance: least_conn
    connection_pool: { max_per_backend: 200, min_idle: 0 }
CONF
"$DBROUTERD" -c "$WORK/dbrouterd.yaml" 2>"$WORK/dbrouterd.log" & PIDS+=($!)
DBROUTERD_PID=$!

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}
wait_port "$HAPROXY_PORT"
wait_port "$DBROUTERD_PORT"

sb() { # port test extra-args...
  local port=$1 test=$2
  shift 2
  sysbench "$test" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
    --mysql-user=app --mysql-password=apppw --mysql-db=sbtest \
    --tables="$TABLES" --table-size="$TABLE_SIZE" "$@"
}

sb "$PRIMARY" oltp_read_write prepare >/dev/null
# The replicas must have the tables before reads go there.
rows() { mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$1" -uapp -papppw -N -e "SELECT COUNT(*) FROM sbtest.sbtest$TABLES" 2>/dev/null || echo 0; }
for _ in $(seq 1 300); do
  [ "$(rows "$REPLICA1")" = "$TABLE_SIZE" ] && [ "$(rows "$REPLICA2")" = "$TABLE_SIZE" ] && break
  sleep 0.2
done

RESULTS="$WORK/results"
: >"$RESULTS"
# CPU time (user + system, clock ticks) of process $1; 0 for none.
cpu_ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
run() { # label port test [proxy pid]
  local out before after
  before=$(cpu_ticks "${4:-}")
  out=$(sb "$2" "$3" --threads="$THREADS" --time="$DURATION" --report-interval=0 run 2>&1) || {
    echo "$1 $3: sysbench failed:" >&2
    echo "$out" >&2
    echo "$1 $3 0 0 failed -" >>"$RESULTS"
    return
  }
  after=$(cpu_ticks "${4:-}")
  local qps tps errors queries cpu
  qps=$(awk '/queries:/ {gsub(/[()]/, "", $3); print $3; exit}' <<<"$out")
  tps=$(awk '/transactions:/ {gsub(/[()]/, "", $3); print $3; exit}' <<<"$out")
  errors=$(awk '/ignored errors:/ {print $3; exit}' <<<"$out")
  queries=$(awk '/queries:/ {print $2; exit}' <<<"$out")
  cpu=-
  [ -n "${4:-}" ] && cpu=$(awk -v t=$((after - before)) -v n="$queries" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "-" }')
  echo "$1 $3 $qps $tps $errors $cpu" >>"$RESULTS"
  echo "$1 $3: $qps queries/s, $tps transactions/s, $errors errors, proxy CPU $cpu µs per query" >&2
}
ROUND_RESULTS="$WORK/rounds"
: >"$ROUND_RESULTS"
for test in oltp_point_select oltp_read_write; do
  for round in $(seq 1 "$ROUNDS"); do
    : >"$RESULTS"
    run direct "$PRIMARY" "$test"
    run haproxy "$HAPROXY_PORT" "$test" "$HAPROXY_PID"
    run dbrouterd "$DBROUTERD_PORT" "$test" "$DBROUTERD_PID"
    sed "s/^/$round /" "$RESULTS" >>"$ROUND_RESULTS"
  done
done
# The median round of each target and workload (by queries/s); errors summed over the rounds.
python3 - "$ROUND_RESULTS" "$RESULTS" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
out = []
for test in ("oltp_point_select", "oltp_read_write"):
    for target in ("direct", "haproxy", "dbrouterd"):
        mine = [r for r in rows if r[1] == target and r[2] == test]
        if not mine:
            continue
        if any(r[5] == "failed" for r in mine):
            out.append(f"{target} {test} 0 0 failed -")
            continue
        mine.sort(key=lambda r: float(r[3]))
        median = mine[len(mine) // 2]
        errors = sum(int(r[5]) for r in mine if r[5].isdigit())
        out.append(f"{target} {test} {median[3]} {median[4]} {errors} {median[6]}")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY

VERSION=$(mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$PRIMARY" -uapp -papppw -N -e "SELECT VERSION()")
HAPROXY_VERSION=$(haproxy -v 2>&1 | awk 'NR == 1 {print $3}')
SYSBENCH_VERSION=$(sysbench --version | awk '{print $2}')
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
SECTION="$WORK/section.md"
{
  echo "<!-- db:start -->"
  echo "## Database (MySQL protocol)"
  echo
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($CPU), MariaDB $VERSION,"
  echo "HAProxy $HAPROXY_VERSION (mode tcp), sysbench $SYSBENCH_VERSION, all on one host (the load generator,"
  echo "the proxies and the four servers share the cores). sysbench with $THREADS threads, ${DURATION}s per run,"
  echo "$ROUNDS rounds alternating the three targets, the median round shown (errors: the sum),"
  echo "$TABLES tables of $TABLE_SIZE rows, server-side prepared statements. Direct and HAProxy go to the primary;"
  echo "dbrouterd sends writes and transactions to the primary and plain reads to the two replicas."
  echo "Produced by \`scripts/bench/db.sh\` (DURATION=$DURATION ROUNDS=$ROUNDS THREADS=$THREADS TABLES=$TABLES TABLE_SIZE=$TABLE_SIZE)."
  echo "Errors are sysbench's ignored errors (deadlocks it retries); any other error fails the run."
  echo "Proxy CPU: the proxy process's user + system time over the run, divided by the queries."
  echo
  echo "| workload | target | queries/s | transactions/s | errors | vs direct | vs HAProxy | proxy CPU per query (µs) |"
  echo "|---|---|---|---|---|---|---|---|"
  for test in oltp_point_select oltp_read_write; do
    direct=$(awk -v t="$test" '$1 == "direct" && $2 == t {print $3}' "$RESULTS")
    haproxy=$(awk -v t="$test" '$1 == "haproxy" && $2 == t {print $3}' "$RESULTS")
    while read -r label name qps tps errors cpu; do
      [ "$name" = "$test" ] || continue
      vd=$(awk -v a="$qps" -v b="$direct" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
      vh=$(awk -v a="$qps" -v b="$haproxy" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
      echo "| $test | $label | $qps | $tps | $errors | $vd | $vh | $cpu |"
    done <"$RESULTS"
  done
  echo "<!-- db:end -->"
} >"$SECTION"

DOC="$ROOT/docs/benchmarks.md"
[ -f "$DOC" ] || printf '# Benchmarks\n\n' >"$DOC"
python3 - "$DOC" "$SECTION" <<'PY'
import re, sys
doc, section = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(doc).read()
pattern = re.compile(r"<!-- db:start -->.*?<!-- db:end -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(doc, "w").write(text)
PY
cat "$SECTION"
