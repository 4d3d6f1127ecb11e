//! Unsolicited neighbour advertisements (RFC 4861 §7.2.6): the IPv6 counterpart of gratuitous
//! ARP, sent to all-nodes (ff02::1) with the override flag so neighbours replace their entry.
//!
//! Sent from a raw ICMPv6 socket bound to the interface with hop limit 255; the kernel fills
//! in the ICMPv6 checksum.

use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
const FLAG_OVERRIDE: u8 = 0x20;
const OPTION_TARGET_LINK_LAYER: u8 = 2;

/// The ICMPv6 message of an unsolicited NA for `target` at `mac` (checksum left to the kernel).
pub fn neighbour_advertisement(mac: [u8; 6], target: Ipv6Addr) -> [u8; 32] {
    let mut message = [0u8; 32];
    message[0] = NEIGHBOR_ADVERTISEMENT;
    message[4] = FLAG_OVERRIDE;
    message[8..24].copy_from_slice(&target.octets());
    message[24] = OPTION_TARGET_LINK_LAYER;
    message[25] = 1; // length in units of 8 bytes
    message[26..32].copy_from_slice(&mac);
    message
}

/// A raw ICMPv6 socket sending on one interface.
pub struct NaSender {
    fd: OwnedFd,
    index: u32,
}

impl NaSender {
    pub fn open(index: u32) -> io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET6,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::IPPROTO_ICMPV6,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let hops: libc::c_int = 255;
        for (option, value) in [
            (libc::IPV6_MULTICAST_HOPS, hops),
            (libc::IPV6_MULTICAST_IF, index as libc::c_int),
        ] {
            // SAFETY: setsockopt with a correctly sized int.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    option,
                    (&value as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(NaSender { fd, index })
    }

    pub fn send(&self, message: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_in6 is plain old data; all-zero is valid before we fill it in.
        let mut to: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        to.sin6_family = libc::AF_INET6 as u16;
        to.sin6_addr.s6_addr = ALL_NODES.octets();
        to.sin6_scope_id = self.index;
        // SAFETY: sendto with a buffer and address we own, lengths matching.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
                (&to as *const libc::sockaddr_in6).cast(),
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_overrides_and_carries_our_mac() {
        let mac = [0x02, 0, 0, 0, 0, 0x01];
        let target: Ipv6Addr = "fd00::100".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        let message = neighbour_advertisement(mac, target);
        assert_eq!(message[0], 136);
        assert_eq!(message[4], FLAG_OVERRIDE);
        assert_eq!(&message[8..24], &target.octets());
        assert_eq!(&message[24..26], &[2, 1]);
        assert_eq!(&message[26..32], &mac);
    }
}
