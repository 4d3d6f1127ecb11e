//! dbrouterd in front of a real MariaDB topology, and the clients the tests talk through it
//! with: the `mariadb` CLI, and raw TCP for the bad-input cases.
//!
//! [`Dbrouter::start`] starts a [`DbTopology`] and a dbrouterd whose listeners (each a pool
//! over the topology's servers, named by the test) are on free loopback ports, with its control
//! socket in the test's temporary directory. Everything stops when the value is dropped.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::child::{OutputWithin, QUICK};
use crate::mariadb::DbTopology;
use crate::{shared_tempdir, Daemon, DaemonKind};

/// A free loopback port (bound, then released for the daemon to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A pool and the listener that serves it.
pub struct ListenerSpec {
    pub name: &'static str,
    /// YAML of the pool's body, indented by the caller's choice on one line, e.g.
    /// `{ writers: [db1], readers: [db3, db4] }`.
    pub pool: String,
}

pub struct Dbrouter {
    pub daemon: Daemon,
    pub db: DbTopology,
    pub ports: BTreeMap<&'static str, u16>,
    pub dir: TempDir,
}

impl Dbrouter {
    /// Starts a topology and dbrouterd with these listeners (backends db1 = primary,
    /// db2 = standby, db3/db4 = replicas).
    pub fn start(name: &str, listeners: &[ListenerSpec]) -> Result<Dbrouter> {
        let db = DbTopology::start(name)?;
        let dir = shared_tempdir();
        let socket = dir.path().join("dbrouterd.sock");
        let mut ports = BTreeMap::new();
        let mut yaml = format!(
            "workers: 2\ncontrol:\n  socket: {}\nlog:\n  level: debug\nlisteners:\n",
            socket.display()
        );
        for l in listeners {
            let port = free_port();
            ports.insert(l.name, port);
            yaml += &format!(
                "  - {{ name: {}, listen: 127.0.0.1:{port}, pool: {} }}\n",
                l.name, l.name
            );
        }
        yaml += "users:\n  - { name: app, password: apppw }\n  - { name: report, password_hash: \"*791C51FBA9525165285F44C57F2B3F5E11DDE6AC\" }\n";
        yaml += "backends:\n";
        for (i, s) in db.servers().iter().enumerate() {
            let role = match i {
                0 => "writer",
                1 => "standby",
                _ => "replica",
            };
            yaml += &format!(
                "  - {{ name: db{}, address: {}, role: {role} }}\n",
                i + 1,
                s.addr
            );
        }
        yaml += "monitor: { user: monitor, password: monitorpw }\npools:\n";
        for l in listeners {
            yaml += &format!("  {}: {}\n", l.name, l.pool);
        }
        let daemon = Daemon::start(DaemonKind::Dbrouterd, dir.path(), &socket, &yaml);
        Ok(Dbrouter {
            daemon,
            db,
            ports,
            dir,
        })
    }

    pub fn port(&self, listener: &str) -> u16 {
        self.ports[listener]
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(listener)))
    }

    /// Runs `sql` with the `mariadb` CLI through `listener`; rows tab-separated, no headers.
    pub fn cli(&self, listener: &str, user: &str, password: &str, sql: &str) -> Result<String> {
        mariadb_cli(self.port(listener), user, password, sql)
    }

    /// One control command, answered as JSON.
    pub fn control(&self, request: serde_json::Value) -> serde_json::Value {
        let answer = self.daemon.request(&request.to_string());
        serde_json::from_str(&answer).expect("control answer is JSON")
    }
}

/// The `mariadb` CLI against `127.0.0.1:port`, `sql` on stdin.
pub fn mariadb_cli(port: u16, user: &str, password: &str, sql: &str) -> Result<String> {
    mariadb_cli_with(port, user, password, &[], sql)
}

/// The `mariadb` CLI against `127.0.0.1:port` with extra `options` (e.g. `--ssl`), `sql` on
/// stdin; rows tab-separated, no headers, route hints (comments) kept.
pub fn mariadb_cli_with(
    port: u16,
    user: &str,
    password: &str,
    options: &[&str],
    sql: &str,
) -> Result<String> {
    let out = Command::new("mariadb")
        .arg("--no-defaults")
        .args([
            "--protocol=TCP",
            "--host=127.0.0.1",
            "--batch",
            "--skip-column-names",
            "--comments",
            "--connect-timeout=10",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--user={user}"))
        .args(options)
        .env("MYSQL_PWD", password)
        .output_within_fed(sql.as_bytes(), QUICK)
        .context("run mariadb")?;
    if !out.status.success() {
        bail!(
            "mariadb failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// A raw TCP connection speaking just enough of the protocol to misbehave on purpose.
pub struct RawClient {
    pub stream: TcpStream,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> Result<RawClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(RawClient { stream })
    }

    /// Reads one packet: (sequence id, payload). `None` when the server closed.
    pub fn read_packet(&mut self) -> Result<Option<(u8, Vec<u8>)>> {
        let mut header = [0u8; 4];
        match self.stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        let mut payload = vec![0; len];
        self.stream.read_exact(&mut payload)?;
        Ok(Some((header[3], payload)))
    }

    pub fn write_packet(&mut self, seq: u8, payload: &[u8]) -> Result<()> {
        let len = payload.len();
        let mut bytes = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
        bytes.extend_from_slice(payload);
        self.stream.write_all(&bytes)?;
        Ok(())
    }

    /// Whether the server closed the connection (read returns EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }
}

/// The error code of an ERR payload.
pub fn err_code(payload: &[u8]) -> Option<u16> {
    (payload.first() == Some(&0xFF) && payload.len() >= 3)
        .then(|| u16::from_le_bytes([payload[1], payload[2]]))
}
