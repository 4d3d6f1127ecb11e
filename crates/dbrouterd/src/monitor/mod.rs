//! The monitor: checks every backend at `monitor.interval` over its own connection and keeps
//! the [`Topology`]'s live view true — which backends read, which one takes writes — and
//! carries out topology changes: automatic failover when the writer is confirmed dead,
//! `db.switchover` and `db.failover` from the control channel, fencing a second writer.
//!
//! Layout: [`probe`] runs one check (I/O) into a [`check::Check`]; [`check`] judges a reader
//! (pure); [`state`] turns a round of checks into a [`state::Decision`] (pure: rise/fall,
//! epochs, conflicts, when to fail over); [`promote`] carries out a switchover or failover
//! (I/O) and [`repoint`] the replicas after it; [`left_behind`] finds the servers a change left
//! behind (pure) and `rejoin` brings them back (`auto_rejoin`); [`gtid`] compares GTID positions; [`sql`] is the monitor's small SQL client;
//! [`metrics`] what it exports; [`settings`] what it takes from the file (again at a reload).
//!
//! Rounds and changes run on one task, so a change never races a round's decision: while a
//! change runs, writes are held ([`Topology::set_writer`] `None`) and resume when the new
//! writer is confirmed writable.
//!
//! A reload stores a new [`Config`] in the pointer the monitor was given; before each round
//! the monitor takes up its interval, timeout, rise/fall, lag limit and failover settings
//! (`Monitor::follow_reload`). Its login and the backends are fixed at start: a reload that
//! changes them is refused ([`crate::config::change`]).

mod catch_up;
pub mod check;
pub mod gtid;
pub mod left_behind;
pub mod metrics;
pub mod probe;
pub mod promote;
mod rejoin;
pub mod repoint;
mod semi_sync;
pub mod settings;
pub mod sql;
pub mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::listener::Shared;
use crate::pool::{BackendConn, Login};
use crate::topology::{Observed, Topology};
use check::Check;
use metrics::MonitorMetrics;
use probe::Prober;
use promote::{Change, Kind, Limits, Plan};
use semi_sync::{Keep, SemiSyncIntent};
use settings::{limits_of, settings_of, ticker};
use state::{Decision, MonitorState, NodeSpec};

/// How long after a failed attempt the monitor tries again to turn the writer's semi-sync on.
const SEMI_SYNC_RETRY: Duration = Duration::from_secs(30);

/// What the control channel asks the monitor for.
pub enum Requested {
    /// A switchover or failover to `to` (`None`: the eligible standby that received the most).
    Change { kind: Kind, to: Option<String> },
    /// Make `backend` a replica of the writer (`db.rejoin`).
    Rejoin { backend: String },
}

/// A request from the control channel, with where its answer goes.
pub struct ChangeRequest {
    pub what: Requested,
    pub reply: oneshot::Sender<Result<Value, String>>,
}

/// The control channel's handle on the monitor.
#[derive(Clone)]
pub struct MonitorHandle {
    tx: mpsc::Sender<ChangeRequest>,
}

impl MonitorHandle {
    /// Asks for a switchover or failover, or a rejoin, and waits for its outcome.
    pub async fn request(&self, what: Requested) -> Result<Value, String> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(ChangeRequest { what, reply })
            .await
            .map_err(|_| "the monitor is not running".to_string())?;
        answer
            .await
            .map_err(|_| "the monitor stopped before answering".to_string())?
    }
}

pub struct Monitor {
    shared: Arc<Shared>,
    /// The running configuration, swapped by reloads.
    config: Arc<ArcSwap<Config>>,
    /// The configuration whose settings the monitor runs with.
    applied: Arc<Config>,
    topology: Arc<Topology>,
    probers: Vec<Option<Prober>>,
    state: MonitorState,
    login: Login,
    limits: Limits,
    interval: Duration,
    metrics: MonitorMetrics,
    queries_seen: Vec<(u64, Instant)>,
    /// The writer's semi-sync as last logged (`None`: nothing logged yet).
    semi_sync_logged: Option<bool>,
    /// The semi-sync settings the writer ran with, for the writer after a failover.
    semi_sync_intent: Option<SemiSyncIntent>,
    /// After a failed attempt to turn the writer's semi-sync on: not again before then.
    semi_sync_retry_at: Option<Instant>,
    /// Per backend, after a rejoin attempt: until when not to try again, unless its GTID
    /// position (the second) changes first, as when an operator resolved what stopped it.
    rejoin_after: Vec<Option<(Instant, String)>>,
}

/// The monitor's login: the monitor account, plain protocol.
pub fn monitor_login(user: &str, password: String) -> Login {
    Login {
        user: user.to_string(),
        secret: crate::users::BackendSecret::Password(password.into_bytes()),
        caps: crate::protocol::Capabilities::empty(),
        charset: crate::session::handshake::DEFAULT_CHARSET,
        init_sql: None,
    }
}

impl Monitor {
    pub fn new(
        config: Arc<ArcSwap<Config>>,
        password: String,
        shared: Arc<Shared>,
        metrics: MonitorMetrics,
    ) -> Self {
        let applied = config.load_full();
        let m = &applied.monitor;
        let login = monitor_login(&m.user, password);
        let topology = shared.topology.clone();
        let probers = topology
            .nodes
            .iter()
            .map(|n| Some(Prober::new(n.clone(), login.clone(), m.timeout.get())))
            .collect();
        let state = MonitorState::new(
            settings_of(&applied),
            applied
                .backends
                .iter()
                .map(|b| NodeSpec {
                    name: b.name.clone(),
                    role: b.role,
                    address: b.address.clone(),
                })
                .collect(),
        );
        topology.start_monitoring();
        let now = Instant::now();
        Monitor {
            queries_seen: topology.nodes.iter().map(|_| (0, now)).collect(),
            rejoin_after: topology.nodes.iter().map(|_| None).collect(),
            semi_sync_logged: None,
            semi_sync_intent: None,
            semi_sync_retry_at: None,
            shared,
            topology,
            probers,
            state,
            login,
            limits: limits_of(&applied),
            interval: m.interval.get(),
            metrics,
            config,
            applied,
        }
    }

    /// Runs the first round now (so the data path starts with a checked view), then the loop
    /// in the background.
    pub async fn spawn(mut self, shutdown: CancellationToken) -> MonitorHandle {
        self.round().await;
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(self.run(rx, shutdown));
        MonitorHandle { tx }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<ChangeRequest>, shutdown: CancellationToken) {
        let mut tick = ticker(self.interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(request) = rx.recv() => {
                    let answer = match request.what {
                        Requested::Change { kind, to } => self.requested(kind, to).await,
                        Requested::Rejoin { backend } => self.rejoin_requested(&backend).await,
                    };
                    let _ = request.reply.send(answer);
                }
                _ = tick.tick() => {
                    if self.follow_reload() {
                        tick = ticker(self.interval);
                    }
                    self.round().await
                }
            }
        }
    }

    /// Checks every backend at once and applies the decision.
    async fn round(&mut self) {
        let designated = self.state.designated;
        let mut set = JoinSet::new();
        for (i, slot) in self.probers.iter_mut().enumerate() {
            if let Some(mut prober) = slot.take() {
                set.spawn(async move {
                    let check = prober.check(Some(i) == designated).await;
                    (i, prober, check)
                });
            }
        }
        let mut checks: Vec<Check> = vec![Check::failed("not checked"); self.probers.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((i, prober, check)) = joined {
                if let Some(version) = prober.server_version() {
                    self.shared.learn_server_version(version);
                }
                self.probers[i] = Some(prober);
                checks[i] = check;
            }
        }
        for (i, slot) in self.probers.iter_mut().enumerate() {
            if slot.is_none() {
                // A check task panicked: start over with a fresh connection.
                let node = self.topology.nodes[i].clone();
                *slot = Some(Prober::new(node, self.login.clone(), self.limits.timeout));
            }
        }
        let decision = self.state.observe(checks);
        self.apply(&decision).await;
        self.keep_semi_sync(decision.writer).await;
        if let Some((from, to)) = decision.failover {
            let plan = Plan {
                kind: Kind::Failover,
                from: Some(from),
                to,
                epoch: self.state.next_epoch(),
            };
            let _ = self.change(plan).await;
        } else {
            self.rejoin(&decision).await;
        }
    }

    /// Makes the data path follow a round's decision.
    async fn apply(&mut self, d: &Decision) {
        if let Some((writer, epoch)) = d.followed {
            info!(writer = %self.topology.nodes[writer].name, epoch, "following a newer topology epoch");
            self.topology.designate(writer, epoch);
        }
        self.metrics.epoch.set(self.state.epoch as i64);
        if !d.conflict.is_empty() {
            let names: Vec<&str> = d
                .conflict
                .iter()
                .map(|&i| self.topology.nodes[i].name.as_str())
                .collect();
            warn!(others = ?names, "more than one server claims to be the writer: writes refused");
        }
        self.topology.set_writer(d.writer);
        for (i, verdict) in d.nodes.iter().enumerate() {
            let node = &self.topology.nodes[i];
            let check = self.state.last_check(i).cloned().unwrap_or_default();
            if node.is_readable_by_monitor() != verdict.readable {
                info!(backend = %node.name, readable = verdict.readable, state = verdict.state, reason = ?verdict.reason, "read rotation changed");
            }
            node.set_readable(verdict.readable);
            if check.is_reachable() {
                node.record_connect(true);
            }
            let (total, at) = self.queries_seen[i];
            let now_total = self.shared.stats.backend_queries(i);
            let secs = at.elapsed().as_secs_f64().max(0.001);
            let qps = now_total.saturating_sub(total) as f64 / secs;
            self.queries_seen[i] = (now_total, Instant::now());
            node.set_observed(Observed {
                state: verdict.state.to_string(),
                reason: verdict.reason.clone(),
                read_only: check.is_reachable().then_some(check.read_only),
                lag_ms: verdict.lag_ms,
                gtid_current_pos: check.gtid_current_pos.clone(),
                gtid_slave_pos: check.gtid_slave_pos.clone(),
                replicating_from: check.replication.as_ref().map(|r| r.master.clone()),
                queries_per_second: (qps * 10.0).round() / 10.0,
                semi_sync: check.semi_sync,
            });
            self.metrics.backend(
                &node.name,
                check.is_reachable(),
                verdict.readable,
                d.writer == Some(i),
                verdict.lag_ms,
                qps,
            );
        }
        self.watch_semi_sync(d.writer);
        for &i in &d.fence {
            let node = self.topology.nodes[i].clone();
            let fence = async {
                let mut conn = BackendConn::connect(node.clone(), &self.login, self.limits.timeout)
                    .await
                    .map_err(|e| e.to_string())?;
                sql::execute(&mut conn, "SET GLOBAL read_only = 1")
                    .await
                    .map_err(|e| e.to_string())
            };
            let fenced = tokio::time::timeout(self.limits.switchover_timeout, fence)
                .await
                .unwrap_or_else(|_| Err("timed out".to_string()));
            match fenced {
                Ok(()) => info!(backend = %node.name, "second writer fenced (read_only=1)"),
                Err(e) => warn!(backend = %node.name, error = %e, "cannot fence a second writer"),
            }
        }
    }

    /// Warns (once per change) while the writer's commits do not wait for a semi-synchronous
    /// replica although a standby is configured: a failover may then lose acknowledged writes.
    fn watch_semi_sync(&mut self, writer: Option<usize>) {
        let semi_sync = writer.and_then(|w| self.state.last_check(w)?.semi_sync);
        self.metrics
            .writer_semi_sync
            .set(semi_sync.map_or(-1, |s| i64::from(s.active)));
        let (Some(w), Some(s)) = (writer, semi_sync) else {
            return;
        };
        let has_standby = self
            .topology
            .nodes
            .iter()
            .any(|n| n.index != w && matches!(n.role, crate::config::Role::Standby));
        if !has_standby || self.semi_sync_logged == Some(s.active) {
            return;
        }
        let writer = &self.topology.nodes[w].name;
        if s.active {
            info!(writer = %writer, clients = s.clients, "writer's commits wait for a semi-synchronous replica");
        } else {
            warn!(writer = %writer, "writer's replication is asynchronous (Rpl_semi_sync_master_status OFF): a failover may lose the last acknowledged writes; enable rpl_semi_sync_master_enabled (wait point AFTER_SYNC) on the writer and rpl_semi_sync_slave_enabled on the standby");
        }
        self.semi_sync_logged = Some(s.active);
    }

    /// After a failover, turns semi-sync on at the new writer once a replica acknowledges
    /// ([`semi_sync::keep`]).
    async fn keep_semi_sync(&mut self, writer: Option<usize>) {
        let Some(w) = writer else {
            return;
        };
        let seen = self.state.last_check(w).and_then(|c| c.semi_sync);
        let Keep::Enable(settings) = semi_sync::keep(&mut self.semi_sync_intent, w, seen) else {
            return;
        };
        if self.semi_sync_retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let change = Change {
            topology: &self.topology,
            login: &self.login,
            limits: &self.limits,
        };
        let writer = self.topology.nodes[w].clone();
        let done = tokio::time::timeout(
            self.limits.switchover_timeout,
            change.enable_semi_sync(settings, &writer),
        )
        .await;
        // A refusal (no REPLICATION MASTER ADMIN) is logged once per retry, not every round.
        self.semi_sync_retry_at = match done {
            Ok(Ok(())) => None,
            _ => Some(Instant::now() + SEMI_SYNC_RETRY),
        };
    }

    /// `db.switchover` / `db.failover`.
    async fn requested(&mut self, kind: Kind, to: Option<String>) -> Result<Value, String> {
        let from = self.state.designated;
        let to = match to {
            Some(name) => self
                .state
                .index_of(&name)
                .ok_or_else(|| format!("no backend named {name}"))?,
            None => self.state.candidate(from).ok_or_else(|| {
                "no standby is reachable and replicating to take over".to_string()
            })?,
        };
        if Some(to) == from {
            return Err(format!(
                "{} is already the writer",
                self.topology.nodes[to].name
            ));
        }
        let plan = Plan {
            kind,
            from,
            to,
            epoch: self.state.next_epoch(),
        };
        self.change(plan).await
    }

    async fn change(&mut self, plan: Plan) -> Result<Value, String> {
        let started = Instant::now();
        let change = Change {
            topology: &self.topology,
            login: &self.login,
            limits: &self.limits,
        };
        let result = change.run(&plan).await;
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.metrics
            .changes
            .with_label_values(&[plan.kind.name(), outcome])
            .inc();
        match result {
            Ok(report) => {
                self.state.promoted(plan.to, plan.epoch);
                self.metrics.epoch.set(plan.epoch as i64);
                self.metrics
                    .last_change_seconds
                    .set(started.elapsed().as_secs_f64());
                Ok(report)
            }
            Err(e) => {
                // Whatever happened, the next round re-reads the truth from the servers.
                Err(e.to_string())
            }
        }
    }
}

/// Status of the topology as a whole.
pub fn topology_status(topology: &Topology) -> Value {
    json!({
        "epoch": topology.epoch(),
        "writer": topology.writer().map(|w| w.name.clone()),
        "designated_writer": topology.designated().map(|w| w.name.clone()),
        "monitored": topology.is_monitored(),
    })
}
