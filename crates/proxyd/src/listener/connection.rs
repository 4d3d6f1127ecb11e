//! One accepted connection: read a PROXY header if the peer is a trusted load balancer,
//! terminate TLS if the listener has certificates, then serve HTTP or relay TCP.
//!
//! The task of a plain-text HTTP connection is what an idle keep-alive client costs, so only
//! that path runs inline; the others (PROXY header, TLS and hyper, TCP relaying) are boxed:
//! their state is allocated only by the connections that take them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ha_core::workers::Holding;
use prometheus::IntGauge;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, Instrument};

use crate::access_log::AccessLogger;
use crate::metrics::ProxyMetrics;
use crate::proxy_protocol::{decode, Decoded};
use crate::snapshot::{ListenerKind, ListenerRuntime};

/// Serves one client connection to its end.
///
/// Not an `async fn`: the plain-text HTTP connection's future is built here and returned as
/// it is, because an async wrapper would keep the arguments in the task a second time,
/// beside the inner future's own copies, for as long as the connection lives.
pub fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    listener: Arc<ListenerRuntime>,
    metrics: ProxyMetrics,
    drain: CancellationToken,
    access_log: Option<AccessLogger>,
) -> impl Future<Output = ()> + Send {
    let _ = stream.set_nodelay(true);
    let span = tracing::debug_span!("conn", listener = %listener.name, client = %peer);
    metrics
        .connections
        .with_label_values(&[&listener.name])
        .inc();
    let open = Open::count(&metrics, &listener.name);
    let trusted = super::trusted::is_trusted(&listener.trusted, peer.ip());
    let work = match &listener.kind {
        // Most connections: plain-text HTTP straight from the client, served inline.
        ListenerKind::Http {
            routes,
            server,
            tls: None,
        } if !trusted => {
            let conn = Arc::new(crate::http::Connection::new(
                &listener, peer, "http", routes, &metrics, drain, access_log,
            ));
            let timeouts = h1_timeouts(&listener);
            Either::Left(crate::http::h1::serve(
                stream,
                conn,
                timeouts,
                Arc::clone(server),
            ))
        }
        _ => Either::Right(Box::pin(async move {
            serve_other(stream, peer, local, &listener, &metrics, drain, access_log).await
        })),
    };
    Holding::new(work, open).instrument(span)
}

/// A connection counted in `proxyd_open_connections` while it lives.
struct Open(IntGauge);

impl Open {
    fn count(metrics: &ProxyMetrics, listener: &str) -> Self {
        let open = metrics.open_connections.with_label_values(&[listener]);
        open.inc();
        Self(open)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
        debug!("connection closed");
    }
}

fn h1_timeouts(listener: &ListenerRuntime) -> crate::http::h1::Timeouts {
    crate::http::h1::Timeouts {
        header: listener.header_timeout,
        idle: listener.idle_timeout,
    }
}

/// The other connections: behind a PROXY header, over TLS, or relayed as TCP. Boxed by the
/// caller, so their larger state (a TLS handshake, hyper's server) is allocated only by the
/// connections that take these paths.
async fn serve_other(
    mut stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    listener: &Arc<ListenerRuntime>,
    metrics: &ProxyMetrics,
    drain: CancellationToken,
    access_log: Option<AccessLogger>,
) {
    let mut client = peer;
    if super::trusted::is_trusted(&listener.trusted, peer.ip()) {
        match read_proxy_header(&mut stream, listener.header_timeout).await {
            Ok(Some(real)) => client = real,
            Ok(None) => {}
            Err(why) => {
                metrics
                    .client_errors
                    .with_label_values(&[&listener.name, "proxy_header"])
                    .inc();
                info!(client = %peer, reason = %why, "invalid PROXY header, closing");
                return;
            }
        }
    }
    let local = local.unwrap_or(peer);
    match &listener.kind {
        crate::snapshot::ListenerKind::Tcp(pool) => {
            let session = crate::tcp::Session {
                listener: listener.name.clone(),
                client,
                local,
                idle_timeout: listener.idle_timeout,
                metrics: metrics.clone(),
                access_log,
            };
            crate::tcp::serve(stream, Arc::clone(pool), session).await;
        }
        crate::snapshot::ListenerKind::Http {
            routes,
            server,
            tls,
        } => {
            let conn = Arc::new(crate::http::Connection::new(
                listener,
                client,
                if tls.is_some() { "https" } else { "http" },
                routes,
                metrics,
                drain,
                access_log,
            ));
            match tls {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(listener.header_timeout, acceptor.accept(stream))
                            .await;
                    match handshake {
                        Ok(Ok(tls_stream)) => crate::http::serve(tls_stream, conn, server).await,
                        Ok(Err(e)) => {
                            metrics
                                .client_errors
                                .with_label_values(&[&listener.name, "tls_handshake"])
                                .inc();
                            info!(client = %client, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics
                                .client_errors
                                .with_label_values(&[&listener.name, "tls_handshake"])
                                .inc();
                            info!(client = %client, "TLS handshake timed out");
                        }
                    }
                }
                None => {
                    let timeouts = h1_timeouts(listener);
                    crate::http::h1::serve(stream, conn, timeouts, Arc::clone(server)).await
                }
            }
        }
    }
}

/// Reads exactly the PROXY header (v1 or v2) and returns the client it names.
async fn read_proxy_header(
    stream: &mut TcpStream,
    timeout: Duration,
) -> Result<Option<SocketAddr>, String> {
    let read = async {
        // 15 bytes is the shortest header ("PROXY UNKNOWN\r\n"), so this never reads past one.
        let mut buf = vec![0u8; 15];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match decode(&buf).map_err(|e| e.to_string())? {
                Decoded::Header { addresses, .. } => return Ok(addresses.map(|a| a.source)),
                Decoded::Incomplete => {
                    // v2: the length is known once 16 bytes are in; v1: one byte at a time to CRLF.
                    let want = if buf.len() >= 16 && buf.starts_with(b"\r\n\r\n") {
                        (16 + usize::from(u16::from_be_bytes([buf[14], buf[15]])))
                            .saturating_sub(buf.len())
                    } else {
                        1
                    };
                    let start = buf.len();
                    buf.resize(start + want.max(1), 0);
                    stream
                        .read_exact(&mut buf[start..])
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| "timed out reading the PROXY header".to_owned())?
}
