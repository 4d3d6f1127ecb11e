//! The HTTP side: one hyper HTTP/1.1 connection per client (keep-alive), routed by method and
//! path to the [`Store`](crate::store::Store). Every answer is JSON with the app's name in it and
//! in an `x-app` header, so a client sees which application server answered.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::store::{Store, Written};

/// What every request handler shares.
pub struct App {
    name: String,
    store: Arc<Store>,
}

impl App {
    pub fn new(name: String, store: Arc<Store>) -> App {
        App { name, store }
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        match (request.method(), path) {
            (&Method::GET, "/healthz") => self.answer(StatusCode::OK, json!({"status": "ok"})),
            (&Method::GET, "/read") => match self.store.read_server_id().await {
                Ok(server_id) => self.answer(StatusCode::OK, json!({"server_id": server_id})),
                Err(e) => self.unavailable("read", &e),
            },
            (&Method::GET, "/count") => match self.store.count().await {
                Ok(count) => self.answer(StatusCode::OK, json!({"count": count})),
                Err(e) => self.unavailable("count", &e),
            },
            (&Method::POST, "/write") => {
                let Some(id) = query_id(request.uri().query()) else {
                    return self.answer(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "POST /write?id=N with N a whole number"}),
                    );
                };
                match self.store.write(id, &self.name).await {
                    Ok(written) => self.answer(
                        StatusCode::OK,
                        json!({"id": id, "duplicate": written == Written::AlreadyPresent}),
                    ),
                    Err(e) => self.unavailable("write", &e),
                }
            }
            (_, "/healthz" | "/read" | "/count" | "/write") => self.answer(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "method not allowed"}),
            ),
            _ => self.answer(StatusCode::NOT_FOUND, json!({"error": "not found"})),
        }
    }

    fn unavailable(&self, what: &str, error: &crate::store::StoreError) -> Response<Full<Bytes>> {
        warn!(what, error = %error, "database call failed");
        self.answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": error.to_string()}),
        )
    }

    fn answer(&self, status: StatusCode, mut body: Value) -> Response<Full<Bytes>> {
        body["app"] = Value::String(self.name.clone());
        let mut text = body.to_string();
        text.push('\n');
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = hyper::header::HeaderValue::from_str(&self.name) {
            headers.insert("x-app", value);
        }
        response
    }
}

/// `id=N` from a query string.
fn query_id(query: Option<&str>) -> Option<u64> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "id")
        .and_then(|(_, value)| value.parse().ok())
}

/// Serves one client connection until it closes.
pub async fn serve_connection(app: Arc<App>, stream: TcpStream, peer: SocketAddr) {
    let service = hyper::service::service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(request).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::query_id;

    #[test]
    fn the_write_id_comes_from_the_query_string() {
        assert_eq!(query_id(Some("id=42")), Some(42));
        assert_eq!(query_id(Some("x=1&id=7")), Some(7));
        assert_eq!(query_id(Some("id=-1")), None);
        assert_eq!(query_id(Some("id=")), None);
        assert_eq!(query_id(None), None);
    }
}
