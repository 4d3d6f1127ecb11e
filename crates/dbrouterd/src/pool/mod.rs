//! Backend connection pools: one per (logical pool, backend, user, wire format), so a client
//! always gets a connection that speaks exactly its dialect of the protocol.
//!
//! A checkout takes the most recently returned idle connection that is still healthy (never
//! one the server closed or that has unread bytes), or opens a new one when the logical pool
//! has fewer than `max_per_backend` connections open to that backend, idle or in use, across
//! its users and wire formats ([`limit`]); at the limit it closes another user's idle
//! connection to make room, or waits for one, at most `checkout_timeout`. Idle
//! connections registered with the session's own worker (`ha_core::workers`) go first; one
//! from another worker is moved to this worker's reactor, so that its readiness does not
//! have to cross threads on every statement. A
//! connection given back is reset with COM_RESET_CONNECTION (which rolls back, drops temporary
//! tables, user variables and prepared statements and restores the login's session, though not
//! a multi-statement option changed with COM_SET_OPTION, which is set back after it) before it
//! is idle again, so no state leaks between clients; one that fails the reset is closed. A
//! background task per pool closes connections idle longer than `idle_timeout` and keeps
//! `min_idle` open when the user's secret is known.
//!
//! A reload hands the same [`Pools`] to the pool's new router: [`Pools::update`] swaps
//! `min_idle`, `idle_timeout` and `checkout_timeout`, which every pool reads at each use, and
//! resizes the limits to a new `max_per_backend` in place.

pub mod conn;
pub mod limit;
mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::ConnectionPool;
use crate::protocol::command::SetOption;
use crate::protocol::response::ResponseKind;
use crate::protocol::Capabilities;
use crate::topology::BackendNode;
pub use conn::{BackendConn, ConnError, Discard, Login, RelayError, ResponseSink};
use limit::{Limit, Permit};

/// The client capabilities that change what goes over the wire; backend connections are pooled
/// by them so that responses pass through unchanged.
pub const WIRE_FORMAT: Capabilities = Capabilities::FOUND_ROWS
    .union(Capabilities::LONG_FLAG)
    .union(Capabilities::IGNORE_SPACE)
    .union(Capabilities::INTERACTIVE)
    .union(Capabilities::LOCAL_FILES)
    .union(Capabilities::MULTI_STATEMENTS)
    .union(Capabilities::MULTI_RESULTS)
    .union(Capabilities::PS_MULTI_RESULTS)
    .union(Capabilities::SESSION_TRACK)
    .union(Capabilities::DEPRECATE_EOF);

/// The wire-format part of a client's capabilities.
pub fn wire_caps(client: Capabilities) -> Capabilities {
    client.intersection(WIRE_FORMAT)
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(
        "no free connection to backend {backend} within {timeout:?} (max_per_backend reached)"
    )]
    CheckoutTimeout { backend: String, timeout: Duration },
    #[error(transparent)]
    Connect(#[from] ConnError),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub backend: usize,
    pub user: String,
    pub caps: u32,
    pub charset: u8,
}

struct Idle {
    conn: BackendConn,
    since: Instant,
    /// The worker whose reactor the socket is registered with (`ha_core::workers`).
    worker: Option<usize>,
    permit: Permit,
}

/// The connections of one key.
pub struct ConnPool {
    node: Arc<BackendNode>,
    settings: Arc<ArcSwap<ConnectionPool>>,
    login: Mutex<Login>,
    idle: Mutex<Vec<Idle>>,
    /// `max_per_backend` of the logical pool for this backend, shared with its other users
    /// and wire formats.
    limit: Arc<Limit>,
}

/// A checked-out connection; give it back with [`PooledConn::give_back`] (dropping it closes
/// the connection instead).
pub struct PooledConn {
    pub conn: BackendConn,
    /// COM_SET_OPTION ran on the connection. COM_RESET_CONNECTION leaves multi-statements as
    /// the session set them, so giving it back sets them again as its login's capabilities
    /// say: the next client must not get multi-statements it did not ask for.
    pub options_changed: bool,
    pool: Arc<ConnPool>,
    permit: Permit,
}

impl PooledConn {
    /// Resets the connection in the background and makes it idle again.
    pub fn give_back(self) {
        let PooledConn {
            mut conn,
            options_changed,
            pool,
            permit,
        } = self;
        if !conn.is_healthy() {
            debug!(backend = %conn.node.name, "unhealthy connection closed instead of pooled");
            return;
        }
        tokio::spawn(async move {
            let init = pool.init_sql();
            let reset = async {
                conn.reset(init.as_deref()).await?;
                if options_changed {
                    restore_options(&mut conn).await?;
                }
                Ok::<_, ConnError>(())
            };
            let timeout = pool.settings.load().checkout_timeout.get();
            match tokio::time::timeout(timeout, reset).await {
                Ok(Ok(())) => pool.push_idle(conn, permit),
                Ok(Err(e)) => warn!(error = %e, "reset failed; connection closed"),
                Err(_) => debug!(backend = %conn.node.name, "reset timed out; connection closed"),
            }
        });
    }
}

/// Sets multi-statements on a connection back to what its login's capabilities say.
async fn restore_options(conn: &mut BackendConn) -> Result<(), ConnError> {
    let option = if conn.caps.contains(Capabilities::MULTI_STATEMENTS) {
        SetOption::MultiStatementsOn
    } else {
        SetOption::MultiStatementsOff
    };
    let summary = conn
        .command_discard(&option.encode(), ResponseKind::Single)
        .await?;
    match summary.error {
        None => Ok(()),
        Some(err) => Err(ConnError::Refused {
            backend: conn.node.name.clone(),
            user: String::new(),
            err,
        }),
    }
}

impl ConnPool {
    fn init_sql(&self) -> Option<String> {
        self.login.lock().ok().and_then(|l| l.init_sql.clone())
    }

    fn push_idle(&self, conn: BackendConn, permit: Permit) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(Idle {
                conn,
                since: Instant::now(),
                worker: ha_core::workers::current(),
                permit,
            });
        }
        self.limit.notify();
    }

    /// Closes this pool's longest-idle connection; whether it had one.
    fn close_oldest_idle(&self) -> bool {
        let oldest = match self.idle.lock() {
            Ok(mut idle) if !idle.is_empty() => idle.remove(0),
            _ => return false,
        };
        debug!(backend = %oldest.conn.node.name, "idle connection closed to make room under max_per_backend");
        drop(oldest);
        true
    }

    /// The newest healthy idle connection registered on the calling worker, else the newest
    /// of any other, moved to this worker's reactor: a session's every statement then waits
    /// on its own thread's reactor, not on another worker's that would have to wake it.
    fn pop_healthy(&self) -> Option<(BackendConn, Permit)> {
        ha_core::workers::take_here(
            || self.take_idle().map(|e| ((e.conn, e.permit), e.worker)),
            |(mut conn, permit)| match conn.adopt() {
                Ok(()) => Some((conn, permit)),
                Err(e) => {
                    debug!(error = %e, "idle connection not moved to this worker; closed");
                    None
                }
            },
        )
    }

    fn take_idle(&self) -> Option<Idle> {
        let timeout = self.settings.load().idle_timeout.get();
        let mut idle = self.idle.lock().ok()?;
        loop {
            let at = ha_core::workers::newest_here(&idle, |e| e.worker)?;
            let entry = idle.remove(at);
            if entry.since.elapsed() < timeout && entry.conn.is_healthy() {
                return Some(entry);
            }
        }
    }

    fn login(&self) -> Option<Login> {
        self.login.lock().ok().map(|l| l.clone())
    }

    /// A connection for a session, within `checkout_timeout`.
    pub async fn checkout(self: &Arc<Self>) -> Result<PooledConn, PoolError> {
        let timeout = self.settings.load().checkout_timeout.get();
        let deadline = Instant::now() + timeout;
        let pooled = |conn, permit| PooledConn {
            conn,
            options_changed: false,
            pool: self.clone(),
            permit,
        };
        if let Some((conn, permit)) = self.pop_healthy() {
            return Ok(pooled(conn, permit));
        }
        let permit = match self.limit.try_acquire() {
            Some(permit) => permit,
            None => {
                // At the limit: another user's idle connection makes room, or wait for a
                // connection to be given back or closed.
                let room = self
                    .limit
                    .wait_for(deadline, || {
                        if let Some((conn, permit)) = self.pop_healthy() {
                            return Some((Some(conn), permit));
                        }
                        loop {
                            if let Some(permit) = self.limit.try_acquire() {
                                return Some((None, permit));
                            }
                            if !self.limit.close_one_idle(self) {
                                return None;
                            }
                        }
                    })
                    .await
                    .ok_or_else(|| PoolError::CheckoutTimeout {
                        backend: self.node.name.clone(),
                        timeout,
                    })?;
                match room {
                    (Some(conn), permit) => return Ok(pooled(conn, permit)),
                    (None, permit) => permit,
                }
            }
        };
        let login = self.login().ok_or_else(|| PoolError::CheckoutTimeout {
            backend: self.node.name.clone(),
            timeout,
        })?;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        let result = BackendConn::connect(self.node.clone(), &login, left).await;
        self.node.record_connect(result.is_ok());
        Ok(pooled(result?, permit))
    }

    /// Closes expired idle connections and opens new ones up to `min_idle`.
    async fn maintain(&self) {
        let settings = self.settings.load_full();
        let timeout = settings.idle_timeout.get();
        if let Ok(mut idle) = self.idle.lock() {
            idle.retain(|e| e.since.elapsed() < timeout && e.conn.is_healthy());
        }
        let idle_now = self.idle.lock().map(|i| i.len()).unwrap_or(0);
        for _ in idle_now..settings.min_idle {
            let Some(permit) = self.limit.try_acquire() else {
                return;
            };
            let Some(login) = self.login() else { return };
            match BackendConn::connect(self.node.clone(), &login, Duration::from_secs(2)).await {
                Ok(conn) => {
                    self.node.record_connect(true);
                    self.push_idle(conn, permit);
                }
                Err(e) => {
                    self.node.record_connect(false);
                    warn!(error = %e, "cannot open idle connection");
                    return;
                }
            }
        }
    }
}

/// All pools of one logical pool (a `pools.<name>` entry).
pub struct Pools {
    settings: Arc<ArcSwap<ConnectionPool>>,
    by_key: Mutex<HashMap<PoolKey, Arc<ConnPool>>>,
    /// `max_per_backend`, per backend index.
    limits: Mutex<HashMap<usize, Arc<Limit>>>,
    shutdown: CancellationToken,
}

impl Pools {
    pub fn new(settings: ConnectionPool, shutdown: CancellationToken) -> Self {
        Pools {
            settings: Arc::new(ArcSwap::from_pointee(settings)),
            by_key: Mutex::new(HashMap::new()),
            limits: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// New `min_idle`, `idle_timeout` and `checkout_timeout` for every pool, from their next
    /// use on, and `max_per_backend` for every backend's limit.
    pub fn update(&self, settings: &ConnectionPool) {
        let resized = self.settings.load().max_per_backend != settings.max_per_backend;
        self.settings.store(Arc::new(settings.clone()));
        if resized {
            if let Ok(limits) = self.limits.lock() {
                for limit in limits.values() {
                    limit.resize(settings.max_per_backend);
                }
            }
        }
    }

    /// The limit for `backend`, made at the current `max_per_backend` on first use.
    fn limit(&self, backend: usize) -> Arc<Limit> {
        let size = self.settings.load().max_per_backend;
        match self.limits.lock() {
            Ok(mut limits) => limits
                .entry(backend)
                .or_insert_with(|| Limit::new(size))
                .clone(),
            Err(_) => Limit::new(size),
        }
    }

    /// The pool for `key`, created (with its maintenance task) on first use.
    pub fn get(&self, key: PoolKey, node: &Arc<BackendNode>, login: Login) -> Arc<ConnPool> {
        let Ok(mut map) = self.by_key.lock() else {
            // A poisoned map only means another session panicked; use a private pool.
            return Arc::new(self.make(node, login));
        };
        if let Some(pool) = map.get(&key) {
            return pool.clone();
        }
        let pool = Arc::new(self.make(node, login));
        pool.limit.register(&pool);
        map.insert(key, pool.clone());
        spawn_maintenance(Arc::downgrade(&pool), self.shutdown.clone());
        pool
    }

    fn make(&self, node: &Arc<BackendNode>, login: Login) -> ConnPool {
        ConnPool {
            node: node.clone(),
            settings: self.settings.clone(),
            login: Mutex::new(login),
            idle: Mutex::new(Vec::new()),
            limit: self.limit(node.index),
        }
    }

    /// Idle connections per backend index.
    pub fn idle_counts(&self) -> HashMap<usize, usize> {
        let mut out = HashMap::new();
        if let Ok(map) = self.by_key.lock() {
            for (key, pool) in map.iter() {
                *out.entry(key.backend).or_default() +=
                    pool.idle.lock().map(|i| i.len()).unwrap_or(0);
            }
        }
        out
    }
}

fn spawn_maintenance(pool: Weak<ConnPool>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(pool) = pool.upgrade() else { return };
            pool.maintain().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_updates_timeouts_and_the_size_of_the_pool_live() {
        let pools = Pools::new(ConnectionPool::default(), CancellationToken::new());
        let limit = pools.limit(0);
        let max = ConnectionPool::default().max_per_backend;
        let held: Vec<Permit> = (0..max)
            .map(|_| limit.try_acquire().expect("permit"))
            .collect();
        assert!(limit.try_acquire().is_none());
        let next = ConnectionPool {
            min_idle: 3,
            idle_timeout: ha_core::config::Duration::from_secs(5),
            max_per_backend: max + 2,
            ..ConnectionPool::default()
        };
        pools.update(&next);
        assert_eq!(pools.settings.load().min_idle, 3);
        assert_eq!(
            pools.settings.load().idle_timeout.get(),
            Duration::from_secs(5)
        );
        assert!(
            Arc::ptr_eq(&limit, &pools.limit(0)),
            "the same limit, resized"
        );
        let more = (
            limit.try_acquire(),
            limit.try_acquire(),
            limit.try_acquire(),
        );
        assert!(more.0.is_some() && more.1.is_some() && more.2.is_none());
        drop((held, more));
        assert_eq!(limit.in_use(), 0);
    }
}
