//! The control channel every daemon serves and `hactl` (and vrrpd's daemon tracking) calls.
//!
//! A Unix stream socket per daemon (default `/run/ha/<daemon>.sock`, mode 0660), one JSON object
//! per line each way. A request is `{"cmd": "status", "args": {...}}`; the answer is
//! `{"ok": true, "data": ...}` or `{"ok": false, "error": {"kind": "...", "message": "..."}}`.
//! Anyone who can open the socket may read; changing commands need uid 0 or the admin group,
//! decided from the peer's credentials (SO_PEERCRED).

mod auth;
mod client;
mod protocol;
mod server;

pub use auth::{Caller, Groups};
pub use client::{ClientError, ControlClient};
pub use protocol::{
    Access, CommandError, ErrorKind, Request, Response, MAX_LINE_BYTES, PROTOCOL_VERSION,
};
pub use server::{BoxFuture, CommandHandler, ControlServer, ServerError};
