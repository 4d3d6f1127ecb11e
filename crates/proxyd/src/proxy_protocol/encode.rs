//! Writing PROXY protocol v1 and v2 headers.

use std::net::SocketAddr;

use super::Addresses;

/// The v2 signature, the first 12 bytes of every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// `PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n`; mixed families are sent as `UNKNOWN`.
pub fn encode_v1(addrs: &Addresses) -> Vec<u8> {
    let line = match (addrs.source, addrs.destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => format!(
            "PROXY TCP4 {} {} {} {}\r\n",
            s.ip(),
            d.ip(),
            s.port(),
            d.port()
        ),
        (SocketAddr::V6(s), SocketAddr::V6(d)) => format!(
            "PROXY TCP6 {} {} {} {}\r\n",
            s.ip(),
            d.ip(),
            s.port(),
            d.port()
        ),
        _ => "PROXY UNKNOWN\r\n".to_owned(),
    };
    line.into_bytes()
}

/// A v2 `PROXY` command over TCP; mixed families are sent as `LOCAL`.
pub fn encode_v2(addrs: &Addresses) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    match (addrs.source, addrs.destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x21); // version 2, PROXY
            out.push(0x11); // AF_INET, STREAM
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            out.push(0x21);
            out.push(0x21); // AF_INET6, STREAM
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        _ => {
            out.push(0x20); // version 2, LOCAL
            out.push(0x00);
            out.extend_from_slice(&0u16.to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> Addresses {
        Addresses {
            source: "192.0.2.1:5000".parse().expect("addr"),
            destination: "198.51.100.2:80".parse().expect("addr"),
        }
    }

    #[test]
    fn v1_is_the_documented_text_line() {
        assert_eq!(
            encode_v1(&v4()),
            b"PROXY TCP4 192.0.2.1 198.51.100.2 5000 80\r\n".to_vec()
        );
    }

    #[test]
    fn v2_has_signature_command_family_and_addresses() {
        let bytes = encode_v2(&v4());
        assert_eq!(&bytes[..12], &V2_SIGNATURE);
        assert_eq!(bytes[12], 0x21);
        assert_eq!(bytes[13], 0x11);
        assert_eq!(&bytes[14..16], &[0, 12]);
        assert_eq!(&bytes[16..20], &[192, 0, 2, 1]);
        assert_eq!(bytes.len(), 28);
    }
}
