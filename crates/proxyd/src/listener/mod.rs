//! Listening sockets and their accept loops.
//!
//! [`bind`] opens a listener's socket with `SO_REUSEADDR`, `SO_REUSEPORT` only when the
//! listener asks for it (so a second proxyd cannot silently share a port), and the
//! configured backlog. [`AcceptLoop::spawn`] accepts on every worker ([`ha_core::workers`],
//! which serves each connection on the worker with the fewest) while the listener's `max_connections` allows, fetches the running configuration for
//! every new connection (so after a reload new connections use the new one while open ones
//! keep theirs), and hands the connection to [`connection::handle`]. The pieces:
//! [`connection`] (PROXY header, TLS, HTTP or TCP) and [`trusted`] (who may send a PROXY
//! header) and [`rate_limit`] (requests per client address).

pub mod connection;
pub mod rate_limit;
pub mod trusted;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use crate::config::Listener;
use crate::metrics::ProxyMetrics;
use crate::snapshot::Snapshot;
use ha_core::workers::{Holding, Workers};

/// Default `listen()` backlog, as nginx's on Linux.
pub const DEFAULT_BACKLOG: u32 = 511;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("listener {listener}: invalid listen address {address:?}")]
    Address { listener: String, address: String },
    #[error("listener {listener}: cannot listen on {address}: {source}")]
    Bind {
        listener: String,
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the socket of `listener`.
pub fn bind(listener: &Listener) -> Result<TcpListener, ListenError> {
    let address: SocketAddr = listener.listen.parse().map_err(|_| ListenError::Address {
        listener: listener.name.clone(),
        address: listener.listen.clone(),
    })?;
    let fail = |source| ListenError::Bind {
        listener: listener.name.clone(),
        address,
        source,
    };
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    if listener.reuse_port {
        socket.set_reuse_port(true).map_err(fail)?;
    }
    socket.set_nonblocking(true).map_err(fail)?;
    socket.set_tcp_nodelay(true).map_err(fail)?;
    socket.bind(&address.into()).map_err(fail)?;
    socket.listen(backlog_of(listener)).map_err(fail)?;
    TcpListener::from_std(socket.into()).map_err(fail)
}

fn backlog_of(listener: &Listener) -> i32 {
    let backlog = listener.backlog.unwrap_or(DEFAULT_BACKLOG);
    backlog.min(i32::MAX as u32) as i32
}

/// Applies `listener`'s backlog to a socket already listening (on reload): Linux takes a
/// second `listen()` as a new backlog.
pub fn set_backlog(socket: &TcpListener, listener: &Listener) -> Result<(), ListenError> {
    let address = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    socket2::SockRef::from(socket)
        .listen(backlog_of(listener))
        .map_err(|source| ListenError::Bind {
            listener: listener.name.clone(),
            address,
            source,
        })
}

/// One listener's accept loop.
pub struct AcceptLoop {
    pub name: String,
    pub socket: Arc<TcpListener>,
    pub max_connections: Option<usize>,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub metrics: ProxyMetrics,
    /// Cancelled to stop accepting (reload removed the listener, or the daemon stops).
    pub stop: CancellationToken,
    /// Connection tasks, waited for on a graceful stop.
    pub tasks: TaskTracker,
    /// Handed to every connection: cancelled when the daemon stops (see [`crate::http::Connection::drain`]).
    pub drain: CancellationToken,
}

impl AcceptLoop {
    /// Starts the loop on every worker, each accepting from a duplicate of the socket; the
    /// listener's `max_connections` counts the connections of all of them.
    pub fn spawn(self, workers: &Workers) {
        let limit = self.max_connections.map(|n| Arc::new(Semaphore::new(n)));
        let this = Arc::new(self);
        for (index, handle) in workers.handles().iter().enumerate() {
            let socket = match socket2::SockRef::from(&*this.socket).try_clone() {
                Ok(socket) => socket,
                Err(e) => {
                    error!(listener = %this.name, error = %e, "cannot share the socket with a worker");
                    continue;
                }
            };
            let accept = Arc::clone(&this);
            let limit = limit.clone();
            let workers = workers.clone();
            // Tracked from here, before the worker polls it, so a stop never misses it.
            handle.spawn(this.tasks.track_future(async move {
                match TcpListener::from_std(socket.into()) {
                    Ok(socket) => accept.run(socket, limit, &workers, index).await,
                    Err(e) => error!(listener = %accept.name, error = %e, "worker cannot accept"),
                }
            }));
        }
    }

    /// Accepts on worker `index`; each connection is served on the least loaded worker.
    async fn run(
        &self,
        socket: TcpListener,
        limit: Option<Arc<Semaphore>>,
        workers: &Workers,
        index: usize,
    ) {
        let local = socket.local_addr().ok();
        loop {
            let permit = match &limit {
                Some(limit) => tokio::select! {
                    () = self.stop.cancelled() => break,
                    permit = Arc::clone(limit).acquire_owned() => match permit {
                        Ok(p) => Some(p),
                        Err(_) => break,
                    },
                },
                None => None,
            };
            let (stream, peer) = tokio::select! {
                () = self.stop.cancelled() => break,
                accepted = socket.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off a little, go on.
                        error!(listener = %self.name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let snapshot = self.snapshot.load_full();
            let Some(runtime) = snapshot.listeners.get(&self.name).cloned() else {
                continue;
            };
            let metrics = self.metrics.clone();
            let drain = self.drain.clone();
            let access_log = snapshot.access_log.clone();
            let local = stream.local_addr().ok().or(local);
            workers.serve(index, stream, &self.tasks, move |stream| {
                let connection =
                    connection::handle(stream, peer, local, runtime, metrics, drain, access_log);
                Holding::new(connection, permit)
            });
        }
        info!(listener = %self.name, "stopped accepting");
    }
}
