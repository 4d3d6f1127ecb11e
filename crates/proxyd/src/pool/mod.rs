//! Pools of servers: who gets the next request or connection.
//!
//! A [`Pool`] holds its primary and backup [`Server`]s, one ha-core balancer for each group,
//! and what the pool is configured with (affinity, retries, timeouts). [`Pool::pick`] is the whole selection: sticky cookie first, then the algorithm over
//! the primaries, and the backups only when no primary can take the request. The pieces are
//! separate modules: [`server`] (state and counters of one server), [`passive`] (the sliding
//! failure window), [`upstream`] (keep-alive connections to a server), [`sticky`] (signed
//! cookies), [`hash_key`] (key templates) and [`budget`] (the retry budget).

pub mod admin;
pub mod budget;
pub mod hash_key;
pub mod passive;
pub mod queue;
pub mod resolve;
pub mod server;
pub mod stats;
pub mod sticky;
pub mod upstream;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ha_core::balance::{hash::hash64, Algorithm, AnyBalancer, Balancer, PickContext};
use ha_core::health::{HealthState, HealthTracker};

use crate::config::{self, Balance, FailureKind, ProxyProtocol};
use budget::RetryBudget;
use hash_key::HashKey;
pub use server::{InFlight, Server, ServerSpec};
use sticky::StickySigner;

/// How a pool chooses among its servers beyond the plain algorithm.
#[derive(Debug)]
pub enum Affinity {
    None,
    /// Consistent hash of the client address.
    ClientIp,
    /// Consistent hash of a key template.
    Key(HashKey),
    /// Signed cookie naming the server; the algorithm (round robin) when absent or invalid.
    Cookie(StickySigner),
}

/// Retries as configured (nginx's `proxy_next_upstream`).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub tries: u32,
    pub timeout: Option<Duration>,
    pub on: Vec<FailureKind>,
    pub non_idempotent: bool,
}

/// Why building a pool from its configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("pool {pool}: cannot read sticky secret_file {file}: {source}")]
    StickySecret {
        pool: String,
        file: String,
        source: std::io::Error,
    },
    #[error("pool {pool}: sticky secret_file {file} is empty")]
    EmptySecret { pool: String, file: String },
    #[error("pool {pool}: {source}")]
    HashKey {
        pool: String,
        source: hash_key::UnknownVariable,
    },
    #[error("pool {pool}: health check: {source}")]
    Health {
        pool: String,
        source: ha_core::health::ZeroThreshold,
    },
}

#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub primaries: Vec<Arc<Server>>,
    pub backups: Vec<Arc<Server>>,
    primary_balancer: AnyBalancer,
    backup_balancer: AnyBalancer,
    pub balance: Balance,
    pub affinity: Affinity,
    pub retry: RetryPolicy,
    /// What counts as a failure for passive health.
    pub passive_on: Vec<FailureKind>,
    pub timeouts: config::Timeouts,
    pub proxy_protocol: ProxyProtocol,
    pub active_health: Option<config::ActiveHealth>,
    budget: Mutex<RetryBudget>,
    /// Requests waiting for a server under `max_conns` (`queue:`), and their wake-up.
    pub queue: queue::Queue,
}

impl Pool {
    pub fn build(name: &str, c: &config::Pool) -> Result<Self, PoolError> {
        Self::build_from(name, c, None)
    }

    /// Builds the pool, keeping the servers of `previous` (the same pool before a reload or
    /// a runtime change) that are built from the same settings: their health state,
    /// counters, idle connections and operator changes carry over.
    pub fn build_from(
        name: &str,
        c: &config::Pool,
        previous: Option<&Pool>,
    ) -> Result<Self, PoolError> {
        let queue = queue::Queue::new(c.queue.as_ref(), previous.map(|p| &p.queue));
        let release = queue.release_handle();
        let passive = c.passive_health.clone().unwrap_or(config::PassiveHealth {
            max_fails: 1,
            fail_timeout: ha_core::config::Duration::from_secs(10),
            on: vec![FailureKind::Error, FailureKind::Timeout],
        });
        let passive_enabled = c.servers.len() > 1;
        let mut primaries = Vec::new();
        let mut backups = Vec::new();
        for s in &c.servers {
            let fingerprint = format!(
                "{s:?} {:?} {:?} {:?} {:?} {:?} {passive_enabled} {} {:?}",
                passive,
                c.active_health,
                c.slow_start,
                c.timeouts,
                c.keepalive,
                c.queue.is_some(),
                c.resolve_interval
            );
            let kept = previous.and_then(|p| {
                p.servers()
                    .find(|old| old.address() == s.address && old.fingerprint() == fingerprint)
            });
            if let Some(old) = kept {
                if s.backup {
                    backups.push(Arc::clone(old));
                } else {
                    primaries.push(Arc::clone(old));
                }
                continue;
            }
            let spec = ServerSpec {
                address: s.address.clone(),
                weight: s.weight,
                max_conns: s.max_conns,
                backup: s.backup,
                upstream: upstream::Settings::new(&c.timeouts, &c.keepalive),
                resolve_interval: c.resolve_interval.get(),
            };
            let tracker = match &c.active_health {
                Some(h) => Some(HealthTracker::new(h.rise, h.fall, HealthState::Up).map_err(
                    |source| PoolError::Health {
                        pool: name.to_owned(),
                        source,
                    },
                )?),
                None => None,
            };
            let server = Arc::new(
                Server::new(
                    &spec,
                    passive::PassiveHealth::new(passive.max_fails, passive.fail_timeout.get()),
                    passive_enabled,
                    tracker,
                    c.slow_start.map(|d| d.get()),
                )
                .with_identity(fingerprint, release.clone()),
            );
            if s.backup {
                backups.push(server);
            } else {
                primaries.push(server);
            }
        }
        let affinity = match c.balance {
            Balance::IpHash => Affinity::ClientIp,
            Balance::Hash => {
                let template = c.hash_key.as_deref().unwrap_or("$request_uri");
                Affinity::Key(
                    HashKey::parse(template).map_err(|source| PoolError::HashKey {
                        pool: name.to_owned(),
                        source,
                    })?,
                )
            }
            Balance::Sticky => match &c.sticky {
                Some(sticky) => {
                    let file = sticky.secret_file.display().to_string();
                    let secret = std::fs::read(&sticky.secret_file).map_err(|source| {
                        PoolError::StickySecret {
                            pool: name.to_owned(),
                            file: file.clone(),
                            source,
                        }
                    })?;
                    let secret = secret.trim_ascii();
                    if secret.is_empty() {
                        return Err(PoolError::EmptySecret {
                            pool: name.to_owned(),
                            file,
                        });
                    }
                    Affinity::Cookie(StickySigner::new(sticky.cookie.clone(), secret))
                }
                None => Affinity::None,
            },
            _ => Affinity::None,
        };
        let algorithm = match c.balance {
            Balance::RoundRobin | Balance::Sticky => Algorithm::RoundRobin,
            Balance::LeastConn => Algorithm::LeastConn,
            Balance::RandomTwo => Algorithm::RandomTwo,
            Balance::IpHash | Balance::Hash => Algorithm::Consistent,
        };
        let retry = match &c.retry {
            Some(r) => RetryPolicy {
                tries: r.tries,
                timeout: r.timeout.map(|d| d.get()).filter(|d| !d.is_zero()),
                on: r.on.clone(),
                non_idempotent: r.non_idempotent,
            },
            // nginx's default: error and timeout, every server once.
            None => RetryPolicy {
                tries: c.servers.len().max(1) as u32,
                timeout: None,
                on: vec![FailureKind::Error, FailureKind::Timeout],
                non_idempotent: false,
            },
        };
        let budget_ratio = c.retry.as_ref().map_or(0.2, |r| r.budget);
        Ok(Self {
            name: name.to_owned(),
            primaries,
            backups,
            primary_balancer: algorithm.build(),
            backup_balancer: algorithm.build(),
            balance: c.balance,
            affinity,
            retry,
            passive_on: passive.on.clone(),
            timeouts: c.timeouts.clone(),
            proxy_protocol: c.proxy_protocol,
            active_health: c.active_health.clone(),
            budget: Mutex::new(RetryBudget::new(budget_ratio, Instant::now())),
            queue,
        })
    }

    /// Every server, primaries first.
    pub fn servers(&self) -> impl Iterator<Item = &Arc<Server>> {
        self.primaries.iter().chain(self.backups.iter())
    }

    /// The affinity hash of a request, from its key (client address or template value).
    pub fn hash_of(key: &str) -> u64 {
        hash64(key.as_bytes())
    }

    /// Picks a server not in `tried`: the cookie's server if given and available, else the
    /// algorithm over the primaries, else over the backups.
    pub fn pick(
        &self,
        hash: Option<u64>,
        cookie_server: Option<&str>,
        tried: &[Arc<Server>],
    ) -> Option<Arc<Server>> {
        use ha_core::balance::Backend;
        if let Some(id) = cookie_server {
            let named = self.servers().find(|s| s.id() == id);
            if let Some(server) = named {
                let backup_allowed = !server.is_backup() || self.no_primary_available(tried);
                if server.is_available()
                    && backup_allowed
                    && !tried.iter().any(|t| Arc::ptr_eq(t, server))
                {
                    return Some(Arc::clone(server));
                }
            }
        }
        pick_in(&self.primaries, &self.primary_balancer, hash, tried)
            .or_else(|| pick_in(&self.backups, &self.backup_balancer, hash, tried))
    }

    fn no_primary_available(&self, tried: &[Arc<Server>]) -> bool {
        pick_in(&self.primaries, &self.primary_balancer, None, tried).is_none()
    }

    /// Whether any server could take a request now (for the 502/503 choice).
    pub fn any_available(&self) -> bool {
        use ha_core::balance::Backend;
        self.servers().any(|s| s.is_available())
    }

    pub fn record_request(&self) {
        self.budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record_request(Instant::now());
    }

    /// Whether the retry budget allows one more retry (and counts it).
    pub fn try_retry(&self) -> bool {
        self.budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_retry(Instant::now())
    }

    /// Whether this outcome counts as a failure of the server for passive health.
    pub fn is_passive_failure(&self, kind: FailureKind) -> bool {
        self.passive_on.contains(&kind)
    }

    /// Whether this outcome makes the request go to the next server.
    pub fn is_retry_condition(&self, kind: FailureKind) -> bool {
        self.retry.on.contains(&kind)
    }
}

fn pick_in(
    group: &[Arc<Server>],
    balancer: &AnyBalancer,
    hash: Option<u64>,
    tried: &[Arc<Server>],
) -> Option<Arc<Server>> {
    if group.is_empty() {
        return None;
    }
    let exclude: Vec<usize> = if tried.is_empty() {
        Vec::new()
    } else {
        group
            .iter()
            .enumerate()
            .filter(|(_, s)| tried.iter().any(|t| Arc::ptr_eq(t, s)))
            .map(|(i, _)| i)
            .collect()
    };
    let mut ctx = PickContext::new().excluding(&exclude);
    if let Some(hash) = hash {
        ctx = ctx.with_hash(hash);
    }
    balancer
        .pick(group, &ctx)
        .and_then(|i| group.get(i))
        .cloned()
}

#[cfg(test)]
mod tests;
