//! The IPv4 layer around VRRP, parsed and built with `pnet_packet`.
//!
//! A raw `IPPROTO_VRRP` socket on IPv4 hands us the whole datagram, header included, so the
//! TTL and source address come from here. IPv6 raw sockets strip the header; there the socket
//! layer passes the fields it read from ancillary data as an [`Ipv6Meta`](super::Ipv6Meta)
//! instead, and nothing in this file is involved.

use std::net::Ipv4Addr;

use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::{self, Ipv4Flags, Ipv4Packet, MutableIpv4Packet};
use pnet_packet::Packet;

use super::validate::DropReason;
use super::{EncodeError, IPPROTO_VRRP, IPV4_TOS_NETWORK_CONTROL};

/// Length of an IPv4 header without options.
const IPV4_MIN_HEADER: usize = 20;

/// The parts of a received IPv4 datagram that VRRP validation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReceivedIpv4<'a> {
    pub source: Ipv4Addr,
    pub destination: Ipv4Addr,
    pub ttl: u8,
    /// The VRRP message: the bytes after the header (options skipped) up to the total length.
    pub payload: &'a [u8],
}

/// Parses a datagram as received from a raw socket, checking that it is a whole, unfragmented
/// IPv4 datagram carrying VRRP.
pub(crate) fn parse_ipv4(datagram: &[u8]) -> Result<ReceivedIpv4<'_>, DropReason> {
    let packet = Ipv4Packet::new(datagram).ok_or(DropReason::Truncated {
        len: datagram.len(),
        needed: IPV4_MIN_HEADER,
    })?;
    if packet.get_version() != 4 {
        return Err(DropReason::BadIpHeader);
    }
    let header_len = usize::from(packet.get_header_length()) * 4;
    let total_len = usize::from(packet.get_total_length());
    if header_len < IPV4_MIN_HEADER || total_len < header_len {
        return Err(DropReason::BadIpHeader);
    }
    if datagram.len() < total_len {
        return Err(DropReason::Truncated {
            len: datagram.len(),
            needed: total_len,
        });
    }
    if packet.get_flags() & Ipv4Flags::MoreFragments != 0 || packet.get_fragment_offset() != 0 {
        // The kernel reassembles before a raw socket sees a datagram; a fragment here is odd.
        return Err(DropReason::Fragmented);
    }
    let protocol = packet.get_next_level_protocol().0;
    if protocol != IPPROTO_VRRP {
        return Err(DropReason::NotVrrp { protocol });
    }
    let payload = datagram
        .get(header_len..total_len)
        .ok_or(DropReason::BadIpHeader)?;
    Ok(ReceivedIpv4 {
        source: packet.get_source(),
        destination: packet.get_destination(),
        ttl: packet.get_ttl(),
        payload,
    })
}

/// Builds a complete IPv4 datagram around a VRRP payload, as a socket with `IP_HDRINCL` sends
/// it: no options, TOS 0xc0, identification 0 (the kernel fills it in), DF clear, protocol 112
/// and a correct header checksum. `ttl` is a parameter so tests can craft bad packets.
pub fn build_ipv4_datagram(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    ttl: u8,
    vrrp_payload: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let too_large = EncodeError::PayloadTooLarge {
        len: vrrp_payload.len(),
    };
    let total_len = IPV4_MIN_HEADER + vrrp_payload.len();
    let total_len_field = u16::try_from(total_len).map_err(|_| too_large.clone())?;
    let mut buffer = vec![0u8; total_len];
    let mut packet = MutableIpv4Packet::new(&mut buffer).ok_or(too_large)?;
    packet.set_version(4);
    packet.set_header_length((IPV4_MIN_HEADER / 4) as u8);
    packet.set_dscp(IPV4_TOS_NETWORK_CONTROL >> 2);
    packet.set_ecn(0);
    packet.set_total_length(total_len_field);
    packet.set_identification(0);
    packet.set_flags(0);
    packet.set_fragment_offset(0);
    packet.set_ttl(ttl);
    packet.set_next_level_protocol(IpNextHeaderProtocols::Vrrp);
    packet.set_source(source);
    packet.set_destination(destination);
    packet.set_payload(vrrp_payload);
    let checksum = ipv4::checksum(&packet.to_immutable());
    packet.set_checksum(checksum);
    Ok(packet.packet().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

    #[test]
    fn built_datagram_parses_back() {
        let payload = [0x31, 51, 150, 0, 0, 10, 0, 0];
        let datagram = build_ipv4_datagram(SOURCE, GROUP, 255, &payload);
        let datagram = datagram.unwrap_or_default();
        assert_eq!(datagram.len(), 28);
        assert_eq!(datagram[0], 0x45);
        assert_eq!(datagram[1], 0xc0);
        let parsed = parse_ipv4(&datagram);
        assert_eq!(
            parsed,
            Ok(ReceivedIpv4 {
                source: SOURCE,
                destination: GROUP,
                ttl: 255,
                payload: &payload,
            })
        );
    }

    #[test]
    fn header_checksum_is_valid() {
        let datagram = build_ipv4_datagram(SOURCE, GROUP, 255, &[0; 12]).unwrap_or_default();
        // Summing a header including its checksum gives zero.
        assert_eq!(pnet_packet::util::checksum(&datagram[..20], usize::MAX), 0);
    }

    #[test]
    fn options_are_skipped_and_padding_after_total_length_ignored() {
        let payload = [0x31, 51, 150, 0, 0, 10, 0, 0];
        let mut datagram = build_ipv4_datagram(SOURCE, GROUP, 255, &payload).unwrap_or_default();
        // Insert a 4-byte option (router alert) and fix up IHL and total length.
        datagram.splice(20..20, [0x94, 0x04, 0x00, 0x00]);
        datagram[0] = 0x46;
        datagram[3] = 32;
        datagram.extend_from_slice(&[0xee; 6]); // link-layer padding beyond total length
        let parsed = parse_ipv4(&datagram).map(|p| p.payload.to_vec());
        assert_eq!(parsed, Ok(payload.to_vec()));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = build_ipv4_datagram(SOURCE, GROUP, 255, &[0; 8]).unwrap_or_default();
        assert!(matches!(
            parse_ipv4(&good[..19]),
            Err(DropReason::Truncated { .. })
        ));
        assert!(matches!(
            parse_ipv4(&good[..27]),
            Err(DropReason::Truncated { .. })
        ));
        let mut bad = good.clone();
        bad[0] = 0x65;
        assert_eq!(parse_ipv4(&bad), Err(DropReason::BadIpHeader));
        let mut bad = good.clone();
        bad[0] = 0x44;
        assert_eq!(parse_ipv4(&bad), Err(DropReason::BadIpHeader));
        let mut bad = good.clone();
        bad[3] = 10; // total length shorter than the header
        assert_eq!(parse_ipv4(&bad), Err(DropReason::BadIpHeader));
        let mut bad = good.clone();
        bad[6] = 0x20; // more fragments
        assert_eq!(parse_ipv4(&bad), Err(DropReason::Fragmented));
        let mut bad = good;
        bad[9] = 17;
        assert_eq!(parse_ipv4(&bad), Err(DropReason::NotVrrp { protocol: 17 }));
    }

    #[test]
    fn oversized_payload_is_an_error() {
        let huge = vec![0u8; 65_536];
        assert!(matches!(
            build_ipv4_datagram(SOURCE, GROUP, 255, &huge),
            Err(EncodeError::PayloadTooLarge { .. })
        ));
    }
}
