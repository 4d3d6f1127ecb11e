//! `failover.auto_rejoin`: a server a topology change left behind (the rule is in
//! [`super::left_behind`]) becomes a replica of the writer again, as MaxScale's `auto_rejoin` does,
//! so that the database layer has its standby back without an operator.
//!
//! Only when that cannot lose or mix up anything: the server is read-only, and every GTID of
//! its `gtid_current_pos` (its last transaction in each domain) is in the writer's binary log
//! (`gtid_binlog_state`). An old writer that committed a transaction no replica received has a
//! GTID the writer lacks; it is left as it is (fenced) with the GTIDs named in the log, for an
//! operator to examine. Replication then starts from the server's `current_pos`, which is
//! where an old writer's own binary log ends, with the configured replication account. Done
//! under the topology lock on the writer, so that several dbrouterd do it once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::{info, warn};

use super::gtid::BinlogState;
use super::promote::{release_lock, take_lock, Change, ChangeError};
use super::repoint::{change_master, replicate, source_address, StartFrom};
use super::semi_sync::acknowledge_as_replica;
use super::sql;
use super::state::Decision;
use super::Monitor;
use crate::config::Role;
use crate::topology::BackendNode;

/// How long after a rejoin attempt the monitor waits before it tries that server again (its
/// position unchanged): time for a rejoined server's replication to connect, and no retry
/// storm for one that cannot be rejoined.
const REJOIN_RETRY: Duration = Duration::from_secs(30);

impl Monitor {
    /// `db.rejoin backend=NAME`, by hand: the same checks and the same change as a rejoin of
    /// its own, with `auto_rejoin` on or off.
    pub(super) async fn rejoin_requested(&mut self, backend: &str) -> Result<Value, String> {
        let i = self
            .state
            .index_of(backend)
            .ok_or_else(|| format!("no backend named {backend}"))?;
        // The writer the topology names, also in a round that held writes (a second writer
        // just fenced): the rejoin connects to it and checks its binary log anyway.
        let writer = self
            .topology
            .designated()
            .cloned()
            .ok_or_else(|| "no writer is designated".to_string())?;
        if writer.index == i {
            return Err(format!("{backend} is the writer"));
        }
        let position = self
            .rejoin_one(i, &writer, "command")
            .await
            .map_err(|e| e.to_string())?;
        Ok(json!({"backend": backend, "writer": writer.name, "from": position}))
    }

    /// Makes the servers the decision found left behind replicas of the writer again, each
    /// at most once per [`REJOIN_RETRY`] unless its position changed.
    pub(super) async fn rejoin(&mut self, d: &Decision) {
        let Some(w) = d.writer else {
            return;
        };
        for &i in &d.rejoin {
            let position = self
                .state
                .last_check(i)
                .map(|c| c.gtid_current_pos.clone())
                .unwrap_or_default();
            if matches!(&self.rejoin_after[i], Some((t, p)) if Instant::now() < *t && *p == position)
            {
                continue;
            }
            let writer = self.topology.nodes[w].clone();
            if let Err(ChangeError::Busy { .. }) = self.rejoin_one(i, &writer, "monitor").await {
                // Another dbrouterd holds the lock (a change or the same rejoin): next round.
                continue;
            }
            self.rejoin_after[i] = Some((Instant::now() + REJOIN_RETRY, position));
        }
    }

    /// Rejoins backend `i` to `writer` within `switchover_timeout`, logging and counting the
    /// outcome (`by`: who asked); answers the position it replicates from. A busy lock is
    /// neither logged nor counted.
    async fn rejoin_one(
        &self,
        i: usize,
        writer: &Arc<BackendNode>,
        by: &'static str,
    ) -> Result<String, ChangeError> {
        let node = &self.topology.nodes[i];
        let change = Change {
            topology: &self.topology,
            login: &self.login,
            limits: &self.limits,
        };
        // A server that could take over acknowledges the writer's commits, when the cluster
        // runs semi-sync; the writer's side follows once it is connected (`keep_semi_sync`).
        let acknowledges = self.semi_sync_intent.is_some() && node.role != Role::Replica;
        let result = tokio::time::timeout(
            self.limits.switchover_timeout,
            change.rejoin(node, writer, acknowledges),
        )
        .await
        .unwrap_or_else(|_| Err(ChangeError::Refused("timed out".into())));
        let outcome = match &result {
            Ok(position) => {
                info!(backend = %node.name, writer = %writer.name, from = %position, by, semi_sync = acknowledges, "rejoined: replicates from the writer again");
                "ok"
            }
            Err(ChangeError::Busy { .. }) => return result,
            Err(e) => {
                warn!(backend = %node.name, writer = %writer.name, error = %e, by, "cannot rejoin");
                "failed"
            }
        };
        self.metrics
            .changes
            .with_label_values(&["rejoin", outcome])
            .inc();
        result
    }
}

impl Change<'_> {
    /// Makes `node` replicate from `writer`, as a semi-sync replica when it `acknowledges`;
    /// answers the position it starts from.
    pub(super) async fn rejoin(
        &self,
        node: &Arc<BackendNode>,
        writer: &Arc<BackendNode>,
        acknowledges: bool,
    ) -> Result<String, ChangeError> {
        let (user, password) = self
            .limits
            .replication
            .as_ref()
            .ok_or_else(|| ChangeError::Refused("no replication account configured".into()))?;
        let (host, port) = source_address(writer)?;
        let mut w = self.connect(writer).await?;
        take_lock(&mut w, writer).await?;
        let state = sql::query(&mut w, "SELECT @@gtid_binlog_state").await?;
        let state =
            BinlogState::parse(state.first(0).unwrap_or_default()).map_err(ChangeError::Refused)?;
        let mut n = self.connect(node).await?;
        let now = sql::query(
            &mut n,
            "SELECT @@global.read_only AS ro, @@gtid_current_pos AS pos",
        )
        .await?;
        if now.get(0, "ro") != Some("1") {
            return Err(ChangeError::Refused(format!(
                "{} is writable: not made a replica",
                node.name
            )));
        }
        let position = now.get(0, "pos").unwrap_or_default().to_string();
        let missing = state.missing(&position).map_err(ChangeError::Refused)?;
        if !missing.is_empty() {
            return Err(ChangeError::Refused(format!(
                "{} holds transactions {} does not have ({}): left fenced for an operator",
                node.name,
                writer.name,
                missing.join(",")
            )));
        }
        let change = change_master(
            host,
            port,
            Some((user, password)),
            StartFrom::CurrentPos,
            self.limits.replication_ssl,
        );
        if acknowledges {
            if let Err(e) = acknowledge_as_replica(&mut n).await {
                warn!(backend = %node.name, error = %e, "the rejoined server does not acknowledge semi-synchronously");
            }
        }
        replicate(&mut n, &change).await?;
        release_lock(&mut w).await;
        Ok(position)
    }
}
