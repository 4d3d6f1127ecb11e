//! Shared scenario helpers of the dbrouterd failover tests: a dbrouterd with the monitor and
//! automatic failover switched on, started in front of a topology the test owns (so that two
//! dbrouterd can share one), the `status` of its backends, and async polling with a deadline.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use integration_tests::mariadb::DbTopology;
use integration_tests::mysql_client::free_port;
use integration_tests::{shared_tempdir, Daemon, DaemonKind};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};
use serde_json::Value;
use tempfile::TempDir;

/// The monitor settings of these tests: fast checks, lag limit 2 s, failover after 3 checks.
pub const MONITOR: &str = "monitor: { user: monitor, password: monitorpw, interval: 200ms, timeout: 1s, rise: 2, fall: 2, max_replication_lag: 2s }\n\
failover: { auto: true, confirm_checks: 3, hold_writes: 20s, switchover_timeout: 10s, replication_user: repl, replication_password: replpw }\n";

/// A running dbrouterd over a topology owned by the test.
pub struct Router {
    pub daemon: Daemon,
    pub ports: BTreeMap<String, u16>,
    pub metrics_port: u16,
    pub dir: TempDir,
}

impl Router {
    /// `listeners`: (name, pool body in YAML flow style); the pool has the listener's name.
    pub fn start(db: &DbTopology, listeners: &[(&str, &str)]) -> Router {
        Self::start_with_monitor(db, listeners, MONITOR)
    }

    /// As [`Router::start`], with `monitor` (the `monitor` and `failover` sections) instead of
    /// [`MONITOR`].
    pub fn start_with_monitor(
        db: &DbTopology,
        listeners: &[(&str, &str)],
        monitor: &str,
    ) -> Router {
        let dir = shared_tempdir();
        let socket = dir.path().join("dbrouterd.sock");
        let metrics_port = free_port();
        let mut ports = BTreeMap::new();
        let mut yaml = format!(
            "workers: 2\ncontrol:\n  socket: {}\nmetrics: {{ listen: 127.0.0.1:{metrics_port} }}\nlog:\n  level: info\nlisteners:\n",
            socket.display()
        );
        for (name, _) in listeners {
            let port = free_port();
            ports.insert(name.to_string(), port);
            yaml += &format!("  - {{ name: {name}, listen: 127.0.0.1:{port}, pool: {name} }}\n");
        }
        yaml += "users:\n  - { name: app, password: apppw }\n  - { name: report, password: reportpw }\nbackends:\n";
        for (i, s) in db.servers().iter().enumerate() {
            let role = ["writer", "standby", "replica", "replica"][i];
            yaml += &format!(
                "  - {{ name: db{}, address: {}, role: {role} }}\n",
                i + 1,
                s.addr
            );
        }
        yaml += monitor;
        yaml += "pools:\n";
        for (name, pool) in listeners {
            yaml += &format!("  {name}: {pool}\n");
        }
        let daemon = Daemon::start(DaemonKind::Dbrouterd, dir.path(), &socket, &yaml);
        Router {
            daemon,
            ports,
            metrics_port,
            dir,
        }
    }

    pub fn port(&self, listener: &str) -> u16 {
        self.ports[listener]
    }

    pub fn opts(&self, listener: &str, user: &str, password: &str, db: Option<&str>) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port(listener))
            .user(Some(user))
            .pass(Some(password))
            .db_name(db)
            .prefer_socket(false)
            .into()
    }

    /// The app user through `listener`, on `appdb`.
    pub fn app(&self, listener: &str) -> Opts {
        self.opts(listener, "app", "apppw", Some("appdb"))
    }

    /// One control command; the answer's JSON.
    pub fn control(&self, request: Value) -> Value {
        let answer = self.daemon.request(&request.to_string());
        serde_json::from_str(&answer).expect("control answer is JSON")
    }

    pub fn status(&self) -> Value {
        let s = self.control(serde_json::json!({"cmd": "status"}));
        assert_eq!(s["ok"], true, "status: {s}");
        s["data"]["service"].clone()
    }

    /// Backend `name`'s entry in `status`.
    pub fn backend(&self, name: &str) -> Value {
        self.status()["backends"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no backend {name} in status"))
    }

    pub fn in_rotation(&self, name: &str) -> bool {
        self.backend(name)["in_read_rotation"] == true
    }

    /// The writer taking writes now, per `status`.
    pub fn writer(&self) -> Option<String> {
        self.status()["topology"]["writer"]
            .as_str()
            .map(str::to_string)
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port))
            .expect("connect to metrics");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }
}

/// Creates `appdb.kept (id INT PRIMARY KEY)` through `router`'s `app` listener: the rows a
/// failover scenario writes and then looks for on each server.
pub async fn create_kept(router: &Router) {
    let mut c = Conn::new(router.app("app")).await.expect("connect");
    c.query_drop("CREATE TABLE kept (id INT NOT NULL PRIMARY KEY)")
        .await
        .expect("create table kept");
    c.disconnect().await.ok();
}

/// Inserts row `id` into `kept` through `router`'s `app` listener; panics unless acknowledged.
pub async fn write_kept(router: &Router, id: u32) {
    let mut c = Conn::new(router.app("app")).await.expect("connect");
    c.query_drop(format!("INSERT INTO kept VALUES ({id})"))
        .await
        .unwrap_or_else(|e| panic!("row {id}: {e}"));
    c.disconnect().await.ok();
}

/// Polls `check` every 50 ms until it gives `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Blocking `check` polled from async code (status over the control socket, the CLI).
pub async fn wait_blocking<T: Send + 'static>(
    what: &str,
    timeout: Duration,
    check: impl FnMut() -> Option<T> + Send + 'static,
) -> T {
    let what = what.to_string();
    tokio::task::spawn_blocking(move || integration_tests::wait_until(&what, timeout, check))
        .await
        .expect("poll task")
}

/// Waits until status shows `writer`'s commits waiting for a semi-synchronous replica.
pub async fn wait_semi_sync_on(router: &std::sync::Arc<Router>, writer: &'static str) {
    let r = router.clone();
    wait_blocking(
        &format!("semi-sync active on {writer}"),
        Duration::from_secs(30),
        move || {
            let s = r.backend(writer)["semi_sync"].clone();
            (s["active"] == true && s["clients"].as_u64().unwrap_or(0) >= 1).then_some(())
        },
    )
    .await;
}

/// `@@server_id` of the server answering `sql` on a fresh connection.
pub async fn server_id_of(opts: &Opts, sql: &str) -> Result<u32, mysql_async::Error> {
    let mut c = Conn::new(opts.clone()).await?;
    let id = c.query_first::<u32, _>(sql).await?.unwrap_or(0);
    c.disconnect().await.ok();
    Ok(id)
}

/// The server ids answering `n` reads, each on a fresh connection.
pub async fn readers_seen(opts: &Opts, n: usize) -> Vec<u32> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(
            server_id_of(opts, "SELECT @@server_id")
                .await
                .expect("read through dbrouterd"),
        );
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Runs a test scenario, failing it (rather than hanging the suite) past `limit`.
pub async fn within(limit: Duration, scenario: impl Future<Output = ()>) {
    if tokio::time::timeout(limit, scenario).await.is_err() {
        panic!("the scenario did not finish within {limit:?}");
    }
}

/// Starts a topology for the test `name`, once more if the first start fails (a server that
/// exits during start-up on a loaded machine, a port taken meanwhile): the scenario is about
/// dbrouterd, not about starting MariaDB.
pub async fn start_topology(name: &'static str) -> std::sync::Arc<DbTopology> {
    let db = tokio::task::spawn_blocking(move || {
        DbTopology::start(name).or_else(|first| {
            eprintln!("{name}: starting the topology failed, once more: {first:#}");
            DbTopology::start(name)
        })
    })
    .await
    .expect("task")
    .expect("topology");
    std::sync::Arc::new(db)
}
