//! The rtnetlink client: virtual addresses added and removed, an interface's addresses and
//! link state read, all over a `NETLINK_ROUTE` socket (no shelling out to `ip`).
//!
//! Requests are tiny and answered by the kernel at once, so calls are synchronous; a receive
//! timeout keeps a confused kernel from stalling an instance.

mod message;

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub use message::{InterfaceAddress, LinkState};
use message::{Message, NLMSG_DONE, NLMSG_ERROR, RTM_NEWADDR, RTM_NEWLINK};

/// A netlink call that failed, with what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket: {0}")]
    Open(io::Error),
    #[error("netlink {what} failed: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    #[error("interface {name:?} does not exist")]
    NoSuchInterface { name: String },
    #[error("the kernel refused to {what}: {source}")]
    Refused { what: String, source: io::Error },
}

/// One `NETLINK_ROUTE` socket.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Self, NetlinkError> {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(NetlinkError::Open(io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a correctly sized timeval.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(NetlinkError::Open(io::Error::last_os_error()));
        }
        Ok(Netlink { fd, seq: 1 })
    }

    /// The index of interface `name`.
    pub fn index(name: &str) -> Result<u32, NetlinkError> {
        let no_such = || NetlinkError::NoSuchInterface {
            name: name.to_string(),
        };
        let c_name = std::ffi::CString::new(name).map_err(|_| no_such())?;
        // SAFETY: if_nametoindex reads a NUL-terminated string we own.
        let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if index == 0 {
            Err(no_such())
        } else {
            Ok(index)
        }
    }

    /// Adds `address/prefix` to interface `index`; already present is fine.
    pub fn add_address(
        &mut self,
        index: u32,
        address: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let seq = self.next_seq();
        let request = message::address_request(true, index, address, prefix, seq);
        self.acknowledged(&request, seq, &[libc::EEXIST])
            .map_err(|source| NetlinkError::Refused {
                what: format!("add {address}/{prefix}"),
                source,
            })
    }

    /// Removes `address/prefix` from interface `index`; already absent is fine.
    pub fn remove_address(
        &mut self,
        index: u32,
        address: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let seq = self.next_seq();
        let request = message::address_request(false, index, address, prefix, seq);
        self.acknowledged(
            &request,
            seq,
            &[libc::EADDRNOTAVAIL, libc::ENOENT, libc::ENODEV],
        )
        .map_err(|source| NetlinkError::Refused {
            what: format!("remove {address}/{prefix}"),
            source,
        })
    }

    /// Every address on interface `index`.
    pub fn addresses(&mut self, index: u32) -> Result<Vec<InterfaceAddress>, NetlinkError> {
        let seq = self.next_seq();
        self.send(&message::dump_addresses_request(seq), "address dump")?;
        let mut found = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = self.recv(&mut buf, "address dump")?;
            for msg in message::messages(&buf[..n]) {
                if msg.seq != seq {
                    continue;
                }
                match msg.kind {
                    NLMSG_DONE => return Ok(found),
                    NLMSG_ERROR => return Err(error_of(&msg, "address dump")),
                    RTM_NEWADDR => {
                        if let Some((i, a)) = message::parse_address(msg.payload) {
                            if i == index {
                                found.push(a);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Whether interface `index` is up with carrier, and its MAC address.
    pub fn link(&mut self, index: u32) -> Result<LinkState, NetlinkError> {
        let seq = self.next_seq();
        self.send(&message::get_link_request(index, seq), "link query")?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = self.recv(&mut buf, "link query")?;
            for msg in message::messages(&buf[..n]) {
                if msg.seq != seq {
                    continue;
                }
                match msg.kind {
                    NLMSG_ERROR => return Err(error_of(&msg, "link query")),
                    RTM_NEWLINK => {
                        if let Some(link) = message::parse_link(msg.payload) {
                            return Ok(link);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, request: &[u8], what: &'static str) -> Result<(), NetlinkError> {
        let mut to: libc::sockaddr_nl = unsafe_zeroed_sockaddr_nl();
        to.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: sendto with a buffer and address we own, lengths matching.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(NetlinkError::Io {
                what,
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8], what: &'static str) -> Result<usize, NetlinkError> {
        // SAFETY: recv into a buffer we own, of the length given.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(NetlinkError::Io {
                what,
                source: io::Error::last_os_error(),
            });
        }
        Ok(n as usize)
    }

    /// Sends a request asking for an acknowledgement; `tolerated` errnos count as success.
    fn acknowledged(&self, request: &[u8], seq: u32, tolerated: &[i32]) -> Result<(), io::Error> {
        let io = |e: NetlinkError| match e {
            NetlinkError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        };
        self.send(request, "request").map_err(io)?;
        let mut buf = vec![0u8; 8 * 1024];
        loop {
            let n = self.recv(&mut buf, "acknowledgement").map_err(io)?;
            for msg in message::messages(&buf[..n]) {
                if msg.seq != seq || msg.kind != NLMSG_ERROR {
                    continue;
                }
                return match message::error_code(msg.payload) {
                    Some(0) => Ok(()),
                    Some(code) if tolerated.contains(&code) => Ok(()),
                    Some(code) => Err(io::Error::from_raw_os_error(code)),
                    None => Err(io::Error::other("truncated acknowledgement")),
                };
            }
        }
    }
}

fn unsafe_zeroed_sockaddr_nl() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

fn error_of(msg: &Message<'_>, what: &'static str) -> NetlinkError {
    let code = message::error_code(msg.payload).unwrap_or(libc::EIO);
    NetlinkError::Io {
        what,
        source: io::Error::from_raw_os_error(code),
    }
}
