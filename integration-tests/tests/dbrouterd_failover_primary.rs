//! The primary killed under a write load through two dbrouterd instances (one per application
//! server), each with automatic failover on:
//! - writes resume on the standby, through both instances, with the same epoch (the decision is
//!   taken once: the other instance follows);
//! - every acknowledged write is on the new writer afterwards, and on the repointed replicas,
//!   which all follow it (one that received a transaction the standby never did gave it to
//!   the standby first: `dbrouterd_failover_catch_up`);
//! - no write reached a read-only server (no client ever saw ER_OPTION_PREVENTS_STATEMENT);
//! - the old primary, restarted with read_only=OFF, is fenced (writes keep going to the
//!   standby), and `db.rejoin` makes it a replica of the new writer with every acknowledged
//!   write (started as a replica, `--init-rpl-role=SLAVE`, its crash recovery drops a commit
//!   no replica acknowledged).

mod dbrouterd_failover_support;

/// The whole scenario, so that a hang fails the test instead of stalling the suite.
const SCENARIO_LIMIT: std::time::Duration = std::time::Duration::from_secs(150);

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbrouterd_failover_support::{wait_blocking, wait_for, Router};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

const WORKERS_PER_ROUTER: usize = 2;

#[derive(Default)]
struct Ledger {
    /// (worker, n) of every write the client saw acknowledged, and when.
    acked: Vec<((usize, u64), Instant)>,
    errors: Vec<String>,
}

/// Inserts (worker, n) in a loop until `stop`, reconnecting after an error.
async fn write_load(opts: Opts, worker: usize, ledger: Arc<Mutex<Ledger>>, stop: Arc<AtomicBool>) {
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::new(opts.clone()).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    ledger
                        .lock()
                        .expect("ledger")
                        .errors
                        .push(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let sql = format!("INSERT INTO acks (worker, n) VALUES ({worker}, {n})");
        match c.query_drop(sql).await {
            Ok(()) => ledger
                .lock()
                .expect("ledger")
                .acked
                .push(((worker, n), Instant::now())),
            Err(e) => {
                ledger.lock().expect("ledger").errors.push(e.to_string());
                conn = None;
            }
        }
    }
}

fn acked_count(ledger: &Arc<Mutex<Ledger>>) -> usize {
    ledger.lock().expect("ledger").acked.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_under_writes_loses_no_acknowledged_write() {
    dbrouterd_failover_support::within(SCENARIO_LIMIT, scenario()).await;
}

async fn scenario() {
    let db = dbrouterd_failover_support::start_topology("dbr-failover-primary").await;
    let pool = "{ writers: [db1, db2], readers: [db3, db4] }";
    let routers: Vec<Arc<Router>> = {
        let d = db.clone();
        tokio::task::spawn_blocking(move || {
            vec![
                Arc::new(Router::start(&d, &[("app", pool)])),
                Arc::new(Router::start(&d, &[("app", pool)])),
            ]
        })
        .await
        .expect("start two dbrouterd")
    };
    let mut c = Conn::new(routers[0].app("app")).await.expect("connect");
    c.query_drop(
        "CREATE TABLE acks (worker INT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (worker, n))",
    )
    .await
    .expect("create table");
    drop(c);

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (r, router) in routers.iter().enumerate() {
        for w in 0..WORKERS_PER_ROUTER {
            workers.push(tokio::spawn(write_load(
                router.app("app"),
                r * WORKERS_PER_ROUTER + w,
                ledger.clone(),
                stop.clone(),
            )));
        }
    }
    let l = ledger.clone();
    wait_for("writes before the kill", Duration::from_secs(30), || {
        let n = acked_count(&l);
        async move { (n >= 100).then_some(()) }
    })
    .await;

    let d = db.clone();
    tokio::task::spawn_blocking(move || d.kill(d.primary()))
        .await
        .expect("task")
        .expect("kill the primary");
    let killed = Instant::now();
    let acked_at_kill = acked_count(&ledger);

    for router in &routers {
        let r = router.clone();
        wait_blocking(
            "both dbrouterd to write to db2",
            Duration::from_secs(30),
            move || (r.writer().as_deref() == Some("db2")).then_some(()),
        )
        .await;
    }
    let l = ledger.clone();
    wait_for("writes after the failover", Duration::from_secs(30), || {
        let n = acked_count(&l);
        async move { (n >= acked_at_kill + 100).then_some(()) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }

    let ledger = std::mem::take(&mut *ledger.lock().expect("ledger"));
    let first_after = ledger
        .acked
        .iter()
        .filter(|(_, at)| *at > killed)
        .map(|(_, at)| at.duration_since(killed))
        .min()
        .expect("a write after the kill");
    eprintln!(
        "first acknowledged write {first_after:?} after the primary died; {} acknowledged, client errors: {:?}",
        ledger.acked.len(),
        ledger.errors
    );
    // Only statements in flight when the primary died may fail, one per worker at most.
    assert!(
        ledger.errors.len() <= routers.len() * WORKERS_PER_ROUTER,
        "{:?}",
        ledger.errors
    );
    assert!(
        !ledger
            .errors
            .iter()
            .any(|e| e.contains("1290") || e.contains("read-only")),
        "a write reached a read-only server: {:?}",
        ledger.errors
    );

    // The same epoch and writer in both instances.
    let epochs: Vec<u64> = routers
        .iter()
        .map(|r| r.status()["topology"]["epoch"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        epochs[0] >= 1 && epochs[0] == epochs[1],
        "epochs {epochs:?}"
    );

    // Every acknowledged write is on the new writer, and on the replicas repointed to it. A
    // replica left one transaction ahead of the standby (the old primary sends a commit to
    // every replica at once and waits only for the standby's acknowledgement) gave it to the
    // standby before the promotion, so every replica follows the new writer (no error 1236).
    let d = db.clone();
    let on_servers = tokio::task::spawn_blocking(move || {
        d.wait_replicated_from(d.standby(), Duration::from_secs(60))?;
        let mut rows = Vec::new();
        for s in &d.servers()[1..] {
            rows.push(d.root_sql(s, "SELECT worker, n FROM appdb.acks")?);
        }
        anyhow::Ok(rows)
    })
    .await
    .expect("task")
    .expect("rows on standby and replicas");
    let acked: BTreeSet<(usize, u64)> = ledger.acked.iter().map(|(k, _)| *k).collect();
    for (server, text) in ["db2", "db3", "db4"].iter().zip(&on_servers) {
        assert_has_every_ack(server, &acked, text);
    }

    // The old primary comes back writable (its my.cnf says read_only=OFF): it is fenced, and
    // writes keep going to db2.
    let d = db.clone();
    tokio::task::spawn_blocking(move || d.restart_as_replica(d.primary()))
        .await
        .expect("task")
        .expect("restart the old primary");
    let d = db.clone();
    wait_blocking(
        "the old primary fenced",
        Duration::from_secs(30),
        move || {
            (d.root_sql(d.primary(), "SELECT @@global.read_only")
                .ok()?
                .trim()
                == "1")
                .then_some(())
        },
    )
    .await;
    let mut c = Conn::new(routers[1].app("app")).await.expect("connect");
    c.query_drop("INSERT INTO acks (worker, n) VALUES (99, 1)")
        .await
        .expect("write after the old primary returned");
    let id: Option<u32> = c
        .query_first("SELECT /* route=primary */ @@server_id")
        .await
        .expect("read on the writer");
    assert_eq!(id, Some(2));

    // Rejoined by command (auto_rejoin is off here). Started as a replica, its crash recovery
    // dropped the commit no replica acknowledged, if there was one, so it holds nothing db2
    // lacks; it then replicates from db2 and has every acknowledged write.
    let r = routers[0].clone();
    let answer = tokio::task::spawn_blocking(move || {
        r.control(serde_json::json!({"cmd": "db.rejoin", "args": {"backend": "db1"}}))
    })
    .await
    .expect("task");
    assert_eq!(answer["ok"], true, "db.rejoin: {answer}");
    assert_eq!(answer["data"]["writer"], "db2", "{answer}");
    let d = db.clone();
    let on_db1 = tokio::task::spawn_blocking(move || {
        d.wait_replicated_from(d.standby(), Duration::from_secs(60))?;
        let status = d.replica_status(d.primary())?;
        anyhow::ensure!(
            status.as_ref().is_some_and(
                |s| s.io_running == "Yes" && s.master_port == Some(d.standby().addr.port())
            ),
            "db1 does not replicate from db2: {status:?}"
        );
        d.root_sql(d.primary(), "SELECT worker, n FROM appdb.acks")
    })
    .await
    .expect("task")
    .expect("db1 replicating from db2");
    assert_has_every_ack("db1", &acked, &on_db1);
}

/// Fails unless `rows` (`SELECT worker, n FROM appdb.acks` on `server`, tab-separated) holds
/// every acknowledged write.
fn assert_has_every_ack(server: &str, acked: &BTreeSet<(usize, u64)>, rows: &str) {
    let present: BTreeSet<(usize, u64)> = rows
        .lines()
        .filter_map(|l| {
            let (w, n) = l.split_once('\t')?;
            Some((w.parse().ok()?, n.parse().ok()?))
        })
        .collect();
    let missing: Vec<_> = acked.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "{server} lacks {} acknowledged writes, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}
