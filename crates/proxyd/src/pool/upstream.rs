//! Upstream HTTP/1.1 connections of one server: a stack of idle keep-alive connections
//! (hyper's `client::conn::http1` handles), checked out for one request and pushed back when
//! the response body has been read to its end.
//!
//! This replaces hyper-util's pooled client on the hot path: one short mutex hold per
//! checkout and per check-in, no connector future, no per-host key hashing, no pool reaper
//! task. The most recently used connection goes out first (a LIFO stack keeps few
//! connections warm and lets the others reach their idle timeout).
//!
//! The keep-alive race (a server closing an idle connection just as proxyd reuses it) is
//! handled in two places: connections idle longer than `keepalive.idle_timeout` (kept
//! shorter than the servers' own) are never reused, and a request that a reused connection
//! refused before any byte of it was written goes to the next idle connection or a fresh
//! one, whatever its method.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

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

/// A connection ready for one request.
pub type Sender = SendRequest<RequestBody>;

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

struct Idle {
    sender: Sender,
    since: Instant,
}

/// One server's idle connections; see the [module docs](self).
pub struct ConnPool {
    settings: Settings,
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
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn idle_count(&self) -> usize {
        self.lock().len()
    }

    /// The most recently used idle connection still open and not idle too long.
    fn pop_idle(&self) -> Option<Sender> {
        let mut idle = self.lock();
        while let Some(entry) = idle.pop() {
            if entry.since.elapsed() < self.settings.idle_timeout && !entry.sender.is_closed() {
                return Some(entry.sender);
            }
        }
        None
    }

    /// Gives back a connection whose response was read to its end.
    pub fn put_back(&self, sender: Sender) {
        if sender.is_closed() || self.settings.max_idle == 0 {
            return;
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
            idle.push(Idle { sender, since: now });
        }
    }

    /// Sends `req` on an idle connection or a new one to `address`; returns the answer and
    /// the connection, to be [put back](Self::put_back) once the answer's body is read.
    pub async fn send(
        &self,
        address: &str,
        mut req: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Sender), UpstreamError> {
        while let Some(mut sender) = self.pop_idle() {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut e) => {
                    match e.take_message() {
                        Some(unsent) => {
                            debug!(server = address, "reused connection closed before the request was written; resending");
                            req = unsent;
                        }
                        None => return Err(UpstreamError::Exchange(error_chain(e.error()))),
                    }
                }
            }
        }
        let mut sender = self.connect(address).await?;
        match sender.send_request(req).await {
            Ok(response) => Ok((response, sender)),
            Err(e) => Err(UpstreamError::Exchange(error_chain(&e))),
        }
    }

    async fn connect(&self, address: &str) -> Result<Sender, UpstreamError> {
        let connect = async {
            let stream = match address.parse::<SocketAddr>() {
                Ok(addr) => TcpStream::connect(addr).await,
                // A host name: resolved on every new connection, so DNS changes are followed.
                Err(_) => TcpStream::connect(address).await,
            }
            .map_err(|e| format!("tcp connect error: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = http1::Builder::new()
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                if let Err(e) = conn.with_upgrades().await {
                    debug!(error = %e, "upstream connection ended with an error");
                }
            });
            Ok::<_, String>(sender)
        };
        match tokio::time::timeout(self.settings.connect_timeout, connect).await {
            Ok(result) => result.map_err(UpstreamError::Connect),
            Err(_) => Err(UpstreamError::Connect(format!(
                "tcp connect error: timed out after {:?}",
                self.settings.connect_timeout
            ))),
        }
    }
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
