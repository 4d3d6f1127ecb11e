//! The VRRP transport of one instance: its raw socket (IPv4 or IPv6), where advertisements
//! go (the multicast group or each unicast peer), and how they are encoded and checked.
//!
//! It turns the instance's wish ("advertise priority 150") into bytes on the wire and the
//! bytes that arrive into an [`Advertisement`] or a [`DropReason`], using the pure codec in
//! [`crate::packet`].

mod socket_v4;
mod socket_v6;
mod sockopt;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::packet::{
    encode_v2, encode_v3_ipv4, encode_v3_ipv6, receive_ipv4, receive_ipv6, Advertisement,
    ChecksumMode, DropReason, EncodeError, Expectations, Outgoing, V2Auth, Version, MULTICAST_IPV4,
    MULTICAST_IPV6,
};
use socket_v4::SocketV4;
use socket_v6::SocketV6;

/// What an instance advertises, apart from the priority.
#[derive(Debug, Clone)]
pub struct AdvertTemplate {
    pub version: Version,
    pub vrid: u8,
    pub interval: Duration,
    pub addresses: Vec<IpAddr>,
    pub checksum_mode: ChecksumMode,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot open the VRRP socket on {interface}: {source}")]
    Open {
        interface: String,
        source: io::Error,
    },
    #[error("advertisement cannot be encoded: {0}")]
    Encode(#[from] EncodeError),
    #[error("sending to {destination} failed: {source}")]
    Send {
        destination: IpAddr,
        source: io::Error,
    },
}

enum Socket {
    V4(SocketV4),
    V6(SocketV6),
}

/// One instance's socket and addressing.
pub struct Transport {
    socket: Socket,
    destinations: Vec<IpAddr>,
    template: AdvertTemplate,
    v4_addresses: Vec<Ipv4Addr>,
    v6_addresses: Vec<Ipv6Addr>,
    buf: Vec<u8>,
}

impl Transport {
    /// Opens the socket on `interface` sending from `source`, to `unicast_peers` when given,
    /// else to the VRRP multicast group.
    pub fn open(
        interface: &str,
        index: u32,
        source: IpAddr,
        unicast_peers: Option<&[IpAddr]>,
        template: AdvertTemplate,
    ) -> Result<Self, TransportError> {
        let multicast = unicast_peers.is_none();
        let open_error = |source| TransportError::Open {
            interface: interface.to_string(),
            source,
        };
        let (socket, group) = match source {
            IpAddr::V4(s) => (
                Socket::V4(SocketV4::open(interface, index, s, multicast).map_err(open_error)?),
                IpAddr::V4(MULTICAST_IPV4),
            ),
            IpAddr::V6(s) => (
                Socket::V6(SocketV6::open(interface, index, s, multicast).map_err(open_error)?),
                IpAddr::V6(MULTICAST_IPV6),
            ),
        };
        let destinations = unicast_peers
            .map(<[IpAddr]>::to_vec)
            .unwrap_or_else(|| vec![group]);
        let v4_addresses = template
            .addresses
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        let v6_addresses = template
            .addresses
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(v6) => Some(*v6),
                IpAddr::V4(_) => None,
            })
            .collect();
        Ok(Transport {
            socket,
            destinations,
            template,
            v4_addresses,
            v6_addresses,
            buf: vec![0u8; 65_536],
        })
    }

    pub fn source(&self) -> IpAddr {
        match &self.socket {
            Socket::V4(s) => IpAddr::V4(s.source()),
            Socket::V6(s) => IpAddr::V6(s.source()),
        }
    }

    /// Sends an advertisement with `priority` to every destination.
    pub fn advertise(&self, priority: u8) -> Result<(), TransportError> {
        let t = &self.template;
        for destination in &self.destinations {
            let send_error = |source| TransportError::Send {
                destination: *destination,
                source,
            };
            match (&self.socket, destination) {
                (Socket::V4(socket), IpAddr::V4(to)) => {
                    let advert = Outgoing {
                        vrid: t.vrid,
                        priority,
                        interval: t.interval,
                        addresses: &self.v4_addresses,
                    };
                    let message = match t.version {
                        Version::V3 => {
                            encode_v3_ipv4(&advert, socket.source(), *to, t.checksum_mode)?
                        }
                        Version::V2 => encode_v2(&advert, &V2Auth::None)?,
                    };
                    socket.send(&message, *to).map_err(send_error)?;
                }
                (Socket::V6(socket), IpAddr::V6(to)) => {
                    let advert = Outgoing {
                        vrid: t.vrid,
                        priority,
                        interval: t.interval,
                        addresses: &self.v6_addresses,
                    };
                    let message = encode_v3_ipv6(&advert, socket.source(), *to)?;
                    socket.send(&message, *to).map_err(send_error)?;
                }
                // Mixed families are refused by the config lint.
                _ => {}
            }
        }
        Ok(())
    }

    /// Waits for the next packet and validates it against `expect`.
    pub async fn receive(
        &mut self,
        expect: &Expectations,
    ) -> io::Result<Result<Advertisement, DropReason>> {
        match &self.socket {
            Socket::V4(socket) => {
                let n = socket.recv(&mut self.buf).await?;
                Ok(receive_ipv4(&self.buf[..n], expect))
            }
            Socket::V6(socket) => {
                let (n, meta) = socket.recv(&mut self.buf).await?;
                Ok(receive_ipv6(&self.buf[..n], &meta, expect))
            }
        }
    }
}
