//! vrrpd: the VRRP v3/v2 daemon of the HA stack, holding the virtual IPs between load
//! balancer nodes.
//!
//! The pure cores: [`packet`] (advertisement codec and receive checks) and [`fsm`] (the RFC
//! 5798 state machine), [`track::assess`] (effective priority) and [`sync_group`]. Around
//! them the I/O: [`transport`] (raw VRRP sockets), [`addresses`] (VIPs over netlink,
//! gratuitous ARP / NA), [`track`] (daemon, script and link checks), [`notify`] (transition
//! hooks), [`instance`] (the per-instance task tying one machine to its I/O), [`control`] and
//! [`status`] (operator commands), [`metrics`], and [`service`], the daemon as ha-core runs it.
//! [`config`] is the file's shape and lint.

pub mod addresses;
pub mod config;
pub mod control;
pub mod fsm;
pub mod instance;
pub mod metrics;
pub mod notify;
pub mod packet;
pub mod service;
pub mod status;
pub mod sync_group;
pub mod track;
pub mod transport;

pub use service::Vrrpd;
