//! Failover timings for `scripts/bench/db-failover.sh` (ignored in normal test runs): on a fresh
//! topology per run, through dbrouterd with the failover tests' monitor settings,
//! - the primary is killed (SIGKILL) under 4 writing sessions: time from the kill to the
//!   acknowledgement of the first write sent after it, and the writes that failed (in flight
//!   at the death);
//! - a replica is killed under 4 reading sessions: the reads that failed, the time from its
//!   death to the last failed read (0 when none failed), and until it left the rotation.
//!
//! Prints one `BENCH` line per run for the script to parse.

mod dbrouterd_failover_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbrouterd_failover_support::{wait_blocking, wait_for, Router};
use integration_tests::mariadb::DbTopology;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

const SESSIONS: usize = 4;

#[derive(Default)]
struct Log {
    /// When each successful statement was sent, and when its answer came.
    ok: Vec<(Instant, Instant)>,
    errors: Vec<(Instant, String)>,
}

/// Runs `sql` in a loop on one session until `stop`, reconnecting after an error.
async fn load(opts: Opts, sql: String, log: Arc<Mutex<Log>>, stop: Arc<AtomicBool>) {
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::Relaxed) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::new(opts.clone()).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    log.lock()
                        .expect("log")
                        .errors
                        .push((Instant::now(), format!("connect: {e}")));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let result: Result<Option<u64>, _> = c.query_first(sql.as_str()).await;
        let mut l = log.lock().expect("log");
        match result {
            Ok(_) => l.ok.push((sent, Instant::now())),
            Err(e) => {
                l.errors.push((Instant::now(), e.to_string()));
                conn = None;
            }
        }
    }
}

/// SIGKILLs server `index` and returns the instant just before the signal was sent, once the
/// process is gone.
async fn sigkill(db: &Arc<DbTopology>, index: usize) -> Instant {
    let d = db.clone();
    tokio::task::spawn_blocking(move || {
        let server = &d.servers()[index];
        let pid = server.pid().expect("server runs");
        let at = Instant::now();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("SIGKILL");
        integration_tests::wait_until("the killed server to exit", Duration::from_secs(10), || {
            (!d.is_running(server)).then_some(())
        });
        at
    })
    .await
    .expect("task")
}

async fn start(name: &'static str) -> (Arc<DbTopology>, Arc<Router>) {
    let db = dbrouterd_failover_support::start_topology(name).await;
    let d = db.clone();
    let router = tokio::task::spawn_blocking(move || {
        Router::start(
            &d,
            &[("app", "{ writers: [db1, db2], readers: [db3, db4] }")],
        )
    })
    .await
    .expect("dbrouterd");
    (db, Arc::new(router))
}

fn spawn_load(
    router: &Router,
    sql: &str,
    log: &Arc<Mutex<Log>>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..SESSIONS)
        .map(|i| {
            tokio::spawn(load(
                router.app("app"),
                sql.replace("{i}", &i.to_string()),
                log.clone(),
                stop.clone(),
            ))
        })
        .collect()
}

async fn ok_count_reaches(log: &Arc<Mutex<Log>>, n: usize) {
    let l = log.clone();
    wait_for("load to run", Duration::from_secs(30), || {
        let c = l.lock().expect("log").ok.len();
        async move { (c >= n).then_some(()) }
    })
    .await;
}

async fn primary_run() -> (u128, usize) {
    let (db, router) = start("dbr-bench-primary").await;
    let mut c = Conn::new(router.app("app")).await.expect("connect");
    c.query_drop("CREATE TABLE w (id BIGINT AUTO_INCREMENT PRIMARY KEY, s INT)")
        .await
        .expect("create");
    drop(c);
    let (log, stop) = (Arc::default(), Arc::new(AtomicBool::new(false)));
    let tasks = spawn_load(&router, "INSERT INTO w (s) VALUES ({i})", &log, &stop);
    ok_count_reaches(&log, 200).await;
    let killed = sigkill(&db, 0).await;
    let before = log.lock().expect("log").ok.len();
    ok_count_reaches(&log, before + 200).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("load");
    }
    let l = log.lock().expect("log");
    // The first write sent after the death (so it cannot have committed on the old primary)
    // that was acknowledged.
    let first =
        l.ok.iter()
            .filter(|(sent, _)| *sent > killed)
            .map(|(_, acked)| acked.duration_since(killed))
            .min()
            .unwrap_or_default();
    let failed: Vec<&String> = l
        .errors
        .iter()
        .filter(|(t, _)| *t > killed)
        .map(|(_, e)| e)
        .collect();
    eprintln!("failed writes: {failed:?}");
    (first.as_millis(), failed.len())
}

async fn replica_run() -> (usize, u128, u128) {
    let (db, router) = start("dbr-bench-replica").await;
    let (log, stop) = (Arc::default(), Arc::new(AtomicBool::new(false)));
    let tasks = spawn_load(&router, "SELECT @@server_id + {i}", &log, &stop);
    ok_count_reaches(&log, 500).await;
    let killed = sigkill(&db, 2).await;
    let r = router.clone();
    wait_blocking("db3 out of rotation", Duration::from_secs(30), move || {
        (!r.in_rotation("db3")).then_some(())
    })
    .await;
    let out = killed.elapsed();
    let before = log.lock().expect("log").ok.len();
    ok_count_reaches(&log, before + 500).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("load");
    }
    let l = log.lock().expect("log");
    let errors: Vec<Duration> = l
        .errors
        .iter()
        .filter(|(t, _)| *t > killed)
        .map(|(t, _)| t.duration_since(killed))
        .collect();
    let last = errors.iter().max().copied().unwrap_or_default();
    (errors.len(), last.as_millis(), out.as_millis())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by scripts/bench/db-failover.sh"]
async fn failover_timings() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for run in 0..runs {
        let (first_write_ms, failed_writes) = primary_run().await;
        let (failed_reads, last_error_ms, out_ms) = replica_run().await;
        println!(
            "BENCH run={run} primary_first_write_ms={first_write_ms} failed_writes={failed_writes} \
             replica_failed_reads={failed_reads} replica_last_error_ms={last_error_ms} \
             replica_out_of_rotation_ms={out_ms}"
        );
    }
}
