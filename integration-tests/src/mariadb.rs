//! A real MariaDB replication topology for the end-to-end tests.
//!
//! [`DbTopology::start`] runs `scripts/db/topology.sh` in a fresh temporary directory on a free range
//! of four ports and hands back the servers it started: a primary, a standby primary (read_only,
//! replicating from the primary) and two read replicas, all with GTID replication and server_id 1..4.
//! The accounts in [`APP`], [`REPORT`], [`MONITOR`] and [`REPL`] exist on every server; root is
//! reachable through each server's Unix socket only ([`DbTopology::root_sql`]).
//!
//! The helpers drive the servers the way an operator would: the `mariadb` CLI for SQL, SIGKILL for a
//! crash, `STOP/START REPLICA` for lag, and they wait for conditions with a deadline. Dropping the
//! topology stops every server and deletes the directory, also when the test panics; should the test
//! process die without unwinding, a watchdog the script leaves behind does the same.
//!
//! The helpers block (they run processes and poll). From an async test, call them in
//! `tokio::task::spawn_blocking` or use a multi-threaded runtime so the rest of the test keeps running.

use crate::child::{OutputWithin, QUICK, SLOW};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{self, Command};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// A database account the topology creates on every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub user: &'static str,
    pub password: &'static str,
}

/// All privileges on `appdb.*` and `sbtest.*`.
pub const APP: Account = Account {
    user: "app",
    password: "apppw",
};
/// SELECT on `appdb.*` and `sbtest.*`.
pub const REPORT: Account = Account {
    user: "report",
    password: "reportpw",
};
/// Replication monitoring and failover privileges, and the `ha.heartbeat` table.
pub const MONITOR: Account = Account {
    user: "monitor",
    password: "monitorpw",
};
/// REPLICATION SLAVE.
pub const REPL: Account = Account {
    user: "repl",
    password: "replpw",
};

/// The part a server plays in the topology as started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    /// The second master: read_only, replicating from the primary, the failover target.
    Standby,
    Replica,
}

/// One mariadbd of the topology.
#[derive(Debug, Clone)]
pub struct DbServer {
    /// `primary`, `standby`, `replica1` or `replica2`, as in the script.
    pub name: &'static str,
    pub role: Role,
    pub addr: SocketAddr,
    pub server_id: u32,
    dir: PathBuf,
}

impl DbServer {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("mariadbd.sock")
    }

    pub fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    fn defaults_file(&self) -> PathBuf {
        self.dir.join("my.cnf")
    }

    /// The pid of the running server, if it runs. A pid only counts while it is a live process
    /// started with this server's my.cnf, so a stale pid file never names another process.
    pub fn pid(&self) -> Option<Pid> {
        let pid: i32 = fs::read_to_string(self.dir.join("mariadbd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(") ")?.1.split(' ').next()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let ours = format!("--defaults-file={}", self.defaults_file().display());
        let started_here = cmdline.split(|&b| b == 0).any(|arg| arg == ours.as_bytes());
        (state != "Z" && started_here).then(|| Pid::from_raw(pid))
    }
}

/// What `SHOW REPLICA STATUS` says about a server's replication threads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `Yes`, `No`, `Connecting` or `Preparing`.
    pub io_running: String,
    /// `Yes` or `No`.
    pub sql_running: String,
    pub last_io_error: String,
    pub last_sql_error: String,
    /// `None` while the SQL thread is not running.
    pub seconds_behind_master: Option<u64>,
    /// The port of the server it replicates from (`Master_Port`).
    pub master_port: Option<u16>,
    /// `Yes` when its replication connects over TLS (`Master_SSL_Allowed`).
    pub master_ssl_allowed: String,
}

impl ReplicaStatus {
    /// Both threads stopped on purpose (`STOP REPLICA`), not by an error.
    pub fn is_stopped(&self) -> bool {
        self.io_running == "No" && self.sql_running == "No" && self.last_sql_error.is_empty()
    }

    fn parse(vertical: &str) -> Option<Self> {
        let fields: BTreeMap<&str, &str> = vertical
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| {
                (
                    key.trim()
                        .trim_start_matches("Replica_")
                        .trim_start_matches("Slave_"),
                    value.trim(),
                )
            })
            .collect();
        let field = |name: &str| fields.get(name).map(|v| v.to_string()).unwrap_or_default();
        fields.contains_key("IO_Running").then(|| ReplicaStatus {
            io_running: field("IO_Running"),
            sql_running: field("SQL_Running"),
            last_io_error: field("Last_IO_Error"),
            last_sql_error: field("Last_SQL_Error"),
            seconds_behind_master: field("Seconds_Behind_Master").parse().ok(),
            master_port: field("Master_Port")
                .parse()
                .ok()
                .or_else(|| field("Source_Port").parse().ok()),
            master_ssl_allowed: field("Master_SSL_Allowed"),
        })
    }
}

/// A running primary, standby and two replicas; stopped and deleted on drop.
pub struct DbTopology {
    name: String,
    servers: Vec<DbServer>,
    script: PathBuf,
    version: String,
    /// `REPLICA` from MariaDB 10.5.1, `SLAVE` before.
    replica_keyword: &'static str,
    // Dropped in this order after `Drop::drop` stopped the servers: the files, then the ports.
    dir: TempDir,
    _ports: PortLease,
}

impl DbTopology {
    /// Starts a topology for the test `name` (used in the directory name and messages).
    pub fn start(name: &str) -> Result<DbTopology> {
        Self::start_with(name, &[])
    }

    /// As [`DbTopology::start`], with `scripts/db/topology.sh`'s settings in `env` (such as
    /// `TOPOLOGY_TLS_DIR`).
    pub fn start_with(name: &str, env: &[(&str, &str)]) -> Result<DbTopology> {
        crate::watchdog::step("starting the MariaDB topology");
        let ports = PortLease::acquire()?;
        let short_name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(20)
            .collect();
        let dir = tempfile::Builder::new()
            .prefix(&format!("ha-db-{short_name}-"))
            .tempdir()
            .context("creating the topology's temporary directory")?;
        let script = crate::workspace_root().join("scripts/db/topology.sh");

        let started = Instant::now();
        let output = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir.path())
            .arg(ports.base.to_string())
            .env("TOPOLOGY_OWNER_PID", process::id().to_string())
            // The deployment dbrouterd's zero-loss failover relies on: the primary acknowledges
            // a commit only once the standby has it (asynchronous replication can lose the last
            // commits when the primary dies, whatever the proxy does).
            .env("TOPOLOGY_SEMI_SYNC", "standby")
            .envs(env.iter().copied())
            .output_within(SLOW)
            .with_context(|| format!("running {}", script.display()))?;
        if !output.status.success() {
            // The script stops what it started; this is for anything it could not.
            let _ = Command::new("bash")
                .arg(&script)
                .arg("stop")
                .arg(dir.path())
                .output_within(SLOW);
            bail!(
                "{name}: starting the MariaDB topology ({} start {} {}) failed with {}:\n{}",
                script.display(),
                dir.path().display(),
                ports.base,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }

        let roles = [
            ("primary", Role::Primary),
            ("standby", Role::Standby),
            ("replica1", Role::Replica),
            ("replica2", Role::Replica),
        ];
        let servers = (0u16..)
            .zip(roles)
            .map(|(i, (name, role))| DbServer {
                name,
                role,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, ports.base + i)),
                server_id: u32::from(i) + 1,
                dir: dir.path().join(name),
            })
            .collect();
        let mut topology = DbTopology {
            name: name.to_string(),
            servers,
            script,
            version: String::new(),
            replica_keyword: "REPLICA",
            dir,
            _ports: ports,
        };
        topology.version = topology.root_sql(topology.primary(), "SELECT VERSION()")?;
        if !at_least(&topology.version, (10, 5, 1)) {
            topology.replica_keyword = "SLAVE";
        }
        eprintln!(
            "{name}: MariaDB {} topology up in {:.1?} on 127.0.0.1:{}..{} in {}",
            topology.version,
            started.elapsed(),
            topology.primary().addr.port(),
            topology.primary().addr.port() + 3,
            topology.dir.path().display()
        );
        Ok(topology)
    }

    pub fn primary(&self) -> &DbServer {
        &self.servers[0]
    }

    pub fn standby(&self) -> &DbServer {
        &self.servers[1]
    }

    /// The two read replicas (not the standby).
    pub fn replicas(&self) -> &[DbServer] {
        &self.servers[2..]
    }

    /// Primary, standby, replica1, replica2.
    pub fn servers(&self) -> &[DbServer] {
        &self.servers
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server version, as `SELECT VERSION()` gives it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Runs `sql` (one or more statements) as `user` over TCP and returns the output in batch form:
    /// no column names, a tab between columns, a line per row, without the final newline.
    pub fn sql(&self, server: &DbServer, user: &str, password: &str, sql: &str) -> Result<String> {
        let mut command = Command::new("mariadb");
        command
            .arg("--no-defaults")
            .args(["--protocol=TCP", "--host=127.0.0.1"])
            .arg(format!("--port={}", server.addr.port()))
            .arg(format!("--user={user}"))
            .env("MYSQL_PWD", password);
        self.run_client(command, server, user, &["--skip-column-names"], sql)
    }

    /// Runs `sql` as root through the server's Unix socket (root has no TCP account).
    pub fn root_sql(&self, server: &DbServer, sql: &str) -> Result<String> {
        self.root_client(server, &["--skip-column-names"], sql)
    }

    fn root_client(&self, server: &DbServer, flags: &[&str], sql: &str) -> Result<String> {
        let mut command = Command::new("mariadb");
        command.arg(format!(
            "--defaults-file={}",
            server.defaults_file().display()
        ));
        self.run_client(command, server, "root", flags, sql)
    }

    fn run_client(
        &self,
        mut command: Command,
        server: &DbServer,
        user: &str,
        flags: &[&str],
        sql: &str,
    ) -> Result<String> {
        let output = command
            .args(["--batch", "--connect-timeout=5"])
            .args(flags)
            .arg("--execute")
            .arg(sql)
            .output_within(QUICK)
            .context("running the mariadb client")?;
        if !output.status.success() {
            bail!(
                "{}: `{sql}` as {user} on the {} ({}) failed: {}",
                self.name,
                server.name,
                server.addr,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        let mut text = String::from_utf8(output.stdout).context("mariadb printed non-UTF-8")?;
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    }

    pub fn is_running(&self, server: &DbServer) -> bool {
        server.pid().is_some()
    }

    /// Crashes the server (SIGKILL) and waits until the process is gone.
    pub fn kill(&self, server: &DbServer) -> Result<()> {
        let pid = server
            .pid()
            .with_context(|| format!("{}: the {} is not running", self.name, server.name))?;
        kill(pid, Signal::SIGKILL)
            .with_context(|| format!("SIGKILL to the {} (pid {pid})", server.name))?;
        poll_until(
            Duration::from_secs(10),
            &format!("the {} (pid {pid}) to exit", server.name),
            || Ok(!self.is_running(server)),
        )
    }

    /// Starts a stopped or killed server again with its old data and settings; a replica resumes
    /// replicating from its GTID position on its own.
    pub fn restart(&self, server: &DbServer) -> Result<()> {
        self.start_server(server, &[])
    }

    /// Starts a crashed primary again after a failover, as a replica: its crash recovery drops
    /// what no replica acknowledged (`topology.sh start-server … --as-replica`).
    pub fn restart_as_replica(&self, server: &DbServer) -> Result<()> {
        self.start_server(server, &["--as-replica"])
    }

    fn start_server(&self, server: &DbServer, options: &[&str]) -> Result<()> {
        let output = Command::new("bash")
            .arg(&self.script)
            .arg("start-server")
            .arg(self.dir.path())
            .arg(server.name)
            .args(options)
            .output_within(SLOW)
            .context("running topology.sh start-server")?;
        if !output.status.success() {
            bail!(
                "{}: restarting the {} failed: {}",
                self.name,
                server.name,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        Ok(())
    }

    /// `STOP REPLICA`: the server keeps serving reads but falls behind from now on.
    pub fn stop_replication(&self, server: &DbServer) -> Result<()> {
        self.root_sql(server, &format!("STOP {}", self.replica_keyword))
            .map(drop)
    }

    pub fn start_replication(&self, server: &DbServer) -> Result<()> {
        self.root_sql(server, &format!("START {}", self.replica_keyword))
            .map(drop)
    }

    /// The server's replication threads, or `None` when it does not replicate from anyone.
    pub fn replica_status(&self, server: &DbServer) -> Result<Option<ReplicaStatus>> {
        let vertical = self.root_client(
            server,
            &["--vertical"],
            &format!("SHOW {} STATUS", self.replica_keyword),
        )?;
        Ok(ReplicaStatus::parse(&vertical))
    }

    /// Waits until every running replica (the standby included) has applied everything the primary
    /// has binlogged so far. See [`DbTopology::wait_replicated_from`].
    pub fn wait_replicated(&self, within: Duration) -> Result<()> {
        self.wait_replicated_from(self.primary(), within)
    }

    /// Waits until the `gtid_slave_pos` of every other server that runs and replicates has reached
    /// `source`'s current `gtid_binlog_pos` in every replication domain. Killed servers, servers that
    /// replicate from no one and servers whose replication was stopped are left out; a replication
    /// error fails the wait at once.
    pub fn wait_replicated_from(&self, source: &DbServer, within: Duration) -> Result<()> {
        if !self.is_running(source) {
            bail!(
                "{}: the {} is not running, so nothing replicates from it",
                self.name,
                source.name
            );
        }
        let target_text = self.root_sql(source, "SELECT @@gtid_binlog_pos")?;
        let target = parse_gtid_pos(&target_text)?;
        let what = format!(
            "every replica to reach the {}'s GTID position {target_text}",
            source.name
        );
        let mut behind = Vec::new();
        poll_until(within, &what, || {
            behind.clear();
            for server in self
                .servers
                .iter()
                .filter(|s| s.name != source.name && self.is_running(s))
            {
                let (status, position) = match self.replica_status(server).and_then(|status| {
                    Ok((status, self.root_sql(server, "SELECT @@gtid_slave_pos")?))
                }) {
                    Ok(found) => found,
                    Err(_) if !self.is_running(server) => continue, // killed meanwhile
                    Err(e) => return Err(e),
                };
                let Some(status) = status.filter(|s| !s.is_stopped()) else {
                    continue;
                };
                if !status.last_sql_error.is_empty() {
                    bail!(
                        "{}: replication on the {} failed: {}",
                        self.name,
                        server.name,
                        status.last_sql_error
                    );
                }
                let applied = parse_gtid_pos(&position)?;
                let caught_up = target
                    .iter()
                    .all(|(domain, seq)| applied.get(domain).is_some_and(|s| s >= seq));
                if !caught_up {
                    let io_error = if status.last_io_error.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", status.last_io_error)
                    };
                    behind.push(format!(
                        "{} at '{position}' (IO thread {}{io_error})",
                        server.name, status.io_running
                    ));
                }
            }
            Ok(behind.is_empty())
        })
        .map_err(|e| match behind.is_empty() {
            true => e,
            false => e.context(format!(
                "{}: still behind: {}",
                self.name,
                behind.join(", ")
            )),
        })
    }
}

impl Drop for DbTopology {
    fn drop(&mut self) {
        match Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path())
            .output_within(SLOW)
        {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "{}: stopping the MariaDB topology failed: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr).trim_end()
            ),
            Err(e) => eprintln!(
                "{}: could not run {}: {e}",
                self.name,
                self.script.display()
            ),
        }
    }
}

/// Polls `ready` every 50 ms until it holds, failing once `within` has passed; unlike
/// [`crate::wait_until`] an error from `ready` (a replication error, say) ends the wait at once.
fn poll_until(within: Duration, what: &str, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if ready()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// `0-1-26,1-2-5` as domain id → sequence number.
fn parse_gtid_pos(text: &str) -> Result<BTreeMap<u32, u64>> {
    text.split(',')
        .map(str::trim)
        .filter(|gtid| !gtid.is_empty())
        .map(|gtid| {
            let mut parts = gtid.splitn(3, '-');
            let domain = parts.next().and_then(|d| d.parse().ok());
            let seq = parts.nth(1).and_then(|s| s.parse().ok());
            domain
                .zip(seq)
                .with_context(|| format!("bad GTID '{gtid}' in '{text}'"))
        })
        .collect()
}

/// Whether a `VERSION()` string such as `10.11.19-MariaDB-0+deb12u1-log` is at least `wanted`.
fn at_least(version: &str, wanted: (u32, u32, u32)) -> bool {
    let mut numbers = version
        .split(['.', '-'])
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let found = (
        numbers.next().unwrap_or(0),
        numbers.next().unwrap_or(0),
        numbers.next().unwrap_or(0),
    );
    found >= wanted
}

/// Four consecutive ports on 127.0.0.1 held for one topology. Every process that starts topologies
/// takes a range by locking `$TMPDIR/ha-integration-ports/<base>.lock`, so parallel tests, in one
/// test binary or several, never pick the same range; the kernel drops the lock if the process dies.
/// The range lies below Linux's ephemeral ports, so outgoing connections do not take them either.
struct PortLease {
    base: u16,
    _lock: Flock<File>,
}

impl PortLease {
    const FIRST: u16 = 20_000;
    const END: u16 = 32_000;
    const SPAN: u16 = 4;

    fn acquire() -> Result<PortLease> {
        let dir = std::env::temp_dir().join("ha-integration-ports");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let slots = u32::from((Self::END - Self::FIRST) / Self::SPAN);
        // Start each process somewhere else, so parallel processes rarely contend for a slot.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let start = process::id().wrapping_mul(7919).wrapping_add(nanos) % slots;
        for i in 0..slots {
            let slot = u16::try_from((start + i) % slots).expect("slots fit in u16");
            let base = Self::FIRST + slot * Self::SPAN;
            let path = dir.join(format!("{base}.lock"));
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
                continue;
            };
            // Locked by us, but something outside the scheme may still listen there.
            if (base..base + Self::SPAN)
                .all(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
            {
                return Ok(PortLease { base, _lock: lock });
            }
        }
        bail!(
            "no free range of {} ports between {} and {}",
            Self::SPAN,
            Self::FIRST,
            Self::END
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_positions_parse_per_domain() {
        let pos = parse_gtid_pos("0-1-26,1-2-5").unwrap();
        assert_eq!(pos, BTreeMap::from([(0, 26), (1, 5)]));
        assert!(parse_gtid_pos("").unwrap().is_empty());
        assert!(parse_gtid_pos("0-1").is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(at_least("10.11.19-MariaDB-0+deb12u1-log", (10, 5, 1)));
        assert!(!at_least("10.4.32-MariaDB", (10, 5, 1)));
    }

    #[test]
    fn replica_status_reads_either_spelling() {
        let status = ReplicaStatus::parse(
            "*************************** 1. row ***************************\n\
             Slave_IO_Running: Connecting\n\
             Replica_SQL_Running: Yes\n\
             Last_IO_Error: error connecting to master 'repl@127.0.0.1:20000' - retry-time: 1\n\
             Seconds_Behind_Master: NULL\n",
        )
        .unwrap();
        assert_eq!(status.io_running, "Connecting");
        assert_eq!(status.sql_running, "Yes");
        assert_eq!(
            status.last_io_error,
            "error connecting to master 'repl@127.0.0.1:20000' - retry-time: 1"
        );
        assert_eq!(status.seconds_behind_master, None);
        assert!(ReplicaStatus::parse("").is_none());
    }

    #[test]
    fn port_leases_never_overlap() {
        let a = PortLease::acquire().unwrap();
        let b = PortLease::acquire().unwrap();
        assert!(a.base.abs_diff(b.base) >= PortLease::SPAN);
    }
}
