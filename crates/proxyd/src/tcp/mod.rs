//! The TCP (L4) side: a client connection relayed to a server of the listener's pool, with
//! the same balancing and health as HTTP. A server that refuses or does not answer the
//! connect is marked failed and the next one is tried; the server is told who the client is
//! with a PROXY protocol header when the pool asks for it; bytes are relayed with half-close
//! and an idle timeout ([`copy`]).

pub mod copy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::access_log::{AccessLogger, Entry};
use crate::config::{FailureKind, ProxyProtocol};
use crate::metrics::ProxyMetrics;
use crate::pool::{Pool, Server};
use crate::proxy_protocol::{encode_v1, encode_v2, Addresses};

/// One TCP session as the listener hands it over.
pub struct Session {
    pub listener: String,
    pub client: SocketAddr,
    /// The address the client connected to (for the PROXY header).
    pub local: SocketAddr,
    pub idle_timeout: Duration,
    pub metrics: ProxyMetrics,
    pub access_log: Option<AccessLogger>,
}

/// Relays `stream` to a server of `pool` until either side is done.
pub async fn serve(mut stream: TcpStream, pool: Arc<Pool>, session: Session) {
    let started = Instant::now();
    let Some((mut server_stream, server, in_flight)) = connect(&pool, &session).await else {
        session
            .metrics
            .proxy_errors
            .with_label_values(&[&session.listener, "no_server_available"])
            .inc();
        warn!(listener = %session.listener, client = %session.client, pool = %pool.name,
              "no server of the pool accepted the connection; closing the client's");
        return;
    };
    let header = match pool.proxy_protocol {
        ProxyProtocol::Off => None,
        ProxyProtocol::V1 => Some(encode_v1(&addresses(&session))),
        ProxyProtocol::V2 => Some(encode_v2(&addresses(&session))),
    };
    if let Some(header) = header {
        if let Err(e) = server_stream.write_all(&header).await {
            warn!(server = server.address(), error = %e, "cannot send the PROXY header");
            return;
        }
    }
    let relayed = copy::relay(&mut stream, &mut server_stream, session.idle_timeout).await;
    match &relayed {
        Ok(relayed) => debug!(
            client = %session.client, server = server.address(),
            up = relayed.client_to_server, down = relayed.server_to_client,
            idle_timeout = relayed.idle_timeout, "tcp session ended"
        ),
        Err(e) => {
            debug!(client = %session.client, server = server.address(), error = %e, "tcp session ended with an error")
        }
    }
    drop(in_flight);
    if let Some(log) = &session.access_log {
        let (bytes_in, bytes_out) = relayed.as_ref().map_or((None, None), |r| {
            (Some(r.client_to_server), Some(r.server_to_client))
        });
        log.log(Entry {
            time: std::time::SystemTime::now(),
            kind: "tcp",
            client: session.client,
            listener: session.listener.clone(),
            route: String::new(),
            pool: Some(pool.name.clone()),
            server: Some(server.address().to_owned()),
            status: 0,
            bytes_out,
            bytes_in,
            duration: started.elapsed(),
            upstream: None,
            retries: 0,
        });
    }
}

fn addresses(session: &Session) -> Addresses {
    Addresses {
        source: session.client,
        destination: session.local,
    }
}

async fn connect(
    pool: &Arc<Pool>,
    session: &Session,
) -> Option<(TcpStream, Arc<Server>, crate::pool::InFlight)> {
    let mut tried: Vec<Arc<Server>> = Vec::new();
    let tries = pool.retry.tries.max(1);
    pool.record_request();
    for attempt in 0..tries {
        if attempt > 0 {
            if !pool.try_retry() {
                session
                    .metrics
                    .retries_over_budget
                    .with_label_values(&[&pool.name])
                    .inc();
                return None;
            }
            session
                .metrics
                .retries
                .with_label_values(&[&pool.name])
                .inc();
        }
        let server = pool
            .acquire(
                Some(Pool::hash_of(&session.client.ip().to_string()))
                    .filter(|_| matches!(pool.affinity, crate::pool::Affinity::ClientIp)),
                None,
                &tried,
            )
            .await
            .ok()?;
        let in_flight = server.begin();
        let connect_timeout = pool.timeouts.connect.get();
        let connect = async {
            let addr = server
                .next_addr()
                .await
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e))?;
            TcpStream::connect(addr).await
        };
        let result = tokio::time::timeout(connect_timeout, connect).await;
        let (kind, detail) = match result {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, server, in_flight));
            }
            Ok(Err(e)) => (FailureKind::Error, format!("connect: {e}")),
            Err(_) => (
                FailureKind::Timeout,
                format!("connect timed out after {connect_timeout:?}"),
            ),
        };
        let label = if kind == FailureKind::Timeout {
            "timeout"
        } else {
            "error"
        };
        session
            .metrics
            .upstream_failures
            .with_label_values(&[&pool.name, server.address(), label])
            .inc();
        let went_down =
            pool.is_passive_failure(kind) && server.record_failure(Instant::now(), &detail);
        if went_down {
            session
                .metrics
                .health_transitions
                .with_label_values(&[&pool.name, server.address(), "down"])
                .inc();
        }
        info!(pool = %pool.name, server = server.address(), reason = %detail, went_down, "tcp connect failed, trying the next server");
        tried.push(server);
    }
    None
}
