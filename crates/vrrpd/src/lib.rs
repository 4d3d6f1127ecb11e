//! vrrpd: the VRRP v3/v2 daemon of the HA stack, holding the virtual IPs between load
//! balancer nodes.
//!
//! [`packet`] is the advertisement codec and [`fsm`] the RFC 5798 state machine, both pure;
//! [`config`] is the file's shape and lint; [`service`] is the daemon as ha-core runs it.

pub mod config;
pub mod fsm;
pub mod packet;
pub mod service;

pub use service::Vrrpd;
