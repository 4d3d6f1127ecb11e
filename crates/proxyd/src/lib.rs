//! proxyd: the HTTP (L7) and TCP (L4) load balancer and reverse proxy of the HA stack.
//!
//! [`config`] is the file's shape and checks; [`service`] is the daemon as ha-core runs it.

pub mod config;
pub mod service;

pub use service::Proxyd;
