//! Reading a PROXY protocol v1 or v2 header from the first bytes of a connection.
//!
//! [`decode`] looks at what has been received so far and answers whether a complete header
//! is there (and how long it is), more bytes are needed, or the bytes are not a valid
//! header. It never reads past the header, so the rest of the stream is left for HTTP or the
//! relayed TCP session.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::encode::V2_SIGNATURE;
use super::Addresses;

/// The longest v1 line allowed by the specification, CRLF included.
const V1_MAX: usize = 107;
/// A v2 header longer than this is refused (TLVs included).
const V2_MAX: usize = 16 + 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// More bytes are needed.
    Incomplete,
    /// A complete header of `len` bytes; `addresses` is `None` for `UNKNOWN` / `LOCAL`.
    Header {
        len: usize,
        addresses: Option<Addresses>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a PROXY protocol header")]
    NotProxy,
    #[error("invalid PROXY v1 header: {0}")]
    V1(&'static str),
    #[error("invalid PROXY v2 header: {0}")]
    V2(&'static str),
}

pub fn decode(buf: &[u8]) -> Result<Decoded, DecodeError> {
    if buf.is_empty() {
        return Ok(Decoded::Incomplete);
    }
    let v2_prefix = buf.len().min(12);
    if buf[..v2_prefix] == V2_SIGNATURE[..v2_prefix] {
        if buf.len() < 16 {
            return Ok(Decoded::Incomplete);
        }
        return decode_v2(buf);
    }
    let v1_prefix = buf.len().min(6);
    if buf[..v1_prefix] == b"PROXY "[..v1_prefix] {
        return decode_v1(buf);
    }
    Err(DecodeError::NotProxy)
}

fn decode_v1(buf: &[u8]) -> Result<Decoded, DecodeError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(DecodeError::V1("no CRLF within 107 bytes"))
        } else {
            Ok(Decoded::Incomplete)
        };
    };
    let len = end + 2;
    if len > V1_MAX {
        return Err(DecodeError::V1("longer than 107 bytes"));
    }
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| DecodeError::V1("not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Decoded::Header {
            len,
            addresses: None,
        }),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let parse_ip = |s: &str| -> Result<std::net::IpAddr, DecodeError> {
                if *family == "TCP4" {
                    s.parse::<Ipv4Addr>().map(Into::into)
                } else {
                    s.parse::<Ipv6Addr>().map(Into::into)
                }
                .map_err(|_| DecodeError::V1("bad address"))
            };
            let parse_port = |s: &str| s.parse::<u16>().map_err(|_| DecodeError::V1("bad port"));
            Ok(Decoded::Header {
                len,
                addresses: Some(Addresses {
                    source: SocketAddr::new(parse_ip(src)?, parse_port(sport)?),
                    destination: SocketAddr::new(parse_ip(dst)?, parse_port(dport)?),
                }),
            })
        }
        _ => Err(DecodeError::V1(
            "expected PROXY TCP4|TCP6|UNKNOWN and 4 fields",
        )),
    }
}

fn decode_v2(buf: &[u8]) -> Result<Decoded, DecodeError> {
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(DecodeError::V2("version is not 2"));
    }
    let body_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = 16 + body_len;
    if len > V2_MAX {
        return Err(DecodeError::V2("header too long"));
    }
    if buf.len() < len {
        return Ok(Decoded::Incomplete);
    }
    let body = &buf[16..len];
    match version_command & 0x0f {
        0 => {
            return Ok(Decoded::Header {
                len,
                addresses: None,
            })
        }
        1 => {}
        _ => return Err(DecodeError::V2("unknown command")),
    }
    let addresses = match buf[13] >> 4 {
        1 => {
            if body.len() < 12 {
                return Err(DecodeError::V2("short IPv4 address block"));
            }
            let ip = |at: usize| Ipv4Addr::new(body[at], body[at + 1], body[at + 2], body[at + 3]);
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Some(Addresses {
                source: SocketAddr::new(ip(0).into(), port(8)),
                destination: SocketAddr::new(ip(4).into(), port(10)),
            })
        }
        2 => {
            if body.len() < 36 {
                return Err(DecodeError::V2("short IPv6 address block"));
            }
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&body[at..at + 16]);
                Ipv6Addr::from(octets)
            };
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Some(Addresses {
                source: SocketAddr::new(ip(0).into(), port(32)),
                destination: SocketAddr::new(ip(16).into(), port(34)),
            })
        }
        _ => None,
    };
    Ok(Decoded::Header { len, addresses })
}

#[cfg(test)]
mod tests {
    use super::super::encode::{encode_v1, encode_v2};
    use super::*;
    use proptest::prelude::*;

    fn addrs(s: &str, d: &str) -> Addresses {
        Addresses {
            source: s.parse().expect("addr"),
            destination: d.parse().expect("addr"),
        }
    }

    #[test]
    fn encoded_headers_decode_back_whatever_follows() {
        for a in [
            addrs("192.0.2.1:5000", "198.51.100.2:80"),
            addrs("[2001:db8::1]:5000", "[2001:db8::2]:443"),
        ] {
            for mut bytes in [encode_v1(&a), encode_v2(&a)] {
                let len = bytes.len();
                bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
                assert_eq!(
                    decode(&bytes),
                    Ok(Decoded::Header {
                        len,
                        addresses: Some(a)
                    })
                );
                for cut in 0..len {
                    assert_eq!(decode(&bytes[..cut]), Ok(Decoded::Incomplete), "cut {cut}");
                }
            }
        }
    }

    #[test]
    fn unknown_and_local_carry_no_addresses() {
        assert_eq!(
            decode(b"PROXY UNKNOWN\r\n"),
            Ok(Decoded::Header {
                len: 15,
                addresses: None
            })
        );
        let mixed = addrs("192.0.2.1:1", "[::1]:2");
        let v2 = encode_v2(&mixed);
        assert_eq!(
            decode(&v2),
            Ok(Decoded::Header {
                len: 16,
                addresses: None
            })
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(decode(b"GET / HTTP/1.1\r\n"), Err(DecodeError::NotProxy));
        assert!(decode(b"PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n").is_err());
        assert!(decode(b"PROXY TCP4 1.2.3.4 4.5.6.7 1 99999\r\n").is_err());
        assert_eq!(decode(b"PROX"), Ok(Decoded::Incomplete));
        assert!(decode(&[b'P'; 200]).is_err());
        let long = format!("PROXY {}\r\n", "A".repeat(120));
        assert!(decode(long.as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_never_claims_more_than_given(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(Decoded::Header { len, .. }) = decode(&bytes) {
                prop_assert!(len <= bytes.len());
            }
        }

        #[test]
        fn v2_prefixed_random_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..120)) {
            let mut bytes = V2_SIGNATURE.to_vec();
            bytes.extend_from_slice(&body);
            if let Ok(Decoded::Header { len, .. }) = decode(&bytes) {
                prop_assert!(len <= bytes.len());
            }
        }
    }
}
