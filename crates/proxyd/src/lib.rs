//! proxyd: the HTTP (L7) and TCP (L4) load balancer and reverse proxy of the HA stack.
//!
//! The data path, outside in:
//! - the threads that serve connections are ha-core's [`ha_core::workers`], one
//!   single-threaded runtime each;
//! - [`listener`]: sockets, accept loops, PROXY headers from trusted balancers, TLS ([`tls`]);
//! - [`http`]: client connections (HTTP/1.1, HTTP/2), routing, forwarding, retries, upgrades;
//! - [`tcp`]: L4 sessions relayed with half-close and idle timeout;
//! - [`pool`]: servers, balancing (ha-core's algorithms), affinity, passive health, budgets;
//! - [`health`]: active checks;
//! - [`proxy_protocol`]: the PROXY v1/v2 codec.
//!
//! [`config`] is the file's shape and checks; [`snapshot`] is the configuration built for the
//! data path and swapped atomically on reload; [`service`] is the daemon as ha-core runs it,
//! with [`status`] and [`control`] (runtime commands) for the control channel and
//! [`metrics`] on the daemon's registry. [`upgrade`] hands the listening sockets to a new
//! binary without dropping a connection. [`access_log`] writes a line per request or session
//! off the request path.

pub mod access_log;
pub mod config;
pub mod control;
pub mod health;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod pool;
pub mod proxy_protocol;
pub mod runtime;
pub mod server_metrics;
pub mod service;
pub mod snapshot;
pub mod status;
pub mod tcp;
pub mod tls;
pub mod upgrade;

pub use service::Proxyd;
