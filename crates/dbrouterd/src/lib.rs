//! dbrouterd: the MySQL-protocol proxy of the HA stack that splits reads and writes over a
//! primary/replica pool.
//!
//! How a statement travels, module by module:
//! - [`listener`] accepts a client and starts its [`session`]: handshake, authentication
//!   against [`users`], then the command loop.
//! - [`classify`] reads the SQL text (no full parse); [`router`] decides, with what the
//!   session is in (transaction, pins, read-your-writes), whether it goes to the writer or a
//!   reader, and which one by the pool's balancing algorithm over the [`topology`].
//! - [`pool`] hands out a backend connection with the client's wire format; the response is
//!   relayed byte for byte ([`protocol::response`] finds its end). Prepared statements are
//!   mapped per backend connection by [`prepared`].
//! - [`monitor`] checks every backend and keeps the [`topology`]'s live view true (read
//!   rotation, the one writer, its epoch); it carries out failovers and switchovers.
//! - [`tls`] loads a listener's certificate and carries a session's client stream, plain or
//!   TLS.
//! - [`stats`] counts for `hactl status` and metrics; [`service`] is the daemon as ha-core
//!   runs it; [`config`] the file's shape and checks; [`protocol`] the wire codec.

pub mod classify;
pub mod client_key;
pub mod config;
pub mod listener;
pub mod monitor;
pub mod pool;
pub mod prepared;
pub mod protocol;
pub mod router;
pub mod service;
pub mod session;
pub mod stats;
pub mod tls;
pub mod topology;
pub mod users;

pub use service::Dbrouterd;
