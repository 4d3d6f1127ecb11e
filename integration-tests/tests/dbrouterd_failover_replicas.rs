//! Replica failures through dbrouterd's monitor, on one real topology (primary db1, standby
//! db2, replicas db3 and db4), each checked by the `@@server_id` of the server that answers:
//! - replication stopped on a replica: it leaves the read rotation, and returns when restarted;
//! - lag injected (the SQL thread paused while writes continue, then a 5 s MASTER_DELAY over a
//!   2 s limit): the same, with the lag measured by the heartbeat in milliseconds;
//! - the report pool (only db4, writes refused) never reaches the primary, even when db4 is out;
//! - a replica killed during sysbench oltp_read_only through dbrouterd: zero errors.

mod dbrouterd_failover_support;

/// The whole scenario, so that a hang fails the test instead of stalling the suite.
const SCENARIO_LIMIT: std::time::Duration = std::time::Duration::from_secs(150);

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbrouterd_failover_support::{readers_seen, server_id_of, wait_blocking, Router};
use integration_tests::mariadb::DbTopology;
use mysql_async::prelude::*;
use mysql_async::Conn;

const DB3: u32 = 3;
const DB4: u32 = 4;

/// Runs SQL as root on replica `i` (0: db3, 1: db4).
async fn on_replica(db: &Arc<DbTopology>, i: usize, sql: &'static str) {
    let db = db.clone();
    tokio::task::spawn_blocking(move || db.root_sql(&db.replicas()[i], sql).map(drop))
        .await
        .expect("task")
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Waits until `name` is in (or out of) the read rotation, per status.
async fn wait_rotation(router: &Arc<Router>, name: &'static str, wanted: bool, why: &str) {
    let r = router.clone();
    wait_blocking(why, Duration::from_secs(30), move || {
        (r.in_rotation(name) == wanted).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_that_break_lag_or_die_leave_the_rotation_without_client_errors() {
    dbrouterd_failover_support::within(SCENARIO_LIMIT, scenario()).await;
}

async fn scenario() {
    let db = dbrouterd_failover_support::start_topology("dbr-failover-replicas").await;
    let d = db.clone();
    let router = Arc::new(
        tokio::task::spawn_blocking(move || {
            Router::start(
                &d,
                &[
                    (
                        "app",
                        "{ writers: [db1, db2], readers: [db3, db4], balance: round_robin }",
                    ),
                    ("reports", "{ readers: [db4], writes: refuse }"),
                ],
            )
        })
        .await
        .expect("start dbrouterd"),
    );
    let app = router.app("app");
    let reports = router.opts("reports", "report", "reportpw", Some("appdb"));

    // A write load through dbrouterd for the whole test, so that replicas have something to
    // fall behind on.
    let mut w = Conn::new(app.clone()).await.expect("connect");
    w.query_drop("CREATE TABLE IF NOT EXISTS ticks (id INT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) DEFAULT NOW(6))")
        .await
        .expect("create table");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                w.query_drop("INSERT INTO ticks () VALUES ()")
                    .await
                    .expect("write through dbrouterd");
                written.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Both replicas read; the report pool reads only from db4.
    assert_eq!(readers_seen(&app, 6).await, vec![DB3, DB4]);
    assert_eq!(readers_seen(&reports, 4).await, vec![DB4]);

    // 1. Replication stopped on db3: it leaves, reads go to db4 only; back when restarted.
    on_replica(&db, 0, "STOP SLAVE").await;
    wait_rotation(&router, "db3", false, "db3 out after STOP SLAVE").await;
    assert_eq!(router.backend("db3")["state"], "broken");
    assert_eq!(readers_seen(&app, 6).await, vec![DB4]);
    on_replica(&db, 0, "START SLAVE").await;
    wait_rotation(&router, "db3", true, "db3 back after START SLAVE").await;
    assert_eq!(readers_seen(&app, 6).await, vec![DB3, DB4]);

    // 2. Lag: the SQL thread paused while writes continue, then a replication delay of 5 s
    // (threads running, lag seen by the heartbeat well over the 2 s limit).
    on_replica(&db, 0, "STOP SLAVE SQL_THREAD").await;
    wait_rotation(&router, "db3", false, "db3 out with its SQL thread paused").await;
    assert_eq!(readers_seen(&app, 6).await, vec![DB4]);
    on_replica(&db, 0, "START SLAVE SQL_THREAD").await;
    wait_rotation(&router, "db3", true, "db3 back once it caught up").await;
    on_replica(
        &db,
        0,
        "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 5; START SLAVE",
    )
    .await;
    let r = router.clone();
    let lag = wait_blocking("db3 lagging", Duration::from_secs(30), move || {
        let b = r.backend("db3");
        (b["state"] == "lagging").then(|| b["lag_ms"].as_u64().unwrap_or(0))
    })
    .await;
    assert!(
        (2000..15_000).contains(&lag),
        "lag measured by the heartbeat: {lag} ms"
    );
    assert!(!router.in_rotation("db3"));
    assert_eq!(readers_seen(&app, 6).await, vec![DB4]);
    on_replica(
        &db,
        0,
        "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE",
    )
    .await;
    wait_rotation(&router, "db3", true, "db3 back without delay").await;
    let in_step = router.backend("db3")["lag_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(in_step <= 2000, "lag back within the limit: {in_step} ms");
    assert_eq!(readers_seen(&app, 6).await, vec![DB3, DB4]);

    // 3. The report pool never reaches the primary: with db4 out of rotation its reads fail
    // rather than fall back to a writer; the business pool reads from db3.
    on_replica(&db, 1, "STOP SLAVE").await;
    wait_rotation(&router, "db4", false, "db4 out after STOP SLAVE").await;
    for _ in 0..5 {
        match server_id_of(&reports, "SELECT @@server_id").await {
            Ok(id) => panic!("report read answered by server {id} with db4 out"),
            Err(e) => assert!(e.to_string().contains("no healthy"), "{e}"),
        }
    }
    assert_eq!(readers_seen(&app, 6).await, vec![DB3]);
    on_replica(&db, 1, "START SLAVE").await;
    wait_rotation(&router, "db4", true, "db4 back").await;
    assert_eq!(readers_seen(&reports, 4).await, vec![DB4]);
    let mut rc = Conn::new(reports.clone()).await.expect("report login");
    let refused = rc.query_drop("INSERT INTO ticks () VALUES ()").await;
    assert!(refused.is_err(), "the report pool takes no writes");
    drop(rc);
    assert_eq!(
        router.backend("db1")["queries"]["read"],
        0,
        "no read ever reached the primary"
    );

    // 4. db3 killed during sysbench oltp_read_only (autocommit reads, prepared statements):
    // zero errors.
    let port = db.primary().addr.port();
    tokio::task::spawn_blocking(move || sysbench(port, "prepare", &[]))
        .await
        .expect("task");
    let d = db.clone();
    tokio::task::spawn_blocking(move || d.wait_replicated(Duration::from_secs(60)))
        .await
        .expect("task")
        .expect("sbtest replicated");
    let app_port = router.port("app");
    let bench = tokio::task::spawn_blocking(move || {
        sysbench(
            app_port,
            "run",
            &["--time=12", "--threads=4", "--skip_trx=on"],
        )
    });
    let r = router.clone();
    wait_blocking(
        "sysbench reading from db3",
        Duration::from_secs(30),
        move || (r.backend("db3")["queries"]["read"].as_u64().unwrap_or(0) > 200).then_some(()),
    )
    .await;
    let d = db.clone();
    tokio::task::spawn_blocking(move || d.kill(&d.replicas()[0]))
        .await
        .expect("task")
        .expect("kill db3");
    let out = bench.await.expect("sysbench task");
    assert_eq!(ignored_errors(&out), Some(0), "sysbench saw errors:\n{out}");
    assert!(!router.in_rotation("db3"));
    assert_eq!(router.backend("db3")["state"], "down");

    stop.store(true, Ordering::Relaxed);
    writer.await.expect("the write load never failed");
    assert!(written.load(Ordering::Relaxed) > 0);
    let metrics = tokio::task::spawn_blocking({
        let r = router.clone();
        move || r.metrics()
    })
    .await
    .expect("task");
    assert!(
        metrics.contains("dbrouterd_backend_readable{backend=\"db3\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("dbrouterd_backend_replication_lag_seconds"));
}

/// sysbench oltp_read_only on `sbtest` at 127.0.0.1:`port` as app; panics on failure.
fn sysbench(port: u16, command: &str, extra: &[&str]) -> String {
    let out = Command::new("sysbench")
        .arg("oltp_read_only")
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            "--mysql-user=app",
            "--mysql-password=apppw",
            "--mysql-db=sbtest",
            "--tables=2",
            "--table-size=2000",
        ])
        .arg(format!("--mysql-port={port}"))
        .args(extra)
        .arg(command)
        .output()
        .expect("run sysbench");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sysbench {command} failed:\n{text}");
    text
}

/// The `ignored errors:` count of a sysbench report.
fn ignored_errors(report: &str) -> Option<u64> {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix("ignored errors:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
