//! dbrouterd watches what zero loss on a failover depends on: the writer's commits waiting for
//! a semi-synchronous standby. On a topology with semi-sync (primary AFTER_SYNC, standby
//! acknowledging), status shows it active with one client and the metric says 1; switched off
//! on the primary, status and the metric say so and the log warns that a failover may lose
//! acknowledged writes; switched on again, it is shown active again.

mod dbrouterd_failover_support;

use std::sync::Arc;
use std::time::Duration;

use dbrouterd_failover_support::{wait_blocking, Router};
use integration_tests::mariadb::DbTopology;

const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writers_semi_sync_is_shown_and_its_loss_warned() {
    dbrouterd_failover_support::within(SCENARIO_LIMIT, scenario()).await;
}

/// Waits until status shows the writer db1's semi-sync `active` (with at least one client when
/// active) and the metric agrees.
async fn wait_semi_sync(router: &Arc<Router>, active: bool) {
    let r = router.clone();
    wait_blocking(
        &format!(
            "db1's semi-sync shown {}",
            if active { "on" } else { "off" }
        ),
        Duration::from_secs(30),
        move || {
            let s = r.backend("db1")["semi_sync"].clone();
            let shown = s["active"] == active
                && s["enabled"] == active
                && (!active || s["clients"].as_u64() >= Some(1));
            let metric = format!("dbrouterd_writer_semi_sync {}", i64::from(active));
            // hactl status shows it in the summary.
            let summary = r.status()["summary"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let said = if active {
                "writer db1 (semi-sync, 1 replica)"
            } else {
                "writer db1 (asynchronous)"
            };
            (shown && summary.contains(said) && r.metrics().lines().any(|l| l == metric))
                .then_some(())
        },
    )
    .await;
}

async fn set_semi_sync(db: &Arc<DbTopology>, on: bool) {
    let db = db.clone();
    let sql = format!(
        "SET GLOBAL rpl_semi_sync_master_enabled = {}",
        if on { "ON" } else { "OFF" }
    );
    tokio::task::spawn_blocking(move || db.root_sql(db.primary(), &sql).map(drop))
        .await
        .expect("task")
        .expect("set semi-sync on the primary");
}

async fn scenario() {
    let db = dbrouterd_failover_support::start_topology("dbr-semi-sync").await;
    let d = db.clone();
    let router = Arc::new(
        tokio::task::spawn_blocking(move || {
            Router::start(
                &d,
                &[("app", "{ writers: [db1, db2], readers: [db3, db4] }")],
            )
        })
        .await
        .expect("task"),
    );
    wait_semi_sync(&router, true).await;
    // Only the writer carries it.
    assert!(router.backend("db3")["semi_sync"].is_null());

    set_semi_sync(&db, false).await;
    wait_semi_sync(&router, false).await;
    let log = router.daemon.log_text();
    assert!(
        log.contains("writer's replication is asynchronous"),
        "no warning in the log:\n{log}"
    );

    set_semi_sync(&db, true).await;
    wait_semi_sync(&router, true).await;
}
