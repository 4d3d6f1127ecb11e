//! After a promotion: every other reachable replica (and, after a switchover, the old writer)
//! replicates from the new writer, by GTID. Replicas keep their replication credentials and
//! their `slave_pos`; the old writer starts from its `current_pos` (what it binlogged itself)
//! with the configured replication account.

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
        let Some((host, port)) = to.host_port() else {
            return json!({"error": format!("cannot split address {}", to.address)});
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
                format!(
                    "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={port}, MASTER_USER={}, \
                     MASTER_PASSWORD={}, MASTER_USE_GTID=current_pos",
                    quote(host),
                    quote(user),
                    quote(password)
                )
            } else {
                by_slave_pos(host, port)
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

/// `CHANGE MASTER` to `host:port` from the server's own `gtid_slave_pos`, keeping its
/// replication credentials.
pub(super) fn by_slave_pos(host: &str, port: u16) -> String {
    format!(
        "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={port}, MASTER_USE_GTID=slave_pos",
        quote(host)
    )
}

/// Restarts the server's replication under `change` (a `CHANGE MASTER` statement).
pub(super) async fn replicate(conn: &mut BackendConn, change: &str) -> Result<(), ChangeError> {
    sql::execute(conn, "STOP SLAVE").await?;
    sql::execute(conn, change).await?;
    sql::execute(conn, "START SLAVE").await?;
    Ok(())
}
