//! The HTTP (L7) side: serving client connections (HTTP/1.1 with keep-alive and HTTP/2,
//! plain or over TLS) and relaying their requests.
//!
//! Plain-text connections are served by proxyd's own HTTP/1.1 server, [`h1`], which holds no
//! buffer while a keep-alive connection waits. [`serve`] runs hyper's server (TLS, and HTTP/2)
//! on one accepted connection with the same limits: a header read timeout against slowloris,
//! a cap on the header section (431 beyond it), and hyper's own 400 for malformed requests;
//! each such case is logged and counted. Requests go to [`proxy::handle`]. The pieces: [`route`] (Host and path to a pool), [`headers`]
//! (hop-by-hop, forwarded), [`body`] (streaming, replayable request bodies), [`upgrade`]
//! (WebSocket pass-through), [`errors`] (proxyd's own answers), [`affinity`] (hash keys and
//! sticky cookies of a request), [`access`] (what the access log records of a request).

pub mod access;
pub mod affinity;
pub mod body;
pub mod errors;
pub mod h1;
pub mod headers;
pub mod proxy;
pub mod route;
pub mod upgrade;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info};

pub use proxy::{Connection, ListenerShared};

/// Largest header section accepted from a client; beyond it the answer is 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long a stopping proxyd lets a hyper connection (TLS, HTTP/2) carry on before asking
/// it to finish; see [`serve`].
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// hyper's server configured for one listener.
pub fn server_builder(header_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}

/// Serves one client connection until it closes.
pub async fn serve<IO>(io: IO, conn: Arc<Connection>, builder: &auto::Builder<TokioExecutor>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let for_service = Arc::clone(&conn);
    let service = service_fn(move |req| {
        let conn = Arc::clone(&for_service);
        async move {
            let req = req.map(body::ClientBody::Hyper);
            let (mut parts, mut body) = proxy::handle(req, &conn).await.into_parts();
            body.move_header_lines(&mut parts.headers);
            Ok::<_, Infallible>(hyper::Response::from_parts(parts, body))
        }
    });
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = conn.drain.cancelled() => {
            // hyper closes a connection that has not sent a byte yet at once; give a client
            // accepted just before the stop (its request on the way) a moment first.
            let grace = tokio::time::sleep(DRAIN_GRACE);
            tokio::select! {
                result = connection.as_mut() => result,
                () = grace => {
                    // Finish what is in flight, take no new request (HTTP/2: GOAWAY).
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            }
        }
    };
    if let Err(e) = result {
        let kind = classify(&*e);
        conn.shared
            .metrics
            .client_errors
            .with_label_values(&[&conn.shared.listener, kind])
            .inc();
        if kind == "io" {
            debug!(client = %conn.client, error = %e, "client connection ended with an error");
        } else {
            info!(client = %conn.client, listener = %conn.shared.listener, kind, error = %e, "bad input from client");
        }
    }
}

/// The metrics label of a connection error.
fn classify(e: &(dyn std::error::Error + Send + Sync + 'static)) -> &'static str {
    let Some(hyper_error) = e.downcast_ref::<hyper::Error>() else {
        return "io";
    };
    if hyper_error.is_parse_too_large() {
        "header_too_large"
    } else if hyper_error.is_parse() || hyper_error.is_parse_status() {
        "bad_request"
    } else if hyper_error.is_timeout() {
        "header_timeout"
    } else {
        "io"
    }
}
