//! Semi-synchronous replication follows the writer.
//!
//! At a switchover: when the old writer's commits waited for a replica's acknowledgement
//! (`rpl_semi_sync_master_enabled`), the new writer's do too, and the old writer, now a
//! replica, acknowledges them. Left as it was, the old writer stays a semi-sync master while it
//! replicates: its SQL thread then waits up to `rpl_semi_sync_master_timeout` for an
//! acknowledgement nobody sends (10 s in the test topology, a switchover back waiting as long),
//! and the new writer's commits wait for nobody, so a failover could lose them.
//!
//! After a failover the old writer is gone, and with it the only replica that could
//! acknowledge as a failover candidate: turning the master side on at once would make the
//! next commit wait the whole timeout. The monitor remembers the old writer's settings
//! ([`SemiSyncIntent`]); a server rejoined as a replica that could take over (role `writer`
//! or `standby`) acknowledges, and once a semi-sync replica is connected to the writer the
//! monitor turns its master side on with those settings.
//!
//! Best effort: a setting that cannot be changed is logged and reported, the change stands.
//! Needs REPLICATION MASTER ADMIN (MariaDB 10.5.2 and later; SUPER before) and REPLICATION
//! SLAVE ADMIN for the monitor account.

use std::sync::Arc;

use tracing::{info, warn};

use super::check::{SemiSync, SemiSyncMaster};
use super::probe::{semi_sync_master, SEMI_SYNC_SETTINGS};
use super::promote::{Change, ChangeError};
use super::sql::{self, quote};
use crate::pool::BackendConn;
use crate::topology::BackendNode;

/// The semi-sync master settings the writer at `from` ran with, kept across a failover until
/// a new writer runs with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SemiSyncIntent {
    pub from: usize,
    pub settings: SemiSyncMaster,
}

/// What to do about the writer's semi-sync after a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    Nothing,
    /// Turn the writer's master side on with these settings: a replica acknowledges.
    Enable(SemiSyncMaster),
}

/// Follows the writer `w`'s semi-sync as a round saw it (`None`: not read) and says whether to
/// turn it on: an intent comes from the writer that ran with semi-sync, and goes when that same
/// writer runs without it (an operator turned it off); a writer that took over from another
/// gets its settings once a semi-sync replica is connected to it.
pub(super) fn keep(intent: &mut Option<SemiSyncIntent>, w: usize, seen: Option<SemiSync>) -> Keep {
    let Some(seen) = seen else {
        return Keep::Nothing;
    };
    match (seen.master, *intent) {
        (Some(settings), _) => {
            *intent = Some(SemiSyncIntent { from: w, settings });
            Keep::Nothing
        }
        (None, Some(i)) if i.from == w => {
            *intent = None;
            Keep::Nothing
        }
        (None, Some(i)) if seen.clients > 0 => Keep::Enable(i.settings),
        (None, _) => Keep::Nothing,
    }
}

/// On a server about to replicate: not a semi-sync master any more, and acknowledging what it
/// receives from its next `START SLAVE` on.
pub(super) async fn acknowledge_as_replica(conn: &mut BackendConn) -> Result<(), ChangeError> {
    for statement in [
        "SET GLOBAL rpl_semi_sync_master_enabled = OFF",
        "SET GLOBAL rpl_semi_sync_slave_enabled = ON",
    ] {
        sql::execute(conn, statement).await?;
    }
    Ok(())
}

impl Change<'_> {
    /// Before the old writer is repointed: when it is a semi-sync master, it stops being one
    /// and acknowledges as a replica from its next `START SLAVE` on. `None`: nothing to move.
    pub(super) async fn demote_semi_sync(&self, old: &Arc<BackendNode>) -> Option<SemiSyncMaster> {
        let read = async {
            let mut conn = self.connect(old).await?;
            let settings = semi_sync_master(&sql::query(&mut conn, SEMI_SYNC_SETTINGS).await?);
            if settings.is_some() {
                acknowledge_as_replica(&mut conn).await?;
            }
            Ok::<_, ChangeError>(settings)
        };
        match read.await {
            Ok(settings) => settings,
            Err(e) => {
                warn!(backend = %old.name, error = %e, "semi-synchronous replication not moved from the old writer");
                None
            }
        }
    }

    /// The writer's commits wait for a replica's acknowledgement, with `settings` (the old
    /// writer's wait point and timeout). Logs the outcome.
    pub(super) async fn enable_semi_sync(
        &self,
        settings: SemiSyncMaster,
        writer: &Arc<BackendNode>,
    ) -> Result<(), ChangeError> {
        let set = async {
            let mut conn = self.connect(writer).await?;
            for statement in [
                format!(
                    "SET GLOBAL rpl_semi_sync_master_wait_point = {}",
                    quote(settings.wait_point.as_str())
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
        let result = set.await;
        match &result {
            Ok(()) => {
                info!(writer = %writer.name, wait_point = settings.wait_point.as_str(), "writer's commits wait for a semi-synchronous replica again (semi-sync moved to the new writer)")
            }
            Err(e) => {
                warn!(writer = %writer.name, error = %e, "semi-synchronous replication not moved to the new writer")
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::check::WaitPoint;

    const SETTINGS: SemiSyncMaster = SemiSyncMaster {
        wait_point: WaitPoint::AfterSync,
        timeout_ms: 10_000,
    };

    fn seen(master: Option<SemiSyncMaster>, clients: u32) -> Option<SemiSync> {
        Some(SemiSync {
            active: master.is_some() && clients > 0,
            clients,
            master,
        })
    }

    #[test]
    fn a_new_writer_gets_the_old_writers_settings_once_a_replica_acknowledges() {
        let mut intent = None;
        assert_eq!(keep(&mut intent, 0, seen(Some(SETTINGS), 1)), Keep::Nothing);
        assert_eq!(intent.map(|i| i.from), Some(0));
        // Failover to 1: no replica to acknowledge yet, nothing to do, the intent stays.
        assert_eq!(keep(&mut intent, 1, seen(None, 0)), Keep::Nothing);
        assert_eq!(keep(&mut intent, 1, None), Keep::Nothing);
        assert_eq!(intent.map(|i| i.from), Some(0));
        // The old writer rejoined and acknowledges.
        assert_eq!(keep(&mut intent, 1, seen(None, 1)), Keep::Enable(SETTINGS));
        // Enabled: the intent now comes from the new writer.
        assert_eq!(keep(&mut intent, 1, seen(Some(SETTINGS), 1)), Keep::Nothing);
        assert_eq!(intent.map(|i| i.from), Some(1));
    }

    #[test]
    fn semi_sync_turned_off_on_the_writer_is_left_off() {
        let mut intent = None;
        keep(&mut intent, 0, seen(Some(SETTINGS), 1));
        assert_eq!(keep(&mut intent, 0, seen(None, 1)), Keep::Nothing);
        assert_eq!(intent, None);
        // Never seen on: a writer with semi-sync replicas connected is left alone.
        assert_eq!(keep(&mut intent, 1, seen(None, 2)), Keep::Nothing);
    }
}
