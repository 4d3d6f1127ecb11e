//! proxyd's configuration: the shape of `shared/config/proxyd.yaml`, parsed by ha-core's loader
//! and checked by [`Validate`] (references between listeners, routes and pools; addresses;
//! algorithm parameters).

mod pool;
pub mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use ha_core::config::{ControlConfig, Duration, LogConfig, LogFormat, MetricsConfig, Workers};
use serde::Deserialize;

pub use pool::{
    ActiveHealth, Balance, CheckKind, FailureKind, Keepalive, PassiveHealth, Pool, ProxyProtocol,
    Queue, Retry, Server, Sticky, Timeouts,
};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub workers: Workers,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub access_log: AccessLog,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub pools: BTreeMap<String, Pool>,
}

/// `access_log`: one line per request or TCP session.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub format: LogFormat,
    /// A file, or `-` for standard output.
    #[serde(default = "stdout")]
    pub path: PathBuf,
}

fn yes() -> bool {
    true
}

fn stdout() -> PathBuf {
    PathBuf::from("-")
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            enabled: false,
            format: LogFormat::Text,
            path: stdout(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Tcp,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    pub protocol: Protocol,
    /// `IP:PORT`.
    pub listen: String,
    #[serde(default)]
    pub max_connections: Option<usize>,
    #[serde(default)]
    pub backlog: Option<u32>,
    /// HTTP: routes by Host and path prefix, first match wins.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// TCP: the pool; HTTP: the default pool when no route matches.
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Accept a PROXY protocol header from these load balancers in front (addresses or CIDRs).
    #[serde(default)]
    pub accept_proxy_from: Vec<String>,
    /// Idle timeout of a client connection (HTTP keep-alive, TCP session; default 300s).
    #[serde(default)]
    pub idle_timeout: Option<Duration>,
    /// Time a client has to send a request's whole header section (slowloris; default 10s);
    /// also bounds the TLS handshake and the PROXY header.
    #[serde(default)]
    pub header_timeout: Option<Duration>,
    /// Time between two successive reads of a request body from the client (nginx's
    /// `client_body_timeout`; default 60s): a client that stops sending gets a 408.
    #[serde(default)]
    pub body_timeout: Option<Duration>,
    /// `SO_REUSEPORT` (off by default, as nginx's `reuseport`): lets a second proxyd (binary
    /// upgrade) bind the same address while the old socket still accepts. Off, a second
    /// proxyd on a busy port fails to start instead of silently sharing it. A reload never
    /// needs it: a listener whose address did not change keeps its socket.
    #[serde(default)]
    pub reuse_port: bool,
    /// HTTP: requests per client address (token bucket); over it the answer is 429.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// `listeners[].rate_limit`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second per client address, on average.
    pub rate: f64,
    /// Requests a client may send at once (default: `rate`, at least 1).
    #[serde(default)]
    pub burst: Option<u32>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Exact host or `*`.
    #[serde(default = "any_host")]
    pub host: String,
    #[serde(default = "root_path")]
    pub path_prefix: String,
    pub pool: String,
}

fn any_host() -> String {
    "*".into()
}

fn root_path() -> String {
    "/".into()
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub certificates: Vec<Certificate>,
}

/// A certificate chain and its key; chosen by SNI among the listener's certificates.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}
