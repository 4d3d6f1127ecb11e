//! Known-answer tests for the whole receive path: byte-exact packets as keepalived puts them
//! on the wire (checksums worked out by hand in the comments), and one crafted packet per
//! [`DropReason`] the validator can give.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::checksum::Pseudo;
use super::header::set_checksum;
use super::*;

const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

/// keepalived 2.x, `vrrp_version 3`, vrid 51, priority 150, advert_int 0.1, one VIP
/// 198.18.0.100, from 198.18.0.1 to 224.0.0.18, default checksum (IPv4 pseudo-header).
///
/// IP header checksum: 0x45c0 + 0x0020 + 0xff70 + 0xc612 + 0x0001 + 0xe000 + 0x0012
/// = 0x2eb75 -> 0xeb77 -> !0xeb77 = 0x1488.
/// VRRP checksum: pseudo-header 0xc612 + 0x0001 + 0xe000 + 0x0012 + 0x0070 + 0x000c = 0x1a6a1,
/// message 0x3133 + 0x9601 + 0x000a + 0xc612 + 0x0064 = 0x18db4; total 0x33455 -> 0x3458
/// -> !0x3458 = 0xcba7.
const KEEPALIVED_V3_PSEUDO: [u8; 32] = [
    0x45, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0xff, 0x70, 0x14, 0x88, 198, 18, 0, 1, 224, 0,
    0, 18, // IPv4
    0x31, 0x33, 0x96, 0x01, 0x00, 0x0a, 0xcb, 0xa7, 198, 18, 0, 100, // VRRPv3
];

/// The same advertisement with `checksum_as_v2` (no pseudo-header), as Cisco and Juniper
/// send it: 0x18db4 -> 0x8db5 -> !0x8db5 = 0x724a.
const KEEPALIVED_V3_PLAIN: [u8; 32] = [
    0x45, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0xff, 0x70, 0x14, 0x88, 198, 18, 0, 1, 224, 0,
    0, 18, // IPv4
    0x31, 0x33, 0x96, 0x01, 0x00, 0x0a, 0x72, 0x4a, 198, 18, 0, 100, // VRRPv3
];

/// keepalived `vrrp_version 2`, advert_int 1, no authentication; IP checksum
/// 0x2eb75 + 8 = 0x2eb7d -> 0xeb7f -> 0x1480; VRRP checksum 0x8253 (see `v2.rs`).
const KEEPALIVED_V2: [u8; 40] = [
    0x45, 0xc0, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0xff, 0x70, 0x14, 0x80, 198, 18, 0, 1, 224, 0,
    0, 18, // IPv4
    0x21, 0x33, 0x96, 0x01, 0x00, 0x01, 0x82, 0x53, 198, 18, 0, 100, 0, 0, 0, 0, 0, 0, 0,
    0, // VRRPv2
];

fn v3_expect() -> Expectations {
    let mut expect = Expectations::new(
        Version::V3,
        51,
        AddressFamily::Ipv4,
        Duration::from_millis(100),
    );
    expect.own_addresses = vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))];
    expect
}

fn v2_expect() -> Expectations {
    Expectations::new(Version::V2, 51, AddressFamily::Ipv4, Duration::from_secs(1))
}

fn expected_advert(version: Version, interval: Duration, mode: ChecksumMode) -> Advertisement {
    Advertisement {
        version,
        vrid: 51,
        priority: 150,
        max_advert_interval: interval,
        addresses: vec![IpAddr::V4(VIP)],
        source: IpAddr::V4(PEER),
        auth: V2Auth::None,
        checksum_mode: mode,
    }
}

/// A valid v3 datagram after `edit` changed its VRRP message; the checksum is recomputed so
/// that only the edited field is wrong.
fn crafted_v3(ttl: u8, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let advert = Outgoing {
        vrid: 51,
        priority: 150,
        interval: Duration::from_millis(100),
        addresses: &[VIP],
    };
    let mut message =
        encode_v3_ipv4(&advert, PEER, MULTICAST_IPV4, ChecksumMode::default()).unwrap_or_default();
    edit(&mut message);
    let pseudo = Pseudo::Ipv4 {
        source: PEER,
        destination: MULTICAST_IPV4,
    };
    let checksum = pseudo.compute(&message);
    set_checksum(&mut message, checksum);
    build_ipv4_datagram(PEER, MULTICAST_IPV4, ttl, &message).unwrap_or_default()
}

#[test]
fn keepalived_v3_with_pseudo_header_is_accepted() {
    let expected = expected_advert(
        Version::V3,
        Duration::from_millis(100),
        ChecksumMode::WithPseudoHeader,
    );
    assert_eq!(
        receive_ipv4(&KEEPALIVED_V3_PSEUDO, &v3_expect()),
        Ok(expected)
    );
}

#[test]
fn keepalived_v3_without_pseudo_header_is_accepted() {
    let expected = expected_advert(
        Version::V3,
        Duration::from_millis(100),
        ChecksumMode::WithoutPseudoHeader,
    );
    assert_eq!(
        receive_ipv4(&KEEPALIVED_V3_PLAIN, &v3_expect()),
        Ok(expected)
    );
}

#[test]
fn encoder_reproduces_the_keepalived_v3_packets_byte_for_byte() {
    let advert = Outgoing {
        vrid: 51,
        priority: 150,
        interval: Duration::from_millis(100),
        addresses: &[VIP],
    };
    for (mode, wire) in [
        (ChecksumMode::WithPseudoHeader, KEEPALIVED_V3_PSEUDO),
        (ChecksumMode::WithoutPseudoHeader, KEEPALIVED_V3_PLAIN),
    ] {
        let message = encode_v3_ipv4(&advert, PEER, MULTICAST_IPV4, mode).unwrap_or_default();
        let datagram = build_ipv4_datagram(PEER, MULTICAST_IPV4, 255, &message);
        assert_eq!(datagram.as_deref(), Ok(&wire[..]), "{mode:?}");
    }
}

#[test]
fn keepalived_v2_round_trips_byte_for_byte() {
    let expected = expected_advert(
        Version::V2,
        Duration::from_secs(1),
        ChecksumMode::WithoutPseudoHeader,
    );
    assert_eq!(receive_ipv4(&KEEPALIVED_V2, &v2_expect()), Ok(expected));
    let advert = Outgoing {
        vrid: 51,
        priority: 150,
        interval: Duration::from_secs(1),
        addresses: &[VIP],
    };
    let message = encode_v2(&advert, &V2Auth::None).unwrap_or_default();
    let datagram = build_ipv4_datagram(PEER, MULTICAST_IPV4, 255, &message);
    assert_eq!(datagram.as_deref(), Ok(&KEEPALIVED_V2[..]));
}

#[test]
fn ipv6_round_trip_uses_the_ipv6_pseudo_header() {
    let source: Ipv6Addr = "fe80::5054:ff:fe12:3456"
        .parse()
        .unwrap_or(Ipv6Addr::LOCALHOST);
    let vips: [Ipv6Addr; 2] = [
        "2001:db8::100".parse().unwrap_or(Ipv6Addr::LOCALHOST),
        "fe80::100".parse().unwrap_or(Ipv6Addr::LOCALHOST),
    ];
    let advert = Outgoing {
        vrid: 7,
        priority: 200,
        interval: Duration::from_millis(1500),
        addresses: &vips,
    };
    let message = encode_v3_ipv6(&advert, source, MULTICAST_IPV6).unwrap_or_default();
    assert_eq!(message.len(), 8 + 32);
    let meta = Ipv6Meta {
        source,
        destination: MULTICAST_IPV6,
        hop_limit: 255,
    };
    let expect = Expectations::new(Version::V3, 7, AddressFamily::Ipv6, Duration::from_secs(1));
    let got = receive_ipv6(&message, &meta, &expect);
    assert_eq!(got.as_ref().map(|a| a.priority), Ok(200));
    assert_eq!(
        got.as_ref().map(|a| a.max_advert_interval),
        Ok(Duration::from_millis(1500))
    );
    assert_eq!(
        got.map(|a| a.addresses),
        Ok(vips.iter().map(|v| IpAddr::V6(*v)).collect())
    );
    // Without the pseudo-header the IPv6 checksum is wrong: there is no fallback for IPv6.
    let mut plain = message.clone();
    let checksum = Pseudo::None.compute(&plain);
    set_checksum(&mut plain, checksum);
    assert_eq!(
        receive_ipv6(&plain, &meta, &expect),
        Err(DropReason::BadChecksum)
    );
    let low_hops = Ipv6Meta {
        hop_limit: 254,
        ..meta
    };
    assert_eq!(
        receive_ipv6(&message, &low_hops, &expect),
        Err(DropReason::BadTtl { ttl: 254 })
    );
}

#[test]
fn each_malformed_packet_gets_its_drop_reason() {
    let expect = v3_expect();
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        (
            "ttl",
            crafted_v3(64, |_| {}),
            DropReason::BadTtl { ttl: 64 },
        ),
        (
            "version",
            crafted_v3(255, |m| m[0] = 0x21),
            DropReason::BadVersion { version: 2 },
        ),
        (
            "type",
            crafted_v3(255, |m| m[0] = 0x32),
            DropReason::UnknownType { kind: 2 },
        ),
        (
            "vrid",
            crafted_v3(255, |m| m[1] = 52),
            DropReason::WrongVrid { vrid: 52 },
        ),
        (
            "count too high",
            crafted_v3(255, |m| m[3] = 2),
            DropReason::AddressCountMismatch { count: 2, len: 12 },
        ),
        (
            "trailing bytes",
            crafted_v3(255, |m| m.extend_from_slice(&[0, 0])),
            DropReason::AddressCountMismatch { count: 1, len: 14 },
        ),
        (
            "truncated",
            crafted_v3(255, |m| m.truncate(5)),
            DropReason::Truncated { len: 5, needed: 8 },
        ),
        (
            "zero interval",
            crafted_v3(255, |m| m[5] = 0),
            DropReason::BadInterval,
        ),
        (
            "checksum",
            {
                let mut d = crafted_v3(255, |_| {});
                d[26] ^= 0xff;
                d
            },
            DropReason::BadChecksum,
        ),
    ];
    for (name, datagram, reason) in cases {
        assert_eq!(receive_ipv4(&datagram, &expect), Err(reason), "{name}");
    }
}

#[test]
fn source_filters_drop_own_and_foreign_packets() {
    let datagram = crafted_v3(255, |_| {});
    let mut expect = v3_expect();
    expect.own_addresses.push(IpAddr::V4(PEER));
    assert_eq!(receive_ipv4(&datagram, &expect), Err(DropReason::OwnPacket));

    let mut expect = v3_expect();
    expect.unicast_peers = vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3))];
    assert_eq!(
        receive_ipv4(&datagram, &expect),
        Err(DropReason::ForeignUnicastPeer {
            peer: IpAddr::V4(PEER)
        })
    );
    expect.unicast_peers.push(IpAddr::V4(PEER));
    assert!(receive_ipv4(&datagram, &expect).is_ok());
}

#[test]
fn v2_interval_must_match_ours() {
    let mut expect = v2_expect();
    expect.advert_interval = Duration::from_secs(2);
    assert_eq!(
        receive_ipv4(&KEEPALIVED_V2, &expect),
        Err(DropReason::IntervalMismatch {
            received: Duration::from_secs(1),
            expected: Duration::from_secs(2),
        })
    );
}

#[test]
fn version_and_family_mismatches_are_dropped() {
    assert_eq!(
        receive_ipv4(&KEEPALIVED_V2, &v3_expect()),
        Err(DropReason::BadVersion { version: 2 })
    );
    let mut v6 = v3_expect();
    v6.family = AddressFamily::Ipv6;
    assert_eq!(
        receive_ipv4(&KEEPALIVED_V3_PSEUDO, &v6),
        Err(DropReason::WrongFamily)
    );
    let meta = Ipv6Meta {
        source: Ipv6Addr::LOCALHOST,
        destination: MULTICAST_IPV6,
        hop_limit: 255,
    };
    assert_eq!(
        receive_ipv6(&KEEPALIVED_V3_PSEUDO[20..], &meta, &v2_expect()),
        Err(DropReason::WrongFamily)
    );
}

#[test]
fn virtual_address_check_spares_the_owner() {
    let mut expect = v3_expect();
    expect.virtual_addresses = Some(vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 200))]);
    assert_eq!(
        receive_ipv4(&KEEPALIVED_V3_PSEUDO, &expect),
        Err(DropReason::VirtualAddressMismatch)
    );
    let owner = crafted_v3(255, |m| m[2] = 255);
    assert_eq!(receive_ipv4(&owner, &expect).map(|a| a.priority), Ok(255));
    expect.virtual_addresses = Some(vec![IpAddr::V4(VIP)]);
    assert!(receive_ipv4(&KEEPALIVED_V3_PSEUDO, &expect).is_ok());
}

#[test]
fn priority_zero_is_a_valid_advertisement() {
    let leaving = crafted_v3(255, |m| m[2] = 0);
    assert_eq!(
        receive_ipv4(&leaving, &v3_expect()).map(|a| a.priority),
        Ok(0)
    );
}
