//! `hactl reload dbrouterd` on one real topology (primary db1, standby db2, replicas db3 and
//! db4), each read checked by the `@@server_id` of the server that answers:
//! - a reload that narrows the app pool's readers from [db3, db4] to [db4] and changes its
//!   balance: new sessions read only from db4 and status shows the new balance, while a session
//!   opened before the reload keeps working through it;
//! - the same reload adds a listener (it accepts) and removes one (new connections are refused
//!   while a session opened on it before finishes its statements), and adds a user (it logs in);
//! - a reload that changes db3's address (and would also add a listener and drop that user) is
//!   refused whole: `hactl reload` says which backend changed and that a restart is needed,
//!   `ha_reloads_total{result="failed"}` counts it, and nothing of that file is in force;
//! - the same reload's monitor interval is taken up by the running monitor, which goes on
//!   checking;
//! - a later valid reload removes the user: it is refused at login.

mod dbrouterd_failover_support;

use std::sync::Arc;
use std::time::Duration;

use dbrouterd_failover_support::{readers_seen, wait_blocking, Router};
use integration_tests::daemon::run;
use integration_tests::mariadb::DbTopology;
use integration_tests::mysql_client::free_port;
use integration_tests::{shared_tempdir, Daemon, DaemonKind};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use serde_json::{json, Value};

const SCENARIO_LIMIT: Duration = Duration::from_secs(150);

/// What a test file says: listeners (name, port, pool), users, pools (name, YAML body), the
/// monitor and failover sections, and db3's address if it is to differ from the real one.
#[derive(Clone)]
struct File {
    listeners: Vec<(&'static str, u16, &'static str)>,
    users: Vec<(&'static str, &'static str)>,
    pools: Vec<(&'static str, &'static str)>,
    monitor: String,
    db3_address: Option<String>,
}

impl File {
    fn yaml(&self, db: &DbTopology, socket: &std::path::Path, metrics_port: u16) -> String {
        let mut y = format!(
            "workers: 2\ncontrol:\n  socket: {}\nmetrics: {{ listen: 127.0.0.1:{metrics_port} }}\nlog:\n  level: info\nlisteners:\n",
            socket.display()
        );
        for (name, port, pool) in &self.listeners {
            y += &format!("  - {{ name: {name}, listen: 127.0.0.1:{port}, pool: {pool} }}\n");
        }
        y += "users:\n";
        for (name, password) in &self.users {
            y += &format!("  - {{ name: {name}, password: {password} }}\n");
        }
        y += "backends:\n";
        for (i, s) in db.servers().iter().enumerate() {
            let role = ["writer", "standby", "replica", "replica"][i];
            let address = match (&self.db3_address, i) {
                (Some(a), 2) => a.clone(),
                _ => s.addr.to_string(),
            };
            y += &format!(
                "  - {{ name: db{}, address: {address}, role: {role} }}\n",
                i + 1
            );
        }
        y += &self.monitor;
        y += "pools:\n";
        for (name, body) in &self.pools {
            y += &format!("  {name}: {body}\n");
        }
        y
    }
}

/// Starts dbrouterd on `file`; the ports map has every listener of the file.
fn start(db: &DbTopology, file: &File) -> Router {
    let dir = shared_tempdir();
    let socket = dir.path().join("dbrouterd.sock");
    let metrics_port = free_port();
    let yaml = file.yaml(db, &socket, metrics_port);
    let daemon = Daemon::start(DaemonKind::Dbrouterd, dir.path(), &socket, &yaml);
    Router {
        daemon,
        ports: file
            .listeners
            .iter()
            .map(|(n, p, _)| (n.to_string(), *p))
            .collect(),
        metrics_port,
        dir,
    }
}

/// Writes `file` over the router's config and runs `hactl reload dbrouterd`: its exit
/// status and what it printed (stdout and stderr).
fn hactl_reload(router: &Router, db: &DbTopology, file: &File) -> (bool, String) {
    let socket = router.dir.path().join("dbrouterd.sock");
    let yaml = file.yaml(db, &socket, router.metrics_port);
    std::fs::write(&router.daemon.config, yaml).expect("write the new file");
    let dir = router.dir.path().to_str().expect("utf-8 temp dir");
    let out = run("hactl", &["--socket-dir", dir, "reload", "dbrouterd"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn opts(port: u16, user: &str, password: &str) -> Opts {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some("appdb"))
        .prefer_socket(false)
        .into()
}

/// Whether `user` can log in on `port` and read.
async fn logs_in(port: u16, user: &str, password: &str) -> bool {
    match Conn::new(opts(port, user, password)).await {
        Ok(mut c) => {
            let ok = c.query_first::<u32, _>("SELECT 1").await.is_ok();
            c.disconnect().await.ok();
            ok
        }
        Err(_) => false,
    }
}

/// Whether a TCP connection to `port` is refused.
fn refuses(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

/// A few statements on a session that was open before a reload: a read and a write.
async fn still_works(c: &mut Conn, what: &str) {
    let id: Option<u32> = c
        .query_first("SELECT @@server_id")
        .await
        .unwrap_or_else(|e| panic!("{what}: read: {e}"));
    assert!(id.is_some(), "{what}: a read answered");
    c.query_drop("INSERT INTO reload_marks (note) VALUES ('still here')")
        .await
        .unwrap_or_else(|e| panic!("{what}: write: {e}"));
}

fn status(router: &Router) -> Value {
    router.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_pools_listeners_and_users_or_refuses_a_backend_change_whole() {
    dbrouterd_failover_support::within(SCENARIO_LIMIT, scenario()).await;
}

async fn scenario() {
    let db = dbrouterd_failover_support::start_topology("dbr-reload").await;
    let (app_port, old_port, new_port, ghost_port) =
        (free_port(), free_port(), free_port(), free_port());
    let first = File {
        listeners: vec![("app", app_port, "app"), ("old", old_port, "app")],
        users: vec![("app", "apppw")],
        pools: vec![(
            "app",
            "{ writers: [db1, db2], readers: [db3, db4], balance: round_robin }",
        )],
        monitor: dbrouterd_failover_support::MONITOR.to_string(),
        db3_address: None,
    };
    let (d, f) = (db.clone(), first.clone());
    let router = Arc::new(
        tokio::task::spawn_blocking(move || start(&d, &f))
            .await
            .expect("start dbrouterd"),
    );
    let app = opts(app_port, "app", "apppw");
    let mut before = Conn::new(app.clone())
        .await
        .expect("connect before the reload");
    before
        .query_drop("CREATE TABLE IF NOT EXISTS reload_marks (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40))")
        .await
        .expect("create table");
    let mut on_old = Conn::new(opts(old_port, "app", "apppw"))
        .await
        .expect("connect to the listener the reload removes");
    still_works(&mut on_old, "session on the old listener").await;
    assert!(
        !logs_in(app_port, "report", "reportpw").await,
        "report is not a user yet"
    );
    let both = wait_both_readers(&app).await;
    assert_eq!(both, vec![3, 4]);

    // Readers narrowed to db4, balance changed, a listener added and one removed, a user added.
    let second = File {
        listeners: vec![("app", app_port, "app"), ("new", new_port, "app")],
        users: vec![("app", "apppw"), ("report", "reportpw")],
        pools: vec![(
            "app",
            "{ writers: [db1, db2], readers: [db4], balance: least_conn }",
        )],
        monitor: dbrouterd_failover_support::MONITOR.replace("interval: 200ms", "interval: 300ms"),
        db3_address: None,
    };
    let (ok, said) = reload(&router, &db, &second).await;
    assert!(ok, "the reload is applied: {said}");
    still_works(&mut before, "session open before the reload").await;
    assert_eq!(
        readers_seen(&app, 12).await,
        vec![4],
        "new sessions read only from db4"
    );
    let s = status(&router);
    assert_eq!(s["pools"]["app"]["balance"], "least_conn", "{s}");
    assert_eq!(s["pools"]["app"]["readers"], json!(["db4"]), "{s}");
    assert_eq!(s["config_generation"], 1, "{s}");
    assert_eq!(
        readers_seen(&opts(new_port, "app", "apppw"), 3).await,
        vec![4],
        "the added listener accepts and serves the pool"
    );
    wait_blocking(
        "the removed listener to refuse connections",
        Duration::from_secs(10),
        move || refuses(old_port).then_some(()),
    )
    .await;
    still_works(&mut on_old, "session on the removed listener").await;
    on_old
        .disconnect()
        .await
        .expect("the old session ends cleanly");
    assert!(
        logs_in(app_port, "report", "reportpw").await,
        "the added user logs in"
    );
    monitor_follows_the_reload(&router).await;

    // db3's address changed (with a listener added and a user dropped): refused whole.
    let moved = File {
        listeners: vec![
            ("app", app_port, "app"),
            ("new", new_port, "app"),
            ("ghost", ghost_port, "app"),
        ],
        users: vec![("app", "apppw")],
        pools: vec![("app", "{ writers: [db1, db2], readers: [db3, db4] }")],
        monitor: second.monitor.clone(),
        db3_address: Some("127.0.0.1:1".into()),
    };
    let (ok, said) = reload(&router, &db, &moved).await;
    assert!(!ok, "a changed backend address is refused: {said}");
    assert!(
        said.contains("backend db3 address changed") && said.contains("restart"),
        "hactl says what changed and that a restart is needed: {said}"
    );
    assert!(
        refuses(ghost_port),
        "nothing of the refused file is applied: no new listener"
    );
    assert!(
        logs_in(app_port, "report", "reportpw").await,
        "the users stay as they were"
    );
    assert_eq!(
        readers_seen(&app, 8).await,
        vec![4],
        "the pools stay as they were"
    );
    let s = router.control(json!({"cmd": "status"}));
    assert_eq!(s["data"]["reloads"]["failed"], 1, "{s}");
    assert!(
        s["data"]["reloads"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("db3")),
        "{s}"
    );
    assert_eq!(s["data"]["service"]["config_generation"], 1, "{s}");
    let r = router.clone();
    let metrics = tokio::task::spawn_blocking(move || r.metrics())
        .await
        .expect("task");
    assert!(
        metrics.contains("ha_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );

    // The user dropped by a valid file is refused.
    let third = File {
        users: vec![("app", "apppw")],
        ..second
    };
    let (ok, said) = reload(&router, &db, &third).await;
    assert!(ok, "{said}");
    assert!(
        !logs_in(app_port, "report", "reportpw").await,
        "the removed user is refused"
    );
    still_works(&mut before, "session open across two reloads").await;
    before.disconnect().await.ok();
}

/// `hactl reload` from async code.
async fn reload(router: &Arc<Router>, db: &Arc<DbTopology>, file: &File) -> (bool, String) {
    let (r, d, f) = (router.clone(), db.clone(), file.clone());
    tokio::task::spawn_blocking(move || hactl_reload(&r, &d, &f))
        .await
        .expect("task")
}

/// Waits until both replicas serve reads (the monitor has seen them rise), then answers the
/// server ids seen.
async fn wait_both_readers(app: &Opts) -> Vec<u32> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen = readers_seen(app, 8).await;
        if seen == vec![3, 4] || std::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The monitor logs the reloaded interval before its next round, and its checks go on.
async fn monitor_follows_the_reload(router: &Arc<Router>) {
    let r = router.clone();
    wait_blocking(
        "the monitor to take up the reloaded interval",
        Duration::from_secs(10),
        move || {
            r.daemon
                .log_text()
                .lines()
                .any(|l| l.contains("monitor settings reloaded") && l.contains("300ms"))
                .then_some(())
        },
    )
    .await;
    let r = router.clone();
    let first = checks_total(&r);
    wait_blocking(
        "the monitor to go on checking",
        Duration::from_secs(10),
        move || (checks_total(&r) > first).then_some(()),
    )
    .await;
}

/// `dbrouterd_monitor_checks_total`, all results together.
fn checks_total(router: &Router) -> f64 {
    router
        .metrics()
        .lines()
        .filter(|l| l.starts_with("dbrouterd_monitor_checks_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
