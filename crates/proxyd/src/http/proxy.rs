//! One HTTP request through proxyd: route to a pool, pick a server, forward with the
//! client's identity added, stream the answer back, and go to the next server when an
//! attempt fails and may be retried (nginx's `proxy_next_upstream`, with a retry budget).
//!
//! A failed attempt may be resent when nothing of it reached the server (a connect error),
//! or when its method is idempotent (or the pool allows non-idempotent retries) and none of
//! its body has been streamed yet. When no server can take the request the client gets a
//! 503, when servers failed a 502 (504 for a timeout), each with a short body saying which.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, COOKIE, HOST, SET_COOKIE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use tracing::{debug, warn};

use super::body::{ReplayableBody, ResponseBody};
use super::errors::ProxyError;
use super::headers::{self, ClientInfo};
use super::route::Routes;
use super::upgrade;
use crate::config::FailureKind;
use crate::metrics::ProxyMetrics;
use crate::pool::hash_key::KeySource;
use crate::pool::{Affinity, Pool, Server};

/// What a connection knows about itself, shared by its requests.
#[derive(Debug)]
pub struct Connection {
    pub listener: String,
    /// The client, as told by a trusted PROXY header or seen on the socket.
    pub client: SocketAddr,
    /// `http` or `https`.
    pub proto: &'static str,
    pub routes: Arc<Routes>,
    pub metrics: ProxyMetrics,
}

/// Answers one request; never fails (errors become responses).
pub async fn handle(mut req: Request<Incoming>, conn: &Connection) -> Response<ResponseBody> {
    let response = match route(&req, conn) {
        Ok(pool) => {
            let pool = Arc::clone(pool);
            let wants_upgrade =
                req.version() == Version::HTTP_11 && headers::is_upgrade(req.headers());
            let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut req));
            forward(req, client_upgrade, &pool, conn).await
        }
        Err(e) => Err((e, String::new())),
    };
    let response = response.unwrap_or_else(|(error, detail)| {
        conn.metrics
            .proxy_errors
            .with_label_values(&[&conn.listener, error.kind()])
            .inc();
        error.response(&detail)
    });
    let class = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    conn.metrics
        .requests
        .with_label_values(&[&conn.listener, class])
        .inc();
    response
}

fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

fn route<'a, B>(req: &Request<B>, conn: &'a Connection) -> Result<&'a Arc<Pool>, ProxyError> {
    conn.routes
        .find(request_host(req), req.uri().path())
        .ok_or(ProxyError::NoRoute)
}

type Failure = (ProxyError, String);

async fn forward(
    req: Request<Incoming>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    pool: &Arc<Pool>,
    conn: &Connection,
) -> Result<Response<ResponseBody>, Failure> {
    let (mut parts, body) = req.into_parts();
    let host = request_host_of(&parts);
    let (hash, cookie_server) = affinity(pool, &parts, conn, host.as_deref());
    prepare_headers(&mut parts, conn, host.as_deref(), client_upgrade.is_some());
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let idempotent = is_idempotent(&parts.method);
    let body = ReplayableBody::new(body);
    let mut client_upgrade = client_upgrade;

    let started = Instant::now();
    let deadline = pool.retry.timeout.map(|t| started + t);
    let tries = pool.retry.tries.max(1);
    let mut tried: Vec<Arc<Server>> = Vec::new();
    let mut last_failure: Option<Failure> = None;
    pool.record_request();

    for attempt in 0..tries {
        if attempt > 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if !pool.try_retry() {
                conn.metrics
                    .retries_over_budget
                    .with_label_values(&[&pool.name])
                    .inc();
                break;
            }
            conn.metrics.retries.with_label_values(&[&pool.name]).inc();
        }
        let Some(server) = pool.pick(hash, cookie_server.as_deref(), &tried) else {
            break;
        };
        let in_flight = server.begin();
        let Some(uri) = upstream_uri(&server, &path_and_query) else {
            return Err((ProxyError::BadRequest, "invalid request target".into()));
        };
        let mut upstream = Request::new(body.attempt());
        *upstream.method_mut() = parts.method.clone();
        *upstream.uri_mut() = uri;
        *upstream.version_mut() = Version::HTTP_11;
        *upstream.headers_mut() = parts.headers.clone();

        let mut wait = pool.timeouts.read.get() + pool.timeouts.connect.get();
        if let Some(deadline) = deadline {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        let outcome = tokio::time::timeout(wait, pool.client.request(upstream)).await;
        let (kind, nothing_sent, detail) = match outcome {
            Ok(Ok(mut response)) => {
                let status = response.status();
                let kind = FailureKind::Http(status.as_u16());
                let failed = status.is_server_error() || status.is_client_error();
                let resendable = idempotent || pool.retry.non_idempotent;
                if failed
                    && pool.is_retry_condition(kind)
                    && attempt + 1 < tries
                    && resendable
                    && body.untouched()
                {
                    note_failure(pool, &server, kind, &format!("status {status}"), conn);
                    last_failure = Some((
                        ProxyError::UpstreamFailed,
                        format!("server {} answered {status}", server.address()),
                    ));
                    tried.push(server);
                    continue;
                }
                if failed && pool.is_passive_failure(kind) {
                    note_failure(pool, &server, kind, &format!("status {status}"), conn);
                }
                if status == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(client_upgrade) = client_upgrade.take() {
                        let server_upgrade = hyper::upgrade::on(&mut response);
                        upgrade::tunnel(client_upgrade, server_upgrade, in_flight);
                        return Ok(switching_protocols(response));
                    }
                }
                return Ok(relay_response(
                    response,
                    pool,
                    &server,
                    cookie_server.as_deref(),
                    in_flight,
                ));
            }
            Ok(Err(e)) => {
                let connect = e.is_connect();
                let detail = error_chain(&e);
                (FailureKind::Error, connect, detail)
            }
            Err(_) => (
                FailureKind::Timeout,
                false,
                format!("no answer within {wait:?}"),
            ),
        };
        note_failure(pool, &server, kind, &detail, conn);
        let error = if kind == FailureKind::Timeout {
            ProxyError::UpstreamTimeout
        } else {
            ProxyError::UpstreamFailed
        };
        last_failure = Some((
            error,
            format!("server {} failed: {detail}", server.address()),
        ));
        let resendable =
            nothing_sent || ((idempotent || pool.retry.non_idempotent) && body.untouched());
        if !pool.is_retry_condition(kind)
            || !resendable
            || client_upgrade.is_some() && !nothing_sent
        {
            break;
        }
        tried.push(server);
    }
    Err(last_failure.unwrap_or_else(|| {
        (
            ProxyError::NoServerAvailable,
            format!("every server of pool {} is down or busy", pool.name),
        )
    }))
}

fn note_failure(pool: &Pool, server: &Server, kind: FailureKind, detail: &str, conn: &Connection) {
    let label = match kind {
        FailureKind::Error => "error".to_owned(),
        FailureKind::Timeout => "timeout".to_owned(),
        FailureKind::Http(code) => format!("http_{code}"),
    };
    conn.metrics
        .upstream_failures
        .with_label_values(&[&pool.name, server.address(), &label])
        .inc();
    let went_down = pool.is_passive_failure(kind) && server.record_failure(Instant::now(), detail);
    warn!(
        pool = %pool.name,
        server = server.address(),
        kind = %label,
        reason = detail,
        went_down,
        "upstream attempt failed"
    );
    if went_down {
        conn.metrics
            .health_transitions
            .with_label_values(&[&pool.name, server.address(), "down"])
            .inc();
    }
}

/// The error and its causes, e.g. "client error (Connect): tcp connect error: Connection refused".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn request_host_of(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .map(str::to_owned)
}

fn prepare_headers(parts: &mut Parts, conn: &Connection, host: Option<&str>, upgrade: bool) {
    headers::remove_hop_by_hop(&mut parts.headers, upgrade);
    headers::add_forwarded(
        &mut parts.headers,
        &ClientInfo {
            ip: conn.client.ip(),
            proto: conn.proto,
            host,
        },
    );
    if !parts.headers.contains_key(HOST) {
        if let Some(value) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
            parts.headers.insert(HOST, value);
        }
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn upstream_uri(server: &Server, path_and_query: &str) -> Option<Uri> {
    Uri::builder()
        .scheme("http")
        .authority(server.authority()?.clone())
        .path_and_query(path_and_query)
        .build()
        .ok()
}

/// The affinity hash and the sticky cookie's server, as the pool's balance asks.
fn affinity(
    pool: &Pool,
    parts: &Parts,
    conn: &Connection,
    host: Option<&str>,
) -> (Option<u64>, Option<String>) {
    match &pool.affinity {
        Affinity::None => (None, None),
        Affinity::ClientIp => (Some(Pool::hash_of(&conn.client.ip().to_string())), None),
        Affinity::Key(template) => {
            let key = template.evaluate(&RequestKey {
                parts,
                client: conn.client,
                host: host.unwrap_or(""),
            });
            (Some(Pool::hash_of(&key)), None)
        }
        Affinity::Cookie(signer) => {
            let cookies = parts
                .headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok());
            (None, signer.server_in(cookies))
        }
    }
}

struct RequestKey<'a> {
    parts: &'a Parts,
    client: SocketAddr,
    host: &'a str,
}

impl KeySource for RequestKey<'_> {
    fn remote_addr(&self) -> String {
        self.client.ip().to_string()
    }
    fn request_uri(&self) -> &str {
        self.parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn cookie(&self, name: &str) -> Option<&str> {
        self.parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
    fn host(&self) -> &str {
        super::route::strip_port(self.host)
    }
}

fn relay_response(
    response: Response<Incoming>,
    pool: &Pool,
    server: &Server,
    cookie_server: Option<&str>,
    in_flight: crate::pool::InFlight,
) -> Response<ResponseBody> {
    let (mut parts, body) = response.into_parts();
    headers::remove_hop_by_hop(&mut parts.headers, false);
    if let Affinity::Cookie(signer) = &pool.affinity {
        if cookie_server != Some(server.address()) {
            if let Ok(value) = HeaderValue::from_str(&signer.set_cookie(server.address())) {
                parts.headers.append(SET_COOKIE, value);
            }
        }
    }
    debug!(pool = %pool.name, server = server.address(), status = %parts.status, "relayed");
    Response::from_parts(
        parts,
        ResponseBody::Upstream {
            body,
            _in_flight: Some(in_flight),
        },
    )
}

fn switching_protocols(response: Response<Incoming>) -> Response<ResponseBody> {
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, ResponseBody::empty())
}
