//! Topology changes, the I/O half: switchover (planned, zero lost transactions) and failover
//! (the writer is gone). Both end with the standby writable, recorded as writer at a new epoch
//! in its `ha.topology`, the replicas repointed to it by GTID, and only then writes sent there.
//!
//! Switchover: hold new writes, wait for transactions open on the old writer to finish, make
//! the old writer read-only, wait until the standby has applied the old writer's last GTID
//! (`MASTER_GTID_WAIT`), promote, repoint the replicas and the old writer. Any step failing
//! before the promotion puts the old writer back (read_only=0) and writes resume there.
//!
//! Failover: hold writes, fence the old writer where it still answers, wait until the standby
//! has applied everything it received (`gtid_slave_pos` covers `Gtid_IO_Pos`, or its SQL thread
//! reports the relay log read), take from the most advanced replica what it received and the
//! standby did not (`catch_up`), promote, repoint the replicas.
//!
//! The decision is taken once among several dbrouterd instances: the promotion runs under the
//! named lock `dbrouterd.topology` on the candidate, and re-reads the candidate's epoch under
//! it; an instance that finds a newer epoch there gives up and follows it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::{info, warn};

use super::gtid::GtidPos;
use super::probe::replication;
use super::sql::{self, quote, SqlError};
use crate::pool::{BackendConn, Login};
use crate::topology::{BackendNode, Topology};

const LOCK: &str = "'dbrouterd.topology'";

/// Takes the topology lock on `node` over `conn` (held until released or the connection
/// closes); `Busy` when another dbrouterd holds it.
pub(super) async fn take_lock(
    conn: &mut BackendConn,
    node: &BackendNode,
) -> Result<(), ChangeError> {
    let got = sql::query(conn, &format!("SELECT GET_LOCK({LOCK}, 0)")).await?;
    if got.first(0) != Some("1") {
        return Err(ChangeError::Busy {
            backend: node.name.clone(),
        });
    }
    Ok(())
}

/// Releases the topology lock taken over `conn`; best effort (closing it releases it too).
pub(super) async fn release_lock(conn: &mut BackendConn) {
    let _ = sql::execute(conn, &format!("DO RELEASE_LOCK({LOCK})")).await;
}
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Switchover,
    Failover,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Switchover => "switchover",
            Kind::Failover => "failover",
        }
    }
}

/// A topology change to carry out.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kind: Kind,
    pub from: Option<usize>,
    pub to: usize,
    pub epoch: u64,
}

/// What the change may take and needs.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    pub switchover_timeout: Duration,
    pub catchup_timeout: Duration,
    pub fence_old_writer: bool,
    pub replication: Option<(String, String)>,
    /// `MASTER_SSL=1` in every `CHANGE MASTER` dbrouterd issues.
    pub replication_ssl: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error("{0}")]
    Refused(String),
    #[error("another dbrouterd is changing the topology (lock held on {backend})")]
    Busy { backend: String },
    #[error("{backend} already records epoch {epoch}: following it")]
    Superseded { backend: String, epoch: u64 },
}

pub struct Change<'a> {
    pub topology: &'a Arc<Topology>,
    pub login: &'a Login,
    pub limits: &'a Limits,
}

impl Change<'_> {
    fn node(&self, index: usize) -> Result<Arc<BackendNode>, ChangeError> {
        self.topology
            .nodes
            .get(index)
            .cloned()
            .ok_or_else(|| ChangeError::Refused(format!("no backend #{index}")))
    }

    pub(super) async fn connect(
        &self,
        node: &Arc<BackendNode>,
    ) -> Result<BackendConn, ChangeError> {
        let mut conn = BackendConn::connect(node.clone(), self.login, self.limits.timeout)
            .await
            .map_err(SqlError::from)?;
        // SET GLOBAL read_only waits for a global lock: never for the server's default of a
        // day, whatever holds it.
        let wait = self.limits.switchover_timeout.as_secs().max(1);
        sql::execute(
            &mut conn,
            &format!("SET SESSION lock_wait_timeout = {wait}"),
        )
        .await?;
        Ok(conn)
    }

    /// Carries out `plan`; on success the new writer takes writes.
    pub async fn run(&self, plan: &Plan) -> Result<Value, ChangeError> {
        let started = Instant::now();
        let to = self.node(plan.to)?;
        let from = plan.from.map(|i| self.node(i)).transpose()?;
        info!(kind = plan.kind.name(), from = ?from.as_ref().map(|n| &n.name), to = %to.name, epoch = plan.epoch, "topology change starts");
        self.topology.set_writer(None);
        let result = match plan.kind {
            Kind::Switchover => self
                .switchover(from.as_ref(), &to, plan.epoch)
                .await
                .map(|()| None),
            Kind::Failover => self.failover(from.as_ref(), &to, plan.epoch).await,
        };
        match &result {
            Ok(_) => {
                info!(kind = plan.kind.name(), to = %to.name, epoch = plan.epoch, took = ?started.elapsed(), "new writer takes writes")
            }
            Err(e) => {
                warn!(kind = plan.kind.name(), to = %to.name, error = %e, "topology change failed")
            }
        }
        let caught_up = result?;
        // A switchover moves semi-sync with the writer, when the old writer is repointed.
        let semi_sync = match (plan.kind, &from, &self.limits.replication) {
            (Kind::Switchover, Some(old), Some(_)) => self.demote_semi_sync(old).await,
            _ => None,
        };
        let repointed = self.repoint(plan, &to).await;
        let semi_sync = match semi_sync {
            Some(settings) => match self.enable_semi_sync(settings, &to).await {
                Ok(()) => json!("moved"),
                Err(e) => json!(format!("failed: {e}")),
            },
            None => Value::Null,
        };
        Ok(json!({
            "kind": plan.kind.name(),
            "from": from.map(|n| n.name.clone()),
            "writer": to.name,
            "epoch": plan.epoch,
            "caught_up": caught_up,
            "repointed": repointed,
            "semi_sync": semi_sync,
            "took_ms": started.elapsed().as_millis() as u64,
        }))
    }

    async fn switchover(
        &self,
        from: Option<&Arc<BackendNode>>,
        to: &Arc<BackendNode>,
        epoch: u64,
    ) -> Result<(), ChangeError> {
        let from = from.ok_or_else(|| ChangeError::Refused("no current writer".into()))?;
        let deadline = Instant::now() + self.limits.switchover_timeout;
        let fenced = async {
            // Transactions already open on the old writer, and writes already sent there,
            // finish there.
            while self.topology.busy(from.index) > 0 {
                if Instant::now() >= deadline {
                    return Err(ChangeError::Refused(format!(
                        "transactions or writes still running on {} after {:?}",
                        from.name, self.limits.switchover_timeout
                    )));
                }
                tokio::time::sleep(POLL).await;
            }
            let mut old = self.connect(from).await?;
            sql::execute(&mut old, "SET GLOBAL read_only = 1").await?;
            Ok(old)
        }
        .await;
        let mut old = match fenced {
            Ok(old) => old,
            Err(e) => {
                self.topology.set_writer(Some(from.index));
                return Err(e);
            }
        };
        let result = self
            .catch_up_and_promote(&mut old, to, epoch, deadline)
            .await;
        if result.is_err() {
            if let Err(e) = sql::execute(&mut old, "SET GLOBAL read_only = 0").await {
                warn!(backend = %from.name, error = %e, "cannot make the old writer writable again");
            }
            self.topology.set_writer(Some(from.index));
        }
        result
    }

    /// Switchover, once the old writer is read-only: the standby applies its last GTID, then
    /// is promoted.
    async fn catch_up_and_promote(
        &self,
        old: &mut BackendConn,
        to: &Arc<BackendNode>,
        epoch: u64,
        deadline: Instant,
    ) -> Result<(), ChangeError> {
        let last = sql::query(old, "SELECT @@gtid_binlog_pos").await?;
        let last = last.first(0).unwrap_or_default().to_string();
        let mut new = self.lock(to, epoch).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = format!(
            "SELECT MASTER_GTID_WAIT({}, {:.3})",
            quote(&last),
            left.as_secs_f64().max(0.1)
        );
        let waited = sql::query(&mut new, &wait).await?;
        if waited.first(0) != Some("0") {
            return Err(ChangeError::Refused(format!(
                "{} did not reach {last} within {:?}",
                to.name, self.limits.switchover_timeout
            )));
        }
        self.promote(&mut new, to, epoch).await
    }

    /// What the standby took from a replica that was ahead of it, when one was.
    async fn failover(
        &self,
        from: Option<&Arc<BackendNode>>,
        to: &Arc<BackendNode>,
        epoch: u64,
    ) -> Result<Option<Value>, ChangeError> {
        // Fence the old writer where it still answers, and learn what it has binlogged: the
        // standby must have that too before it takes over.
        let mut fenced: Option<(BackendConn, String)> = None;
        if let (Some(from), true) = (from, self.limits.fence_old_writer) {
            match self.connect(from).await {
                Ok(mut old) => match sql::execute(&mut old, "SET GLOBAL read_only = 1").await {
                    Ok(()) => {
                        info!(backend = %from.name, "old writer fenced (read_only=1)");
                        let pos = sql::query(&mut old, "SELECT @@gtid_binlog_pos").await;
                        let pos = pos.ok().and_then(|r| r.first(0).map(str::to_string));
                        fenced = Some((old, pos.unwrap_or_default()));
                    }
                    Err(e) => {
                        warn!(backend = %from.name, error = %e, "cannot fence the old writer")
                    }
                },
                Err(e) => {
                    info!(backend = %from.name, error = %e, "old writer unreachable: not fenced")
                }
            }
        }
        let result = async {
            let mut new = self.lock(to, epoch).await?;
            if let Some((_, last)) = fenced.as_ref().filter(|(_, last)| !last.is_empty()) {
                let wait = format!(
                    "SELECT MASTER_GTID_WAIT({}, {:.3})",
                    quote(last),
                    self.limits.catchup_timeout.as_secs_f64()
                );
                if sql::query(&mut new, &wait).await?.first(0) != Some("0") {
                    return Err(ChangeError::Refused(format!(
                        "{} did not reach the old writer's {last} within {:?}",
                        to.name, self.limits.catchup_timeout
                    )));
                }
            }
            self.drain_relay_log(&mut new, to).await?;
            let caught_up = self
                .catch_up_from_replicas(&mut new, to, from.map(|n| n.index))
                .await;
            self.promote(&mut new, to, epoch).await?;
            Ok(caught_up)
        }
        .await;
        if let (Err(_), Some((mut old, _)), Some(from)) = (&result, fenced, from) {
            // The old writer still answers: it keeps the writes rather than nobody.
            if let Err(e) = sql::execute(&mut old, "SET GLOBAL read_only = 0").await {
                warn!(backend = %from.name, error = %e, "cannot make the old writer writable again");
            }
            self.topology.set_writer(Some(from.index));
        }
        result
    }

    /// Connects to the candidate, takes the topology lock there and checks that nobody has
    /// recorded our epoch (or a newer one) already.
    async fn lock(&self, to: &Arc<BackendNode>, epoch: u64) -> Result<BackendConn, ChangeError> {
        let mut new = self.connect(to).await?;
        take_lock(&mut new, to).await?;
        match sql::query(&mut new, "SELECT epoch FROM ha.topology WHERE id = 1").await {
            Ok(rows) => {
                if let Some(seen) = rows.first(0).and_then(|e| e.parse::<u64>().ok()) {
                    if seen >= epoch {
                        return Err(ChangeError::Superseded {
                            backend: to.name.clone(),
                            epoch: seen,
                        });
                    }
                }
            }
            Err(e) if e.code().is_some() => {} // no ha.topology yet
            Err(e) => return Err(e.into()),
        }
        Ok(new)
    }

    /// Waits until the candidate has applied every transaction it received.
    async fn drain_relay_log(
        &self,
        new: &mut BackendConn,
        to: &Arc<BackendNode>,
    ) -> Result<(), ChangeError> {
        let deadline = Instant::now() + self.limits.catchup_timeout;
        loop {
            let status = sql::query(new, "SHOW SLAVE STATUS").await?;
            let Some(r) = replication(&status) else {
                return Ok(()); // not a replica: nothing to apply
            };
            let applied = sql::query(new, "SELECT @@gtid_slave_pos").await?;
            let applied = GtidPos::parse(applied.first(0).unwrap_or_default());
            let received = GtidPos::parse(&r.gtid_io_pos);
            let state = status
                .get(0, "Slave_SQL_Running_State")
                .unwrap_or_default()
                .to_string();
            if let (Ok(applied), Ok(received)) = (&applied, &received) {
                if applied.covers(received) {
                    return Ok(());
                }
            }
            if state.contains("read all relay log") {
                return Ok(());
            }
            if !r.sql_running || Instant::now() >= deadline {
                return Err(ChangeError::Refused(format!(
                    "{} has not applied everything it received ({}; SQL thread {}) within {:?}",
                    to.name,
                    r.gtid_io_pos,
                    if r.sql_running { "running" } else { "stopped" },
                    self.limits.catchup_timeout
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops replication on the candidate, records the epoch, makes it writable and confirms
    /// it; then the data path sends writes there.
    async fn promote(
        &self,
        new: &mut BackendConn,
        to: &Arc<BackendNode>,
        epoch: u64,
    ) -> Result<(), ChangeError> {
        // Replication stops for good; its configuration is removed once the promotion holds.
        sql::execute(new, "STOP SLAVE").await?;
        let promoted = async {
            for statement in [
                "CREATE TABLE IF NOT EXISTS ha.topology (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, \
                 epoch BIGINT UNSIGNED NOT NULL, writer VARCHAR(64) NOT NULL, \
                 changed_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
                    .to_string(),
                format!(
                    "REPLACE INTO ha.topology (id, epoch, writer, changed_at) VALUES (1, {epoch}, {}, NOW(6))",
                    quote(&to.name)
                ),
                "SET GLOBAL read_only = 0".to_string(),
            ] {
                sql::execute(new, &statement).await?;
            }
            let ro = sql::query(new, "SELECT @@global.read_only").await?;
            if ro.first(0) != Some("0") {
                return Err(ChangeError::Refused(format!(
                    "{} still reports read_only after the promotion",
                    to.name
                )));
            }
            Ok(())
        }
        .await;
        if let Err(e) = promoted {
            // Back to a read-only standby replicating as before.
            for undo in ["SET GLOBAL read_only = 1", "START SLAVE"] {
                if let Err(u) = sql::execute(new, undo).await {
                    warn!(backend = %to.name, error = %u, "cannot undo a failed promotion");
                }
            }
            return Err(e);
        }
        // The stopped configuration points at the old writer, or after a catch-up at a
        // replica: nobody's `START SLAVE` on the writer may follow it. Needs RELOAD.
        if let Err(e) = sql::execute(new, "RESET SLAVE ALL").await {
            warn!(backend = %to.name, error = %e, "the promoted server keeps its stopped replication configuration (RESET SLAVE ALL needs the RELOAD privilege for the monitor account)");
        }
        release_lock(new).await;
        self.topology.designate(to.index, epoch);
        self.topology.set_writer(Some(to.index));
        Ok(())
    }
}
