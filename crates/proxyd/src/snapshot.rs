//! The running configuration, built: pools with their servers and clients, and per listener
//! what a new connection needs (routes or pool, TLS acceptor, hyper's server settings,
//! trusted PROXY senders). Held behind an `ArcSwap`: a reload builds a new snapshot and
//! stores it in one step, and connections keep the snapshot they started with. Servers that
//! did not change are the same objects in both (their health, counters and connections), and
//! so are the rate limiters of listeners whose `rate_limit` did not change (their buckets).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, Listener, Protocol};
use crate::http::route::Routes;
use crate::listener::rate_limit::RateLimiter;
use crate::listener::trusted::Cidr;
use crate::pool::{Pool, PoolError};
use crate::tls::{self, TlsError};

/// Header read timeout (slowloris) when a listener does not set one.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle timeout of client connections (TCP sessions) when a listener does not set one.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for the next piece of a request body when a listener does not set one.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("listener {listener}: TLS: {source}")]
    Tls { listener: String, source: TlsError },
    #[error("listener {listener}: accept_proxy_from: {source}")]
    Trusted {
        listener: String,
        source: crate::listener::trusted::InvalidCidr,
    },
    #[error("listener {listener}: no pool {pool:?}")]
    NoPool { listener: String, pool: String },
}

pub enum ListenerKind {
    Tcp(Arc<Pool>),
    Http {
        routes: Arc<Routes>,
        server: Arc<auto::Builder<TokioExecutor>>,
        tls: Option<TlsAcceptor>,
    },
}

pub struct ListenerRuntime {
    pub name: String,
    pub config: Listener,
    pub kind: ListenerKind,
    pub trusted: Vec<Cidr>,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub rate_limit: Option<Arc<RateLimiter>>,
    /// What this listener's HTTP connections share, built by the first.
    pub http_shared: std::sync::OnceLock<Arc<crate::http::ListenerShared>>,
}

pub struct Snapshot {
    pub pools: BTreeMap<String, Arc<Pool>>,
    pub listeners: BTreeMap<String, Arc<ListenerRuntime>>,
    /// Set by the service when `access_log` is on.
    pub access_log: Option<crate::access_log::AccessLogger>,
}

impl Snapshot {
    pub fn build(config: &Config) -> Result<Self, BuildError> {
        Self::build_from(config, None)
    }

    /// Builds the snapshot, keeping from `previous` the servers that did not change (see
    /// [`Pool::build_from`]).
    pub fn build_from(config: &Config, previous: Option<&Snapshot>) -> Result<Self, BuildError> {
        let mut pools = BTreeMap::new();
        for (name, pool) in &config.pools {
            let old = previous.and_then(|p| p.pools.get(name)).map(|p| &**p);
            pools.insert(name.clone(), Arc::new(Pool::build_from(name, pool, old)?));
        }
        let mut listeners = BTreeMap::new();
        for l in &config.listeners {
            let old = previous.and_then(|p| p.listeners.get(&l.name));
            let runtime = build_listener(l, &pools, old.and_then(|o| o.rate_limit.as_ref()))?;
            listeners.insert(l.name.clone(), Arc::new(runtime));
        }
        Ok(Self {
            pools,
            listeners,
            access_log: None,
        })
    }
}

fn build_listener(
    l: &Listener,
    pools: &BTreeMap<String, Arc<Pool>>,
    previous_limit: Option<&Arc<RateLimiter>>,
) -> Result<ListenerRuntime, BuildError> {
    let header_timeout = l.header_timeout.map_or(DEFAULT_HEADER_TIMEOUT, |d| d.get());
    let idle_timeout = l.idle_timeout.map_or(DEFAULT_IDLE_TIMEOUT, |d| d.get());
    let body_timeout = l.body_timeout.map_or(DEFAULT_BODY_TIMEOUT, |d| d.get());
    let trusted = l
        .accept_proxy_from
        .iter()
        .map(|t| t.parse::<Cidr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| BuildError::Trusted {
            listener: l.name.clone(),
            source,
        })?;
    let kind = match l.protocol {
        Protocol::Tcp => {
            let name = l.pool.clone().unwrap_or_default();
            let pool = pools.get(&name).cloned().ok_or(BuildError::NoPool {
                listener: l.name.clone(),
                pool: name,
            })?;
            ListenerKind::Tcp(pool)
        }
        Protocol::Http => {
            let tls = match &l.tls {
                Some(t) => Some(tls::acceptor(t).map_err(|source| BuildError::Tls {
                    listener: l.name.clone(),
                    source,
                })?),
                None => None,
            };
            ListenerKind::Http {
                routes: Arc::new(Routes::build(l, pools)),
                server: Arc::new(crate::http::server_builder(header_timeout)),
                tls,
            }
        }
    };
    Ok(ListenerRuntime {
        http_shared: std::sync::OnceLock::new(),
        name: l.name.clone(),
        config: l.clone(),
        kind,
        trusted,
        header_timeout,
        idle_timeout,
        body_timeout,
        rate_limit: l.rate_limit.as_ref().map(|r| {
            let burst = r
                .burst
                .unwrap_or(r.rate.ceil().min(f64::from(u32::MAX)) as u32);
            RateLimiter::carry_over(previous_limit, r.rate, burst)
        }),
    })
}
