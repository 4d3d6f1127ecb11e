//! VRRPv3 (RFC 5798 §5.2): fixed header, then `Count IPvX Addrs` addresses of the packet's
//! family, nothing else. The 12-bit interval is in centiseconds; the checksum covers the
//! IPv6 pseudo-header, and over IPv4 either the IPv4 pseudo-header or nothing
//! ([`ChecksumMode`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum::Pseudo;
use super::header::{
    address_count, centis_from_interval, interval_from_centis, set_checksum, FixedHeader,
    HEADER_LEN, TYPE_ADVERTISEMENT,
};
use super::validate::{Body, DropReason};
use super::{AddressFamily, ChecksumMode, EncodeError, Outgoing, V2Auth};

/// Encodes a VRRPv3 advertisement for IPv4. `source` and `destination` are the IP addresses
/// the packet will carry (the multicast group, or the peer for unicast: each unicast peer
/// then needs its own encoding when `mode` includes the pseudo-header).
pub fn encode_v3_ipv4(
    advert: &Outgoing<'_, Ipv4Addr>,
    source: Ipv4Addr,
    destination: Ipv4Addr,
    mode: ChecksumMode,
) -> Result<Vec<u8>, EncodeError> {
    let pseudo = match mode {
        ChecksumMode::WithPseudoHeader => Pseudo::Ipv4 {
            source,
            destination,
        },
        ChecksumMode::WithoutPseudoHeader => Pseudo::None,
    };
    let addresses = advert.addresses.iter().map(|a| a.octets());
    encode(advert, addresses, 4, pseudo)
}

/// Encodes a VRRPv3 advertisement for IPv6; the checksum always covers the IPv6
/// pseudo-header built from `source` (our link-local address) and `destination`.
pub fn encode_v3_ipv6(
    advert: &Outgoing<'_, Ipv6Addr>,
    source: Ipv6Addr,
    destination: Ipv6Addr,
) -> Result<Vec<u8>, EncodeError> {
    let pseudo = Pseudo::Ipv6 {
        source,
        destination,
    };
    let addresses = advert.addresses.iter().map(|a| a.octets());
    encode(advert, addresses, 16, pseudo)
}

fn encode<A, const N: usize>(
    advert: &Outgoing<'_, A>,
    addresses: impl Iterator<Item = [u8; N]>,
    address_len: usize,
    pseudo: Pseudo,
) -> Result<Vec<u8>, EncodeError> {
    if advert.vrid == 0 {
        return Err(EncodeError::ZeroVrid);
    }
    let header = FixedHeader {
        version: 3,
        kind: TYPE_ADVERTISEMENT,
        vrid: advert.vrid,
        priority: advert.priority,
        count: address_count(advert.addresses.len())?,
        word2: centis_from_interval(advert.interval)?,
    };
    let mut message = Vec::with_capacity(HEADER_LEN + advert.addresses.len() * address_len);
    header.write(&mut message);
    for address in addresses {
        message.extend_from_slice(&address);
    }
    let checksum = pseudo.compute(&message);
    set_checksum(&mut message, checksum);
    Ok(message)
}

/// Checks that the message holds exactly `count` addresses and that its checksum is right,
/// in either IPv4 variant; returns which variant matched.
pub(crate) fn check(
    message: &[u8],
    header: &FixedHeader,
    pseudo: Pseudo,
) -> Result<ChecksumMode, DropReason> {
    let address_len = match pseudo {
        Pseudo::Ipv6 { .. } => 16,
        Pseudo::Ipv4 { .. } | Pseudo::None => 4,
    };
    let count = usize::from(header.count);
    if message.len() != HEADER_LEN + count * address_len {
        return Err(DropReason::AddressCountMismatch {
            count: header.count,
            len: message.len(),
        });
    }
    if pseudo.verify(message) {
        return Ok(match pseudo {
            Pseudo::None => ChecksumMode::WithoutPseudoHeader,
            Pseudo::Ipv4 { .. } | Pseudo::Ipv6 { .. } => ChecksumMode::WithPseudoHeader,
        });
    }
    if matches!(pseudo, Pseudo::Ipv4 { .. }) && Pseudo::None.verify(message) {
        return Ok(ChecksumMode::WithoutPseudoHeader);
    }
    Err(DropReason::BadChecksum)
}

/// Reads the interval and the addresses of a message that passed [`check`].
pub(crate) fn body(
    message: &[u8],
    header: &FixedHeader,
    family: AddressFamily,
    checksum_mode: ChecksumMode,
) -> Result<Body, DropReason> {
    let centis = header.v3_centis();
    if centis == 0 {
        return Err(DropReason::BadInterval);
    }
    let list = message.get(HEADER_LEN..).unwrap_or_default();
    let addresses = match family {
        AddressFamily::Ipv4 => list
            .chunks_exact(4)
            .filter_map(|c| <[u8; 4]>::try_from(c).ok())
            .map(|o| IpAddr::V4(Ipv4Addr::from(o)))
            .collect(),
        AddressFamily::Ipv6 => list
            .chunks_exact(16)
            .filter_map(|c| <[u8; 16]>::try_from(c).ok())
            .map(|o| IpAddr::V6(Ipv6Addr::from(o)))
            .collect(),
    };
    Ok(Body {
        max_advert_interval: interval_from_centis(centis),
        addresses,
        auth: V2Auth::None,
        checksum_mode,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SOURCE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

    fn outgoing(addresses: &[Ipv4Addr]) -> Outgoing<'_, Ipv4Addr> {
        Outgoing {
            vrid: 51,
            priority: 150,
            interval: Duration::from_millis(100),
            addresses,
        }
    }

    #[test]
    fn encodes_the_rfc_layout() {
        let vips = [
            Ipv4Addr::new(198, 18, 0, 100),
            Ipv4Addr::new(198, 18, 0, 101),
        ];
        let mode = ChecksumMode::WithoutPseudoHeader;
        let message = encode_v3_ipv4(&outgoing(&vips), SOURCE, GROUP, mode);
        let message = message.unwrap_or_default();
        assert_eq!(message.len(), 16);
        assert_eq!(&message[..6], &[0x31, 51, 150, 2, 0x00, 0x0a]);
        assert_eq!(&message[8..], &[198, 18, 0, 100, 198, 18, 0, 101]);
    }

    #[test]
    fn pseudo_header_choice_changes_only_the_checksum() {
        let vips = [Ipv4Addr::new(198, 18, 0, 100)];
        let with = encode_v3_ipv4(
            &outgoing(&vips),
            SOURCE,
            GROUP,
            ChecksumMode::WithPseudoHeader,
        )
        .unwrap_or_default();
        let without = encode_v3_ipv4(
            &outgoing(&vips),
            SOURCE,
            GROUP,
            ChecksumMode::WithoutPseudoHeader,
        )
        .unwrap_or_default();
        assert_eq!(with[..6], without[..6]);
        assert_eq!(with[8..], without[8..]);
        assert_ne!(with[6..8], without[6..8]);
    }

    #[test]
    fn check_reports_which_checksum_variant_matched() {
        let vips = [Ipv4Addr::new(198, 18, 0, 100)];
        let pseudo = Pseudo::Ipv4 {
            source: SOURCE,
            destination: GROUP,
        };
        for mode in [
            ChecksumMode::WithPseudoHeader,
            ChecksumMode::WithoutPseudoHeader,
        ] {
            let message = encode_v3_ipv4(&outgoing(&vips), SOURCE, GROUP, mode).unwrap_or_default();
            let header = FixedHeader::parse(&message);
            let checked = header.map(|h| check(&message, &h, pseudo));
            assert_eq!(checked, Some(Ok(mode)));
        }
    }

    #[test]
    fn encoding_refuses_bad_fields() {
        let mut advert = outgoing(&[]);
        advert.vrid = 0;
        assert_eq!(
            encode_v3_ipv4(&advert, SOURCE, GROUP, ChecksumMode::default()),
            Err(EncodeError::ZeroVrid)
        );
        let mut advert = outgoing(&[]);
        advert.interval = Duration::from_millis(41_000);
        assert!(matches!(
            encode_v3_ipv4(&advert, SOURCE, GROUP, ChecksumMode::default()),
            Err(EncodeError::IntervalNotCentiseconds { .. })
        ));
        let many = vec![Ipv6Addr::LOCALHOST; 256];
        let advert = Outgoing {
            vrid: 1,
            priority: 100,
            interval: Duration::from_secs(1),
            addresses: &many[..],
        };
        assert_eq!(
            encode_v3_ipv6(&advert, Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST),
            Err(EncodeError::TooManyAddresses { count: 256 })
        );
    }
}
