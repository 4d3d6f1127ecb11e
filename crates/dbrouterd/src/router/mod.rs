//! The router of one logical pool (`pools.<name>`): which backend is the writer, which reader
//! takes a read, and `route.explain`.
//!
//! The per-statement decision is [`decide`] (pure, unit-tested); this module turns its
//! [`Target`] into a backend with the pool's balancing algorithm and the live view of the
//! [`Topology`](crate::topology::Topology): the topology's confirmed writer takes writes when
//! it is one of the pool's writers (while there is none, e.g. during a failover, writes wait up
//! to `failover.hold_writes` for one: [`Router::wait_writer`]); reads go to readers in rotation,
//! or to the writer when there is none (`reads_when_no_reader: writer`), or fail (`error`).
//!
//! A reload builds a new [`Router`] for every pool; sessions hold the one they started with
//! (an `Arc`), so they finish on its settings while new sessions get the new one. Routers of
//! one pool share its connection [`Pools`] across reloads where those can take the new limits.

pub mod decide;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_core::balance::{Algorithm, AnyBalancer, Balancer, PickContext};
use serde_json::{json, Value};

use crate::classify::{classify, Classification};
use crate::config::{Balance, NoReader, Pool, ReadYourWrites, Writes};
use crate::pool::Pools;
use crate::protocol::ErrPacket;
use crate::topology::{BackendNode, Topology};
pub use decide::{decide, Decision, SessionView, Target};

pub struct Router {
    pub name: String,
    pub config: Pool,
    writers: Vec<Arc<BackendNode>>,
    readers: Vec<Arc<BackendNode>>,
    topology: Arc<Topology>,
    hold_writes: Duration,
    balancer: AnyBalancer,
    pub pools: Arc<Pools>,
}

impl Router {
    pub fn new(
        name: &str,
        config: &Pool,
        topology: &Arc<Topology>,
        hold_writes: Duration,
        pools: Arc<Pools>,
    ) -> Self {
        let find = |names: &[String]| -> Vec<Arc<BackendNode>> {
            names
                .iter()
                .filter_map(|n| topology.by_name(n).cloned())
                .collect()
        };
        let algorithm = match config.balance {
            Balance::RoundRobin => Algorithm::RoundRobin,
            Balance::LeastConn => Algorithm::LeastConn,
            Balance::RandomTwo => Algorithm::RandomTwo,
        };
        Router {
            name: name.to_string(),
            config: config.clone(),
            writers: find(&config.writers),
            readers: find(&config.readers),
            topology: topology.clone(),
            hold_writes,
            balancer: algorithm.build(),
            pools,
        }
    }

    /// The backend taking writes now.
    pub fn writer(&self) -> Result<&Arc<BackendNode>, ErrPacket> {
        if self.config.writes == Writes::Refuse {
            return Err(ErrPacket::writes_refused(&self.name));
        }
        self.topology
            .writer()
            .filter(|w| self.writers.iter().any(|p| p.index == w.index))
            .ok_or_else(|| ErrPacket::no_backend(&self.name, "primary"))
    }

    pub fn hold_writes(&self) -> Duration {
        self.hold_writes
    }

    /// The writer, waiting up to `failover.hold_writes` while there is none (a failover or
    /// switchover in progress, or the monitor not yet having confirmed one).
    pub async fn wait_writer(&self) -> Result<&Arc<BackendNode>, ErrPacket> {
        let deadline = Instant::now() + self.hold_writes;
        loop {
            match self.writer() {
                Ok(w) => return Ok(w),
                Err(e) if self.config.writes == Writes::Refuse || Instant::now() >= deadline => {
                    return Err(e)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// A reader for the next read, `excluding` backend indexes already tried.
    pub fn reader(&self, excluding: &[usize]) -> Result<&Arc<BackendNode>, ErrPacket> {
        let skip: Vec<usize> = self
            .readers
            .iter()
            .enumerate()
            .filter(|(_, r)| excluding.contains(&r.index))
            .map(|(i, _)| i)
            .collect();
        let picked = self
            .balancer
            .pick(&self.readers, &PickContext::new().excluding(&skip));
        match picked.and_then(|i| self.readers.get(i)) {
            Some(r) => Ok(r),
            None if self.config.reads_when_no_reader == NoReader::Writer
                || self.readers.is_empty() =>
            {
                self.writer()
                    .map_err(|_| ErrPacket::no_backend(&self.name, "replica"))
            }
            None => Err(ErrPacket::no_backend(&self.name, "replica")),
        }
    }

    /// Where the session holds nothing yet, a connection for session commands: the writer,
    /// or a reader in a pool that takes no writes.
    pub fn default_backend(&self) -> Result<&Arc<BackendNode>, ErrPacket> {
        self.writer().or_else(|_| self.reader(&[]))
    }

    /// Whether backend `index` is one of this pool's readers.
    pub fn is_reader(&self, index: usize) -> bool {
        self.readers.iter().any(|r| r.index == index)
    }

    pub fn causal(&self) -> bool {
        self.config.read_your_writes.mode == ReadYourWrites::Causal
    }

    /// The pool's routing settings as in force for new sessions, for `status`.
    pub fn status(&self) -> Value {
        let c = &self.config;
        let names =
            |list: &[Arc<BackendNode>]| list.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        json!({
            "writers": names(&self.writers),
            "readers": names(&self.readers),
            "balance": match c.balance {
                Balance::RoundRobin => "round_robin",
                Balance::LeastConn => "least_conn",
                Balance::RandomTwo => "random_two",
            },
            "writes": if c.writes == Writes::Refuse { "refuse" } else { "allow" },
            "reads_when_no_reader": if c.reads_when_no_reader == NoReader::Writer { "writer" } else { "error" },
            "read_your_writes": match c.read_your_writes.mode {
                ReadYourWrites::Off => "off",
                ReadYourWrites::Causal => "causal",
                ReadYourWrites::WriterWindow => "writer_window",
            },
            "max_per_backend": c.connection_pool.max_per_backend,
        })
    }

    /// Answers `route.explain`: where `sql` would go from a fresh session, and by which rule.
    pub fn explain(&self, sql: &str) -> Value {
        let c: Classification = classify(sql.as_bytes());
        let d = decide(&c, &SessionView::default());
        let backend = match d.target {
            Target::Writer | Target::All => self.default_backend().map(|b| b.name.clone()),
            _ => self.reader(&[]).map(|b| b.name.clone()),
        };
        let target = match d.target {
            Target::Writer => "primary",
            Target::Reader | Target::CausalReader => "replica",
            Target::Same(_) => "same connection",
            Target::All => "every connection of the session (replayed)",
        };
        json!({
            "pool": self.name,
            "route": target,
            "rule": d.rule,
            "kind": format!("{:?}", c.kind),
            "flags": c.flags.names().collect::<Vec<_>>(),
            "backend": backend.unwrap_or_else(|e| format!("none: {}", e.message)),
        })
    }
}
