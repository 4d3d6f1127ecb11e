//! Planned switchovers under a transactional load through dbrouterd, there and back:
//! `db.switchover` over the control socket (db1 → db2), then `hactl call dbrouterd
//! db.switchover to=db1` (the old primary was made a replica of the new one, so it can take
//! over again). Zero failed transactions, every committed one present on the final writer and
//! the replicas, writes only ever on one server at a time, semi-synchronous replication moving
//! with the writer each time, and `backend.drain`/`enable`; then
//! `hactl db failover` with the writer alive (fenced, caught up, replaced).

mod dbrouterd_failover_support;

/// The whole scenario, so that a hang fails the test instead of stalling the suite.
const SCENARIO_LIMIT: std::time::Duration = std::time::Duration::from_secs(150);

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbrouterd_failover_support::{readers_seen, wait_for, Router};
use integration_tests::bin;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, TxOpts};
use serde_json::json;

#[derive(Default)]
struct Ledger {
    committed: Vec<(usize, u64)>,
    /// Server ids that took a transaction.
    writers: BTreeSet<u32>,
    failures: Vec<String>,
    reads: u64,
}

/// Transactions (insert, update, read back, commit) and plain reads until `stop`, or until
/// the first failure, which fails the test: a broken connection fails every later statement
/// at once, and looping on it would never yield to the runtime (the scenario's time limit
/// could not fire) while the failures filled the memory.
async fn transactions(
    opts: Opts,
    worker: usize,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut conn = Conn::new(opts).await.expect("connect");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let result: Result<u32, mysql_async::Error> = async {
            let mut tx = conn.start_transaction(TxOpts::default()).await?;
            tx.query_drop(format!(
                "INSERT INTO ledger (worker, n) VALUES ({worker}, {n})"
            ))
            .await?;
            tx.query_drop(format!(
                "UPDATE counters SET total = total + 1 WHERE worker = {worker}"
            ))
            .await?;
            let id: Option<u32> = tx.query_first("SELECT @@server_id").await?;
            tx.commit().await?;
            Ok(id.unwrap_or(0))
        }
        .await;
        let read: Result<Option<u32>, _> = conn.query_first("SELECT COUNT(*) FROM ledger").await;
        let mut l = ledger.lock().expect("ledger");
        match result {
            Ok(id) => {
                l.committed.push((worker, n));
                l.writers.insert(id);
            }
            Err(e) => l
                .failures
                .push(format!("worker {worker}, transaction {n}: {e}")),
        }
        match read {
            Ok(_) => l.reads += 1,
            Err(e) => l.failures.push(format!("worker {worker}, read {n}: {e}")),
        }
        if !l.failures.is_empty() {
            return;
        }
    }
}

fn committed(ledger: &Arc<Mutex<Ledger>>) -> usize {
    ledger.lock().expect("ledger").committed.len()
}

/// Waits for `n` more commits; fails at once, with the failures, when a worker has failed.
async fn more_commits(ledger: &Arc<Mutex<Ledger>>, n: usize, what: &str) {
    let target = committed(ledger) + n;
    let l = ledger.clone();
    wait_for(what, Duration::from_secs(30), || {
        let (c, failures) = {
            let l = l.lock().expect("ledger");
            (l.committed.len(), l.failures.clone())
        };
        assert!(failures.is_empty(), "{what}: failed: {failures:?}");
        async move { (c >= target).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switchover_there_and_back_under_load_fails_no_transaction() {
    dbrouterd_failover_support::within(SCENARIO_LIMIT, scenario()).await;
}

async fn scenario() {
    let db = dbrouterd_failover_support::start_topology("dbr-failover-switch").await;
    let d = db.clone();
    let router = Arc::new(
        tokio::task::spawn_blocking(move || {
            Router::start(
                &d,
                &[(
                    "app",
                    "{ writers: [db1, db2], readers: [db3, db4], balance: round_robin }",
                )],
            )
        })
        .await
        .expect("start dbrouterd"),
    );
    let app = router.app("app");
    const WORKERS: usize = 4;
    let mut c = Conn::new(app.clone()).await.expect("connect");
    c.query_drop(
        "CREATE TABLE ledger (worker INT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (worker, n))",
    )
    .await
    .expect("create");
    c.query_drop("CREATE TABLE counters (worker INT PRIMARY KEY, total BIGINT NOT NULL)")
        .await
        .expect("create");
    for w in 0..WORKERS {
        c.query_drop(format!("INSERT INTO counters VALUES ({w}, 0)"))
            .await
            .expect("insert");
    }
    drop(c);

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(transactions(app.clone(), w, ledger.clone(), stop.clone())))
        .collect();
    more_commits(&ledger, 100, "transactions on db1").await;

    // db1 → db2 over the control socket.
    let r = router.clone();
    let answer = tokio::task::spawn_blocking(move || r.control(json!({"cmd": "db.switchover"})))
        .await
        .expect("task");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["data"]["writer"], "db2", "{answer}");
    eprintln!("switchover: {answer}");
    assert_eq!(router.writer().as_deref(), Some("db2"));
    // Semi-sync moved with the writer: db2's commits wait for db1's acknowledgement.
    assert_eq!(answer["data"]["semi_sync"], "moved", "{answer}");
    dbrouterd_failover_support::wait_semi_sync_on(&router, "db2").await;
    more_commits(&ledger, 100, "transactions on db2").await;

    // db2 → db1 with hactl, the way an operator does it.
    let socket_dir = router.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin("hactl"))
            .arg("--socket-dir")
            .arg(&socket_dir)
            .args([
                "--timeout",
                "20s",
                "call",
                "dbrouterd",
                "db.switchover",
                "to=db1",
            ])
            .output()
            .expect("run hactl")
    })
    .await
    .expect("task");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hactl: {text}");
    assert!(text.contains("db1"), "hactl: {text}");
    assert_eq!(router.writer().as_deref(), Some("db1"));
    dbrouterd_failover_support::wait_semi_sync_on(&router, "db1").await;
    more_commits(&ledger, 100, "transactions on db1 again").await;

    // backend.drain takes a replica out of reads, backend.enable brings it back. Both
    // replicas were just repointed to db1 and may lag for a moment: first both back in reads.
    let r = router.clone();
    dbrouterd_failover_support::wait_blocking(
        "db3 and db4 in the read rotation after the switchovers",
        Duration::from_secs(30),
        move || (r.in_rotation("db3") && r.in_rotation("db4")).then_some(()),
    )
    .await;
    let drained = router.control(json!({"cmd": "backend.drain", "args": {"backend": "db3"}}));
    assert_eq!(drained["ok"], true, "{drained}");
    assert_eq!(readers_seen(&app, 6).await, vec![4]);
    let enabled = router.control(json!({"cmd": "backend.enable", "args": {"backend": "db3"}}));
    assert_eq!(enabled["ok"], true, "{enabled}");
    assert_eq!(readers_seen(&app, 6).await, vec![3, 4]);

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker");
    }
    let ledger = std::mem::take(&mut *ledger.lock().expect("ledger"));
    assert!(ledger.failures.is_empty(), "failed: {:?}", ledger.failures);
    assert_eq!(
        ledger.writers,
        BTreeSet::from([1, 2]),
        "transactions ran on db1 and db2 only"
    );
    eprintln!(
        "{} transactions and {} reads, none failed, across two switchovers",
        ledger.committed.len(),
        ledger.reads
    );

    // Every committed transaction is on db1 (writer again) and everywhere else.
    let d = db.clone();
    let rows = tokio::task::spawn_blocking(move || {
        d.wait_replicated(Duration::from_secs(60))?;
        let mut rows = Vec::new();
        for s in d.servers() {
            rows.push(d.root_sql(
                s,
                "SELECT COUNT(*), (SELECT SUM(total) FROM appdb.counters) FROM appdb.ledger",
            )?);
        }
        anyhow::Ok(rows)
    })
    .await
    .expect("task")
    .expect("counts");
    let want = format!("{}\t{}", ledger.committed.len(), ledger.committed.len());
    for (server, row) in ["db1", "db2", "db3", "db4"].iter().zip(&rows) {
        assert_eq!(row, &want, "{server}: rows and counter total");
    }
    let status = router.status();
    assert_eq!(status["topology"]["epoch"], 2, "{status}");

    // db.failover with the writer alive: it is fenced, the standby catches up with it and
    // takes over at the next epoch.
    let socket_dir = router.dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin("hactl"))
            .arg("--socket-dir")
            .arg(&socket_dir)
            .args(["db", "failover"])
            .output()
            .expect("run hactl")
    })
    .await
    .expect("task");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "hactl db failover: {text}");
    assert_eq!(router.writer().as_deref(), Some("db2"));
    assert_eq!(router.status()["topology"]["epoch"], 3);
    let mut c = Conn::new(app.clone()).await.expect("connect");
    c.query_drop("INSERT INTO ledger (worker, n) VALUES (99, 1)")
        .await
        .expect("write after db.failover");
    let id: Option<u32> = c
        .query_first("SELECT /* route=primary */ @@server_id")
        .await
        .expect("read on the writer");
    assert_eq!(id, Some(2));
    let d = db.clone();
    let ro =
        tokio::task::spawn_blocking(move || d.root_sql(d.primary(), "SELECT @@global.read_only"))
            .await
            .expect("task")
            .expect("read_only of db1");
    assert_eq!(ro, "1", "the old writer is fenced");
}
