//! The VRRP advertisement codec: bytes in, [`Advertisement`] or [`DropReason`] out, and back.
//!
//! This module is pure: it never touches a socket. The socket layer hands
//! [`receive_ipv4`] the whole IPv4 datagram a raw protocol-112 socket delivers (or, for IPv6,
//! [`receive_ipv6`] the VRRP payload plus the addresses and hop limit it read from ancillary
//! data), together with the instance's [`Expectations`], and gets back either a decoded
//! advertisement for the state machine or the reason to drop it (whose
//! [`label`](DropReason::label) is the metrics label).
//!
//! Sending goes the other way: [`encode_v3_ipv4`], [`encode_v3_ipv6`] and [`encode_v2`] build
//! the VRRP payload the kernel wraps in an IP header; [`build_ipv4_datagram`] builds a whole
//! IPv4 datagram for tests that inject crafted packets through an `IP_HDRINCL` socket.
//!
//! Formats: VRRPv3 is RFC 5798 §5, VRRPv2 is RFC 3768 §5. The layout of the fixed header is in
//! `header.rs`, checksums in `checksum.rs`, each version's body in `v3.rs` / `v2.rs`, the IP
//! layer in `ip.rs` and the receive-side checks in `validate.rs`.

mod checksum;
mod header;
mod ip;
mod v2;
mod v3;
mod validate;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod vectors_tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use header::{centis_from_interval, secs_from_interval};
pub use ip::build_ipv4_datagram;
pub use v2::encode_v2;
pub use v3::{encode_v3_ipv4, encode_v3_ipv6};
pub use validate::{receive_ipv4, receive_ipv6, DropReason, Expectations, Ipv6Meta};

/// IP protocol number of VRRP (both versions, both address families).
pub const IPPROTO_VRRP: u8 = 112;
/// The TTL / hop limit every VRRP packet is sent with and must arrive with.
pub const VRRP_TTL: u8 = 255;
/// The IPv4 multicast group advertisements go to (RFC 5798 §5.1.1.2).
pub const MULTICAST_IPV4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group advertisements go to (RFC 5798 §5.1.2.2).
pub const MULTICAST_IPV6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// DSCP/ECN byte of the IPv4 header we build: class selector 6 (network control), like
/// keepalived.
pub const IPV4_TOS_NETWORK_CONTROL: u8 = 0xc0;

/// The VRRP protocol version an instance speaks.
///
/// In configuration it is the number `2` or `3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in whole seconds, optional simple-text authentication.
    V2,
    /// RFC 5798: IPv4 and IPv6, interval in centiseconds.
    V3,
}

impl TryFrom<u8> for Version {
    type Error = String;

    fn try_from(number: u8) -> Result<Self, Self::Error> {
        match number {
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            other => Err(format!(
                "VRRP version {other} is not supported (use 2 or 3)"
            )),
        }
    }
}

impl From<Version> for u8 {
    fn from(version: Version) -> u8 {
        version.number()
    }
}

impl Version {
    /// The value of the 4-bit version field.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// The address family of an instance: which IP layer its advertisements travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressFamily {
    Ipv4,
    Ipv6,
}

/// How the VRRPv3 checksum over IPv4 is computed.
///
/// RFC 5798 §5.2.8 says the checksum covers a pseudo-header; keepalived includes the IPv4
/// pseudo-header (source, destination, protocol, length), while Cisco, Juniper and the
/// "as VRRPv2" reading cover the VRRP message alone. Receivers accept both; senders pick one
/// per instance. IPv6 always uses its pseudo-header and VRRPv2 never does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    #[default]
    WithPseudoHeader,
    WithoutPseudoHeader,
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). Type 2 (IP AH) is obsolete and refused.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum V2Auth {
    /// Type 0: no authentication; the 8 data bytes are zero on send and ignored on receive.
    #[default]
    None,
    /// Type 1: the 8-byte password in clear text (keepalived's `auth_type PASS`).
    SimpleText([u8; 8]),
}

impl V2Auth {
    /// The value of the Auth Type field.
    pub fn type_number(&self) -> u8 {
        match self {
            V2Auth::None => 0,
            V2Auth::SimpleText(_) => 1,
        }
    }
}

impl fmt::Debug for V2Auth {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V2Auth::None => f.write_str("None"),
            V2Auth::SimpleText(_) => f.write_str("SimpleText(<redacted>)"),
        }
    }
}

/// A received advertisement that passed every check in [`Expectations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    pub version: Version,
    pub vrid: u8,
    /// 0 means "the master is leaving", 255 "I own the addresses".
    pub priority: u8,
    /// The sender's advertisement interval (v3: centisecond resolution; v2: whole seconds).
    pub max_advert_interval: Duration,
    /// The virtual addresses the sender advertises, in packet order.
    pub addresses: Vec<IpAddr>,
    /// The IP source address of the packet: the sender's primary address, used for tie breaks.
    pub source: IpAddr,
    /// VRRPv2 authentication as received; always [`V2Auth::None`] for v3.
    pub auth: V2Auth,
    /// Which checksum variant the packet carried (IPv6 is always `WithPseudoHeader`, v2 always
    /// `WithoutPseudoHeader`). Useful to tell an operator which peer speaks which dialect.
    pub checksum_mode: ChecksumMode,
}

/// The fields of an advertisement to send; `A` is `Ipv4Addr` or `Ipv6Addr`, so a packet can
/// never mix families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing<'a, A> {
    pub vrid: u8,
    pub priority: u8,
    pub interval: Duration,
    pub addresses: &'a [A],
}

/// Why an advertisement could not be encoded; these are configuration mistakes, caught by
/// validation before a daemon starts, so the send path only sees them in bugs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("VRID 0 is reserved; use 1..=255")]
    ZeroVrid,
    #[error("{count} virtual addresses do not fit in one advertisement (at most 255)")]
    TooManyAddresses { count: usize },
    #[error("advertisement interval {interval:?} is not a multiple of 10ms in 10ms..=40950ms (VRRPv3 carries centiseconds)")]
    IntervalNotCentiseconds { interval: Duration },
    #[error("advertisement interval {interval:?} is not a whole number of seconds in 1s..=255s (VRRPv2 carries seconds)")]
    IntervalNotSeconds { interval: Duration },
    #[error("an IPv4 datagram cannot carry a {len}-byte payload")]
    PayloadTooLarge { len: usize },
}
