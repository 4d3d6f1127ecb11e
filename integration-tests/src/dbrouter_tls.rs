//! dbrouterd with TLS listeners, for the TLS and caching_sha2_password tests: a self-signed
//! certificate made by `openssl` for the test, a dbrouterd configured over any backends (the
//! MariaDB topology's servers or purpose-built ones) whose listeners may have a `tls` section,
//! and the `mariadb` CLI with the TLS or authentication options a test chooses.

use crate::child::{OutputWithin, QUICK};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::mysql_client::free_port;
use crate::{shared_tempdir, Daemon, DaemonKind};

/// A certificate for `localhost` and 127.0.0.1, self-signed, valid for a day.
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certificate {
    pub fn self_signed(dir: &Path) -> Result<Certificate> {
        let cert = dir.join("dbrouterd.crt");
        let key = dir.join("dbrouterd.key");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output_within(QUICK)
            .context("run openssl req")?;
        if !out.status.success() {
            bail!("openssl req: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Certificate { cert, key })
    }
}

/// A backend as dbrouterd's config names it.
pub struct BackendSpec {
    pub name: String,
    pub address: SocketAddr,
    /// `writer`, `standby` or `replica`.
    pub role: &'static str,
    /// The name its certificate must carry (`backend_tls`), when not its address.
    pub tls_name: Option<String>,
}

impl BackendSpec {
    /// The topology's servers as dbrouterd's backends db1 (writer), db2 (standby), db3 and db4
    /// (replicas).
    pub fn topology(db: &crate::mariadb::DbTopology) -> Vec<BackendSpec> {
        db.servers()
            .iter()
            .enumerate()
            .map(|(i, s)| BackendSpec {
                name: format!("db{}", i + 1),
                address: s.addr,
                role: match i {
                    0 => "writer",
                    1 => "standby",
                    _ => "replica",
                },
                tls_name: None,
            })
            .collect()
    }
}

/// A listener and the pool it serves.
pub struct TlsListenerSpec {
    pub name: &'static str,
    /// The pool's body in YAML flow style, e.g. `{ writers: [db1], readers: [db3] }`.
    pub pool: String,
    /// `None`: no TLS; `Some(false)`: TLS offered; `Some(true)`: TLS required.
    pub tls: Option<bool>,
}

/// A running dbrouterd; stopped when dropped.
pub struct TlsDbrouter {
    pub daemon: Daemon,
    pub certificate: Certificate,
    pub ports: Vec<(&'static str, u16)>,
    pub dir: TempDir,
}

impl TlsDbrouter {
    /// Starts dbrouterd over `backends` with `listeners` on free loopback ports; `users` is the
    /// YAML list of users (flow style, one per line).
    pub fn start(
        backends: &[BackendSpec],
        listeners: &[TlsListenerSpec],
        users: &[&str],
        monitor: &str,
    ) -> Result<TlsDbrouter> {
        Self::start_with(backends, listeners, users, monitor, "")
    }

    /// As [`TlsDbrouter::start`], with `extra` appended to the file (top-level sections such as
    /// `backend_tls`).
    pub fn start_with(
        backends: &[BackendSpec],
        listeners: &[TlsListenerSpec],
        users: &[&str],
        monitor: &str,
        extra: &str,
    ) -> Result<TlsDbrouter> {
        let dir = shared_tempdir();
        let certificate = Certificate::self_signed(dir.path())?;
        let socket = dir.path().join("dbrouterd.sock");
        let mut yaml = format!(
            "workers: 2\ncontrol:\n  socket: {}\nlog:\n  level: debug\nlisteners:\n",
            socket.display()
        );
        let mut ports = Vec::new();
        for l in listeners {
            let port = free_port();
            ports.push((l.name, port));
            let tls = match l.tls {
                None => String::new(),
                Some(require) => format!(
                    ", tls: {{ cert: {}, key: {}, require: {require} }}",
                    certificate.cert.display(),
                    certificate.key.display()
                ),
            };
            yaml += &format!(
                "  - {{ name: {0}, listen: 127.0.0.1:{port}, pool: {0}{tls} }}\n",
                l.name
            );
        }
        yaml += "users:\n";
        for u in users {
            yaml += &format!("  - {u}\n");
        }
        yaml += "backends:\n";
        for b in backends {
            let tls_name = b
                .tls_name
                .as_ref()
                .map(|n| format!(", tls_name: {n}"))
                .unwrap_or_default();
            yaml += &format!(
                "  - {{ name: {}, address: {}, role: {}{tls_name} }}\n",
                b.name, b.address, b.role
            );
        }
        yaml += &format!("monitor: {monitor}\npools:\n");
        for l in listeners {
            yaml += &format!("  {}: {}\n", l.name, l.pool);
        }
        yaml += extra;
        let daemon = Daemon::start(DaemonKind::Dbrouterd, dir.path(), &socket, &yaml);
        Ok(TlsDbrouter {
            daemon,
            certificate,
            ports,
            dir,
        })
    }

    pub fn port(&self, listener: &str) -> u16 {
        self.ports
            .iter()
            .find(|(name, _)| *name == listener)
            .map(|(_, port)| *port)
            .unwrap_or_else(|| panic!("no listener {listener}"))
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(listener)))
    }

    /// The `mariadb` CLI through `listener` with `options` (e.g. `--ssl`), `sql` on stdin;
    /// rows tab-separated, no headers.
    pub fn mariadb(
        &self,
        listener: &str,
        user: &str,
        password: &str,
        options: &[&str],
        sql: &str,
    ) -> Result<String> {
        crate::mysql_client::mariadb_cli_with(self.port(listener), user, password, options, sql)
    }

    /// `--ssl` with the test's certificate as the CA, the server's certificate verified.
    pub fn verified_tls(&self) -> Vec<String> {
        vec![
            "--ssl".to_string(),
            format!("--ssl-ca={}", self.certificate.cert.display()),
            "--ssl-verify-server-cert".to_string(),
        ]
    }
}
