//! rtnetlink messages, built and parsed by hand: the few vrrpd needs (add, delete and list
//! interface addresses; read a link's flags and MAC address).
//!
//! Pure byte work so it is unit-tested without a socket; `socket.rs` sends and receives them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(crate) const NLMSG_HDR_LEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_DELADDR: u16 = 21;
pub(crate) const RTM_GETADDR: u16 = 22;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_REPLACE: u16 = 0x100;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const IFA_F_SECONDARY: u8 = 0x01;
const IFLA_ADDRESS: u16 = 1;

const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const IFF_LOWER_UP: u32 = 0x10000;

/// An address configured on an interface, as the kernel lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub address: IpAddr,
    pub prefix: u8,
    pub secondary: bool,
    /// RT_SCOPE_LINK (253) for IPv6 link-local addresses.
    pub scope: u8,
}

/// A link's state: administratively up and with carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    pub up: bool,
    pub loopback: bool,
    pub mac: Option<[u8; 6]>,
}

fn family(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn address_bytes(address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn header(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32) {
    out.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in `finish`
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
}

fn attribute(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_ne_bytes());
    out
}

/// RTM_NEWADDR / RTM_DELADDR for `address/prefix` on interface `index`.
pub(crate) fn address_request(
    add: bool,
    index: u32,
    address: IpAddr,
    prefix: u8,
    seq: u32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let (kind, flags) = if add {
        (
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
    } else {
        (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    };
    header(&mut out, kind, flags, seq);
    out.push(family(address));
    out.push(prefix);
    out.push(if address.is_ipv6() { IFA_F_NODAD } else { 0 });
    out.push(0); // RT_SCOPE_UNIVERSE
    out.extend_from_slice(&index.to_ne_bytes());
    let bytes = address_bytes(address);
    attribute(&mut out, IFA_LOCAL, &bytes);
    attribute(&mut out, IFA_ADDRESS, &bytes);
    finish(out)
}

/// RTM_GETADDR dump of every address of every interface.
pub(crate) fn dump_addresses_request(seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    header(&mut out, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
    out.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0, 0, 0, 0, 0]);
    finish(out)
}

/// RTM_GETLINK for one interface.
pub(crate) fn get_link_request(index: u32, seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    header(&mut out, RTM_GETLINK, NLM_F_REQUEST, seq);
    out.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    out.extend_from_slice(&(index as i32).to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // flags
    out.extend_from_slice(&0u32.to_ne_bytes()); // change
    finish(out)
}

/// One netlink message out of a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub kind: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Splits a receive buffer into messages; stops at the first malformed one.
pub(crate) fn messages(mut buf: &[u8]) -> Vec<Message<'_>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDR_LEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < NLMSG_HDR_LEN || len > buf.len() {
            break;
        }
        out.push(Message {
            kind: u16::from_ne_bytes([buf[4], buf[5]]),
            seq: u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]),
            payload: &buf[NLMSG_HDR_LEN..len],
        });
        let aligned = (len + 3) & !3;
        buf = buf.get(aligned..).unwrap_or(&[]);
    }
    out
}

/// The errno of an NLMSG_ERROR payload (0 is an acknowledgement).
pub(crate) fn error_code(payload: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = payload.get(..4)?.try_into().ok()?;
    Some(-i32::from_ne_bytes(bytes))
}

fn attributes(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]);
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        let aligned = (len + 3) & !3;
        buf = buf.get(aligned..).unwrap_or(&[]);
    }
    out
}

fn ip_from(family: u8, data: &[u8]) -> Option<IpAddr> {
    if family == libc::AF_INET as u8 {
        let octets: [u8; 4] = data.get(..4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(octets)))
    } else if family == libc::AF_INET6 as u8 {
        let octets: [u8; 16] = data.get(..16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(octets)))
    } else {
        None
    }
}

/// An RTM_NEWADDR payload: (interface index, address).
pub(crate) fn parse_address(payload: &[u8]) -> Option<(u32, InterfaceAddress)> {
    let fixed = payload.get(..8)?;
    let (family, prefix, flags, scope) = (fixed[0], fixed[1], fixed[2], fixed[3]);
    let index = u32::from_ne_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let attrs = attributes(&payload[8..]);
    // IPv4 puts the local address in IFA_LOCAL (IFA_ADDRESS is the peer on point-to-point).
    let pick = |kind| attrs.iter().find(|(k, _)| *k == kind).map(|(_, d)| *d);
    let data = pick(IFA_LOCAL).or_else(|| pick(IFA_ADDRESS))?;
    let address = ip_from(family, data)?;
    Some((
        index,
        InterfaceAddress {
            address,
            prefix,
            secondary: flags & IFA_F_SECONDARY != 0,
            scope,
        },
    ))
}

/// An RTM_NEWLINK payload: the link's state.
pub(crate) fn parse_link(payload: &[u8]) -> Option<LinkState> {
    let fixed = payload.get(..16)?;
    let flags = u32::from_ne_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
    let mac = attributes(&payload[16..])
        .into_iter()
        .find(|(k, _)| *k == IFLA_ADDRESS)
        .and_then(|(_, d)| <[u8; 6]>::try_from(d).ok());
    Some(LinkState {
        up: flags & IFF_UP != 0 && flags & IFF_LOWER_UP != 0,
        loopback: flags & IFF_LOOPBACK != 0,
        mac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_request_round_trips_through_the_parser() {
        let vip: IpAddr = "198.18.0.100"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let request = address_request(true, 7, vip, 24, 42);
        let parsed = messages(&request);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].kind, RTM_NEWADDR);
        assert_eq!(parsed[0].seq, 42);
        let (index, address) = parse_address(parsed[0].payload).expect("address");
        assert_eq!(index, 7);
        assert_eq!(address.address, vip);
        assert_eq!(address.prefix, 24);
        assert_eq!(request.len() % 4, 0);
    }

    #[test]
    fn ipv6_addresses_skip_duplicate_detection() {
        let vip: IpAddr = "fd00::100"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let request = address_request(true, 3, vip, 64, 1);
        assert_eq!(request[NLMSG_HDR_LEN + 2], IFA_F_NODAD);
        let (_, address) = parse_address(&request[NLMSG_HDR_LEN..]).expect("address");
        assert_eq!(address.address, vip);
    }

    #[test]
    fn link_flags_need_up_and_carrier() {
        let mut payload = vec![0u8; 16];
        payload[8..12].copy_from_slice(&(IFF_UP | IFF_LOWER_UP).to_ne_bytes());
        attribute(&mut payload, IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]);
        let link = parse_link(&payload).expect("link");
        assert!(link.up);
        assert_eq!(link.mac, Some([2, 0, 0, 0, 0, 1]));
        payload[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        assert_eq!(parse_link(&payload).map(|l| l.up), Some(false));
    }

    #[test]
    fn truncated_input_is_not_a_panic() {
        for len in 0..40 {
            let junk = vec![0xffu8; len];
            let _ = messages(&junk);
            let _ = parse_address(&junk);
            let _ = parse_link(&junk);
            let _ = error_code(&junk);
        }
    }
}
