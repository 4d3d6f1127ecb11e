//! The servers dbrouterd knows and what it currently believes about them: a static view from
//! the configuration (name, address, role) plus a reachability flag the connection pools keep
//! up to date.
//!
//! This is the seam for the monitor (issue 7): it will own the role and health of each
//! [`BackendNode`] (read_only, replication state, lag, rise/fall) and the router keeps asking
//! the same questions: [`BackendNode::is_writable`] and [`BackendNode::can_read`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, Role};

/// After a failed connect a backend is skipped for this long, then tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

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
    /// Backend connections open (pooled and in use).
    pub open_connections: AtomicI64,
    /// Sessions currently routed to this backend (for least_conn).
    pub in_use: AtomicU64,
}

impl BackendNode {
    fn new(index: usize, b: &crate::config::Backend) -> Self {
        BackendNode {
            index,
            name: b.name.clone(),
            address: b.address.clone(),
            role: b.role,
            reachable: AtomicBool::new(true),
            failed_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            open_connections: AtomicI64::new(0),
            in_use: AtomicU64::new(0),
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

    /// Records the outcome of a connection attempt.
    pub fn record_connect(&self, ok: bool) {
        if !ok {
            let now = self.epoch.elapsed().as_millis() as u64;
            self.failed_at_ms.store(now, Ordering::Relaxed);
        }
        self.reachable.store(ok, Ordering::Relaxed);
    }

    /// May take writes: configured as the writer (the monitor will refine this with
    /// read_only and failover).
    pub fn is_writable(&self) -> bool {
        self.role == Role::Writer && self.is_reachable()
    }

    pub fn can_read(&self) -> bool {
        self.is_reachable()
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

/// Every configured backend, in configuration order.
#[derive(Debug)]
pub struct Topology {
    pub nodes: Vec<Arc<BackendNode>>,
}

impl Topology {
    pub fn from_config(config: &Config) -> Self {
        Topology {
            nodes: config
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| Arc::new(BackendNode::new(i, b)))
                .collect(),
        }
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<BackendNode>> {
        self.nodes.iter().find(|n| n.name == name)
    }
}
