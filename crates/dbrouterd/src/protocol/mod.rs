//! The MySQL/MariaDB client/server wire protocol, as pure functions over bytes.
//!
//! Nothing here touches a socket: the session code reads bytes into a `BytesMut`, asks
//! [`PacketCodec`] for whole packets, and hands their payloads to the parsers below; to answer it
//! builds payloads with the `encode` methods and frames them with the same codec. Every decoder
//! takes untrusted bytes and returns a [`ProtocolError`] rather than panicking; the property
//! tests in `proptests.rs` feed arbitrary bytes to each of them.
//!
//! Layout, one concern a file:
//! - [`packet`]: framing (3-byte length, sequence id, 16 MiB splitting and reassembly).
//! - [`wire`]: the primitive field types (fixed and length-encoded integers and strings).
//! - [`capabilities`], [`status`]: capability flags (with MariaDB's extended ones) and server
//!   status flags.
//! - [`handshake`], [`handshake_response`], [`change_user`]: connection phase packets.
//! - [`auth`]: `mysql_native_password` and `caching_sha2_password` scrambles and checks;
//!   [`caching_sha2`]: that plugin's full authentication (cleartext over TLS, RSA).
//! - [`ok`], [`err`], [`session_track`]: the end-of-command packets and the session state
//!   changes carried in OK packets.
//! - [`command`], [`query`], [`prepared`]: the command phase (`COM_*` bytes, `COM_QUERY` text,
//!   prepared statement packets).
//!
//! References: the MySQL "Client/Server Protocol" internals documentation and MariaDB's
//! "Client/Server Protocol" pages (extended capabilities, progress reports).

pub mod auth;
pub mod caching_sha2;
pub mod capabilities;
pub mod change_user;
pub mod command;
pub mod err;
mod error;
pub mod handshake;
pub mod handshake_response;
pub mod ok;
pub mod packet;
pub mod prepared;
pub mod query;
pub mod response;
pub mod session_track;
pub mod status;
pub mod wire;

#[cfg(test)]
mod proptests;

pub(crate) use capabilities::flag_set;
pub use capabilities::{Capabilities, MariaDbCapabilities};
pub use command::Command;
pub use err::ErrPacket;
pub use error::ProtocolError;
pub use handshake::HandshakeV10;
pub use handshake_response::{ClientHello, HandshakeResponse41, SslRequest};
pub use ok::{EofPacket, OkPacket};
pub use packet::{Packet, PacketCodec};
pub use status::StatusFlags;
