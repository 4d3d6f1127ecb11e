//! A request's affinity, as its pool's balance asks: the consistent-hash key (client
//! address or a key template over the request) or the server a signed sticky cookie names.

use std::net::SocketAddr;

use hyper::header::COOKIE;
use hyper::http::request::Parts;

use super::proxy::Connection;
use crate::pool::hash_key::KeySource;
use crate::pool::{Affinity, Pool};

/// The affinity hash and the sticky cookie's server, as the pool's balance asks.
pub fn affinity(
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
