//! The answers proxyd writes itself when it cannot relay a request: each a status and a
//! short plain-text body saying which case it is.

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::body::ResponseBody;

/// Why proxyd answered instead of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// No route and no default pool for this Host and path.
    NoRoute,
    /// Every server of the pool is down, full or already tried.
    NoServerAvailable,
    /// The servers tried failed (connect error, reset, invalid answer).
    UpstreamFailed,
    /// The servers tried did not answer in time.
    UpstreamTimeout,
    /// The request's Host or target is unusable, or its body is malformed.
    BadRequest,
    /// The client stopped sending its request body (`body_timeout`).
    ClientBodyTimeout,
    /// Every server is at `max_conns` and the pool's queue is full.
    QueueFull,
    /// The request waited in the pool's queue for `queue.timeout`.
    QueueTimeout,
    /// The client is over the listener's `rate_limit`.
    RateLimited,
}

impl ProxyError {
    pub fn status(self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoServerAvailable | ProxyError::QueueFull | ProxyError::QueueTimeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::UpstreamFailed => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BadRequest => StatusCode::BAD_REQUEST,
            ProxyError::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The label used in metrics.
    pub fn kind(self) -> &'static str {
        match self {
            ProxyError::NoRoute => "no_route",
            ProxyError::NoServerAvailable => "no_server_available",
            ProxyError::UpstreamFailed => "upstream_failed",
            ProxyError::UpstreamTimeout => "upstream_timeout",
            ProxyError::BadRequest => "bad_request",
            ProxyError::ClientBodyTimeout => "client_body_timeout",
            ProxyError::QueueFull => "queue_full",
            ProxyError::QueueTimeout => "queue_timeout",
            ProxyError::RateLimited => "rate_limited",
        }
    }

    pub fn response(self, detail: &str) -> Response<ResponseBody> {
        let headline = match self {
            ProxyError::NoRoute => "no route for this host and path",
            ProxyError::NoServerAvailable => "no server available",
            ProxyError::UpstreamFailed => "upstream server failed",
            ProxyError::UpstreamTimeout => "upstream server timed out",
            ProxyError::BadRequest => "bad request",
            ProxyError::ClientBodyTimeout => "request body timeout",
            ProxyError::QueueFull => "queue full",
            ProxyError::QueueTimeout => "queue timeout",
            ProxyError::RateLimited => "too many requests from this address",
        };
        let body = if detail.is_empty() {
            format!("{headline}\n")
        } else {
            format!("{headline}: {detail}\n")
        };
        let mut response = Response::new(ResponseBody::text(body));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}
