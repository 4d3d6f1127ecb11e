//! Upstream HTTP/1.1 connections of one server: a stack of idle keep-alive connections (raw
//! TCP streams with their read buffers), checked out for one exchange
//! ([`crate::http::h1::upstream`]) and pushed back when the response body has been read to
//! its end.
//!
//! One short mutex hold per checkout and per check-in; the most recently used connection
//! goes out first (a LIFO stack keeps few connections warm and lets the others reach their
//! idle timeout). The connection is used from the client connection's own task: no
//! connection task, no channel per request.
//!
//! A socket is registered with the reactor of the worker (`ha_core::workers`) that opened it,
//! and its readiness is delivered there: used from another worker, every wait for the server
//! would be a wake-up across threads. So a worker takes the newest idle connection opened on
//! it; only when it has none does it take another worker's, and moves it to its own reactor
//! first (as `Workers::serve` moves a client connection).
//!
//! The keep-alive race (a server closing an idle connection just as proxyd reuses it) is
//! handled in two places: connections idle longer than `keepalive.idle_timeout` (kept
//! shorter than the servers' own) are never reused, and a request that fails on a reused
//! connection before any byte of the response came back is sent again on the next idle
//! connection or a fresh one, whatever its method, as long as none of its body was sent.
//!
//! Upgrade requests (WebSocket) take a fresh hyper connection of their own instead
//! ([`ConnPool::send_upgrade`]): the socket becomes the tunnel and never comes back here.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

use super::resolve::Target;
use crate::config::{Keepalive, Timeouts};
use crate::http::body::RequestBody;

/// How a server's upstream connections are opened and kept.
#[derive(Debug, Clone)]
pub struct Settings {
    pub connect_timeout: Duration,
    pub max_idle: usize,
    pub idle_timeout: Duration,
}

impl Settings {
    pub fn new(timeouts: &Timeouts, keepalive: &Keepalive) -> Self {
        Self {
            connect_timeout: timeouts.connect.get(),
            max_idle: keepalive.max_idle,
            idle_timeout: keepalive.idle_timeout.get(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::new(&Timeouts::default(), &Keepalive::default())
    }
}

/// Why an upstream request failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be opened: nothing of the request was sent.
    #[error("connect error: {0}")]
    Connect(String),
    /// The exchange failed on an open connection.
    #[error("{0}")]
    Exchange(String),
}

/// An open upstream connection and the bytes read from it but not used yet.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

/// Largest read buffer an idle connection keeps; a larger one is dropped while idle.
const IDLE_BUF: usize = 16 * 1024;

struct Idle {
    conn: Conn,
    since: Instant,
    /// The target's address generation when the connection was put back.
    generation: u64,
    /// The worker whose reactor the socket is registered with.
    worker: Option<usize>,
}

/// One server's idle connections; see the [module docs](self).
pub struct ConnPool {
    settings: Settings,
    /// The server's address, or its host name's kept addresses.
    target: Arc<Target>,
    idle: Mutex<Vec<Idle>>,
}

impl std::fmt::Debug for ConnPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnPool")
            .field("settings", &self.settings)
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl ConnPool {
    pub fn new(settings: Settings, target: Arc<Target>) -> Self {
        Self {
            settings,
            target,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    /// The most recently used idle connection not idle too long, and still to one of the
    /// server's addresses when its host name moved: the newest registered on the calling
    /// worker, else the newest of any other, moved to this worker's reactor (see the
    /// [module docs](self)). It may have been closed by the server meanwhile: see [`is_open`].
    pub fn pop_idle(&self) -> Option<Conn> {
        ha_core::workers::take_here(|| self.take_idle().map(|e| (e.conn, e.worker)), adopt)
    }

    /// Takes the idle connection [`ConnPool::pop_idle`] wants (one still usable), under the
    /// lock.
    fn take_idle(&self) -> Option<Idle> {
        let generation = self.target.generation();
        let mut idle = self.lock();
        loop {
            let at = ha_core::workers::newest_here(&idle, |e| e.worker)?;
            let entry = idle.remove(at);
            if entry.since.elapsed() >= self.settings.idle_timeout {
                continue;
            }
            if entry.generation != generation && !self.still_serves(&entry.conn) {
                continue;
            }
            return Some(entry);
        }
    }

    fn still_serves(&self, conn: &Conn) -> bool {
        conn.stream
            .peer_addr()
            .is_ok_and(|peer| self.target.still_serves(peer))
    }

    /// Gives back a connection whose response was read to its end.
    pub fn put_back(&self, mut conn: Conn) {
        if self.settings.max_idle == 0 || !conn.buf.is_empty() {
            // Bytes after a complete response: the server is out of step; do not reuse.
            return;
        }
        // Read before the check: a change of addresses after it leaves the entry older than
        // the target, so `pop_idle` checks it again.
        let generation = self.target.generation();
        if self.target.is_name() && !self.still_serves(&conn) {
            // Opened to an address the host name no longer resolves to.
            return;
        }
        if conn.buf.capacity() > IDLE_BUF {
            conn.buf = BytesMut::new();
        }
        let now = Instant::now();
        let mut idle = self.lock();
        // The oldest are at the bottom: drop those past their idle timeout.
        let expired = idle
            .iter()
            .take_while(|e| now.duration_since(e.since) >= self.settings.idle_timeout)
            .count();
        idle.drain(..expired);
        if idle.len() < self.settings.max_idle {
            idle.push(Idle {
                conn,
                since: now,
                generation,
                worker: ha_core::workers::current(),
            });
        }
    }

    /// Opens a new connection to the server (`address` as configured, for messages), within
    /// the connect timeout.
    pub async fn connect(&self, address: &str) -> Result<Conn, UpstreamError> {
        let stream = self.connect_tcp(address).await?;
        Ok(Conn {
            stream,
            buf: BytesMut::new(),
        })
    }

    async fn connect_tcp(&self, address: &str) -> Result<TcpStream, UpstreamError> {
        // A host name's addresses are kept and refreshed in the background (see `resolve`).
        let addr = self
            .target
            .next_addr()
            .await
            .map_err(|e| UpstreamError::Connect(format!("{address}: {e}")))?;
        let connect = TcpStream::connect(addr);
        match tokio::time::timeout(self.settings.connect_timeout, connect).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(e)) => Err(UpstreamError::Connect(format!("tcp connect error: {e}"))),
            Err(_) => Err(UpstreamError::Connect(format!(
                "tcp connect error: timed out after {:?}",
                self.settings.connect_timeout
            ))),
        }
    }

    /// Sends an upgrade request (WebSocket) on a fresh hyper connection of its own.
    pub async fn send_upgrade(
        &self,
        address: &str,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let stream = self.connect_tcp(address).await?;
        let (mut sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                debug!(error = %e, "upstream connection ended with an error");
            }
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| UpstreamError::Exchange(error_chain(&e)))
    }
}

/// `conn` registered with the calling runtime's reactor instead of the one that opened it;
/// `None` (the connection dropped) when that fails.
fn adopt(conn: Conn) -> Option<Conn> {
    let Conn { stream, buf } = conn;
    match ha_core::workers::adopt(stream) {
        Ok(stream) => Some(Conn { stream, buf }),
        Err(e) => {
            debug!(error = %e, "cannot move an idle server connection to this worker");
            None
        }
    }
}

/// Whether an idle connection is still open: nothing (no end of stream, no stray bytes) is
/// waiting to be read from it. Costs a system call; used before sending a body that could
/// not be sent again.
pub fn is_open(conn: &Conn) -> bool {
    ha_core::io::nothing_to_read(&conn.stream)
}

/// The error and its causes, e.g. "connection closed before message completed".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server on its own thread; its address.
    fn echo_server() -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut stream.try_clone().expect("clone"), &mut stream);
                });
            }
        });
        addr
    }

    fn pool(addr: std::net::SocketAddr) -> Arc<ConnPool> {
        let target = Arc::new(Target::new(&addr.to_string(), Duration::from_secs(30)));
        Arc::new(ConnPool::new(Settings::default(), target))
    }

    async fn echoes(conn: &mut Conn) -> bool {
        let mut answer = [0u8; 4];
        conn.stream.write_all(b"ping").await.is_ok()
            && conn.stream.read_exact(&mut answer).await.is_ok()
            && &answer == b"ping"
    }

    /// Runs `work` on worker `worker` and waits for its result.
    fn on<T, F>(workers: &ha_core::workers::Workers, worker: usize, work: F) -> T
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        workers.handles()[worker].spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv().expect("the worker answered")
    }

    async fn open_and_put_back(pool: Arc<ConnPool>) -> Option<std::net::SocketAddr> {
        let conn = pool.connect("echo").await.ok()?;
        let local = conn.stream.local_addr().ok();
        pool.put_back(conn);
        local
    }

    #[test]
    fn a_worker_reuses_its_own_connections_first_and_adopts_the_others() {
        let pool = pool(echo_server());
        // One opened on a runtime that is gone by the time it is reused.
        let gone = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(open_and_put_back(pool))
            })
            .join()
            .expect("thread")
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let workers = ha_core::workers::Workers::start("pool", 2, &stop).expect("workers");
        let mine = on(&workers, 0, open_and_put_back(Arc::clone(&pool)));
        let theirs = on(&workers, 1, open_and_put_back(Arc::clone(&pool)));
        assert!(gone.is_some() && mine.is_some() && theirs.is_some());
        // From worker 0: its own first though worker 1's is the newest, then worker 1's, then
        // the one whose runtime is gone; each works from worker 0.
        let pool2 = Arc::clone(&pool);
        let taken = on(&workers, 0, async move {
            let mut taken = Vec::new();
            while let Some(mut conn) = pool2.pop_idle() {
                let works = echoes(&mut conn).await;
                taken.push((conn.stream.local_addr().ok(), works));
            }
            taken
        });
        assert_eq!(taken, [(mine, true), (theirs, true), (gone, true)]);
        stop.cancel();
    }
}
