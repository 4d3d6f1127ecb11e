//! The IPv4 VRRP socket: raw IP protocol 112, bound to the instance's interface, TTL 255,
//! multicast group 224.0.0.18 joined there (unless unicast), our own multicast not looped
//! back, and every packet sent from the interface's primary address (IP_PKTINFO).
//!
//! The kernel builds the IP header on send; on receive a raw IPv4 socket hands over the whole
//! datagram, header included, which is what [`crate::packet::receive_ipv4`] validates.

use std::io;
use std::io::IoSlice;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn};
use tokio::io::unix::AsyncFd;

use super::sockopt::{async_fd, bind_to_device, raw_socket, set, set_int};
use crate::packet::{IPPROTO_VRRP, IPV4_TOS_NETWORK_CONTROL, MULTICAST_IPV4, VRRP_TTL};

pub struct SocketV4 {
    fd: AsyncFd<OwnedFd>,
    index: u32,
    source: Ipv4Addr,
}

fn mreqn(group: Ipv4Addr, source: Ipv4Addr, index: u32) -> libc::ip_mreqn {
    libc::ip_mreqn {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from(group).to_be(),
        },
        imr_address: libc::in_addr {
            s_addr: u32::from(source).to_be(),
        },
        imr_ifindex: index as libc::c_int,
    }
}

impl SocketV4 {
    /// Opens the socket on `interface` (index `index`), sending from `source`; joins the
    /// VRRP group when `multicast`.
    pub fn open(
        interface: &str,
        index: u32,
        source: Ipv4Addr,
        multicast: bool,
    ) -> io::Result<Self> {
        let fd = raw_socket(libc::AF_INET, libc::c_int::from(IPPROTO_VRRP))?;
        let b = fd.as_fd();
        bind_to_device(b, interface)?;
        let ttl = libc::c_int::from(VRRP_TTL);
        set_int(b, libc::IPPROTO_IP, libc::IP_TTL, ttl, "IP_TTL")?;
        set_int(
            b,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_TTL,
            ttl,
            "IP_MULTICAST_TTL",
        )?;
        set_int(
            b,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_LOOP,
            0,
            "IP_MULTICAST_LOOP",
        )?;
        let tos = libc::c_int::from(IPV4_TOS_NETWORK_CONTROL);
        set_int(b, libc::IPPROTO_IP, libc::IP_TOS, tos, "IP_TOS")?;
        let group = mreqn(MULTICAST_IPV4, source, index);
        set(
            b,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            &group,
            "IP_MULTICAST_IF",
        )?;
        if multicast {
            set(
                b,
                libc::IPPROTO_IP,
                libc::IP_ADD_MEMBERSHIP,
                &group,
                "IP_ADD_MEMBERSHIP",
            )?;
        }
        Ok(SocketV4 {
            fd: async_fd(fd)?,
            index,
            source,
        })
    }

    pub fn source(&self) -> Ipv4Addr {
        self.source
    }

    /// Sends one VRRP message to `destination` (the group or a unicast peer).
    pub fn send(&self, message: &[u8], destination: Ipv4Addr) -> io::Result<()> {
        let info = libc::in_pktinfo {
            ipi_ifindex: self.index as libc::c_int,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(self.source).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let to = SockaddrIn::from(std::net::SocketAddrV4::new(destination, 0));
        sendmsg(
            self.fd.get_ref().as_raw_fd(),
            &[IoSlice::new(message)],
            &[ControlMessage::Ipv4PacketInfo(&info)],
            MsgFlags::empty(),
            Some(&to),
        )
        .map(drop)
        .map_err(io::Error::from)
    }

    /// Waits for the next datagram; returns its length in `buf`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let result = guard.try_io(|fd| {
                // SAFETY: recv into a buffer we own, of the length given.
                let n = unsafe {
                    libc::recv(
                        fd.get_ref().as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            if let Ok(result) = result {
                return result;
            }
        }
    }
}
