//! The address manager: puts an instance's virtual addresses on its interface when it becomes
//! master, announces them (gratuitous ARP / unsolicited NA), and takes them off again.
//!
//! The rule it enforces is that a VIP is never left on a node that is not master: addresses
//! are removed on leaving Master, at start-up when a crashed predecessor left some behind, and
//! on drop (the instance task ending for any reason).

mod garp;
mod na;
pub mod netlink;

use std::net::IpAddr;

use tracing::{debug, warn};

pub use garp::gratuitous_arp_frame;
pub use na::neighbour_advertisement;
use netlink::{InterfaceAddress, LinkState, Netlink, NetlinkError};

use crate::config::parse_cidr;

/// One virtual address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualAddress {
    pub address: IpAddr,
    pub prefix: u8,
}

impl VirtualAddress {
    /// `198.18.0.100/24`; a missing prefix means a host address.
    pub fn parse(text: &str) -> Option<Self> {
        parse_cidr(text).map(|(address, prefix)| VirtualAddress { address, prefix })
    }
}

impl std::fmt::Display for VirtualAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("{interface}: {source}")]
    Netlink {
        interface: String,
        source: NetlinkError,
    },
    #[error("{interface} has no {family} address to send advertisements from")]
    NoPrimaryAddress {
        interface: String,
        family: &'static str,
    },
    #[error("{interface}: cannot open the socket for gratuitous ARP / NA: {source}")]
    Announcer {
        interface: String,
        source: std::io::Error,
    },
}

/// The virtual addresses of one instance on one interface.
pub struct AddressManager {
    interface: String,
    index: u32,
    vips: Vec<VirtualAddress>,
    netlink: Netlink,
    arp: Option<garp::ArpSender>,
    na: Option<na::NaSender>,
    /// Whether we put the addresses on (so drop must take them off).
    held: bool,
}

impl AddressManager {
    pub fn new(interface: &str, vips: Vec<VirtualAddress>) -> Result<Self, AddressError> {
        let wrap = |source| AddressError::Netlink {
            interface: interface.to_string(),
            source,
        };
        let index = Netlink::index(interface).map_err(wrap)?;
        let netlink = Netlink::open().map_err(wrap)?;
        let announcer = |source| AddressError::Announcer {
            interface: interface.to_string(),
            source,
        };
        let (mut arp, mut na) = (None, None);
        if vips.iter().any(|v| v.address.is_ipv4()) {
            arp = Some(garp::ArpSender::open(index).map_err(announcer)?);
        }
        if vips.iter().any(|v| v.address.is_ipv6()) {
            na = Some(na::NaSender::open(index).map_err(announcer)?);
        }
        Ok(AddressManager {
            interface: interface.to_string(),
            index,
            vips,
            netlink,
            arp,
            na,
            held: false,
        })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn vips(&self) -> &[VirtualAddress] {
        &self.vips
    }

    fn wrap(&self) -> impl Fn(NetlinkError) -> AddressError + '_ {
        move |source| AddressError::Netlink {
            interface: self.interface.clone(),
            source,
        }
    }

    /// The interface's addresses as the kernel lists them now.
    pub fn interface_addresses(&mut self) -> Result<Vec<InterfaceAddress>, AddressError> {
        let index = self.index;
        self.netlink
            .addresses(index)
            .map_err(|source| AddressError::Netlink {
                interface: self.interface.clone(),
                source,
            })
    }

    /// The address advertisements are sent from: the first IPv4 address that is not one of
    /// ours, or for IPv6 the link-local address (RFC 5798 §5.1.2.1).
    pub fn primary_address(&mut self, ipv6: bool) -> Result<IpAddr, AddressError> {
        let vips: Vec<IpAddr> = self.vips.iter().map(|v| v.address).collect();
        let all = self.interface_addresses()?;
        let pick = all.iter().find(|a| {
            a.address.is_ipv6() == ipv6
                && !vips.contains(&a.address)
                && (!ipv6 || is_link_local(a.address))
        });
        pick.map(|a| a.address)
            .ok_or_else(|| AddressError::NoPrimaryAddress {
                interface: self.interface.clone(),
                family: if ipv6 { "IPv6 link-local" } else { "IPv4" },
            })
    }

    /// Whether the link is up with carrier, and its MAC address.
    pub fn link(&mut self) -> Result<LinkState, AddressError> {
        let index = self.index;
        let wrap = self.wrap();
        let result = Netlink::open().and_then(|mut n| n.link(index));
        result.map_err(wrap)
    }

    /// Puts every virtual address on the interface.
    pub fn add_all(&mut self) -> Result<(), AddressError> {
        self.held = true;
        for vip in self.vips.clone() {
            let index = self.index;
            self.netlink
                .add_address(index, vip.address, vip.prefix)
                .map_err(|source| AddressError::Netlink {
                    interface: self.interface.clone(),
                    source,
                })?;
            debug!(vip = %vip, interface = %self.interface, "virtual address added");
        }
        Ok(())
    }

    /// Takes every virtual address off the interface (absent ones are fine).
    pub fn remove_all(&mut self) -> Result<(), AddressError> {
        let mut first_error = None;
        for vip in self.vips.clone() {
            let index = self.index;
            if let Err(source) = self.netlink.remove_address(index, vip.address, vip.prefix) {
                warn!(vip = %vip, error = %source, "cannot remove virtual address");
                first_error.get_or_insert(AddressError::Netlink {
                    interface: self.interface.clone(),
                    source,
                });
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => {
                self.held = false;
                Ok(())
            }
        }
    }

    /// Removes our virtual addresses if a previous run left them behind; returns how many.
    pub fn remove_leftovers(&mut self) -> Result<usize, AddressError> {
        let present = self.interface_addresses()?;
        let leftovers: Vec<VirtualAddress> = self
            .vips
            .iter()
            .copied()
            .filter(|v| present.iter().any(|p| p.address == v.address))
            .collect();
        for vip in &leftovers {
            let index = self.index;
            self.netlink
                .remove_address(index, vip.address, vip.prefix)
                .map_err(|source| AddressError::Netlink {
                    interface: self.interface.clone(),
                    source,
                })?;
        }
        Ok(leftovers.len())
    }

    /// Which of our virtual addresses are on the interface now.
    pub fn present(&mut self) -> Vec<VirtualAddress> {
        let present = self.interface_addresses().unwrap_or_default();
        self.vips
            .iter()
            .copied()
            .filter(|v| present.iter().any(|p| p.address == v.address))
            .collect()
    }

    /// One gratuitous ARP / unsolicited NA per virtual address.
    pub fn announce(&mut self, mac: [u8; 6]) {
        for vip in &self.vips {
            let result = match vip.address {
                IpAddr::V4(v4) => self
                    .arp
                    .as_ref()
                    .map(|s| s.send(&gratuitous_arp_frame(mac, v4))),
                IpAddr::V6(v6) => self
                    .na
                    .as_ref()
                    .map(|s| s.send(&neighbour_advertisement(mac, v6))),
            };
            if let Some(Err(e)) = result {
                debug!(vip = %vip, error = %e, "gratuitous announcement not sent");
            }
        }
    }
}

impl Drop for AddressManager {
    fn drop(&mut self) {
        if self.held {
            if let Err(e) = self.remove_all() {
                warn!(error = %e, "virtual addresses may be left on the interface");
            }
        }
    }
}

fn is_link_local(address: IpAddr) -> bool {
    match address {
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_addresses_parse_with_and_without_prefix() {
        let v = VirtualAddress::parse("198.18.0.100/24").expect("parse");
        assert_eq!(v.prefix, 24);
        assert_eq!(v.to_string(), "198.18.0.100/24");
        assert_eq!(
            VirtualAddress::parse("198.18.0.100").map(|v| v.prefix),
            Some(32)
        );
        assert!(VirtualAddress::parse("nonsense").is_none());
    }

    #[test]
    fn link_local_is_recognised() {
        assert!(is_link_local(
            "fe80::1".parse().unwrap_or(IpAddr::V4([0; 4].into()))
        ));
        assert!(!is_link_local(
            "fd00::1".parse().unwrap_or(IpAddr::V4([0; 4].into()))
        ));
    }
}
