//! At a switchover, semi-synchronous replication moves with the writer: when the old writer's
//! commits waited for a replica's acknowledgement (`rpl_semi_sync_master_enabled`), the new
//! writer's do too, and the old writer, now a replica, acknowledges them.
//!
//! Left as it was, the old writer stays a semi-sync master while it replicates: its SQL thread
//! then waits up to `rpl_semi_sync_master_timeout` for an acknowledgement nobody sends (10 s
//! in the test topology, a switchover back waiting as long), and the new writer's commits wait
//! for nobody, so a failover could lose them. Best effort: a setting that cannot be changed is
//! logged and reported, the switchover stands. Needs REPLICATION MASTER ADMIN (MariaDB 10.5.2
//! and later; SUPER before) and REPLICATION SLAVE ADMIN for the monitor account.

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::{info, warn};

use super::promote::{Change, ChangeError};
use super::sql::{self, quote};
use crate::topology::BackendNode;

/// The old writer's semi-sync master settings, to give the new writer.
pub(super) struct SemiSyncMaster {
    wait_point: String,
    timeout_ms: u64,
}

impl Change<'_> {
    /// Before the old writer is repointed: when it is a semi-sync master, it stops being one
    /// and acknowledges as a replica from its next `START SLAVE` on. `None`: nothing to move.
    pub(super) async fn demote_semi_sync(&self, old: &Arc<BackendNode>) -> Option<SemiSyncMaster> {
        let read = async {
            let mut conn = self.connect(old).await?;
            let rows = sql::query(
                &mut conn,
                "SELECT @@global.rpl_semi_sync_master_enabled + 0 AS enabled, \
                 @@global.rpl_semi_sync_master_wait_point AS wait_point, \
                 @@global.rpl_semi_sync_master_timeout AS timeout_ms",
            )
            .await?;
            if rows.get(0, "enabled") != Some("1") {
                return Ok(None);
            }
            let settings = SemiSyncMaster {
                wait_point: rows
                    .get(0, "wait_point")
                    .unwrap_or("AFTER_SYNC")
                    .to_string(),
                timeout_ms: rows
                    .get(0, "timeout_ms")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(10_000),
            };
            for statement in [
                "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
                "SET GLOBAL rpl_semi_sync_slave_enabled = ON",
            ] {
                sql::execute(&mut conn, statement).await?;
            }
            Ok::<_, ChangeError>(Some(settings))
        };
        match read.await {
            Ok(settings) => settings,
            Err(e) => {
                warn!(backend = %old.name, error = %e, "semi-synchronous replication not moved from the old writer");
                None
            }
        }
    }

    /// After the repoint: the new writer's commits wait for a replica's acknowledgement, with
    /// the old writer's wait point and timeout. Answers what was done, for the report.
    pub(super) async fn promote_semi_sync(
        &self,
        settings: SemiSyncMaster,
        new: &Arc<BackendNode>,
    ) -> Value {
        let set = async {
            let mut conn = self.connect(new).await?;
            for statement in [
                format!(
                    "SET GLOBAL rpl_semi_sync_master_wait_point = {}",
                    quote(&settings.wait_point)
                ),
                format!(
                    "SET GLOBAL rpl_semi_sync_master_timeout = {}",
                    settings.timeout_ms
                ),
                "SET GLOBAL rpl_semi_sync_slave_enabled = OFF".to_string(),
                "SET GLOBAL rpl_semi_sync_master_enabled = ON".to_string(),
            ] {
                sql::execute(&mut conn, &statement).await?;
            }
            Ok::<_, ChangeError>(())
        };
        match set.await {
            Ok(()) => {
                info!(writer = %new.name, wait_point = %settings.wait_point, "semi-synchronous replication moved to the new writer");
                json!("moved")
            }
            Err(e) => {
                warn!(writer = %new.name, error = %e, "semi-synchronous replication not moved to the new writer");
                json!(format!("failed: {e}"))
            }
        }
    }
}
