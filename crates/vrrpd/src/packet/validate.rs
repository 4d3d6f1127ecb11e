//! Receive-side validation (RFC 5798 §7.1, RFC 3768 §7.1): turns a received packet into an
//! [`Advertisement`] or says, as a [`DropReason`], why it must be dropped.
//!
//! Checks run cheapest and most common first, so the label a dropped packet gets is stable:
//! the IP layer, then our own looped-back packets and strangers (unicast), the TTL, the
//! version and type, the length against the address count, the checksum, the VRID, and last
//! the interval, authentication and (optionally) the virtual address list.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use super::checksum::Pseudo;
use super::header::{FixedHeader, HEADER_LEN, TYPE_ADVERTISEMENT};
use super::ip::parse_ipv4;
use super::{v2, v3, AddressFamily, Advertisement, ChecksumMode, V2Auth, Version, VRRP_TTL};

/// What one VRRP instance expects of the packets it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    pub version: Version,
    pub vrid: u8,
    pub family: AddressFamily,
    /// Our advertisement interval. VRRPv2 packets must carry the same one (RFC 3768 §7.1);
    /// VRRPv3 backups learn the master's instead, so it is not checked for v3.
    pub advert_interval: Duration,
    /// Every address of ours on the interface: packets from them are our own, looped back.
    pub own_addresses: Vec<IpAddr>,
    /// When not empty, the instance runs unicast and accepts packets from these sources only.
    pub unicast_peers: Vec<IpAddr>,
    /// VRRPv2 simple-text password. When set, packets must carry auth type 1 with it; when not,
    /// type 0 and type 1 are both accepted (and the type is reported in the advertisement).
    pub v2_password: Option<[u8; 8]>,
    /// When set, the advertised address set must equal this one unless the sender is the
    /// address owner (the optional check of RFC 5798 §7.1).
    pub virtual_addresses: Option<Vec<IpAddr>>,
}

impl Expectations {
    /// Expectations with no own addresses, multicast, no password and no address-list check.
    pub fn new(
        version: Version,
        vrid: u8,
        family: AddressFamily,
        advert_interval: Duration,
    ) -> Self {
        Expectations {
            version,
            vrid,
            family,
            advert_interval,
            own_addresses: Vec::new(),
            unicast_peers: Vec::new(),
            v2_password: None,
            virtual_addresses: None,
        }
    }
}

/// What the socket layer learnt about a received IPv6 packet from ancillary data
/// (`IPV6_RECVPKTINFO`, `IPV6_RECVHOPLIMIT`) and the source address of `recvmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Meta {
    pub source: Ipv6Addr,
    pub destination: Ipv6Addr,
    pub hop_limit: u8,
}

/// Why a received packet was dropped. [`label`](DropReason::label) is the stable metrics
/// label; `Display` is the sentence for a debug log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DropReason {
    #[error("packet of {len} bytes is shorter than the {needed} bytes its headers need")]
    Truncated { len: usize, needed: usize },
    #[error("malformed IPv4 header")]
    BadIpHeader,
    #[error("IPv4 fragment")]
    Fragmented,
    #[error("IP protocol {protocol} is not VRRP (112)")]
    NotVrrp { protocol: u8 },
    #[error("packet of the other address family, or VRRPv2 over IPv6")]
    WrongFamily,
    #[error("our own advertisement, looped back")]
    OwnPacket,
    #[error("source {peer} is not one of the configured unicast peers")]
    ForeignUnicastPeer { peer: IpAddr },
    #[error("TTL/hop limit {ttl} is not 255: the packet crossed a router")]
    BadTtl { ttl: u8 },
    #[error("VRRP version {version} is not the one configured")]
    BadVersion { version: u8 },
    #[error("VRRP packet type {kind} is not ADVERTISEMENT (1)")]
    UnknownType { kind: u8 },
    #[error("{count} addresses announced but the message is {len} bytes long")]
    AddressCountMismatch { count: u8, len: usize },
    #[error("checksum mismatch")]
    BadChecksum,
    #[error("VRID {vrid} is not ours")]
    WrongVrid { vrid: u8 },
    #[error("advertisement interval of zero")]
    BadInterval,
    #[error("advertisement interval {received:?} differs from ours ({expected:?}), which VRRPv2 forbids")]
    IntervalMismatch {
        received: Duration,
        expected: Duration,
    },
    #[error("authentication type {auth_type} or its password does not match ours")]
    BadAuth { auth_type: u8 },
    #[error("advertised virtual addresses differ from ours")]
    VirtualAddressMismatch,
}

impl DropReason {
    /// Every label, for registering metrics up front.
    pub const LABELS: [&'static str; 17] = [
        "truncated",
        "bad_ip_header",
        "fragmented",
        "not_vrrp",
        "wrong_family",
        "own_packet",
        "foreign_unicast_peer",
        "bad_ttl",
        "bad_version",
        "unknown_type",
        "address_count_mismatch",
        "bad_checksum",
        "wrong_vrid",
        "bad_interval",
        "interval_mismatch",
        "bad_auth",
        "vip_mismatch",
    ];

    /// A short, stable label for metrics (`vrrp_packets_dropped_total{reason="bad_ttl"}`).
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::Truncated { .. } => "truncated",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::Fragmented => "fragmented",
            DropReason::NotVrrp { .. } => "not_vrrp",
            DropReason::WrongFamily => "wrong_family",
            DropReason::OwnPacket => "own_packet",
            DropReason::ForeignUnicastPeer { .. } => "foreign_unicast_peer",
            DropReason::BadTtl { .. } => "bad_ttl",
            DropReason::BadVersion { .. } => "bad_version",
            DropReason::UnknownType { .. } => "unknown_type",
            DropReason::AddressCountMismatch { .. } => "address_count_mismatch",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::WrongVrid { .. } => "wrong_vrid",
            DropReason::BadInterval => "bad_interval",
            DropReason::IntervalMismatch { .. } => "interval_mismatch",
            DropReason::BadAuth { .. } => "bad_auth",
            DropReason::VirtualAddressMismatch => "vip_mismatch",
        }
    }
}

/// The version-specific part of a decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    pub max_advert_interval: Duration,
    pub addresses: Vec<IpAddr>,
    pub auth: V2Auth,
    pub checksum_mode: ChecksumMode,
}

/// Validates a whole IPv4 datagram, as a raw `IPPROTO_VRRP` socket delivers it.
pub fn receive_ipv4(datagram: &[u8], expect: &Expectations) -> Result<Advertisement, DropReason> {
    if expect.family != AddressFamily::Ipv4 {
        return Err(DropReason::WrongFamily);
    }
    let ip = parse_ipv4(datagram)?;
    let pseudo = match expect.version {
        Version::V3 => Pseudo::Ipv4 {
            source: ip.source,
            destination: ip.destination,
        },
        Version::V2 => Pseudo::None,
    };
    decode(ip.payload, IpAddr::V4(ip.source), ip.ttl, pseudo, expect)
}

/// Validates a VRRPv3 message received over IPv6, whose IP fields come in `meta`.
pub fn receive_ipv6(
    message: &[u8],
    meta: &Ipv6Meta,
    expect: &Expectations,
) -> Result<Advertisement, DropReason> {
    if expect.family != AddressFamily::Ipv6 || expect.version == Version::V2 {
        return Err(DropReason::WrongFamily);
    }
    let pseudo = Pseudo::Ipv6 {
        source: meta.source,
        destination: meta.destination,
    };
    decode(
        message,
        IpAddr::V6(meta.source),
        meta.hop_limit,
        pseudo,
        expect,
    )
}

fn decode(
    message: &[u8],
    source: IpAddr,
    ttl: u8,
    pseudo: Pseudo,
    expect: &Expectations,
) -> Result<Advertisement, DropReason> {
    if expect.own_addresses.contains(&source) {
        return Err(DropReason::OwnPacket);
    }
    if !expect.unicast_peers.is_empty() && !expect.unicast_peers.contains(&source) {
        return Err(DropReason::ForeignUnicastPeer { peer: source });
    }
    if ttl != VRRP_TTL {
        return Err(DropReason::BadTtl { ttl });
    }
    let header = FixedHeader::parse(message).ok_or(DropReason::Truncated {
        len: message.len(),
        needed: HEADER_LEN,
    })?;
    if header.version != expect.version.number() {
        return Err(DropReason::BadVersion {
            version: header.version,
        });
    }
    if header.kind != TYPE_ADVERTISEMENT {
        return Err(DropReason::UnknownType { kind: header.kind });
    }
    let checksum_mode = match expect.version {
        Version::V3 => v3::check(message, &header, pseudo)?,
        Version::V2 => v2::check(message, &header)?,
    };
    if header.vrid != expect.vrid {
        return Err(DropReason::WrongVrid { vrid: header.vrid });
    }
    let body = match expect.version {
        Version::V3 => v3::body(message, &header, expect.family, checksum_mode)?,
        Version::V2 => v2::body(
            message,
            &header,
            expect.advert_interval,
            expect.v2_password.as_ref(),
        )?,
    };
    if let Some(ours) = &expect.virtual_addresses {
        if header.priority != 255 && !same_set(ours, &body.addresses) {
            return Err(DropReason::VirtualAddressMismatch);
        }
    }
    Ok(Advertisement {
        version: expect.version,
        vrid: header.vrid,
        priority: header.priority,
        max_advert_interval: body.max_advert_interval,
        addresses: body.addresses,
        source,
        auth: body.auth,
        checksum_mode: body.checksum_mode,
    })
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_unstable();
    a.dedup();
    b.sort_unstable();
    b.dedup();
    a == b
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn labels_are_unique_and_listed() {
        let unique: HashSet<_> = DropReason::LABELS.iter().collect();
        assert_eq!(unique.len(), DropReason::LABELS.len());
        let samples = [
            DropReason::BadTtl { ttl: 1 },
            DropReason::OwnPacket,
            DropReason::VirtualAddressMismatch,
            DropReason::IntervalMismatch {
                received: Duration::from_secs(2),
                expected: Duration::from_secs(1),
            },
        ];
        for reason in samples {
            assert!(DropReason::LABELS.contains(&reason.label()));
            assert!(reason
                .label()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn address_sets_compare_without_order() {
        let a: IpAddr = [198, 18, 0, 1].into();
        let b: IpAddr = [198, 18, 0, 2].into();
        assert!(same_set(&[a, b], &[b, a]));
        assert!(!same_set(&[a], &[a, b]));
    }
}
