//! ha-core: the library every daemon of the HA stack shares.
//!
//! One way to do each shared thing: configuration loading and validation ([`config`]), the
//! control channel ([`control`]), the metrics exporter ([`metrics`]), logging ([`log`]), the
//! process lifecycle (signals, graceful stop, systemd notify: [`lifecycle`]) and the daemon
//! skeleton that ties them together ([`daemon`]), the rise/fall health tracker ([`health`]) and
//! the balancing algorithms ([`balance`]).

pub mod balance;
pub mod config;
pub mod control;
pub mod daemon;
pub mod health;
pub mod io;
pub mod lifecycle;
pub mod log;
pub mod memory;
pub mod metrics;
pub mod tls;
pub mod workers;
