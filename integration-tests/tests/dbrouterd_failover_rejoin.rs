//! `failover.auto_rejoin`: after a failover, the servers it left behind follow the new writer
//! again on their own, unless that could lose or mix up a transaction.
//!
//! A replica that was down during the failover comes back pointing at the dead primary: it is
//! made a replica of the new writer. The old primary comes back holding a transaction no other
//! server received: it stays fenced, not replicating, with the transaction named in the log.
//! Once an operator has discarded that transaction it is rejoined, and when the new writer
//! dies in turn the old primary takes over again with every acknowledged write. Semi-sync,
//! which the failover lost with the old primary, is back once the old primary acknowledges as a
//! replica of the new writer.

mod dbrouterd_failover_support;

use std::sync::Arc;
use std::time::Duration;

use dbrouterd_failover_support::{
    create_kept, server_id_of, wait_blocking, wait_semi_sync_on, write_kept as write, Router,
    MONITOR,
};
use integration_tests::mariadb::DbTopology;

/// The whole scenario, so that a hang fails the test instead of stalling the suite.
const SCENARIO_LIMIT: Duration = Duration::from_secs(360);
const WAIT: Duration = Duration::from_secs(60);
const PRIMARY: usize = 0;
const STANDBY: usize = 1;
const REPLICA1: usize = 2;
const REPLICA2: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_left_behind_by_a_failover_follow_the_new_writer_unless_they_diverged() {
    dbrouterd_failover_support::within(SCENARIO_LIMIT, scenario()).await;
}

/// Runs `f` on the topology off the async threads; its error fails the test, naming `what`.
async fn on_db<T: Send + 'static>(
    db: &Arc<DbTopology>,
    what: &str,
    f: impl FnOnce(&DbTopology) -> anyhow::Result<T> + Send + 'static,
) -> T {
    let d = db.clone();
    tokio::task::spawn_blocking(move || f(&d))
        .await
        .expect("task")
        .unwrap_or_else(|e| panic!("{what}: {e:#}"))
}

/// The ids in `appdb.kept` on server `i`, comma-separated.
fn rows(db: &DbTopology, i: usize) -> String {
    db.root_sql(
        &db.servers()[i],
        "SELECT IFNULL(GROUP_CONCAT(id ORDER BY id), '') FROM appdb.kept",
    )
    .unwrap_or_else(|e| format!("error: {e:#}"))
}

/// Whether server `i` replicates from server `from` with its IO thread connected.
fn replicates_from(db: &DbTopology, i: usize, from: usize) -> bool {
    let port = db.servers()[from].addr.port();
    matches!(
        db.replica_status(&db.servers()[i]),
        Ok(Some(s)) if s.master_port == Some(port) && s.io_running == "Yes"
    )
}

async fn wait_writer(router: &Arc<Router>, name: &'static str) {
    let r = router.clone();
    wait_blocking(&format!("dbrouterd to write to {name}"), WAIT, move || {
        (r.writer().as_deref() == Some(name)).then_some(())
    })
    .await;
}

async fn scenario() {
    let db = dbrouterd_failover_support::start_topology("dbr-failover-rejoin").await;
    let monitor = MONITOR.replace(
        "replication_password: replpw }",
        "replication_password: replpw, auto_rejoin: true }",
    );
    assert!(monitor.contains("auto_rejoin"), "{monitor}");
    let d = db.clone();
    let router = tokio::task::spawn_blocking(move || {
        Arc::new(Router::start_with_monitor(
            &d,
            &[("app", "{ writers: [db1, db2], readers: [db3, db4] }")],
            &monitor,
        ))
    })
    .await
    .expect("start dbrouterd");
    create_kept(&router).await;
    write(&router, 1).await;

    // db4 is down during the failover. db1 commits row 99, which no other server receives,
    // and dies.
    on_db(&db, "a transaction only db1 has, then db1 killed", |d| {
        d.wait_replicated(WAIT)?;
        // Semi-sync stays enabled (the monitor remembers it for the next writer), but once no
        // semi-sync replica is connected db1 commits without waiting.
        d.root_sql(
            d.primary(),
            "SET GLOBAL rpl_semi_sync_master_wait_no_slave = OFF",
        )?;
        d.kill(&d.servers()[REPLICA2])?;
        for i in [STANDBY, REPLICA1] {
            d.root_sql(&d.servers()[i], "STOP SLAVE IO_THREAD")?;
        }
        integration_tests::wait_until("db1 without semi-sync replicas", WAIT, || {
            let clients = d
                .root_sql(
                    d.primary(),
                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                     WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS'",
                )
                .ok()?;
            (clients == "0").then_some(())
        });
        d.root_sql(d.primary(), "INSERT INTO appdb.kept VALUES (99)")?;
        d.kill(d.primary())
    })
    .await;
    wait_writer(&router, "db2").await;
    // Where db1's transactions that db2 lacks begin: what db2 applied from db1 (a heartbeat
    // the monitor wrote on db1 after db2 stopped receiving may precede row 99).
    let before_99 = on_db(&db, "db2's position in db1's transactions", |d| {
        d.root_sql(d.standby(), "SELECT @@gtid_slave_pos")
    })
    .await;
    write(&router, 2).await;
    let promoted = on_db(&db, "db2's replication", |d| d.replica_status(d.standby())).await;
    assert!(
        promoted.is_none(),
        "the promoted server's replication configuration is removed (RESET SLAVE ALL): {promoted:?}"
    );

    // db4 comes back pointing at the dead db1: it is made a replica of db2.
    on_db(&db, "db4 restarted", |d| d.restart(&d.servers()[REPLICA2])).await;
    let d = db.clone();
    wait_blocking(
        "db4 to replicate from db2 and have row 2",
        WAIT,
        move || {
            (replicates_from(&d, REPLICA2, STANDBY) && rows(&d, REPLICA2) == "1,2").then_some(())
        },
    )
    .await;

    // db1 comes back with row 99, which db2 never had: fenced, and left out of replication.
    on_db(&db, "db1 restarted", |d| d.restart_as_replica(d.primary())).await;
    let r = router.clone();
    let refusal = wait_blocking("the rejoin of db1 refused", WAIT, move || {
        r.daemon.log_text().lines().find_map(|l| {
            (l.contains("cannot rejoin") && l.contains("backend=db1")).then(|| l.to_string())
        })
    })
    .await;
    assert!(
        refusal.contains("holds transactions db2 does not have"),
        "{refusal}"
    );
    let (read_only, status, db1_rows) = on_db(&db, "db1 after the refusal", |d| {
        Ok((
            d.root_sql(d.primary(), "SELECT @@global.read_only")?,
            d.replica_status(d.primary())?,
            rows(d, PRIMARY),
        ))
    })
    .await;
    assert_eq!(read_only, "1", "db1 is fenced");
    assert!(
        status.as_ref().is_none_or(|s| s.io_running != "Yes"),
        "db1 must not replicate: {status:?}"
    );
    assert_eq!(
        db1_rows, "1,99",
        "db1 keeps its own transaction for an operator"
    );
    assert_eq!(
        server_id_of(&router.app("app"), "SELECT /* route=primary */ @@server_id")
            .await
            .expect("write route"),
        2,
        "db2 keeps the writes"
    );

    // An operator discards row 99 (operations.md, "After a failover"): db1 is rejoined.
    on_db(&db, "row 99 discarded on db1", move |d| {
        d.root_sql(
            d.primary(),
            &format!(
                "SET sql_log_bin = 0; DELETE FROM appdb.kept WHERE id = 99; RESET MASTER; \
                 SET GLOBAL gtid_slave_pos = '{before_99}'"
            ),
        )
    })
    .await;
    let d = db.clone();
    wait_blocking(
        "db1 to replicate from db2 and have row 2",
        WAIT,
        move || (replicates_from(&d, PRIMARY, STANDBY) && rows(&d, PRIMARY) == "1,2").then_some(()),
    )
    .await;
    let log = router.daemon.log_text();
    for backend in ["db1", "db4"] {
        assert!(
            log.lines()
                .any(|l| l.contains("rejoined: replicates from the writer again")
                    && l.contains(&format!("backend={backend}"))),
            "{backend} rejoined in the log:\n{log}"
        );
    }
    let read_only = on_db(&db, "db1 read_only", |d| {
        d.root_sql(d.primary(), "SELECT @@global.read_only")
    })
    .await;
    assert_eq!(read_only, "1", "a rejoined server stays read-only");

    // db1, which can take over, acknowledges db2's commits, and db2 waits for it with db1's
    // old settings: semi-sync is back, so db2's death loses nothing either.
    wait_semi_sync_on(&router, "db2").await;
    let (wait_point, acknowledges) = on_db(&db, "semi-sync settings", |d| {
        Ok((
            d.root_sql(
                d.standby(),
                "SELECT @@global.rpl_semi_sync_master_wait_point",
            )?,
            d.root_sql(d.primary(), "SELECT @@global.rpl_semi_sync_slave_enabled")?,
        ))
    })
    .await;
    assert_eq!(wait_point, "AFTER_SYNC", "db2 waits as db1 did");
    assert_eq!(acknowledges, "1", "db1 acknowledges");
    let log = router.daemon.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("semi-sync moved to the new writer") && l.contains("writer=db2")),
        "semi-sync turned on at db2 in the log:\n{log}"
    );

    // db2 dies: db1, a replica again, takes over with every acknowledged write.
    on_db(&db, "db1 caught up, then db2 killed", |d| {
        d.wait_replicated_from(d.standby(), WAIT)?;
        d.kill(d.standby())
    })
    .await;
    wait_writer(&router, "db1").await;
    write(&router, 3).await;
    assert_eq!(
        server_id_of(&router.app("app"), "SELECT /* route=primary */ @@server_id")
            .await
            .expect("write route"),
        1
    );
    let d = db.clone();
    wait_blocking("rows 1, 2, 3 on db1, db3 and db4", WAIT, move || {
        [PRIMARY, REPLICA1, REPLICA2]
            .iter()
            .all(|&i| rows(&d, i) == "1,2,3")
            .then_some(())
    })
    .await;
}
