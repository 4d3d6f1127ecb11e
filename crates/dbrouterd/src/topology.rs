//! The servers dbrouterd knows and what it currently believes about them: the static view from
//! the configuration (name, address, configured role) plus the live view the monitor keeps up to
//! date (reachable, readable, writable, lag, GTID positions) and the topology's current writer
//! and epoch.
//!
//! The hot path only reads atomics: [`Topology::writer`] (the one backend that may take writes
//! now, `None` while none is confirmed writable or during a topology change) and
//! [`BackendNode::can_read`]. The monitor ([`crate::monitor`]) is the only writer of the live
//! view; without a monitor password configured there is no monitor and the static view holds
//! (the first configured writer takes writes, every reachable backend reads).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use rustls::pki_types::ServerName;

use crate::config::{Config, Role};
use crate::tls::backend::{server_name, BackendTls};

/// After a failed connect a backend is skipped for this long, then tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// No writer: the value of [`Topology`]'s writer slot while none is confirmed.
const NO_WRITER: usize = usize::MAX;

/// What the monitor last saw on a backend, for status output.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// `up`, `down`, `broken`, `lagging`, `unknown`.
    pub state: String,
    /// Why the backend is not usable, when it is not.
    pub reason: Option<String>,
    pub read_only: Option<bool>,
    pub lag_ms: Option<u64>,
    pub gtid_current_pos: String,
    pub gtid_slave_pos: String,
    pub replicating_from: Option<String>,
    pub queries_per_second: f64,
    /// On the writer: its semi-synchronous replication.
    pub semi_sync: Option<crate::monitor::check::SemiSync>,
}

/// One database server.
#[derive(Debug)]
pub struct BackendNode {
    /// Index in [`Topology::nodes`], used by sessions and metrics.
    pub index: usize,
    pub name: String,
    pub address: String,
    pub role: Role,
    reachable: AtomicBool,
    /// Milliseconds since `epoch` of the last failed connect.
    failed_at_ms: AtomicU64,
    epoch: Instant,
    /// The monitor says it may serve reads (up, replicating, not lagging).
    readable: AtomicBool,
    /// Taken out of read rotation by `backend.drain`.
    drained: AtomicBool,
    /// Backend connections open (pooled and in use).
    pub open_connections: AtomicI64,
    /// Sessions currently routed to this backend (for least_conn).
    pub in_use: AtomicU64,
    /// Sessions with a transaction open on this backend (switchover waits for them).
    pub open_transactions: AtomicI64,
    /// Sessions running a statement they routed here as to the writer (switchover waits for
    /// them too; see [`Topology::busy`]).
    pub writes_in_flight: AtomicI64,
    /// The monitor's last observation.
    pub observed: Mutex<Observed>,
    /// TLS for connections to it (`backend_tls`), and the name its certificate must carry.
    pub tls: Option<Arc<BackendTls>>,
    pub tls_name: Option<ServerName<'static>>,
}

impl BackendNode {
    fn new(index: usize, b: &crate::config::Backend, tls: Option<Arc<BackendTls>>) -> Self {
        BackendNode {
            tls_name: server_name(&b.address, b.tls_name.as_deref()),
            tls,
            index,
            name: b.name.clone(),
            address: b.address.clone(),
            role: b.role,
            reachable: AtomicBool::new(true),
            failed_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            readable: AtomicBool::new(true),
            drained: AtomicBool::new(false),
            open_connections: AtomicI64::new(0),
            in_use: AtomicU64::new(0),
            open_transactions: AtomicI64::new(0),
            writes_in_flight: AtomicI64::new(0),
            observed: Mutex::new(Observed {
                state: "unknown".into(),
                ..Default::default()
            }),
        }
    }

    /// Reachable, or unreachable long enough ago to be worth another try.
    pub fn is_reachable(&self) -> bool {
        if self.reachable.load(Ordering::Relaxed) {
            return true;
        }
        let failed = Duration::from_millis(self.failed_at_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(failed) >= RETRY_AFTER
    }

    pub fn reachable_flag(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Records the outcome of a connection attempt (or of a connection lost mid-statement).
    pub fn record_connect(&self, ok: bool) {
        if !ok {
            let now = self.epoch.elapsed().as_millis() as u64;
            self.failed_at_ms.store(now, Ordering::Relaxed);
        }
        self.reachable.store(ok, Ordering::Relaxed);
    }

    /// The monitor's verdict on reads.
    pub fn set_readable(&self, readable: bool) {
        self.readable.store(readable, Ordering::Relaxed);
    }

    pub fn is_readable_by_monitor(&self) -> bool {
        self.readable.load(Ordering::Relaxed)
    }

    pub fn set_drained(&self, drained: bool) {
        self.drained.store(drained, Ordering::Relaxed);
    }

    pub fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Relaxed)
    }

    /// In read rotation: the monitor says so, not drained, and no connect just failed.
    pub fn can_read(&self) -> bool {
        self.is_readable_by_monitor() && !self.is_drained() && self.is_reachable()
    }

    pub fn observed(&self) -> Observed {
        self.observed.lock().map(|o| o.clone()).unwrap_or_default()
    }

    pub fn set_observed(&self, o: Observed) {
        if let Ok(mut slot) = self.observed.lock() {
            *slot = o;
        }
    }

    /// `host` and `port` of the address, for CHANGE MASTER TO.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.address.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some((host, port.parse().ok()?))
    }
}

/// What the balancers see of a backend.
impl ha_core::balance::Backend for BackendNode {
    fn weight(&self) -> u32 {
        1
    }
    fn is_available(&self) -> bool {
        self.can_read()
    }
    fn in_flight(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }
    fn id(&self) -> &str {
        &self.address
    }
}

/// Every configured backend, in configuration order, and who takes writes.
#[derive(Debug)]
pub struct Topology {
    pub nodes: Vec<Arc<BackendNode>>,
    /// Index of the confirmed writable writer, or [`NO_WRITER`].
    writer: AtomicUsize,
    /// The writer the topology names even while writes are held (status, default routing).
    designated: AtomicUsize,
    /// The epoch of the current topology (0: as configured, before any change).
    epoch: AtomicU64,
    /// Whether a monitor confirms the writer (otherwise the configured one is trusted).
    monitored: AtomicBool,
}

impl Topology {
    /// The configured backends, connected to with `tls` (the loaded `backend_tls`).
    pub fn from_config(config: &Config, tls: Option<Arc<BackendTls>>) -> Self {
        let nodes: Vec<Arc<BackendNode>> = config
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| Arc::new(BackendNode::new(i, b, tls.clone())))
            .collect();
        let first_writer = nodes
            .iter()
            .find(|n| n.role == Role::Writer)
            .map(|n| n.index)
            .unwrap_or(NO_WRITER);
        Topology {
            nodes,
            writer: AtomicUsize::new(first_writer),
            designated: AtomicUsize::new(first_writer),
            epoch: AtomicU64::new(0),
            monitored: AtomicBool::new(false),
        }
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<BackendNode>> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The backend that may take writes now, if any.
    pub fn writer(&self) -> Option<&Arc<BackendNode>> {
        let w = self.nodes.get(self.writer.load(Ordering::SeqCst))?;
        if self.monitored.load(Ordering::Relaxed) {
            Some(w)
        } else {
            w.is_reachable().then_some(w)
        }
    }

    /// The writer the topology names (writable or not).
    pub fn designated(&self) -> Option<&Arc<BackendNode>> {
        self.nodes.get(self.designated.load(Ordering::Acquire))
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// From now on the monitor decides; writes wait until it confirms a writer.
    pub fn start_monitoring(&self) {
        self.monitored.store(true, Ordering::Relaxed);
        self.writer.store(NO_WRITER, Ordering::SeqCst);
    }

    pub fn is_monitored(&self) -> bool {
        self.monitored.load(Ordering::Relaxed)
    }

    /// Writes go to `index` (confirmed writable), or nowhere (`None`).
    pub fn set_writer(&self, index: Option<usize>) {
        self.writer
            .store(index.unwrap_or(NO_WRITER), Ordering::SeqCst);
    }

    /// The topology names `index` the writer, at `epoch`.
    pub fn designate(&self, index: usize, epoch: u64) {
        self.designated.store(index, Ordering::Release);
        self.epoch.store(epoch, Ordering::Release);
    }

    /// Sessions with a transaction open on `index` or a write running there. Once writes are
    /// held ([`Topology::set_writer`] `None`) this only goes down: a session counts its write
    /// before it checks that the writer is still the writer, and the monitor clears the writer
    /// before it reads this (both sequentially consistent), so one of them sees the other.
    pub fn busy(&self, index: usize) -> i64 {
        self.nodes
            .get(index)
            .map(|n| {
                n.open_transactions.load(Ordering::SeqCst)
                    + n.writes_in_flight.load(Ordering::SeqCst)
            })
            .unwrap_or(0)
    }

    /// Status of every backend: configured role, current role, state, lag, GTID, connections.
    pub fn status(&self) -> Vec<Value> {
        let writer = self.writer.load(Ordering::Acquire);
        let designated = self.designated.load(Ordering::Acquire);
        self.nodes
            .iter()
            .map(|n| {
                let o = n.observed();
                let role = if n.index == designated {
                    "writer"
                } else {
                    match n.role {
                        Role::Writer | Role::Standby => "standby",
                        Role::Replica => "replica",
                    }
                };
                json!({
                    "name": n.name,
                    "address": n.address,
                    "configured_role": format!("{:?}", n.role).to_lowercase(),
                    "role": role,
                    "takes_writes": n.index == writer,
                    "state": o.state,
                    "reason": o.reason,
                    "in_read_rotation": n.can_read(),
                    "drained": n.is_drained(),
                    "reachable": n.reachable_flag(),
                    "tls": n.tls.as_ref().map_or("disabled", |t| t.mode.as_str()),
                    "read_only": o.read_only,
                    "lag_ms": o.lag_ms,
                    "gtid_current_pos": o.gtid_current_pos,
                    "gtid_slave_pos": o.gtid_slave_pos,
                    "replicating_from": o.replicating_from,
                    "connections_open": n.open_connections.load(Ordering::Relaxed),
                    "sessions_using": n.in_use.load(Ordering::Relaxed),
                    "open_transactions": n.open_transactions.load(Ordering::Relaxed),
                    "queries_per_second": o.queries_per_second,
                    "semi_sync": o.semi_sync.map(|s| json!({ "active": s.active, "clients": s.clients, "enabled": s.master.is_some() })),
                })
            })
            .collect()
    }
}
