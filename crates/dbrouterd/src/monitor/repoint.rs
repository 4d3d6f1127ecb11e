//! After a promotion: every other reachable replica (and, after a switchover, the old writer)
//! replicates from the new writer, by GTID. Replicas keep their replication credentials and
//! their `slave_pos`; the old writer starts from its `current_pos` (what it binlogged itself)
//! with the configured replication account. Every `CHANGE MASTER` dbrouterd issues is written
//! by [`change_master`]; with `failover.replication_ssl` it asks for TLS (`MASTER_SSL=1`).

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::warn;

use super::promote::{Change, ChangeError, Kind, Plan};
use super::sql::{self, quote};
use crate::pool::BackendConn;
use crate::topology::BackendNode;

impl Change<'_> {
    /// Points every other reachable replica (and, after a switchover, the old writer) at the
    /// new writer by GTID. Best effort: a replica that cannot be repointed is reported.
    pub(super) async fn repoint(&self, plan: &Plan, to: &Arc<BackendNode>) -> Value {
        let (host, port) = match source_address(to) {
            Ok(address) => address,
            Err(e) => return json!({"error": e.to_string()}),
        };
        let mut out = serde_json::Map::new();
        for node in &self.topology.nodes {
            if node.index == to.index {
                continue;
            }
            let is_old = Some(node.index) == plan.from;
            let change = if is_old {
                let Some((user, password)) = self.limits.replication.as_ref() else {
                    continue;
                };
                if plan.kind != Kind::Switchover {
                    continue;
                }
                change_master(
                    host,
                    port,
                    Some((user, password)),
                    StartFrom::CurrentPos,
                    self.limits.replication_ssl,
                )
            } else {
                change_master(
                    host,
                    port,
                    None,
                    StartFrom::SlavePos,
                    self.limits.replication_ssl,
                )
            };
            let result = async {
                let mut conn = self.connect(node).await?;
                replicate(&mut conn, &change).await
            }
            .await;
            let outcome = match result {
                Ok(()) => "repointed".to_string(),
                Err(e) => {
                    warn!(backend = %node.name, error = %e, "cannot repoint to the new writer");
                    format!("failed: {e}")
                }
            };
            out.insert(node.name.clone(), json!(outcome));
        }
        Value::Object(out)
    }
}

/// `node`'s host and port, as a replica's `CHANGE MASTER` names its source.
pub(super) fn source_address(node: &BackendNode) -> Result<(&str, u16), ChangeError> {
    node.host_port()
        .ok_or_else(|| ChangeError::Refused(format!("cannot split address {}", node.address)))
}

/// Where a server's replication starts on its new source (`MASTER_USE_GTID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StartFrom {
    /// `slave_pos`: what a replica applied.
    SlavePos,
    /// `current_pos`: also what the server binlogged itself, as an old writer did.
    CurrentPos,
}

/// `CHANGE MASTER` to `host:port` by GTID. Without `account` the server keeps its replication
/// credentials; options not named (`MASTER_SSL` when `ssl` is off among them) keep their
/// values.
pub(super) fn change_master(
    host: &str,
    port: u16,
    account: Option<(&str, &str)>,
    from: StartFrom,
    ssl: bool,
) -> String {
    let mut change = format!(
        "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={port}",
        quote(host)
    );
    if let Some((user, password)) = account {
        change += &format!(
            ", MASTER_USER={}, MASTER_PASSWORD={}",
            quote(user),
            quote(password)
        );
    }
    if ssl {
        change += ", MASTER_SSL=1";
    }
    change += match from {
        StartFrom::SlavePos => ", MASTER_USE_GTID=slave_pos",
        StartFrom::CurrentPos => ", MASTER_USE_GTID=current_pos",
    };
    change
}

/// Restarts the server's replication under `change` (a `CHANGE MASTER` statement).
pub(super) async fn replicate(conn: &mut BackendConn, change: &str) -> Result<(), ChangeError> {
    sql::execute(conn, "STOP SLAVE").await?;
    sql::execute(conn, change).await?;
    sql::execute(conn, "START SLAVE").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_master_names_what_it_changes_and_keeps_the_rest() {
        assert_eq!(
            change_master("db2", 3306, None, StartFrom::SlavePos, false),
            "CHANGE MASTER TO MASTER_HOST='db2', MASTER_PORT=3306, MASTER_USE_GTID=slave_pos"
        );
        assert_eq!(
            change_master(
                "10.0.1.12",
                3307,
                Some(("repl", "it's")),
                StartFrom::CurrentPos,
                true
            ),
            "CHANGE MASTER TO MASTER_HOST='10.0.1.12', MASTER_PORT=3307, MASTER_USER='repl', \
             MASTER_PASSWORD='it''s', MASTER_SSL=1, MASTER_USE_GTID=current_pos"
        );
    }
}
