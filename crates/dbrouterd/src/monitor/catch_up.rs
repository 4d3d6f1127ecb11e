//! Failover, before the promotion: the standby takes from the most advanced replica what the
//! dead writer sent that replica but not the standby.
//!
//! The writer sends each commit to every replica at once and, semi-synchronously, waits only
//! for the standby's acknowledgement. A writer that dies in between can leave a replica with a
//! transaction the standby never received (no client saw it acknowledged). Promoted as it is,
//! the standby would lack it, and that replica could not follow the new writer: asked for the
//! standby's binary log from a position the standby never reached, MariaDB answers error 1236
//! and the replica stays out of the read rotation until an operator rebuilds it. So the
//! standby first replicates from the replica that has the most (as MHA applies the relay logs
//! of the most advanced slave to the new master), up to that replica's position; then it is
//! promoted, and every replica follows it. Best effort: a standby that cannot catch up is
//! promoted anyway, with the reason logged and reported.

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::{info, warn};

use super::gtid::GtidPos;
use super::promote::{Change, ChangeError};
use super::repoint::{change_master, replicate, source_address, StartFrom};
use super::sql::{self, quote};
use crate::pool::BackendConn;
use crate::topology::BackendNode;

impl Change<'_> {
    /// Brings the standby (`new`, its relay log applied) up to the most advanced reachable
    /// server other than itself and the old writer, when one has transactions it lacks and
    /// nothing it lacks itself. `None` when none is ahead; else what was done, for the report.
    pub(super) async fn catch_up_from_replicas(
        &self,
        new: &mut BackendConn,
        to: &Arc<BackendNode>,
        from: Option<usize>,
    ) -> Option<Value> {
        let mine = match current_pos(new).await {
            Ok(pos) => pos,
            Err(e) => {
                warn!(backend = %to.name, error = %e, "cannot read the standby's GTID position: no catch-up from the replicas");
                return Some(json!({ "error": e.to_string() }));
            }
        };
        let mut ahead: Option<(Arc<BackendNode>, String, u64)> = None;
        for node in &self.topology.nodes {
            if node.index == to.index || Some(node.index) == from {
                continue;
            }
            let pos = async { current_pos_text(&mut self.connect(node).await?).await }.await;
            let text = match pos {
                Ok(text) => text,
                Err(e) => {
                    info!(backend = %node.name, error = %e, "replica unreachable: not compared with the standby");
                    continue;
                }
            };
            let theirs = match GtidPos::parse(&text) {
                Ok(pos) => pos,
                Err(e) => {
                    warn!(backend = %node.name, error = %e, "unreadable GTID position: not compared with the standby");
                    continue;
                }
            };
            let missing = mine.behind(&theirs);
            // Replicating from a server that lacks some of the standby's transactions fails
            // (1236 the other way round): only one that has everything the standby has.
            if missing > 0
                && theirs.covers(&mine)
                && !matches!(&ahead, Some((_, _, most)) if missing <= *most)
            {
                ahead = Some((node.clone(), text, missing));
            }
        }
        let (source, pos, missing) = ahead?;
        info!(standby = %to.name, replica = %source.name, missing, position = %pos, "a replica received transactions the standby did not: the standby catches up from it before the promotion");
        let report = match self.replicate_until(new, &source, &pos).await {
            Ok(()) => {
                info!(standby = %to.name, replica = %source.name, missing, "standby caught up");
                json!({ "from": source.name, "transactions": missing, "position": pos })
            }
            Err(e) => {
                warn!(standby = %to.name, replica = %source.name, error = %e, "standby could not catch up: promoted without those transactions (that replica will not follow it)");
                json!({ "from": source.name, "transactions": missing, "error": e.to_string() })
            }
        };
        Some(report)
    }

    /// Points the standby's replication at `source` (by GTID, keeping its credentials) and
    /// waits until it has applied `pos`. The promotion stops this replication afterwards.
    async fn replicate_until(
        &self,
        new: &mut BackendConn,
        source: &Arc<BackendNode>,
        pos: &str,
    ) -> Result<(), ChangeError> {
        let (host, port) = source_address(source)?;
        let change = change_master(
            host,
            port,
            None,
            StartFrom::SlavePos,
            self.limits.replication_ssl,
        );
        replicate(new, &change).await?;
        let wait = format!(
            "SELECT MASTER_GTID_WAIT({}, {:.3})",
            quote(pos),
            self.limits.catchup_timeout.as_secs_f64()
        );
        if sql::query(new, &wait).await?.first(0) != Some("0") {
            return Err(ChangeError::Refused(format!(
                "did not reach {pos} within {:?}",
                self.limits.catchup_timeout
            )));
        }
        Ok(())
    }
}

/// The server's `gtid_current_pos`, as it writes it.
async fn current_pos_text(conn: &mut BackendConn) -> Result<String, ChangeError> {
    let rows = sql::query(conn, "SELECT @@gtid_current_pos").await?;
    Ok(rows.first(0).unwrap_or_default().to_string())
}

async fn current_pos(conn: &mut BackendConn) -> Result<GtidPos, ChangeError> {
    GtidPos::parse(&current_pos_text(conn).await?).map_err(ChangeError::Refused)
}
