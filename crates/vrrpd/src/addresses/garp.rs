//! Gratuitous ARP: announces that a virtual IPv4 address now lives at this host's MAC, so
//! switches and neighbours update their tables at once instead of after their ARP entries
//! expire. Sent over an `AF_PACKET` socket bound to the interface.
//!
//! The frame is an ARP request for the address itself (sender = target = VIP), broadcast, as
//! keepalived sends it; Linux neighbours update an existing entry on it.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETH_P_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];

/// The 42-byte Ethernet frame of a gratuitous ARP for `address` from `mac`.
pub fn gratuitous_arp_frame(mac: [u8; 6], address: Ipv4Addr) -> [u8; 42] {
    let mut frame = [0u8; 42];
    frame[0..6].copy_from_slice(&BROADCAST);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    frame[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    frame[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    frame[18] = 6;
    frame[19] = 4;
    frame[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    frame[22..28].copy_from_slice(&mac);
    frame[28..32].copy_from_slice(&address.octets());
    frame[32..38].copy_from_slice(&BROADCAST);
    frame[38..42].copy_from_slice(&address.octets());
    frame
}

/// An `AF_PACKET` socket sending on one interface.
pub struct ArpSender {
    fd: OwnedFd,
    index: u32,
}

impl ArpSender {
    pub fn open(index: u32) -> io::Result<Self> {
        // Protocol 0: this socket receives nothing, it only sends.
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(ArpSender { fd, index })
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid before we fill it in.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_protocol = ETH_P_ARP.to_be();
        to.sll_ifindex = self.index as i32;
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&BROADCAST);
        // SAFETY: sendto with a buffer and address we own, lengths matching.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&to as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
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
    fn frame_announces_the_address_at_our_mac() {
        let mac = [0x02, 0, 0, 0, 0, 0x01];
        let vip = Ipv4Addr::new(198, 18, 0, 100);
        let frame = gratuitous_arp_frame(mac, vip);
        assert_eq!(&frame[0..6], &BROADCAST);
        assert_eq!(&frame[6..12], &mac);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        assert_eq!(&frame[20..22], &[0, 1]);
        assert_eq!(&frame[22..28], &mac);
        assert_eq!(&frame[28..32], &vip.octets());
        assert_eq!(&frame[38..42], &vip.octets());
    }
}
