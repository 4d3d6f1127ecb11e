//! The VRRP checksum (RFC 1071 one's-complement sum) in its three flavours.
//!
//! * VRRPv2, and VRRPv3 over IPv4 the Cisco/Juniper way: over the VRRP message alone.
//! * VRRPv3 over IPv4 the keepalived way: with the IPv4 pseudo-header (source, destination,
//!   zero, protocol 112, VRRP length) in front.
//! * VRRPv3 over IPv6: with the IPv6 pseudo-header of RFC 8200 §8.1.
//!
//! The arithmetic is `pnet_packet::util`'s; this file decides what goes into the sum. To
//! compute a checksum the checksum field is skipped; to verify, the whole message including
//! the field must sum to zero, which accepts both one's-complement zeros a sender may write.

use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::util;

use super::header::CHECKSUM_WORD;

/// Skip no word: verification sums the stored checksum too.
const SKIP_NONE: usize = usize::MAX;

/// The pseudo-header that goes into a checksum, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pseudo {
    None,
    Ipv4 {
        source: Ipv4Addr,
        destination: Ipv4Addr,
    },
    Ipv6 {
        source: Ipv6Addr,
        destination: Ipv6Addr,
    },
}

impl Pseudo {
    /// The checksum to store in `message` (whose checksum field is ignored).
    pub fn compute(&self, message: &[u8]) -> u16 {
        self.sum(message, CHECKSUM_WORD)
    }

    /// Whether `message`, checksum field included, carries a correct checksum.
    pub fn verify(&self, message: &[u8]) -> bool {
        self.sum(message, SKIP_NONE) == 0
    }

    fn sum(&self, message: &[u8], skip_word: usize) -> u16 {
        let vrrp = IpNextHeaderProtocols::Vrrp;
        match self {
            Pseudo::None => util::checksum(message, skip_word),
            Pseudo::Ipv4 {
                source,
                destination,
            } => util::ipv4_checksum(message, skip_word, &[], source, destination, vrrp),
            Pseudo::Ipv6 {
                source,
                destination,
            } => util::ipv6_checksum(message, skip_word, &[], source, destination, vrrp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 written out the slow way, independent of pnet, to cross-check it.
    fn reference(words: &[u16]) -> u16 {
        let mut sum: u32 = words.iter().map(|w| u32::from(*w)).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn words(bytes: &[u8]) -> Vec<u16> {
        bytes
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
            .collect()
    }

    const MESSAGE: [u8; 12] = [0x31, 0x33, 0x96, 0x01, 0x00, 0x0a, 0, 0, 198, 18, 0, 100];
    const SOURCE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

    #[test]
    fn plain_checksum_matches_reference_and_hand_computed_value() {
        // 0x3133 + 0x9601 + 0x000a + 0xc612 + 0x0064 = 0x18db4 -> 0x8db5 -> !0x8db5 = 0x724a
        assert_eq!(reference(&words(&MESSAGE)), 0x724a);
        assert_eq!(Pseudo::None.compute(&MESSAGE), 0x724a);
    }

    #[test]
    fn ipv4_pseudo_header_checksum_matches_reference() {
        let mut all = words(&SOURCE.octets());
        all.extend(words(&GROUP.octets()));
        all.push(112);
        all.push(MESSAGE.len() as u16);
        all.extend(words(&MESSAGE));
        let pseudo = Pseudo::Ipv4 {
            source: SOURCE,
            destination: GROUP,
        };
        assert_eq!(reference(&all), 0xcba7);
        assert_eq!(pseudo.compute(&MESSAGE), 0xcba7);
    }

    #[test]
    fn ipv6_pseudo_header_checksum_matches_reference() {
        let source: Ipv6Addr = "fe80::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
        let message = [0x31, 0x33, 0x96, 0x01, 0x00, 0x0a, 0, 0];
        let mut all = source.segments().to_vec();
        all.extend(group.segments());
        all.extend([0, message.len() as u16, 0, 112]);
        all.extend(words(&message));
        let pseudo = Pseudo::Ipv6 {
            source,
            destination: group,
        };
        assert_eq!(pseudo.compute(&message), reference(&all));
    }

    #[test]
    fn verify_accepts_the_computed_value_and_rejects_a_flipped_bit() {
        for pseudo in [
            Pseudo::None,
            Pseudo::Ipv4 {
                source: SOURCE,
                destination: GROUP,
            },
        ] {
            let mut message = MESSAGE;
            let sum = pseudo.compute(&message);
            message[6..8].copy_from_slice(&sum.to_be_bytes());
            assert!(pseudo.verify(&message));
            message[2] ^= 0x01;
            assert!(!pseudo.verify(&message));
        }
    }

    #[test]
    fn verify_accepts_negative_zero() {
        // A message whose checksum is 0x0000 may also be sent as 0xffff (one's-complement -0).
        let mut message = [0x20u8, 0, 0, 0, 0, 0, 0, 0, 0xdf, 0xff];
        assert_eq!(Pseudo::None.compute(&message), 0x0000);
        message[6..8].copy_from_slice(&[0xff, 0xff]);
        assert!(Pseudo::None.verify(&message));
    }
}
