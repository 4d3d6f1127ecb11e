//! dbrouterd: the MySQL-protocol proxy of the HA stack that splits reads and writes over a
//! primary/replica pool.
//!
//! [`config`] is the file's shape and checks; [`service`] is the daemon as ha-core runs it.

pub mod classify;
pub mod config;
pub mod protocol;
pub mod service;

pub use service::Dbrouterd;
