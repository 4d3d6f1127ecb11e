//! Client listeners: bind every configured address at start (a daemon that cannot listen does
//! not start), accept connections on each of the `workers` session threads
//! ([`crate::workers`]) and run each as its own session task on the thread that accepted it. A listener with `tls` loads its certificate at start too (a bad one stops
//! the start, naming the file). What the sessions share lives in [`Shared`].

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

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
    pub stats: Stats,
    pub topology: Arc<Topology>,
    pub next_connection_id: AtomicU32,
    pub max_packet_size: usize,
    server_version: Mutex<Option<String>>,
}

impl Shared {
    pub fn new(users: Users, stats: Stats, topology: Topology) -> Self {
        Shared {
            users: ArcSwap::from_pointee(users),
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
    Tls { name: String, source: TlsError },
}

/// Where a listener's sessions run and what stops them.
pub struct SessionThreads {
    /// Cancelled to stop accepting.
    pub stop: CancellationToken,
    /// Every accept loop and session, waited for on a graceful stop.
    pub sessions: TaskTracker,
    /// The session threads ([`crate::workers::start`]).
    pub workers: &'static [tokio::runtime::Handle],
}

/// A bound listener, for status.
#[derive(Debug, Clone)]
pub struct Bound {
    pub name: String,
    pub address: SocketAddr,
    pub pool: String,
}

/// Binds `address` and serves it until `stop` is cancelled; with `tls`, clients may (or
/// must) switch to TLS.
pub async fn listen(
    name: &str,
    address: &str,
    tls: Option<&ListenerTls>,
    router: Arc<Router>,
    shared: Arc<Shared>,
    threads: &SessionThreads,
) -> Result<Bound, ListenError> {
    let SessionThreads {
        stop,
        sessions,
        workers,
    } = threads;
    let tls = tls
        .map(ServerTls::load)
        .transpose()
        .map_err(|source| ListenError::Tls {
            name: name.to_string(),
            source,
        })?
        .map(Arc::new);
    let error = |source| ListenError::Bind {
        name: name.to_string(),
        address: address.to_string(),
        source,
    };
    let listener = TcpListener::bind(address).await.map_err(error)?;
    let local = listener.local_addr().map_err(error)?;
    info!(listener = name, listen = %local, pool = %router.name, tls = tls.is_some(), "listening");
    let bound = Bound {
        name: name.to_string(),
        address: local,
        pool: router.name.clone(),
    };
    let name = name.to_string();
    let listener = listener.into_std().map_err(error)?;
    for worker in workers.iter() {
        let socket = listener.try_clone().map_err(error)?;
        let (name, tls, router, shared, stop, tracker) = (
            name.clone(),
            tls.clone(),
            router.clone(),
            shared.clone(),
            stop.clone(),
            sessions.clone(),
        );
        // The accept loop is tracked with the sessions: a graceful stop waits until it has
        // seen the stop, so a client accepted just before is served rather than dropped by
        // the exit. Its sessions run on the thread that accepted them.
        sessions.spawn_on(
            async move {
                let listener = match TcpListener::from_std(socket) {
                    Ok(l) => l,
                    Err(e) => {
                        warn!(listener = %name, error = %e, "cannot accept on this worker");
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
                                warn!(listener = %name, error = %e, "accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                                continue;
                            }
                        },
                    };
                    tracker.spawn(crate::session::run(
                        stream,
                        peer,
                        name.clone(),
                        tls.clone(),
                        router.clone(),
                        shared.clone(),
                    ));
                }
            },
            worker,
        );
    }
    Ok(bound)
}
