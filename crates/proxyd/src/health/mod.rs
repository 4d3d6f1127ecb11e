//! Health of servers. Passive health (failures seen on live traffic) lives with the server
//! ([`crate::pool::passive`]); this module runs the active checks, which nginx open source
//! lacks: an HTTP request or a TCP connect per server at an interval, fed to ha-core's
//! rise/fall tracker, with slow start when a server comes back ([`active`]).

pub mod active;
