//! Client listeners: bind every configured address at start (a daemon that cannot listen does
//! not start), accept connections on each of the `workers` session threads
//! ([`ha_core::workers`]) and run each as its own session task on the worker with the fewest.
//! A listener with `tls` loads its certificate at start too (a bad one stops the start, naming
//! the file). What the sessions share lives in [`Shared`].
//!
//! Binding ([`bind`]) is apart from serving ([`serve`]) so that a reload can bind every new
//! address first and drop them all if one fails. What a listener hands its new sessions (its
//! name, router and TLS) is one [`Serving`] behind an atomically swapped pointer: a reload that
//! keeps the address swaps it, and each accepted client takes the version current then.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::client_key::ClientKey;
use crate::config::ListenerTls;
use crate::router::Router;
use crate::stats::Stats;
use crate::tls::{ServerTls, TlsError};
use crate::topology::Topology;
use crate::users::Users;

/// Shown to clients until a backend told its own version.
const DEFAULT_SERVER_VERSION: &str = "5.5.5-10.11.0-MariaDB";

/// State every session reads.
pub struct Shared {
    pub users: ArcSwap<Users>,
    /// What caching_sha2_password clients without TLS encrypt their password with.
    pub client_key: ClientKey,
    pub stats: Stats,
    pub topology: Arc<Topology>,
    pub next_connection_id: AtomicU32,
    pub max_packet_size: usize,
    server_version: Mutex<Option<String>>,
}

impl Shared {
    pub fn new(users: Users, client_key: ClientKey, stats: Stats, topology: Topology) -> Self {
        Shared {
            users: ArcSwap::from_pointee(users),
            client_key,
            stats,
            topology: Arc::new(topology),
            next_connection_id: AtomicU32::new(1),
            max_packet_size: crate::protocol::packet::DEFAULT_MAX_PACKET_SIZE,
            server_version: Mutex::new(None),
        }
    }

    /// The version the greeting shows: the backends' own, once one was seen.
    pub fn server_version(&self) -> String {
        self.server_version
            .lock()
            .ok()
            .and_then(|v| v.clone())
            .unwrap_or_else(|| DEFAULT_SERVER_VERSION.to_string())
    }

    pub fn learn_server_version(&self, version: &str) {
        if let Ok(mut v) = self.server_version.lock() {
            if v.is_none() && !version.is_empty() {
                *v = Some(version.to_string());
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {address} (listener {name}): {source}")]
    Bind {
        name: String,
        address: String,
        source: std::io::Error,
    },
    #[error("listener {name}: TLS: {source}")]
    Tls { name: String, source: Box<TlsError> },
}

/// Where a listener's sessions run and what stops them.
pub struct SessionThreads {
    /// Cancelled to stop accepting.
    pub stop: CancellationToken,
    /// Every accept loop and session, waited for on a graceful stop.
    pub sessions: TaskTracker,
    /// The session threads.
    pub workers: ha_core::workers::Workers,
}

/// A bound listener, for status.
#[derive(Debug, Clone)]
pub struct Bound {
    pub name: String,
    pub address: SocketAddr,
    pub pool: String,
}

/// What a listener gives each client it accepts.
pub struct Serving {
    pub name: String,
    pub router: Arc<Router>,
    pub tls: Option<Arc<ServerTls>>,
}

/// A listener being served: its address, what it serves, and what stops it alone.
#[derive(Clone)]
pub struct Live {
    pub bound: Bound,
    /// The configured `listen`, which a reload compares.
    pub listen: String,
    pub serving: Arc<ArcSwap<Serving>>,
    /// Cancelled to stop accepting here (a child of the daemon's own stop).
    pub stop: CancellationToken,
}

/// Loads a listener's TLS certificate and key, if it has `tls`.
pub fn load_tls(
    name: &str,
    tls: Option<&ListenerTls>,
) -> Result<Option<Arc<ServerTls>>, ListenError> {
    tls.map(ServerTls::load)
        .transpose()
        .map(|t| t.map(Arc::new))
        .map_err(|source| ListenError::Tls {
            name: name.to_string(),
            source: Box::new(source),
        })
}

/// A bound address, not yet accepting: one copy of the socket per session thread.
pub struct Socket {
    pub local: SocketAddr,
    copies: Vec<std::net::TcpListener>,
}

/// Binds listener `name`'s `address` for `threads`, not yet accepting.
pub async fn bind(
    name: &str,
    address: &str,
    threads: &SessionThreads,
) -> Result<Socket, ListenError> {
    let error = |source| ListenError::Bind {
        name: name.to_string(),
        address: address.to_string(),
        source,
    };
    let listener = TcpListener::bind(address).await.map_err(error)?;
    let local = listener.local_addr().map_err(error)?;
    let listener = listener.into_std().map_err(error)?;
    let copies = threads
        .workers
        .handles()
        .iter()
        .map(|_| listener.try_clone())
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    Ok(Socket { local, copies })
}

/// Serves a bound `socket` until `threads.stop` (or the answer's own `stop`) is cancelled.
pub fn serve(
    socket: Socket,
    listen: &str,
    serving: Serving,
    shared: &Arc<Shared>,
    threads: &SessionThreads,
) -> Live {
    info!(listener = %serving.name, listen = %socket.local, pool = %serving.router.name, tls = serving.tls.is_some(), "listening");
    let bound = Bound {
        name: serving.name.clone(),
        address: socket.local,
        pool: serving.router.name.clone(),
    };
    let stop = threads.stop.child_token();
    let serving = Arc::new(ArcSwap::from_pointee(serving));
    for (index, (copy, worker)) in socket
        .copies
        .into_iter()
        .zip(threads.workers.handles())
        .enumerate()
    {
        let accept = accept_loop(
            copy,
            (threads.workers.clone(), index),
            serving.clone(),
            shared.clone(),
            stop.clone(),
            threads.sessions.clone(),
        );
        // The accept loop is tracked with the sessions: a graceful stop waits until it has
        // seen the stop, so a client accepted just before is served rather than dropped by
        // the exit. Its sessions run on the worker with the fewest.
        threads.sessions.spawn_on(accept, worker);
    }
    Live {
        bound,
        listen: listen.to_string(),
        serving,
        stop,
    }
}

/// Accepts on one worker's copy of the socket until `stop`; each client becomes a session
/// with the [`Serving`] current when it was accepted.
async fn accept_loop(
    socket: std::net::TcpListener,
    (workers, index): (ha_core::workers::Workers, usize),
    serving: Arc<ArcSwap<Serving>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let listener = match TcpListener::from_std(socket) {
        Ok(l) => l,
        Err(e) => {
            warn!(listener = %serving.load().name, error = %e, "cannot accept on this worker");
            return;
        }
    };
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: keep serving the others, slow down.
                    warn!(listener = %serving.load().name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let now = serving.load_full();
        let shared = shared.clone();
        workers.serve(index, stream, &tracker, move |stream| {
            crate::session::run(
                stream,
                peer,
                now.name.clone(),
                now.tls.clone(),
                now.router.clone(),
                shared,
            )
        });
    }
}
