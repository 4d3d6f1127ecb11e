//! The IPv6 VRRP socket: raw next-header 112 bound to the interface, hop limit 255, ff02::12
//! joined there (unless unicast), own multicast not looped back, sent from the link-local
//! address (IPV6_PKTINFO).
//!
//! IPv6 raw sockets strip the IP header, so the hop limit and destination are read from
//! ancillary data (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO) into an [`Ipv6Meta`].

use std::io;
use std::io::IoSlice;
use std::net::Ipv6Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn6};
use tokio::io::unix::AsyncFd;

use super::sockopt::{async_fd, bind_to_device, raw_socket, set, set_int};
use crate::packet::{Ipv6Meta, IPPROTO_VRRP, MULTICAST_IPV6, VRRP_TTL};

pub struct SocketV6 {
    fd: AsyncFd<OwnedFd>,
    index: u32,
    source: Ipv6Addr,
}

impl SocketV6 {
    pub fn open(
        interface: &str,
        index: u32,
        source: Ipv6Addr,
        multicast: bool,
    ) -> io::Result<Self> {
        let fd = raw_socket(libc::AF_INET6, libc::c_int::from(IPPROTO_VRRP))?;
        let b = fd.as_fd();
        bind_to_device(b, interface)?;
        let hops = libc::c_int::from(VRRP_TTL);
        let v6 = libc::IPPROTO_IPV6;
        set_int(b, v6, libc::IPV6_UNICAST_HOPS, hops, "IPV6_UNICAST_HOPS")?;
        set_int(
            b,
            v6,
            libc::IPV6_MULTICAST_HOPS,
            hops,
            "IPV6_MULTICAST_HOPS",
        )?;
        set_int(b, v6, libc::IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP")?;
        set_int(
            b,
            v6,
            libc::IPV6_MULTICAST_IF,
            index as libc::c_int,
            "IPV6_MULTICAST_IF",
        )?;
        set_int(b, v6, libc::IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO")?;
        set_int(b, v6, libc::IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT")?;
        if multicast {
            let group = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: MULTICAST_IPV6.octets(),
                },
                ipv6mr_interface: index,
            };
            set(
                b,
                v6,
                libc::IPV6_ADD_MEMBERSHIP,
                &group,
                "IPV6_ADD_MEMBERSHIP",
            )?;
        }
        Ok(SocketV6 {
            fd: async_fd(fd)?,
            index,
            source,
        })
    }

    pub fn source(&self) -> Ipv6Addr {
        self.source
    }

    pub fn send(&self, message: &[u8], destination: Ipv6Addr) -> io::Result<()> {
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: self.source.octets(),
            },
            ipi6_ifindex: self.index,
        };
        let to = SockaddrIn6::from(std::net::SocketAddrV6::new(destination, 0, 0, self.index));
        sendmsg(
            self.fd.get_ref().as_raw_fd(),
            &[IoSlice::new(message)],
            &[ControlMessage::Ipv6PacketInfo(&info)],
            MsgFlags::empty(),
            Some(&to),
        )
        .map(drop)
        .map_err(io::Error::from)
    }

    /// Waits for the next message; returns its length in `buf` and what the IP layer said.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Ipv6Meta)> {
        loop {
            let mut guard = self.fd.readable().await?;
            let result = guard.try_io(|fd| recv_with_meta(fd.get_ref().as_raw_fd(), buf));
            if let Ok(result) = result {
                return result;
            }
        }
    }
}

fn recv_with_meta(fd: libc::c_int, buf: &mut [u8]) -> io::Result<(usize, Ipv6Meta)> {
    // SAFETY: sockaddr_in6 and msghdr are plain old data; all-zero is valid before filling.
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut control = [0u64; 32];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: every pointer in `msg` refers to a live buffer of the length stated.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut meta = Ipv6Meta {
        source: Ipv6Addr::from(from.sin6_addr.s6_addr),
        destination: Ipv6Addr::UNSPECIFIED,
        hop_limit: 0,
    };
    // SAFETY: the CMSG_* walk stays within `control`, as filled in by the kernel.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            if header.cmsg_level == libc::IPPROTO_IPV6 {
                if header.cmsg_type == libc::IPV6_HOPLIMIT {
                    let hops = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    meta.hop_limit = u8::try_from(hops).unwrap_or(0);
                } else if header.cmsg_type == libc::IPV6_PKTINFO {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    meta.destination = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, meta))
}
