//! Active health checks: one task per server of a pool with `active_health`, probing every
//! `interval` (HTTP: method, path, expected status range, optional body substring; TCP:
//! connect), each probe bounded by `timeout`. Results go to the server's rise/fall tracker;
//! transitions are logged and counted.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ha_core::health::Transition;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{validate::parse_status_range, ActiveHealth, CheckKind};
use crate::metrics::ProxyMetrics;
use crate::pool::{Pool, Server};

/// Largest body read when `expect_body` is set.
const MAX_CHECK_BODY: usize = 64 * 1024;

/// Starts the checks of every server of `pool`, until `stop`.
pub fn spawn(pool: &Arc<Pool>, metrics: &ProxyMetrics, stop: &CancellationToken) {
    let Some(check) = pool.active_health.clone() else {
        return;
    };
    let check = Arc::new(check);
    for server in pool.servers() {
        let server = Arc::clone(server);
        let check = Arc::clone(&check);
        let pool_name = pool.name.clone();
        let metrics = metrics.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(check.interval.get());
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let result =
                    match tokio::time::timeout(check.timeout.get(), probe(&server, &check)).await {
                        Ok(result) => result,
                        Err(_) => Err(format!("no answer within {}", check.timeout)),
                    };
                let why = result.as_ref().err().cloned();
                if let Some(transition) = server.record_check(Instant::now(), result) {
                    let state = match transition {
                        Transition::WentUp => "up",
                        Transition::WentDown => "down",
                    };
                    metrics
                        .health_transitions
                        .with_label_values(&[&pool_name, server.address(), state])
                        .inc();
                    match transition {
                        Transition::WentUp => {
                            info!(pool = %pool_name, server = server.address(), "server is up: active checks pass")
                        }
                        Transition::WentDown => {
                            warn!(pool = %pool_name, server = server.address(), reason = why.as_deref().unwrap_or(""), "server is down: active checks fail")
                        }
                    }
                }
            }
        });
    }
}

async fn probe(server: &Server, check: &ActiveHealth) -> Result<(), String> {
    let addr = server.next_addr().await?;
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    match check.kind {
        CheckKind::Tcp => Ok(()),
        CheckKind::Http => http_probe(stream, server, check).await,
    }
}

async fn http_probe(
    stream: TcpStream,
    server: &Server,
    check: &ActiveHealth,
) -> Result<(), String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    let host = check.host.as_deref().unwrap_or(server.address());
    let request = Request::builder()
        .method(check.method.as_str())
        .uri(check.path.as_str())
        .header(HOST, host)
        .header(CONNECTION, "close")
        .header(USER_AGENT, "proxyd-health-check")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("invalid check request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let (low, high) = parse_status_range(&check.expect_status).unwrap_or((200, 399));
    if !(low..=high).contains(&status) {
        return Err(format!("status {status}, expected {}", check.expect_status));
    }
    if let Some(expected) = &check.expect_body {
        let body = Limited::new(response.into_body(), MAX_CHECK_BODY)
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        if !String::from_utf8_lossy(&body).contains(expected.as_str()) {
            return Err(format!("body does not contain {expected:?}"));
        }
    }
    Ok(())
}
