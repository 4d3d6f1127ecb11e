//! VRRPv2 (RFC 3768 §5.3): fixed header, `Count IP Addrs` IPv4 addresses, then 8 bytes of
//! authentication data. The interval is in whole seconds and the checksum covers the VRRP
//! message alone. Auth type 0 is the standard; type 1 (simple text) is what keepalived sends
//! with `auth_type PASS`, so it is understood and reported; type 2 (IP AH) is refused.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::checksum::Pseudo;
use super::header::{
    address_count, secs_from_interval, set_checksum, FixedHeader, HEADER_LEN, TYPE_ADVERTISEMENT,
};
use super::validate::{Body, DropReason};
use super::{ChecksumMode, EncodeError, Outgoing, V2Auth};

/// Length of the trailing authentication data.
pub(crate) const AUTH_LEN: usize = 8;

/// Encodes a VRRPv2 advertisement (the same bytes whatever the IP addresses).
pub fn encode_v2(advert: &Outgoing<'_, Ipv4Addr>, auth: &V2Auth) -> Result<Vec<u8>, EncodeError> {
    if advert.vrid == 0 {
        return Err(EncodeError::ZeroVrid);
    }
    let secs = secs_from_interval(advert.interval)?;
    let header = FixedHeader {
        version: 2,
        kind: TYPE_ADVERTISEMENT,
        vrid: advert.vrid,
        priority: advert.priority,
        count: address_count(advert.addresses.len())?,
        word2: u16::from_be_bytes([auth.type_number(), secs]),
    };
    let mut message = Vec::with_capacity(HEADER_LEN + advert.addresses.len() * 4 + AUTH_LEN);
    header.write(&mut message);
    for address in advert.addresses {
        message.extend_from_slice(&address.octets());
    }
    match auth {
        V2Auth::None => message.extend_from_slice(&[0; AUTH_LEN]),
        V2Auth::SimpleText(password) => message.extend_from_slice(password),
    }
    let checksum = Pseudo::None.compute(&message);
    set_checksum(&mut message, checksum);
    Ok(message)
}

/// Checks the length against the address count and verifies the checksum.
pub(crate) fn check(message: &[u8], header: &FixedHeader) -> Result<ChecksumMode, DropReason> {
    let count = usize::from(header.count);
    if message.len() != HEADER_LEN + count * 4 + AUTH_LEN {
        return Err(DropReason::AddressCountMismatch {
            count: header.count,
            len: message.len(),
        });
    }
    if Pseudo::None.verify(message) {
        Ok(ChecksumMode::WithoutPseudoHeader)
    } else {
        Err(DropReason::BadChecksum)
    }
}

/// Reads the interval, addresses and authentication of a message that passed [`check`],
/// enforcing RFC 3768 §7.1: the interval must equal ours, and if we have a password the
/// packet must carry the same one. Without a password both type 0 and type 1 are accepted.
pub(crate) fn body(
    message: &[u8],
    header: &FixedHeader,
    expected_interval: Duration,
    password: Option<&[u8; AUTH_LEN]>,
) -> Result<Body, DropReason> {
    let secs = header.v2_secs();
    if secs == 0 {
        return Err(DropReason::BadInterval);
    }
    let interval = Duration::from_secs(u64::from(secs));
    if interval != expected_interval {
        return Err(DropReason::IntervalMismatch {
            received: interval,
            expected: expected_interval,
        });
    }
    let count = usize::from(header.count);
    let list_end = HEADER_LEN + count * 4;
    let list = message.get(HEADER_LEN..list_end).unwrap_or_default();
    let data: Option<[u8; AUTH_LEN]> = message
        .get(list_end..list_end + AUTH_LEN)
        .and_then(|d| d.try_into().ok());
    let auth_type = header.v2_auth_type();
    let auth = match (auth_type, data) {
        (0, _) => V2Auth::None,
        (1, Some(data)) => V2Auth::SimpleText(data),
        _ => return Err(DropReason::BadAuth { auth_type }),
    };
    if let Some(password) = password {
        if auth != V2Auth::SimpleText(*password) {
            return Err(DropReason::BadAuth { auth_type });
        }
    }
    let addresses = list
        .chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
        .map(|o| IpAddr::V4(Ipv4Addr::from(o)))
        .collect();
    Ok(Body {
        max_advert_interval: interval,
        addresses,
        auth,
        checksum_mode: ChecksumMode::WithoutPseudoHeader,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

    fn outgoing(addresses: &[Ipv4Addr]) -> Outgoing<'_, Ipv4Addr> {
        Outgoing {
            vrid: 51,
            priority: 150,
            interval: Duration::from_secs(1),
            addresses,
        }
    }

    fn decode(message: &[u8], password: Option<&[u8; 8]>) -> Result<Body, DropReason> {
        let header = FixedHeader::parse(message).ok_or(DropReason::Truncated {
            len: message.len(),
            needed: HEADER_LEN,
        })?;
        check(message, &header)?;
        body(message, &header, Duration::from_secs(1), password)
    }

    #[test]
    fn encodes_the_rfc_layout_with_hand_computed_checksum() {
        let message = encode_v2(&outgoing(&[VIP]), &V2Auth::None).unwrap_or_default();
        // 0x2133 + 0x9601 + 0x0001 + 0xc612 + 0x0064 = 0x17dab -> 0x7dac -> !0x7dac = 0x8253
        assert_eq!(
            message,
            [0x21, 51, 150, 1, 0, 1, 0x82, 0x53, 198, 18, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn simple_text_auth_round_trips_and_is_reported() {
        let auth = V2Auth::SimpleText(*b"secret\0\0");
        let message = encode_v2(&outgoing(&[VIP]), &auth).unwrap_or_default();
        assert_eq!(message[4], 1);
        assert_eq!(&message[12..], b"secret\0\0");
        assert_eq!(decode(&message, None).map(|b| b.auth), Ok(auth));
        assert_eq!(
            decode(&message, Some(b"secret\0\0")).map(|b| b.auth),
            Ok(auth)
        );
        assert_eq!(
            decode(&message, Some(b"other\0\0\0")).map(|b| b.auth),
            Err(DropReason::BadAuth { auth_type: 1 })
        );
    }

    #[test]
    fn a_configured_password_refuses_unauthenticated_packets() {
        let message = encode_v2(&outgoing(&[VIP]), &V2Auth::None).unwrap_or_default();
        assert_eq!(
            decode(&message, Some(b"secret\0\0")).map(|b| b.auth),
            Err(DropReason::BadAuth { auth_type: 0 })
        );
    }

    #[test]
    fn ip_ah_auth_type_is_refused() {
        let mut message = encode_v2(&outgoing(&[VIP]), &V2Auth::None).unwrap_or_default();
        message[4] = 2;
        let checksum = Pseudo::None.compute(&message);
        set_checksum(&mut message, checksum);
        assert_eq!(
            decode(&message, None).map(|b| b.auth),
            Err(DropReason::BadAuth { auth_type: 2 })
        );
    }

    #[test]
    fn missing_auth_data_is_a_count_mismatch() {
        let message = encode_v2(&outgoing(&[VIP]), &V2Auth::None).unwrap_or_default();
        let header = FixedHeader::parse(&message);
        let short = &message[..12];
        assert_eq!(
            header.map(|h| check(short, &h)),
            Some(Err(DropReason::AddressCountMismatch { count: 1, len: 12 }))
        );
    }

    #[test]
    fn sub_second_intervals_cannot_be_encoded() {
        let mut advert = outgoing(&[VIP]);
        advert.interval = Duration::from_millis(100);
        assert!(matches!(
            encode_v2(&advert, &V2Auth::None),
            Err(EncodeError::IntervalNotSeconds { .. })
        ));
    }
}
