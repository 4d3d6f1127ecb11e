//! Property tests for the codec: whatever bytes arrive, the decoder answers without
//! panicking, and whatever we can encode decodes back to the same fields.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;

use super::checksum::Pseudo;
use super::header::set_checksum;
use super::*;

fn expectations() -> impl Strategy<Value = Expectations> {
    (
        prop_oneof![Just(Version::V2), Just(Version::V3)],
        any::<u8>(),
        prop_oneof![Just(AddressFamily::Ipv4), Just(AddressFamily::Ipv6)],
        1u64..5,
        any::<bool>(),
        proptest::option::of(any::<[u8; 8]>()),
        any::<bool>(),
    )
        .prop_map(|(version, vrid, family, secs, unicast, password, vips)| {
            let mut expect = Expectations::new(version, vrid, family, Duration::from_secs(secs));
            expect.own_addresses = vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))];
            if unicast {
                expect.unicast_peers = vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))];
            }
            expect.v2_password = password;
            if vips {
                expect.virtual_addresses = Some(vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100))]);
            }
            expect
        })
}

fn ipv4_addresses() -> impl Strategy<Value = Vec<Ipv4Addr>> {
    proptest::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 0..20)
}

/// A valid v3 or v2 datagram from 198.18.0.1 with random fields.
fn valid_datagram() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        1u8..=255,
        any::<u8>(),
        1u16..=4095,
        ipv4_addresses(),
    )
        .prop_map(|(v3, vrid, priority, centis, vips)| {
            let source = Ipv4Addr::new(198, 18, 0, 1);
            let message = if v3 {
                let advert = Outgoing {
                    vrid,
                    priority,
                    interval: Duration::from_millis(u64::from(centis) * 10),
                    addresses: &vips,
                };
                encode_v3_ipv4(&advert, source, MULTICAST_IPV4, ChecksumMode::default())
            } else {
                let advert = Outgoing {
                    vrid,
                    priority,
                    interval: Duration::from_secs(u64::from(centis % 255 + 1)),
                    addresses: &vips,
                };
                encode_v2(&advert, &V2Auth::None)
            };
            let message = message.unwrap_or_default();
            build_ipv4_datagram(source, MULTICAST_IPV4, 255, &message).unwrap_or_default()
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Set { at: usize, value: u8 },
    Truncate { len: usize },
    Extend { bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(|bytes| Mutation::Extend { bytes }),
    ]
}

fn apply(datagram: &mut Vec<u8>, mutation: &Mutation) {
    let len = datagram.len().max(1);
    match mutation {
        Mutation::Flip { at, mask } => {
            if let Some(byte) = datagram.get_mut(at % len) {
                *byte ^= mask;
            }
        }
        Mutation::Set { at, value } => {
            if let Some(byte) = datagram.get_mut(at % len) {
                *byte = *value;
            }
        }
        Mutation::Truncate { len: keep } => datagram.truncate(keep % len),
        Mutation::Extend { bytes } => datagram.extend_from_slice(bytes),
    }
}

/// Recomputes the VRRP checksum of a (mutated) datagram with a plain 20-byte header, so
/// that mutations reach the checks behind the checksum.
fn fix_vrrp_checksum(datagram: &mut [u8]) {
    if datagram.len() < 28 {
        return;
    }
    let source = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    let destination = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    let message = &mut datagram[20..];
    let pseudo = if message[0] >> 4 == 3 {
        Pseudo::Ipv4 {
            source,
            destination,
        }
    } else {
        Pseudo::None
    };
    let sum = pseudo.compute(message);
    set_checksum(message, sum);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_ipv4_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        expect in expectations(),
    ) {
        let _ = receive_ipv4(&bytes, &expect);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_ipv6_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        expect in expectations(),
        hop_limit in any::<u8>(),
        source in any::<u128>(),
    ) {
        let meta = Ipv6Meta {
            source: Ipv6Addr::from(source),
            destination: MULTICAST_IPV6,
            hop_limit,
        };
        let _ = receive_ipv6(&bytes, &meta, &expect);
    }

    #[test]
    fn mutated_valid_packets_never_panic_and_stay_consistent(
        datagram in valid_datagram(),
        mutations in proptest::collection::vec(mutation(), 1..6),
        fix_checksum in any::<bool>(),
        expect in expectations(),
    ) {
        let mut datagram = datagram;
        for m in &mutations {
            apply(&mut datagram, m);
        }
        if fix_checksum {
            fix_vrrp_checksum(&mut datagram);
        }
        if let Ok(advert) = receive_ipv4(&datagram, &expect) {
            prop_assert_eq!(advert.vrid, expect.vrid);
            prop_assert_eq!(advert.version, expect.version);
            prop_assert!(!advert.max_advert_interval.is_zero());
            if datagram.first() == Some(&0x45) {
                prop_assert_eq!(datagram.get(23).map(|c| usize::from(*c)), Some(advert.addresses.len()));
            }
        }
    }

    #[test]
    fn v3_ipv4_round_trips_in_both_checksum_modes(
        vrid in 1u8..=255,
        priority in any::<u8>(),
        centis in 1u16..=4095,
        vips in ipv4_addresses(),
        plain in any::<bool>(),
    ) {
        let source = Ipv4Addr::new(198, 18, 0, 1);
        let mode = if plain { ChecksumMode::WithoutPseudoHeader } else { ChecksumMode::WithPseudoHeader };
        let interval = Duration::from_millis(u64::from(centis) * 10);
        let advert = Outgoing { vrid, priority, interval, addresses: &vips };
        let message = encode_v3_ipv4(&advert, source, MULTICAST_IPV4, mode);
        prop_assert!(message.is_ok());
        let message = message.unwrap_or_default();
        let datagram = build_ipv4_datagram(source, MULTICAST_IPV4, 255, &message).unwrap_or_default();
        let expect = Expectations::new(Version::V3, vrid, AddressFamily::Ipv4, Duration::from_secs(1));
        let got = receive_ipv4(&datagram, &expect);
        let want = Advertisement {
            version: Version::V3,
            vrid,
            priority,
            max_advert_interval: interval,
            addresses: vips.iter().map(|a| IpAddr::V4(*a)).collect(),
            source: IpAddr::V4(source),
            auth: V2Auth::None,
            checksum_mode: mode,
        };
        // A message whose pseudo-header happens to sum to zero verifies both ways; we report
        // the pseudo-header variant then.
        match got {
            Ok(got) if got.checksum_mode != mode => {
                prop_assert_eq!(got.checksum_mode, ChecksumMode::WithPseudoHeader);
                prop_assert_eq!(Advertisement { checksum_mode: mode, ..got }, want);
            }
            other => prop_assert_eq!(other, Ok(want)),
        }
    }

    #[test]
    fn v3_ipv6_round_trips(
        vrid in 1u8..=255,
        priority in any::<u8>(),
        centis in 1u16..=4095,
        vips in proptest::collection::vec(any::<u128>().prop_map(Ipv6Addr::from), 0..10),
        source in any::<u128>().prop_map(Ipv6Addr::from),
    ) {
        let interval = Duration::from_millis(u64::from(centis) * 10);
        let advert = Outgoing { vrid, priority, interval, addresses: &vips };
        let message = encode_v3_ipv6(&advert, source, MULTICAST_IPV6).unwrap_or_default();
        let meta = Ipv6Meta { source, destination: MULTICAST_IPV6, hop_limit: 255 };
        let expect = Expectations::new(Version::V3, vrid, AddressFamily::Ipv6, Duration::from_secs(1));
        let got = receive_ipv6(&message, &meta, &expect);
        prop_assert_eq!(got.as_ref().map(|a| a.priority), Ok(priority));
        prop_assert_eq!(got.as_ref().map(|a| a.max_advert_interval), Ok(interval));
        prop_assert_eq!(got.map(|a| a.addresses), Ok(vips.iter().map(|a| IpAddr::V6(*a)).collect()));
    }

    #[test]
    fn v2_round_trips(
        vrid in 1u8..=255,
        priority in any::<u8>(),
        secs in 1u64..=255,
        vips in ipv4_addresses(),
        password in proptest::option::of(any::<[u8; 8]>()),
    ) {
        let source = Ipv4Addr::new(198, 18, 0, 1);
        let interval = Duration::from_secs(secs);
        let advert = Outgoing { vrid, priority, interval, addresses: &vips };
        let auth = password.map_or(V2Auth::None, V2Auth::SimpleText);
        let message = encode_v2(&advert, &auth).unwrap_or_default();
        let datagram = build_ipv4_datagram(source, MULTICAST_IPV4, 255, &message).unwrap_or_default();
        let mut expect = Expectations::new(Version::V2, vrid, AddressFamily::Ipv4, interval);
        expect.v2_password = password;
        let got = receive_ipv4(&datagram, &expect);
        prop_assert_eq!(got.as_ref().map(|a| a.auth), Ok(auth));
        prop_assert_eq!(got.map(|a| a.addresses), Ok(vips.iter().map(|a| IpAddr::V4(*a)).collect()));
    }
}
