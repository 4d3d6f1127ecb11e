//! What the access log needs to know of one HTTP request, gathered as it goes through
//! [`super::proxy`]: only built when the access log is on.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hyper::body::Body;
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::{Request, Response};

use super::body::ResponseBody;
use super::proxy::Connection;
use crate::access_log::{AccessLogger, Entry};
use crate::pool::Server;

#[derive(Debug)]
pub struct Trace {
    started: Instant,
    route: String,
    pub pool: Option<String>,
    server: Option<Arc<Server>>,
    retries: u32,
    pub upstream: Option<Duration>,
}

impl Trace {
    pub fn of<B>(req: &Request<B>) -> Self {
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("-");
        Self {
            started: Instant::now(),
            route: format!("{} {host} {}", req.method(), req.uri().path()),
            pool: None,
            server: None,
            retries: 0,
            upstream: None,
        }
    }

    /// Attempt number `attempt` (0 first) goes to `server`.
    pub fn attempt(&mut self, server: &Arc<Server>, attempt: u32) {
        self.server = Some(Arc::clone(server));
        self.retries = attempt;
    }

    pub fn finish(self, conn: &Connection, response: &Response<ResponseBody>) -> Entry {
        let bytes_out = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or_else(|| response.body().size_hint().exact());
        Entry {
            time: SystemTime::now(),
            kind: "http",
            client: conn.client,
            listener: conn.shared.listener.clone(),
            route: self.route,
            pool: self.pool,
            server: self.server.map(|s| s.address().to_owned()),
            status: response.status().as_u16(),
            bytes_out,
            bytes_in: None,
            duration: self.started.elapsed(),
            upstream: self.upstream,
            retries: self.retries,
        }
    }
}

/// A request's access-log line waiting for the end of its answer's body: written when the
/// body ends or is dropped (the client went away, the server broke), with the body bytes that
/// went out and the time until then.
#[derive(Debug)]
pub struct PendingLog {
    logger: AccessLogger,
    entry: Option<Entry>,
    head_at: Instant,
    bytes: u64,
}

impl PendingLog {
    pub fn new(logger: AccessLogger, entry: Entry) -> Self {
        Self {
            logger,
            entry: Some(entry),
            head_at: Instant::now(),
            bytes: 0,
        }
    }

    /// `n` more body bytes went to the client.
    pub fn sent(&mut self, n: usize) {
        self.bytes += n as u64;
    }

    /// The body ended: the line is written now.
    pub fn end(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            entry.bytes_out = Some(self.bytes);
            entry.duration += self.head_at.elapsed();
            self.logger.log(entry);
        }
    }
}

impl Drop for PendingLog {
    fn drop(&mut self) {
        self.end();
    }
}
