//! Metrics: one prometheus registry per daemon, with process metrics (CPU, RSS, open fds), and
//! the HTTP exporter serving it at `GET /metrics`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metrics registration failed: {0}")]
    Register(#[from] prometheus::Error),
}

/// The daemon's registry. Cloning is cheap and shares the registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
}

impl Metrics {
    /// A registry with the process collector registered.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry: Arc::new(registry),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            warn!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Binds `addr` and serves `/metrics` until `shutdown`. Returns the bound address (useful
    /// when `addr` has port 0).
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> Result<SocketAddr, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        info!(listen = %local, "metrics listening");
        let metrics = self.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = listener.accept() => match r {
                        Ok(s) => s,
                        Err(e) => { warn!(error = %e, "metrics accept failed"); continue; }
                    },
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let metrics = metrics.clone();
                        async move { Ok::<_, Infallible>(metrics.respond(&req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(local)
    }

    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let (status, body) = match (req.method(), req.uri().path()) {
            (&Method::GET, "/metrics") => (StatusCode::OK, self.render()),
            (&Method::GET, _) => (
                StatusCode::NOT_FOUND,
                "not found: try /metrics\n".to_string(),
            ),
            _ => (StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_string()),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_metrics_are_included() {
        let m = Metrics::new().expect("registry");
        let text = m.render();
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
        assert!(text.contains("process_open_fds"), "{text}");
        assert!(text.contains("process_cpu_seconds_total"), "{text}");
    }
}
