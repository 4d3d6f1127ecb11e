#!/usr/bin/env bash
# Measures dbrouterd's failovers on real MariaDB topologies (scripts/db/topology.sh), RUNS times,
# each run on fresh topologies, through the ignored integration test `dbrouterd_failover_bench`:
#   - the primary killed (SIGKILL) under 4 writing sessions: time from the kill to the
#     acknowledgement of the first write sent after it (writes are held, not failed, while the
#     standby is promoted), and the writes that failed (those in flight at the death);
#   - a replica killed under 4 reading sessions: the reads that failed, the time from the kill
#     to the last failed read (0: none failed, so zero read errors from the start), and until
#     dbrouterd's status showed the replica out of the read rotation.
# Writes its section into docs/benchmarks.md (between the db-failover markers).
#
#   scripts/bench/db-failover.sh          # RUNS=5 by default
#
# Needs: mariadb (server and client), cargo. The test drives the debug build of dbrouterd that
# `make test` uses (failover time is set by the monitor's interval and checks, not by codegen).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-5}"
WORK="$(mktemp -d /tmp/db-failover-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

cd "$ROOT"
cargo build --workspace --bins >/dev/null 2>&1
RUNS="$RUNS" cargo test -p integration-tests --test dbrouterd_failover_bench -- \
  --ignored --nocapture --test-threads=1 >"$WORK/out.txt" 2>&1 || {
  cat "$WORK/out.txt" >&2
  exit 1
}
grep '^BENCH ' "$WORK/out.txt" | tee "$WORK/bench.txt" >&2
[ -s "$WORK/bench.txt" ] || { echo "no BENCH lines" >&2; exit 1; }

# Median and worst of one field over the runs.
stat() {
  sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$WORK/bench.txt" | sort -n |
    awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s / %s", m, v[NR] }'
}
sum() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$WORK/bench.txt" | awk '{ s += $1 } END { print s + 0 }'; }

VERSION=$(mariadbd --version 2>/dev/null | awk '{print $3}' || true)
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
MONITOR=$(sed -n 's/^pub const MONITOR: &str = "\(monitor: .*\)\\n\\$/\1/p' \
  integration-tests/tests/dbrouterd_failover_support/mod.rs)
SECTION="$WORK/section.md"
{
  echo "<!-- db-failover:start -->"
  echo "## Database failover (dbrouterd)"
  echo
  echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($CPU), MariaDB ${VERSION:-?}, all on one host,"
  echo "$RUNS runs, each on fresh topologies (primary, standby, two replicas, GTID replication), through"
  echo "one dbrouterd (debug build) with \`$MONITOR\`"
  echo "and \`failover: { auto: true, confirm_checks: 3 }\`. 4 client sessions, each sending its next"
  echo "statement as soon as the previous one is answered. Median / worst, in ms."
  echo "Produced by \`scripts/bench/db-failover.sh\` (RUNS=$RUNS)."
  echo
  echo "| event | measured | median / worst | total over the runs |"
  echo "|---|---|---|---|"
  echo "| primary killed (SIGKILL) | kill → first write sent after it acknowledged (by the promoted standby) | $(stat primary_first_write_ms) | failed writes (in flight at the death): $(sum failed_writes) |"
  echo "| replica killed (SIGKILL) | kill → last failed read (0: none failed) | $(stat replica_last_error_ms) | failed reads: $(sum replica_failed_reads) |"
  echo "| replica killed (SIGKILL) | kill → out of the read rotation (status) | $(stat replica_out_of_rotation_ms) | - |"
  echo
  echo "A write waits (\`failover.hold_writes\`) instead of failing while there is no writer; a read"
  echo "whose replica dies before answering runs again on another replica. What remains is the time"
  echo "the monitor needs to confirm the death (3 checks 200 ms apart) plus the promotion itself."
  echo "<!-- db-failover:end -->"
} >"$SECTION"

DOC="$ROOT/docs/benchmarks.md"
[ -f "$DOC" ] || printf '# Benchmarks\n\n' >"$DOC"
python3 - "$DOC" "$SECTION" <<'PY'
import re, sys
doc, section = sys.argv[1], open(sys.argv[2]).read().rstrip("\n")
text = open(doc).read()
pattern = re.compile(r"<!-- db-failover:start -->.*?<!-- db-failover:end -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(doc, "w").write(text)
PY
cat "$SECTION"
