//! The primary dies after sending a transaction to the replicas but not to the standby (its
//! replication was stopped to make that certain). Before promoting the standby, dbrouterd has it
//! take that transaction from a replica: afterwards the new writer has it, both replicas follow
//! the new writer without error 1236 and serve reads again, and new writes reach them.

mod dbrouterd_failover_support;

use std::sync::Arc;
use std::time::Duration;

use dbrouterd_failover_support::{create_kept, wait_blocking, write_kept, Router};

/// The whole scenario, so that a hang fails the test instead of stalling the suite.
const SCENARIO_LIMIT: Duration = Duration::from_secs(180);
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_what_only_the_replicas_received_before_its_promotion() {
    dbrouterd_failover_support::within(SCENARIO_LIMIT, scenario()).await;
}

async fn scenario() {
    let db = dbrouterd_failover_support::start_topology("dbr-failover-catch-up").await;
    let d = db.clone();
    let router = tokio::task::spawn_blocking(move || {
        Arc::new(Router::start(
            &d,
            &[("app", "{ writers: [db1, db2], readers: [db3, db4] }")],
        ))
    })
    .await
    .expect("start dbrouterd");
    create_kept(&router).await;
    write_kept(&router, 1).await;

    let count = |server: usize, id: u32| {
        let d = db.clone();
        move || -> String {
            d.root_sql(
                &d.servers()[server],
                &format!("SELECT COUNT(*) FROM appdb.kept WHERE id = {id}"),
            )
            .unwrap_or_else(|e| format!("error: {e:#}"))
        }
    };
    let d = db.clone();
    let (on_db3, on_db4, on_db2) = (count(2, 2), count(3, 2), count(1, 2));
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        d.wait_replicated(WAIT)?;
        // The standby stops receiving; the primary stops waiting for its acknowledgement.
        d.root_sql(d.standby(), "STOP SLAVE IO_THREAD")?;
        d.root_sql(
            d.primary(),
            "SET GLOBAL rpl_semi_sync_master_enabled = OFF; INSERT INTO appdb.kept VALUES (2)",
        )?;
        integration_tests::wait_until("row 2 on both replicas", WAIT, || {
            (on_db3() == "1" && on_db4() == "1").then_some(())
        });
        anyhow::ensure!(on_db2() == "0", "the standby received row 2");
        d.kill(d.primary())
    })
    .await
    .expect("task")
    .expect("a transaction only the replicas have, then the primary killed");

    let r = router.clone();
    wait_blocking("dbrouterd to write to db2", WAIT, move || {
        (r.writer().as_deref() == Some("db2")).then_some(())
    })
    .await;

    let d = db.clone();
    let on_db2 = count(1, 2);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        anyhow::ensure!(on_db2() == "1", "row 2 is not on the new writer");
        // Fails at once on a replica that stopped with error 1236.
        d.wait_replicated_from(d.standby(), WAIT)
    })
    .await
    .expect("task")
    .expect("the replicas follow the new writer");
    let log = router.daemon.log_text();
    assert!(
        log.contains("standby caught up"),
        "no catch-up in the log:\n{log}"
    );

    // New writes reach both replicas, and both serve reads again.
    write_kept(&router, 3).await;
    let (on_db3, on_db4) = (count(2, 3), count(3, 3));
    let r = router.clone();
    wait_blocking(
        "row 3 on both replicas, both in rotation",
        WAIT,
        move || {
            (on_db3() == "1" && on_db4() == "1" && r.in_rotation("db3") && r.in_rotation("db4"))
                .then_some(())
        },
    )
    .await;
}
