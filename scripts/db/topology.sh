#!/usr/bin/env bash
# The MariaDB test topology used by the integration tests, the demo and the benchmarks: a primary, a
# standby primary (the second master, kept read_only, replicating from the primary) and two read
# replicas, with GTID replication, as unprivileged mariadbd processes on 127.0.0.1.
#
#   topology.sh start DIR BASE_PORT [NODE=NETNS/ADDRESS ...]
#                                     initialise DIR (first time only) and start the four servers on
#                                     127.0.0.1:BASE_PORT..BASE_PORT+3; returns once all replicate
#   topology.sh stop DIR              shut every server down (mariadb-admin shutdown, SIGKILL on timeout)
#   topology.sh status DIR            one line per server; exit status 0 when all four run, 3 otherwise
#   topology.sh start-server DIR NAME [--as-replica]
#                                     start one stopped server of a started topology again;
#                                     --as-replica: a crashed primary after a failover, whose crash
#                                     recovery must drop what no replica acknowledged
#                                     (--init-rpl-role=SLAVE, MariaDB 10.6.19/10.11.9 and later;
#                                     rpl_semi_sync_slave_enabled=ON before), semi-sync master off
#
#   server    port         server_id  read_only
#   primary   BASE_PORT    1          OFF
#   standby   BASE_PORT+1  2          ON   replicates from primary, log_slave_updates (failover target)
#   replica1  BASE_PORT+2  3          ON   replicates from primary
#   replica2  BASE_PORT+3  4          ON   replicates from primary
#
# Placement (optional): `primary=ha-db1/198.18.0.31` runs the primary inside network namespace
# ha-db1 (made by the caller, e.g. a LAN of namespaces), bound to 198.18.0.31 instead of 127.0.0.1;
# the other servers replicate from that address, and the accounts below also exist for the /24
# around every placed address (e.g. 'app'@'198.18.0.%'), so hosts of that LAN can log in. Ports stay
# BASE_PORT+index. The placement is recorded in DIR and used again by start-server.
#
# Everything lives in DIR/<server>/: my.cnf, data/, mariadbd.sock, mariadbd.pid, error.log.
# Root (no password, socket only):  mariadb --defaults-file=DIR/primary/my.cnf
# Accounts, created on the primary and replicated, @127.0.0.1 and @localhost:
#   app/apppw          all privileges on appdb.* and sbtest.*
#   report/reportpw    SELECT on appdb.* and sbtest.*
#   monitor/monitorpw  replication monitoring and failover privileges; ha.* (heartbeat table ha.heartbeat)
#   repl/replpw        REPLICATION SLAVE
#
# Environment: TOPOLOGY_START_TIMEOUT and TOPOLOGY_STOP_TIMEOUT (seconds, default 30 and 10);
# TOPOLOGY_SEMI_SYNC=standby (when the topology is first written): lossless semi-synchronous
# replication from the primary to the standby (AFTER_SYNC: the primary acknowledges a commit only
# once the standby has it, falling back to asynchronous after 10 s without the standby), so a
# failover to the standby loses no acknowledged write; the replicas stay asynchronous;
# TOPOLOGY_TLS_DIR (when the topology is first written): every server offers TLS with the
# certificate DIR/server.pem, its key DIR/server-key.pem and the CA DIR/ca.pem (clients still
# choose; an account may REQUIRE SSL);
# TOPOLOGY_OWNER_PID: a watchdog stops the servers and deletes DIR once that process has gone, so a
# test run killed before its clean-up leaves nothing behind.
set -euo pipefail

SCRIPT=$(realpath "$0")
NODES=(primary standby replica1 replica2)
START_TIMEOUT=${TOPOLOGY_START_TIMEOUT:-30}
STOP_TIMEOUT=${TOPOLOGY_STOP_TIMEOUT:-10}
APP_DATABASES=(appdb sbtest)
RUN_AS=$(id -un) # mariadbd runs as whoever runs this: root gets --user=root
ACCOUNT_HOSTS=(127.0.0.1 localhost)

log() { printf 'topology: %s\n' "$*" >&2; }
die() {
  printf 'topology: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n 's/^#   \(topology.sh .*\)/usage: \1/p' "$SCRIPT" >&2
  exit 2
}

# --- binaries and version ------------------------------------------------------------------------

find_bin() {
  local name dir
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
    # /usr/sbin is not on every PATH (non-login root shells, unprivileged users).
    for dir in /usr/sbin /usr/local/sbin /usr/bin; do
      [[ -x $dir/$name ]] && { echo "$dir/$name"; return 0; }
    done
  done
  return 1
}

resolve_binaries() {
  local hint="install MariaDB with: bash scripts/setup-deps.sh"
  MARIADBD=$(find_bin mariadbd mysqld) || die "mariadbd not found; $hint"
  INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found; $hint"
  CLIENT=$(find_bin mariadb mysql) || die "the mariadb client not found; $hint"
  ADMIN=$(find_bin mariadb-admin mysqladmin) || die "mariadb-admin not found; $hint"

  local version
  version=$("$MARIADBD" --version) || die "$MARIADBD --version failed"
  [[ $version =~ Ver\ ([0-9]+)\.([0-9]+)\.([0-9]+)-MariaDB ]] ||
    die "$MARIADBD is not MariaDB ($version); the topology needs MariaDB GTID replication"
  VERSION="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
  VERNUM=$((10#${BASH_REMATCH[1]} * 10000 + 10#${BASH_REMATCH[2]} * 100 + 10#${BASH_REMATCH[3]}))
  ((VERNUM >= 100300)) || die "MariaDB $VERSION is too old: 10.3 or newer is needed"
  # START/STOP/SHOW REPLICA exist from 10.5.1; the SLAVE spellings before.
  if ((VERNUM >= 100501)); then REPLICA=REPLICA; else REPLICA=SLAVE; fi
}

# --- servers -------------------------------------------------------------------------------------

node_index() {
  local i
  for i in "${!NODES[@]}"; do
    [[ ${NODES[$i]} == "$1" ]] && { echo "$i"; return 0; }
  done
  die "unknown server '$1' (expected one of: ${NODES[*]})"
}
node_dir() { echo "$DIR/$1"; }
node_cnf() { echo "$DIR/$1/my.cnf"; }
node_port() { echo $((BASE_PORT + $(node_index "$1"))); }
# Where NODE listens and in which network namespace it runs ("" for the caller's own).
node_addr() { echo "${PLACE_ADDR[$1]:-127.0.0.1}"; }
node_netns() { echo "${PLACE_NETNS[$1]:-}"; }
declare -A PLACE_ADDR=() PLACE_NETNS=()

# Reads NODE=NETNS/ADDRESS arguments into PLACE_ADDR and PLACE_NETNS.
parse_placements() {
  local spec node rest
  for spec in "$@"; do
    [[ $spec =~ ^([a-z0-9]+)=([A-Za-z0-9_.-]+)/([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$ ]] ||
      die "bad placement '$spec': expected NODE=NETNS/IPV4ADDRESS, e.g. primary=ha-db1/198.18.0.31"
    node=${BASH_REMATCH[1]}
    node_index "$node" >/dev/null
    rest=${BASH_REMATCH[2]}
    [[ -e /run/netns/$rest ]] || die "network namespace '$rest' (for the $node) does not exist"
    PLACE_NETNS[$node]=$rest
    PLACE_ADDR[$node]=${BASH_REMATCH[3]}
  done
  # Accounts for the /24 around every placed address, so the LAN's hosts can log in.
  local addr pattern
  for addr in "${PLACE_ADDR[@]}"; do
    pattern="${addr%.*}.%"
    [[ " ${ACCOUNT_HOSTS[*]} " == *" $pattern "* ]] || ACCOUNT_HOSTS+=("$pattern")
  done
}

# Runs a command in NODE's network namespace (or here when it has none).
in_node_netns() {
  local node=$1 ns
  shift
  ns=$(node_netns "$node")
  if [[ -n $ns ]]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# The pid of NODE's running server, from the pid file the server writes or the one recorded at
# launch; a pid only counts while it is a live (not zombie) process started with this NODE's my.cnf,
# so a stale file never names some other process.
server_pid() {
  local node=$1 file pid state
  for file in "$DIR/$node/mariadbd.pid" "$DIR/$node/launch.pid"; do
    [[ -s $file ]] || continue
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || continue
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || continue
    [[ -n $state && $state != Z ]] || continue
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -Fxq -- "--defaults-file=$(node_cnf "$node")" ||
      continue
    echo "$pid"
    return 0
  done
  return 1
}

root_sql() {
  local node=$1 sql=$2
  "$CLIENT" --defaults-file="$(node_cnf "$node")" --batch --skip-column-names --connect-timeout=5 -e "$sql"
}

# SHOW REPLICA STATUS of NODE in the vertical "Field: value" form replica_field reads.
replica_status() {
  "$CLIENT" --defaults-file="$(node_cnf "$1")" --batch --connect-timeout=5 -e "SHOW $REPLICA STATUS\\G"
}

error_log_tail() {
  local node=$1 file="$DIR/$1/error.log"
  if [[ -s $file ]]; then
    echo "--- last lines of $file ---"
    tail -n 25 "$file"
  else
    echo "--- $file is empty or missing ---"
  fi
}

# Fails the command with MESSAGE about NODE, followed by the end of NODE's error log.
fail_server() {
  local node=$1 message=$2
  {
    printf 'topology: error: %s (%s:%s): %s\n' "$node" "$(node_addr "$node")" "$(node_port "$node")" "$message"
    error_log_tail "$node"
  } >&2
  exit 1
}

write_cnf() {
  local node=$1 index port read_only dir
  index=$(node_index "$node")
  port=$(node_port "$node")
  dir=$(node_dir "$node")
  if [[ $node == primary ]]; then read_only=OFF; else read_only=ON; fi
  mkdir -p "$dir/tmp"
  cat >"$dir/my.cnf" <<EOF
# Written by scripts/db/topology.sh: the $node of the test topology in $DIR.
[mariadbd]
server_id                      = $((index + 1))
port                           = $port
bind_address                   = $(node_addr "$node")
socket                         = $dir/mariadbd.sock
pid_file                       = $dir/mariadbd.pid
datadir                        = $dir/data
tmpdir                         = $dir/tmp
log_error                      = $dir/error.log
skip_name_resolve
read_only                      = $read_only
log_bin                        = $node-bin
relay_log                      = $node-relay-bin
binlog_format                  = ROW
log_slave_updates              = ON
gtid_strict_mode               = ON
character_set_server           = utf8mb4
collation_server               = utf8mb4_general_ci
max_connections                = 500
# Small, so that four servers fit on a small machine and start in well under a second.
performance_schema             = OFF
innodb_buffer_pool_size        = 32M
innodb_log_file_size           = 16M
innodb_log_buffer_size         = 4M
key_buffer_size                = 1M
aria_pagecache_buffer_size     = 8M
query_cache_size               = 0
query_cache_type               = 0
# A killed mariadbd loses nothing it committed (the OS still holds it); only a machine crash could.
innodb_flush_log_at_trx_commit = 2
sync_binlog                    = 0
$(semi_sync_cnf "$node")
$(tls_cnf)

[client]
socket                         = $dir/mariadbd.sock
user                           = root
EOF
}

# my.cnf lines for TOPOLOGY_TLS_DIR (none otherwise).
tls_cnf() {
  [[ -n ${TOPOLOGY_TLS_DIR:-} ]] || return 0
  local file
  for file in ca.pem server.pem server-key.pem; do
    [[ -r $TOPOLOGY_TLS_DIR/$file ]] || die "TOPOLOGY_TLS_DIR: $TOPOLOGY_TLS_DIR/$file is missing"
  done
  echo "ssl_ca                         = $TOPOLOGY_TLS_DIR/ca.pem"
  echo "ssl_cert                       = $TOPOLOGY_TLS_DIR/server.pem"
  echo "ssl_key                        = $TOPOLOGY_TLS_DIR/server-key.pem"
}

# my.cnf lines for TOPOLOGY_SEMI_SYNC=standby (none otherwise).
semi_sync_cnf() {
  [[ ${TOPOLOGY_SEMI_SYNC:-} == standby ]] || return 0
  case $1 in
    primary)
      echo "rpl_semi_sync_master_enabled    = ON"
      echo "rpl_semi_sync_master_wait_point = AFTER_SYNC"
      echo "rpl_semi_sync_master_timeout    = 10000"
      ;;
    standby) echo "rpl_semi_sync_slave_enabled     = ON" ;;
  esac
}

install_db() {
  local node=$1 dir
  dir=$(node_dir "$node")
  rm -rf "$dir/data"
  local args=(--no-defaults "--datadir=$dir/data" "--user=$RUN_AS" --auth-root-authentication-method=normal
    --innodb-buffer-pool-size=32M --innodb-log-file-size=16M --performance-schema=OFF "--tmpdir=$dir/tmp")
  local help
  help=$("$INSTALL_DB" --help 2>/dev/null || true)
  [[ $help == *--skip-test-db* ]] && args+=(--skip-test-db)
  "$INSTALL_DB" "${args[@]}" >"$dir/install.log" 2>&1
}

launch() {
  local node=$1 dir
  shift
  dir=$(node_dir "$node")
  rm -f "$dir/mariadbd.pid"
  # Its own session, so a Ctrl-C meant for the caller does not reach it; stdio to the error log so
  # nothing holds the caller's pipes open.
  # `ip netns exec` execs mariadbd, so $! is the server's pid either way.
  setsid bash -c 'exec "$@"' launch $(netns_prefix "$node") "$MARIADBD" "--defaults-file=$dir/my.cnf" \
    "--user=$RUN_AS" "$@" </dev/null >>"$dir/error.log" 2>&1 &
  local pid=$! i
  echo "$pid" >"$dir/launch.pid"
  # Until the forked child has exec'd, its command line is this script's, and server_pid would
  # take the server for dead: wait (briefly) for the exec.
  for ((i = 0; i < 100; i++)); do
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -Fxq -- "--defaults-file=$dir/my.cnf" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
}

# The words that run a command in NODE's namespace (none for the caller's own).
netns_prefix() {
  local ns
  ns=$(node_netns "$1")
  [[ -z $ns ]] || echo "ip netns exec $ns"
}

# Whether NODE's address and port already take connections (inside NODE's namespace).
port_in_use() {
  local node=$1
  # shellcheck disable=SC2016 # expanded by the inner shell
  in_node_netns "$node" bash -c '(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null' port-check \
    "$(node_addr "$node")" "$(node_port "$node")"
}

# Waits until every NODE accepts connections, failing at once if one exits.
wait_up() {
  local end=$((SECONDS + START_TIMEOUT)) pending=("$@") waiting node
  while :; do
    waiting=()
    for node in "${pending[@]}"; do
      server_pid "$node" >/dev/null || fail_server "$node" "mariadbd exited during start-up"
      "$ADMIN" --defaults-file="$(node_cnf "$node")" --connect-timeout=1 ping >/dev/null 2>&1 ||
        waiting+=("$node")
    done
    ((${#waiting[@]} == 0)) && return 0
    ((SECONDS < end)) || fail_server "${waiting[0]}" "not accepting connections after ${START_TIMEOUT}s"
    pending=("${waiting[@]}")
    sleep 0.1
  done
}

# --- replication ---------------------------------------------------------------------------------

monitor_privileges() {
  if ((VERNUM >= 100509)); then
    # 10.5.9 split SUPER; 10.11 no longer lets SUPER change read_only, so name everything failover needs.
    # RELOAD: RESET SLAVE ALL on a promoted server; REPLICATION MASTER ADMIN: semi-sync moved
    # with the writer at a switchover.
    echo "PROCESS, RELOAD, REPLICATION CLIENT, BINLOG MONITOR, REPLICA MONITOR, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, READ_ONLY ADMIN, CONNECTION ADMIN"
  else
    echo "PROCESS, RELOAD, REPLICATION CLIENT, SUPER"
  fi
}

# mariadb-install-db also gives root password-less accounts reachable over TCP (127.0.0.1, ::1, the
# host name); each server drops its own, unlogged, leaving root on the Unix socket only.
drop_tcp_root_sql() {
  local hosts
  hosts=$(root_sql "$1" "SELECT GROUP_CONCAT(CONCAT('\'root\'@\'', Host, '\'')) FROM mysql.user
    WHERE User = 'root' AND Host <> 'localhost'")
  [[ -n $hosts && $hosts != NULL ]] || return 0
  echo "SET sql_log_bin = 0; DROP USER $hosts;"
}

# Databases and accounts, written on the primary so replication carries them everywhere.
create_accounts_sql() {
  local host db
  for db in "${APP_DATABASES[@]}" ha; do
    echo "CREATE DATABASE IF NOT EXISTS $db;"
  done
  echo "CREATE TABLE IF NOT EXISTS ha.heartbeat (server_id INT UNSIGNED NOT NULL PRIMARY KEY,"
  echo "  ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;"
  for host in "${ACCOUNT_HOSTS[@]}"; do
    echo "CREATE USER IF NOT EXISTS 'app'@'$host' IDENTIFIED BY 'apppw';"
    echo "CREATE USER IF NOT EXISTS 'report'@'$host' IDENTIFIED BY 'reportpw';"
    echo "CREATE USER IF NOT EXISTS 'monitor'@'$host' IDENTIFIED BY 'monitorpw';"
    echo "CREATE USER IF NOT EXISTS 'repl'@'$host' IDENTIFIED BY 'replpw';"
    for db in "${APP_DATABASES[@]}"; do
      echo "GRANT ALL PRIVILEGES ON $db.* TO 'app'@'$host';"
      echo "GRANT SELECT ON $db.* TO 'report'@'$host';"
    done
    echo "GRANT $(monitor_privileges) ON *.* TO 'monitor'@'$host';"
    echo "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON ha.* TO 'monitor'@'$host';"
    echo "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'$host';"
  done
}

replica_field() { # STATUS FIELD: the value of FIELD (Slave_ or Replica_ spelling) in a \G status
  awk -v want="$2" -F': ' '{ key = $1; gsub(/^ +/, "", key); sub(/^Replica_/, "Slave_", key) }
    key == want { sub(/^[^:]*: ?/, ""); print; exit }' <<<"$1"
}

point_at_primary() {
  local node=$1
  root_sql "$node" "CHANGE MASTER TO MASTER_HOST='$(node_addr primary)', MASTER_PORT=$BASE_PORT,
      MASTER_USER='repl', MASTER_PASSWORD='replpw', MASTER_USE_GTID=slave_pos,
      MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1;
    START $REPLICA;" || fail_server "$node" "CHANGE MASTER / START $REPLICA failed"
}

# Waits until both replication threads of every NODE run and, when USERS is non-zero, the accounts
# have arrived there; fails at once on an SQL thread error.
wait_replicating() {
  local users=$1 end=$((SECONDS + START_TIMEOUT)) pending waiting node status io sqlt sql_error count
  shift
  pending=("$@")
  while :; do
    waiting=()
    for node in "${pending[@]}"; do
      status=$(replica_status "$node") || fail_server "$node" "SHOW $REPLICA STATUS failed"
      io=$(replica_field "$status" Slave_IO_Running)
      sqlt=$(replica_field "$status" Slave_SQL_Running)
      sql_error=$(replica_field "$status" Last_SQL_Error)
      [[ -z $sql_error ]] || fail_server "$node" "replication SQL thread failed: $sql_error"
      count=$users
      if [[ $io == Yes && $sqlt == Yes ]] && ((users > 0)); then
        count=$(root_sql "$node" "SELECT COUNT(*) FROM mysql.user
          WHERE User IN ('app','report','monitor','repl')") || count=0
      fi
      [[ $io == Yes && $sqlt == Yes && $count -ge $users ]] || waiting+=("$node")
    done
    ((${#waiting[@]} == 0)) && return 0
    if ((SECONDS >= end)); then
      node=${waiting[0]}
      status=$(replica_status "$node" 2>&1 || true)
      fail_server "$node" "not replicating after ${START_TIMEOUT}s: IO thread '$(replica_field "$status" \
        Slave_IO_Running)', SQL thread '$(replica_field "$status" Slave_SQL_Running)', last IO error \
'$(replica_field "$status" Last_IO_Error)'"
    fi
    pending=("${waiting[@]}")
    sleep 0.1
  done
}

# --- commands ------------------------------------------------------------------------------------

set_dir() {
  [[ -n ${1:-} ]] || usage
  DIR=$(realpath -m -- "$1")
}

load_base_port() {
  [[ -f $DIR/.topology ]] || die "$DIR is not a topology directory (no $DIR/.topology)"
  BASE_PORT=$(sed -n 's/^BASE_PORT=//p' "$DIR/.topology")
  [[ $BASE_PORT =~ ^[0-9]+$ ]] || die "$DIR/.topology has no BASE_PORT"
  local placements
  mapfile -t placements < <(sed -n 's/^PLACE=//p' "$DIR/.topology")
  parse_placements "${placements[@]}"
}

# On a failed start, take down whatever was started so no half topology is left running.
STARTING=0
on_exit() {
  local status=$?
  if ((status != 0 && STARTING)); then
    log "start failed; stopping the servers started so far"
    stop_servers >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap on_exit EXIT

cmd_start() {
  [[ $# -ge 2 ]] || usage
  set_dir "$1"
  BASE_PORT=$2
  shift 2
  parse_placements "$@"
  [[ $BASE_PORT =~ ^[0-9]+$ ]] && ((BASE_PORT >= 1024 && BASE_PORT <= 65532)) ||
    die "BASE_PORT must be a number from 1024 to 65532, got '$BASE_PORT'"
  resolve_binaries
  local started=${EPOCHREALTIME/./} node pid

  if [[ -e $DIR && ! -f $DIR/.topology ]] && [[ -n $(ls -A "$DIR") ]]; then
    die "$DIR exists, is not empty and is not a topology directory; give a new or empty directory"
  fi
  if [[ -f $DIR/.topology ]]; then
    local recorded
    recorded=$(sed -n 's/^BASE_PORT=//p' "$DIR/.topology")
    [[ $recorded == "$BASE_PORT" ]] ||
      die "$DIR was created with BASE_PORT $recorded, not $BASE_PORT; start it with $recorded or use a new DIR"
  fi
  for node in "${NODES[@]}"; do
    if pid=$(server_pid "$node" 2>/dev/null); then
      die "the topology in $DIR is already running ($node has pid $pid); stop it first: $SCRIPT stop $DIR"
    fi
  done
  for node in "${NODES[@]}"; do
    port_in_use "$node" &&
      die "port $(node_port "$node") on $(node_addr "$node") (for the $node) is already in use; choose another BASE_PORT"
  done
  local sock="$DIR/replica2/mariadbd.sock"
  ((${#sock} < 108)) || die "$DIR is too long a path for a Unix socket ($sock); use a shorter DIR"

  mkdir -p "$DIR"
  {
    printf 'BASE_PORT=%s\n' "$BASE_PORT"
    for node in "${NODES[@]}"; do
      [[ -z $(node_netns "$node") ]] || printf 'PLACE=%s=%s/%s\n' "$node" "$(node_netns "$node")" "$(node_addr "$node")"
    done
  } >"$DIR/.topology"
  STARTING=1

  # A topology is initialised once: a directory whose set-up never finished is initialised afresh.
  local fresh=1
  [[ -f $DIR/.configured ]] && fresh=0
  local -A installers=()
  for node in "${NODES[@]}"; do
    write_cnf "$node"
    if ((fresh)); then
      install_db "$node" &
      installers[$node]=$!
    fi
  done
  for node in "${!installers[@]}"; do
    wait "${installers[$node]}" || {
      printf 'topology: error: mariadb-install-db failed for the %s\n--- %s ---\n' "$node" \
        "$DIR/$node/install.log" >&2
      # The cause comes first; mariadb-install-db's generic advice follows it.
      head -n 8 "$DIR/$node/install.log" >&2
      exit 1
    }
  done

  for node in "${NODES[@]}"; do
    launch "$node"
  done
  wait_up "${NODES[@]}"

  local replicas=("${NODES[@]:1}")
  if ((fresh)); then
    for node in "${NODES[@]}"; do
      root_sql "$node" "$(drop_tcp_root_sql "$node")" || fail_server "$node" "dropping root's TCP accounts failed"
    done
    root_sql primary "$(create_accounts_sql)" || fail_server primary "creating databases and accounts failed"
    for node in "${replicas[@]}"; do
      point_at_primary "$node"
    done
    wait_replicating 8 "${replicas[@]}"
    touch "$DIR/.configured"
  else
    wait_replicating 0 "${replicas[@]}"
  fi
  start_watchdog
  STARTING=0

  log "MariaDB $VERSION topology up in $(((${EPOCHREALTIME/./} - started) / 1000))ms in $DIR"
  for node in "${NODES[@]}"; do
    printf '%-9s %s:%s server_id=%s pid=%s\n' "$node" "$(node_addr "$node")" "$(node_port "$node")" \
      $(($(node_index "$node") + 1)) "$(server_pid "$node")"
  done
}

# With TOPOLOGY_OWNER_PID set, stop the servers and delete DIR once that process has gone.
start_watchdog() {
  [[ -n ${TOPOLOGY_OWNER_PID:-} ]] || return 0
  [[ $TOPOLOGY_OWNER_PID =~ ^[0-9]+$ ]] || die "TOPOLOGY_OWNER_PID must be a pid"
  # shellcheck disable=SC2016 # expanded by the watchdog's shell
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
    TOPOLOGY_WATCHDOG=1 bash "$2" stop "$3"
    [[ -f $3/.topology ]] && rm -rf -- "$3"' topology-watchdog "$TOPOLOGY_OWNER_PID" "$SCRIPT" "$DIR" \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$DIR/watchdog.pid"
}

stop_watchdog() {
  [[ -z ${TOPOLOGY_WATCHDOG:-} && -s $DIR/watchdog.pid ]] || return 0
  local pid
  pid=$(<"$DIR/watchdog.pid")
  if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -Fxq -- "$DIR"; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/watchdog.pid"
}

stop_servers() {
  local node pid running=() end
  for node in "${NODES[@]}"; do
    pid=$(server_pid "$node") || continue
    running+=("$node:$pid")
    # In the background, all four at once; mariadb-admin itself lingers polling the pid file.
    timeout "$STOP_TIMEOUT" "$ADMIN" --defaults-file="$(node_cnf "$node")" --connect-timeout=2 shutdown \
      </dev/null >/dev/null 2>&1 &
  done
  end=$((SECONDS + STOP_TIMEOUT))
  local entry left
  while :; do
    left=()
    for entry in "${running[@]}"; do
      server_pid "${entry%%:*}" >/dev/null && left+=("$entry")
    done
    ((${#left[@]} == 0)) && break
    if ((SECONDS >= end)); then
      for entry in "${left[@]}"; do
        log "${entry%%:*} (pid ${entry#*:}) did not shut down within ${STOP_TIMEOUT}s; killing it"
        kill -KILL "${entry#*:}" 2>/dev/null || true
      done
      break
    fi
    sleep 0.05
  done
  stop_watchdog
  ((${#running[@]} == 0)) || log "stopped ${running[*]%%:*}"
}

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  set_dir "$1"
  [[ -d $DIR ]] || { log "$DIR does not exist; nothing to stop"; return 0; }
  load_base_port
  resolve_binaries
  stop_servers
}

cmd_start_server() {
  [[ $# -eq 2 || ( $# -eq 3 && $3 == --as-replica ) ]] || usage
  set_dir "$1"
  local node=$2 pid extra=()
  load_base_port
  node_index "$node" >/dev/null
  [[ -f $DIR/.configured ]] || die "the topology in $DIR was never started completely; use start"
  resolve_binaries
  pid=$(server_pid "$node") && die "the $node is already running (pid $pid)"
  port_in_use "$node" && die "port $(node_port "$node") for the $node is in use"
  if [[ ${3:-} == --as-replica ]]; then
    # Crash recovery truncates the binary log's unacknowledged tail only for a server that
    # starts as a replica (MDEV-33465); older servers took rpl_semi_sync_slave_enabled for that.
    # As a replica it must not wait, as a semi-sync master, for acknowledgements of what it
    # applies: that stalls its replication for rpl_semi_sync_master_timeout.
    extra=(--rpl-semi-sync-master-enabled=OFF)
    if "$MARIADBD" --help --verbose 2>/dev/null | grep -q -- '--init-rpl-role'; then
      extra+=(--init-rpl-role=SLAVE)
    else
      extra+=(--rpl-semi-sync-slave-enabled=ON)
    fi
  fi
  launch "$node" "${extra[@]}"
  wait_up "$node"
  log "$node up on $(node_addr "$node"):$(node_port "$node") (pid $(server_pid "$node"))"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  set_dir "$1"
  load_base_port
  resolve_binaries
  local node pid all=0 row status
  for node in "${NODES[@]}"; do
    if ! pid=$(server_pid "$node"); then
      printf '%-9s %s:%-5s stopped\n' "$node" "$(node_addr "$node")" "$(node_port "$node")"
      all=3
      continue
    fi
    row=$(root_sql "$node" "SELECT CONCAT_WS(' ', CONCAT('server_id=', @@server_id),
      CONCAT('read_only=', IF(@@read_only, 'ON', 'OFF')), CONCAT('gtid_binlog_pos=', @@gtid_binlog_pos),
      CONCAT('gtid_slave_pos=', @@gtid_slave_pos))" 2>&1) || row="(query failed: $row)"
    status=$(replica_status "$node" 2>/dev/null || true)
    if [[ -n $status ]]; then
      row+=" io=$(replica_field "$status" Slave_IO_Running) sql=$(replica_field "$status" \
        Slave_SQL_Running) lag=$(replica_field "$status" Seconds_Behind_Master)"
    fi
    printf '%-9s %s:%-5s running pid=%s %s\n' "$node" "$(node_addr "$node")" "$(node_port "$node")" "$pid" "$row"
  done
  return "$all"
}

case ${1:-} in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) shift; cmd_status "$@" ;;
  start-server) shift; cmd_start_server "$@" ;;
  *) usage ;;
esac
