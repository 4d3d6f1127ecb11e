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
use std::time::{Duration, Instant};

use hyper::body::Body;
use hyper::header::{HeaderValue, HOST, SET_COOKIE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use prometheus::{IntCounter, IntCounterVec};
use tokio_util::sync::CancellationToken;

use super::access::Trace;
use crate::access_log::AccessLogger;
use crate::listener::rate_limit::RateLimiter;
use crate::snapshot::ListenerRuntime;
use tracing::{debug, warn};

use super::affinity::affinity;
use super::body::{ClientBody, ReplayableBody, ResponseBody, UpstreamBody};
use super::errors::ProxyError;
use super::h1::upstream::{ClientBodyError, ExchangeError, TransferTimeouts};
use super::h1::{self, response_body::ResponseStream};
use super::headers::{self, ClientInfo};
use super::route::Routes;
use super::upgrade::{self, ClientUpgrade};
use crate::config::FailureKind;
use crate::metrics::ProxyMetrics;
use crate::pool::queue::Unavailable;
use crate::pool::upstream::UpstreamError;
use crate::pool::{Affinity, Pool, Server};

/// What every HTTP connection of one listener (in one configuration) shares, built by its
/// first connection: kept once rather than in each of thousands of idle connections.
#[derive(Debug)]
pub struct ListenerShared {
    pub listener: String,
    pub routes: Arc<Routes>,
    pub metrics: ProxyMetrics,
    /// The listener's per-client request rate limit, if it has one.
    pub rate_limit: Option<Arc<RateLimiter>>,
    /// The longest wait for the next piece of a request body from the client.
    pub body_timeout: Duration,
    /// An upgraded connection (WebSocket) with nothing moving either way for this long is
    /// closed: the listener's `idle_timeout`.
    pub tunnel_idle: Duration,
    /// `proxyd_requests_total` of this listener by status class (1xx to 5xx), looked up once.
    requests_by_class: [IntCounter; 5],
}

/// What a connection knows about itself, shared by its requests.
#[derive(Debug)]
pub struct Connection {
    pub shared: Arc<ListenerShared>,
    /// The client, as told by a trusted PROXY header or seen on the socket.
    pub client: SocketAddr,
    /// `http` or `https`.
    pub proto: &'static str,
    /// Cancelled when the daemon stops (or hands over to a new process): idle keep-alive
    /// connections close, answers in progress carry `Connection: close`.
    pub drain: CancellationToken,
    /// Where a line per request goes, when the access log is on.
    pub access_log: Option<AccessLogger>,
    /// The client's forwarded-header values, formatted once.
    identity: ClientInfo,
}

impl Connection {
    pub fn new(
        listener: &ListenerRuntime,
        client: SocketAddr,
        proto: &'static str,
        routes: &Arc<Routes>,
        metrics: &ProxyMetrics,
        drain: CancellationToken,
        access_log: Option<AccessLogger>,
    ) -> Self {
        let shared = listener.http_shared.get_or_init(|| {
            Arc::new(ListenerShared {
                listener: listener.name.clone(),
                routes: Arc::clone(routes),
                metrics: metrics.clone(),
                rate_limit: listener.rate_limit.clone(),
                body_timeout: listener.body_timeout,
                tunnel_idle: listener.idle_timeout,
                requests_by_class: ["1xx", "2xx", "3xx", "4xx", "5xx"]
                    .map(|class| metrics.requests.with_label_values(&[&listener.name, class])),
            })
        });
        Self {
            shared: Arc::clone(shared),
            client,
            proto,
            drain,
            access_log,
            identity: ClientInfo::new(client.ip(), proto),
        }
    }
}

/// Answers one request; never fails (errors become responses).
pub async fn handle(mut req: Request<ClientBody>, conn: &Connection) -> Response<ResponseBody> {
    let mut trace = conn.access_log.as_ref().map(|_| Trace::of(&req));
    let over_limit = conn
        .shared
        .rate_limit
        .as_ref()
        .is_some_and(|limit| !limit.allow(conn.client.ip(), Instant::now()));
    let routed = if over_limit {
        Err(ProxyError::RateLimited)
    } else {
        route(&req, conn)
    };
    let response = match routed {
        Ok(pool) => {
            let pool = Arc::clone(pool);
            if let Some(trace) = &mut trace {
                trace.pool = Some(pool.name.clone());
            }
            let wants_upgrade =
                req.version() == Version::HTTP_11 && headers::is_upgrade(req.headers());
            let client_upgrade = wants_upgrade.then(|| ClientUpgrade::of(&mut req));
            forward(req, client_upgrade, &pool, conn, trace.as_mut()).await
        }
        Err(e) => Err((e, String::new())),
    };
    let response = response.unwrap_or_else(|(error, detail)| {
        conn.shared
            .metrics
            .proxy_errors
            .with_label_values(&[&conn.shared.listener, error.kind()])
            .inc();
        error.response(&detail)
    });
    let class = usize::from((response.status().as_u16() / 100).clamp(1, 5)) - 1;
    conn.shared.requests_by_class[class].inc();
    let mut response = response;
    if let (Some(log), Some(trace)) = (&conn.access_log, trace) {
        let entry = trace.finish(conn, &response);
        response.body_mut().log_at_end(log, entry);
    }
    response
}

fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

fn route<'a, B>(req: &Request<B>, conn: &'a Connection) -> Result<&'a Arc<Pool>, ProxyError> {
    conn.shared
        .routes
        .find(request_host(req), req.uri().path())
        .ok_or(ProxyError::NoRoute)
}

type Failure = (ProxyError, String);

async fn forward(
    req: Request<ClientBody>,
    client_upgrade: Option<ClientUpgrade>,
    pool: &Arc<Pool>,
    conn: &Connection,
    mut trace: Option<&mut Trace>,
) -> Result<Response<ResponseBody>, Failure> {
    let (mut parts, body) = req.into_parts();
    let host = request_host_of(&parts);
    let host_text = host.as_ref().and_then(|h| h.to_str().ok());
    let (hash, cookie_server) = affinity(pool, &parts, conn, host_text);
    if client_upgrade.is_some() {
        prepare_headers(&mut parts, conn, host.as_ref(), true);
    } else {
        // The forwarding headers and Host are written with the head (`request_head`).
        headers::remove_hop_by_hop(&mut parts.headers, false);
    }
    // Origin form ("/path?query"): the server is addressed by the connection.
    let Some(uri) = origin_form(&parts.uri) else {
        return Err((ProxyError::BadRequest, "invalid request target".into()));
    };
    let idempotent = is_idempotent(&parts.method);
    let body = ReplayableBody::new(body);
    let mut client_upgrade = client_upgrade;
    // Requests but upgrades go out as bytes written once for every server tried.
    let request_head = client_upgrade.is_none().then(|| {
        let probe = body.attempt();
        let forwarding = h1::upstream::Forwarding {
            client: &conn.identity,
            host: host.as_ref(),
        };
        h1::upstream::request_head(
            &parts.method,
            &uri,
            &parts.headers,
            forwarding,
            &probe.size_hint(),
            probe.is_end_stream(),
        )
    });
    let head_request = parts.method == Method::HEAD;

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
                conn.shared
                    .metrics
                    .retries_over_budget
                    .with_label_values(&[&pool.name])
                    .inc();
                break;
            }
            conn.shared
                .metrics
                .retries
                .with_label_values(&[&pool.name])
                .inc();
        }
        let server = match pool.acquire(hash, cookie_server.as_deref(), &tried).await {
            Ok(server) => server,
            Err(Unavailable::NoServer) => break,
            Err(why) => return Err(queue_failure(why, pool)),
        };
        let in_flight = server.begin();
        if let Some(trace) = trace.as_deref_mut() {
            trace.attempt(&server, attempt);
        }

        // Raw HTTP/1.1 exchanges time each step themselves (see `h1::upstream`); the whole of
        // one is bounded only by the retries' total time limit. Upgrade requests (no body) are
        // given connect + read for the answer.
        let retry_left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut wait = pool.timeouts.read.get() + pool.timeouts.connect.get();
        if let Some(left) = retry_left {
            wait = wait.min(left);
        }
        let sent_at = Instant::now();
        let outcome = match &request_head {
            Some((head, framing)) => {
                let exchange = h1::upstream::exchange(
                    server.connections(),
                    server.address(),
                    head,
                    body.attempt(),
                    *framing,
                    head_request,
                    TransferTimeouts {
                        read: pool.timeouts.read.get(),
                        send: pool.timeouts.send.get(),
                        client_body: conn.shared.body_timeout,
                    },
                );
                let exchanged = match retry_left {
                    Some(left) => tokio::time::timeout(left, exchange).await,
                    None => Ok(exchange.await),
                };
                match exchanged {
                    Ok(Ok(response)) => Ok(Ok(Answer::H1(response))),
                    Ok(Err(ExchangeError::Upstream(e))) => Ok(Err(e)),
                    Ok(Err(ExchangeError::Client(e))) => {
                        // The client's failure: the server is not blamed, nothing is retried.
                        let error = match e {
                            ClientBodyError::Timeout(_) => ProxyError::ClientBodyTimeout,
                            ClientBodyError::Failed(_) => ProxyError::BadRequest,
                        };
                        return Err((error, e.to_string()));
                    }
                    Ok(Err(
                        e @ (ExchangeError::SendTimeout(_) | ExchangeError::ReadTimeout(_)),
                    )) => Err(e.to_string()),
                    Err(_) => Err(format!(
                        "no answer within what was left of the retry time limit ({:?})",
                        retry_left.unwrap_or_default()
                    )),
                }
            }
            None => {
                let mut upstream = Request::new(body.attempt());
                *upstream.method_mut() = parts.method.clone();
                *upstream.uri_mut() = uri.clone();
                *upstream.version_mut() = Version::HTTP_11;
                // The last possible attempt takes the headers; earlier ones copy them.
                *upstream.headers_mut() = if attempt + 1 < tries {
                    parts.headers.clone()
                } else {
                    std::mem::take(&mut parts.headers)
                };
                let exchange = server
                    .connections()
                    .send_upgrade(server.address(), upstream);
                tokio::time::timeout(wait, exchange)
                    .await
                    .map(|r| r.map(Answer::Hyper))
                    .map_err(|_| format!("no answer within {wait:?}"))
            }
        };
        let (kind, nothing_sent, detail) = match outcome {
            Ok(Ok(answer)) => {
                let status = answer.status();
                let upstream_time = sent_at.elapsed();
                server.stats().record(status.as_u16(), upstream_time);
                if let Some(trace) = trace.as_deref_mut() {
                    trace.upstream = Some(upstream_time);
                }
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
                let (parts, body) = match answer {
                    Answer::Hyper(mut response) => {
                        if status == StatusCode::SWITCHING_PROTOCOLS {
                            if let Some(client_upgrade) = client_upgrade.take() {
                                let server_upgrade = hyper::upgrade::on(&mut response);
                                upgrade::tunnel(
                                    client_upgrade,
                                    server_upgrade,
                                    in_flight,
                                    conn.shared.tunnel_idle,
                                );
                                return Ok(switching_protocols(response));
                            }
                        }
                        let (parts, body) = response.into_parts();
                        (parts, UpstreamBody::hyper(body, in_flight))
                    }
                    Answer::H1(response) => {
                        let (parts, body) = response.into_parts();
                        let failures = BodyFailures {
                            pool: Arc::clone(pool),
                            upstream_failures: conn.shared.metrics.upstream_failures.clone(),
                            health_transitions: conn.shared.metrics.health_transitions.clone(),
                        };
                        (parts, UpstreamBody::h1(body, in_flight, failures))
                    }
                };
                return Ok(relay_response(
                    parts,
                    body,
                    pool,
                    &server,
                    cookie_server.as_deref(),
                ));
            }
            Ok(Err(e)) => {
                let connect = matches!(e, UpstreamError::Connect(_));
                (FailureKind::Error, connect, e.to_string())
            }
            Err(detail) => (FailureKind::Timeout, false, detail),
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

/// A server's answer: from a raw keep-alive connection, or from hyper (upgrade requests).
enum Answer {
    H1(Response<ResponseStream>),
    Hyper(Response<hyper::body::Incoming>),
}

impl Answer {
    fn status(&self) -> StatusCode {
        match self {
            Answer::H1(response) => response.status(),
            Answer::Hyper(response) => response.status(),
        }
    }
}

fn queue_failure(why: Unavailable, pool: &Pool) -> Failure {
    let (error, detail) = if why == Unavailable::QueueFull {
        (
            ProxyError::QueueFull,
            "every server is at max_conns and the queue is full",
        )
    } else {
        (
            ProxyError::QueueTimeout,
            "no server became free within the queue timeout",
        )
    };
    (error, format!("pool {}: {detail}", pool.name))
}

fn note_failure(pool: &Pool, server: &Server, kind: FailureKind, detail: &str, conn: &Connection) {
    record_failure(
        pool,
        server,
        kind,
        detail,
        &conn.shared.metrics.upstream_failures,
        &conn.shared.metrics.health_transitions,
    );
}

/// Where a server's response body reports failing after its head was relayed (the read
/// timeout, see [`super::h1::response_body`]): the server's pool and the failure counters,
/// as [`note_failure`] reports a failed attempt.
#[derive(Debug)]
pub struct BodyFailures {
    pool: Arc<Pool>,
    upstream_failures: IntCounterVec,
    health_transitions: IntCounterVec,
}

impl BodyFailures {
    pub fn timed_out(&self, server: &Server, detail: &str) {
        record_failure(
            &self.pool,
            server,
            FailureKind::Timeout,
            detail,
            &self.upstream_failures,
            &self.health_transitions,
        );
    }
}

fn record_failure(
    pool: &Pool,
    server: &Server,
    kind: FailureKind,
    detail: &str,
    upstream_failures: &IntCounterVec,
    health_transitions: &IntCounterVec,
) {
    let label = match kind {
        FailureKind::Error => "error".to_owned(),
        FailureKind::Timeout => "timeout".to_owned(),
        FailureKind::Http(code) => format!("http_{code}"),
    };
    upstream_failures
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
        health_transitions
            .with_label_values(&[&pool.name, server.address(), "down"])
            .inc();
    }
}

/// The Host the client asked for: its Host header, else the authority of its target.
fn request_host_of(parts: &Parts) -> Option<HeaderValue> {
    match parts.headers.get(HOST) {
        Some(host) if host.to_str().is_ok() => Some(host.clone()),
        _ => parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
    }
}

fn prepare_headers(
    parts: &mut Parts,
    conn: &Connection,
    host: Option<&HeaderValue>,
    upgrade: bool,
) {
    headers::remove_hop_by_hop(&mut parts.headers, upgrade);
    headers::add_forwarded(&mut parts.headers, &conn.identity, host);
    if !parts.headers.contains_key(HOST) {
        if let Some(host) = host {
            parts.headers.insert(HOST, host.clone());
        }
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn origin_form(target: &Uri) -> Option<Uri> {
    if target.scheme().is_none() && target.authority().is_none() {
        return Some(target.clone());
    }
    let mut parts = hyper::http::uri::Parts::default();
    parts.path_and_query = Some(
        target
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/")),
    );
    Uri::from_parts(parts).ok()
}

fn relay_response(
    mut parts: hyper::http::response::Parts,
    body: UpstreamBody,
    pool: &Pool,
    server: &Server,
    cookie_server: Option<&str>,
) -> Response<ResponseBody> {
    headers::remove_hop_by_hop(&mut parts.headers, false);
    if let Affinity::Cookie(signer) = &pool.affinity {
        if cookie_server != Some(server.address()) {
            if let Ok(value) = HeaderValue::from_str(&signer.set_cookie(server.address())) {
                parts.headers.append(SET_COOKIE, value);
            }
        }
    }
    debug!(pool = %pool.name, server = server.address(), status = %parts.status, "relayed");
    Response::from_parts(parts, ResponseBody::Upstream(body))
}

fn switching_protocols(response: Response<hyper::body::Incoming>) -> Response<ResponseBody> {
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, ResponseBody::empty())
}
