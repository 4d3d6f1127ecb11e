//! The upstream HTTP client of a pool: hyper-util's pooled client, one keep-alive pool per
//! server, configured from the pool's `timeouts` and `keepalive`.
//!
//! The keep-alive race (a server closing an idle connection just as proxyd reuses it) is
//! handled in two places: idle connections are dropped after `keepalive.idle_timeout`, kept
//! shorter than the servers' own, and `retry_canceled_requests` makes the client resend on a
//! fresh connection a request that failed on a reused one before any byte of it was written,
//! whatever its method.

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{Keepalive, Timeouts};
use crate::http::body::RequestBody;

pub type Client = hyper_util::client::legacy::Client<HttpConnector, RequestBody>;

pub fn client(timeouts: &Timeouts, keepalive: &Keepalive) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeouts.connect.get()));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(keepalive.idle_timeout.get())
        .pool_max_idle_per_host(keepalive.max_idle)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .retry_canceled_requests(true)
        .set_host(false)
        .build(connector)
}
