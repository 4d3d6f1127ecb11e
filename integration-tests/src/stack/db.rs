//! The MariaDB primary, standby and two replicas of the stack, each in its own namespace on the
//! LAN: `scripts/db/topology.sh` with a placement per server (`primary=NS/ADDRESS`), so every
//! server binds its LAN address and replicates from the primary's. Root reaches each server over
//! its Unix socket (sockets cross network namespaces), which is how the checks read the data.
//! Dropping it stops the servers and deletes their directory; a watchdog of the script does the
//! same should the owning process die first.

use crate::child::{OutputWithin, QUICK, SLOW};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::netns::Host;

/// The base port: the primary listens on it, the standby and replicas on the next three.
pub const BASE_PORT: u16 = 3306;

/// One server.
#[derive(Debug, Clone)]
pub struct DbNode {
    /// `primary`, `standby`, `replica1`, `replica2` (the script's names).
    pub name: &'static str,
    /// dbrouterd's name for it: db1..db4.
    pub backend: &'static str,
    pub host: Host,
    pub port: u16,
    pub server_id: u32,
}

impl DbNode {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host.ip(), self.port)
    }
}

pub struct NsDatabases {
    pub dir: PathBuf,
    pub nodes: Vec<DbNode>,
    script: PathBuf,
}

impl NsDatabases {
    /// Starts the four servers in `dir` (a new directory), placed on `hosts` in the order primary,
    /// standby, replica1, replica2.
    pub fn start(dir: &Path, hosts: [&Host; 4]) -> Result<NsDatabases> {
        let script = crate::workspace_root().join("scripts/db/topology.sh");
        let names = ["primary", "standby", "replica1", "replica2"];
        let backends = ["db1", "db2", "db3", "db4"];
        let nodes: Vec<DbNode> = (0u16..)
            .zip(names.iter().zip(backends).zip(hosts))
            .map(|(i, ((name, backend), host))| DbNode {
                name,
                backend,
                host: host.clone(),
                port: BASE_PORT + i,
                server_id: u32::from(i) + 1,
            })
            .collect();
        let placements: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}={}/{}", n.name, n.host.ns, n.host.ip()))
            .collect();
        let databases = NsDatabases {
            dir: dir.to_path_buf(),
            nodes,
            script,
        };
        let output = Command::new("bash")
            .arg(&databases.script)
            .arg("start")
            .arg(dir)
            .arg(BASE_PORT.to_string())
            .args(&placements)
            .env("TOPOLOGY_OWNER_PID", std::process::id().to_string())
            // A failover to the standby must lose no acknowledged write: the primary acknowledges a
            // commit only once the standby has it.
            .env("TOPOLOGY_SEMI_SYNC", "standby")
            .output_within(SLOW)
            .context("running scripts/db/topology.sh")?;
        if !output.status.success() {
            bail!(
                "starting the MariaDB servers failed: {}",
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        Ok(databases)
    }

    pub fn node(&self, name: &str) -> &DbNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no database server named {name}"))
    }

    /// Runs `sql` as root on server `name` over its socket; the output in batch form.
    pub fn root_sql(&self, name: &str, sql: &str) -> Result<String> {
        let output = Command::new("mariadb")
            .arg(format!(
                "--defaults-file={}",
                self.dir.join(name).join("my.cnf").display()
            ))
            .args(["--batch", "--skip-column-names", "--connect-timeout=5"])
            .arg("--execute")
            .arg(sql)
            .output_within(QUICK)
            .context("running the mariadb client")?;
        if !output.status.success() {
            bail!(
                "`{sql}` on the {name} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_string())
    }

    /// The pid of server `name` while it runs.
    pub fn pid(&self, name: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.join(name).join("mariadbd.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
            .unwrap_or(false);
        alive.then_some(pid)
    }

    /// SIGKILL server `name` (a crash) and wait for it to be gone.
    pub fn kill(&self, name: &str) -> Result<()> {
        let pid = self
            .pid(name)
            .with_context(|| format!("the {name} is not running"))?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .with_context(|| format!("SIGKILL to the {name}"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.pid(name).is_some() {
            if std::time::Instant::now() >= deadline {
                bail!("the {name} (pid {pid}) did not exit after SIGKILL");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts server `name` again with its data; a replica resumes replicating by itself.
    pub fn restart(&self, name: &str) -> Result<()> {
        self.start_server(name, &[])
    }

    /// Starts the crashed primary `name` again after a failover: as a replica, so that its
    /// crash recovery drops what no replica acknowledged (`topology.sh --as-replica`).
    pub fn restart_as_replica(&self, name: &str) -> Result<()> {
        self.start_server(name, &["--as-replica"])
    }

    fn start_server(&self, name: &str, options: &[&str]) -> Result<()> {
        let output = Command::new("bash")
            .arg(&self.script)
            .arg("start-server")
            .arg(&self.dir)
            .arg(name)
            .args(options)
            .output_within(SLOW)
            .context("running topology.sh start-server")?;
        if !output.status.success() {
            bail!(
                "restarting the {name} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        Ok(())
    }

    /// The ids in `appdb.demo_writes` on server `name`.
    pub fn written_ids(&self, name: &str) -> Result<std::collections::BTreeSet<u64>> {
        let text = self.root_sql(name, "SELECT id FROM appdb.demo_writes")?;
        text.lines()
            .map(|l| {
                l.trim()
                    .parse::<u64>()
                    .with_context(|| format!("bad id '{l}'"))
            })
            .collect()
    }

    /// `topology.sh status`: one line per server.
    pub fn status(&self) -> String {
        Command::new("bash")
            .arg(&self.script)
            .arg("status")
            .arg(&self.dir)
            .output_within(SLOW)
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
            .unwrap_or_else(|e| format!("topology.sh status: {e}"))
    }
}

impl Drop for NsDatabases {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .output_within(SLOW);
    }
}
