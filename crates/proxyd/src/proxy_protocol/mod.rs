//! The PROXY protocol (HAProxy's, v1 text and v2 binary): telling a server who the client
//! really is when a connection is relayed.
//!
//! [`encode`] writes the header proxyd sends to servers (`proxy_protocol: v1 | v2` on a pool);
//! [`decode`] reads the header a trusted load balancer in front sends to proxyd
//! (`accept_proxy_from` on a listener). Both are pure byte codecs; the listener does the I/O.

pub mod decode;
pub mod encode;

use std::net::SocketAddr;

/// Where a relayed connection really comes from and goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

pub use decode::{decode, DecodeError, Decoded};
pub use encode::{encode_v1, encode_v2};
