//! Protocol::HandshakeV10, the server's greeting.
//!
//! dbrouterd builds one for every client that connects (with its own connection id and a fresh
//! scramble) and parses the one each backend sends when the pool opens a connection.
//!
//! Layout: protocol version (10), server version `string<NUL>`, connection id `int<4>`, the
//! first 8 bytes of auth plugin data, a 0 filler, capabilities low `int<2>`, character set
//! `int<1>`, status `int<2>`, capabilities high `int<2>`, auth plugin data length `int<1>`,
//! 10 reserved bytes (MariaDB puts its extended capabilities in the last 4), the rest of the
//! auth plugin data (at least 13 bytes, NUL-terminated), and the auth plugin name
//! `string<NUL>`.

use bytes::BufMut;

use super::wire::{put_nul_bytes, Reader};
use super::{Capabilities, MariaDbCapabilities, ProtocolError, StatusFlags};

/// The only handshake protocol version in use since MySQL 3.21.
pub const PROTOCOL_VERSION: u8 = 10;

/// The server greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeV10 {
    /// For example `8.0.36` or, from MariaDB, `5.5.5-10.11.6-MariaDB` (the `5.5.5-` prefix is
    /// MariaDB's way of not confusing old replication clients).
    pub server_version: String,
    pub connection_id: u32,
    /// The scramble (nonce) for authentication, normally 20 bytes, without the trailing NUL.
    pub auth_plugin_data: Vec<u8>,
    pub capabilities: Capabilities,
    /// Sent only when `capabilities` lacks `LONG_PASSWORD` (MariaDB's `CLIENT_MYSQL`).
    pub mariadb_capabilities: MariaDbCapabilities,
    /// The server's default collation id (for example 45 `utf8mb4_general_ci`).
    pub charset: u8,
    pub status: StatusFlags,
    /// For example `mysql_native_password`; `None` without `PLUGIN_AUTH`.
    pub auth_plugin_name: Option<String>,
}

impl HandshakeV10 {
    /// Writes the payload (without the packet header).
    pub fn encode(&self, buf: &mut impl BufMut) {
        let caps = self.capabilities;
        let data = &self.auth_plugin_data;
        let (part1, part2) = data.split_at(data.len().min(8));

        buf.put_u8(PROTOCOL_VERSION);
        put_nul_bytes(buf, self.server_version.as_bytes());
        buf.put_u32_le(self.connection_id);
        buf.put_slice(part1);
        buf.put_bytes(0, 8 - part1.len());
        buf.put_u8(0);
        buf.put_u16_le(caps.bits() as u16);
        buf.put_u8(self.charset);
        buf.put_u16_le(self.status.bits());
        buf.put_u16_le((caps.bits() >> 16) as u16);
        if caps.contains(Capabilities::PLUGIN_AUTH) {
            // Counts the NUL after the second part.
            buf.put_u8((data.len() + 1).min(255) as u8);
        } else {
            buf.put_u8(0);
        }
        buf.put_bytes(0, 6);
        if caps.has_mariadb_extensions() {
            buf.put_u32_le(self.mariadb_capabilities.bits());
        } else {
            buf.put_u32_le(0);
        }
        if caps.contains(Capabilities::SECURE_CONNECTION) {
            let part2 = &part2[..part2.len().min(254 - 8)];
            buf.put_slice(part2);
            // At least 13 bytes including the terminating NUL.
            buf.put_bytes(0, 13usize.saturating_sub(part2.len()).max(1));
        }
        if caps.contains(Capabilities::PLUGIN_AUTH) {
            let name = self.auth_plugin_name.as_deref().unwrap_or_default();
            put_nul_bytes(buf, name.as_bytes());
        }
    }

    /// Parses a greeting. A server that refuses the connection (too many connections, host
    /// blocked) sends an ERR packet instead: check [`ErrPacket::is_err`](super::ErrPacket::is_err)
    /// first.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let version = r.u8("handshake: protocol version")?;
        if version != PROTOCOL_VERSION {
            return Err(ProtocolError::Unsupported {
                what: "handshake protocol version (only 10 is supported)",
            });
        }
        let server_version = r.nul_bytes("handshake: server version")?;
        let connection_id = r.u32("handshake: connection id")?;
        let part1 = r.bytes(8, "handshake: auth plugin data part 1")?;
        r.u8("handshake: filler")?;
        let caps_low = r.u16("handshake: capability flags")?;
        let charset = r.u8("handshake: character set")?;
        let status = r.u16("handshake: status flags")?;
        let caps_high = r.u16("handshake: capability flags (upper)")?;
        let capabilities =
            Capabilities::from_bits(u32::from(caps_low) | u32::from(caps_high) << 16);
        let data_len = usize::from(r.u8("handshake: auth plugin data length")?);
        r.bytes(6, "handshake: reserved")?;
        let ext = r.u32("handshake: MariaDB capabilities")?;
        let mariadb_capabilities = if capabilities.has_mariadb_extensions() {
            MariaDbCapabilities::from_bits(ext)
        } else {
            MariaDbCapabilities::empty()
        };

        let mut auth_plugin_data = part1.to_vec();
        if capabilities.contains(Capabilities::SECURE_CONNECTION) {
            let len = data_len.saturating_sub(8).max(13);
            // Servers always send the 13 bytes; be lenient only about a missing last NUL.
            let part2 = r.bytes(len.min(r.remaining()), "handshake: auth plugin data part 2")?;
            if part2.len() < 12 {
                return Err(ProtocolError::Truncated {
                    what: "handshake: auth plugin data part 2",
                });
            }
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            auth_plugin_data.extend_from_slice(part2);
        }
        let auth_plugin_name = if capabilities.contains(Capabilities::PLUGIN_AUTH) {
            Some(String::from_utf8_lossy(r.nul_or_eof_bytes()).into_owned())
        } else {
            None
        };
        Ok(Self {
            server_version: String::from_utf8_lossy(server_version).into_owned(),
            connection_id,
            auth_plugin_data,
            capabilities,
            mariadb_capabilities,
            charset,
            status: StatusFlags::from_bits(status),
            auth_plugin_name,
        })
    }

    /// Whether the server is MariaDB (by its version string).
    pub fn is_mariadb(&self) -> bool {
        self.server_version.contains("MariaDB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::constants::{CapabilityFlags, StatusFlags as RefStatus};
    use mysql_common::io::ParseBuf;
    use mysql_common::packets::HandshakePacket;
    use mysql_common::proto::{MyDeserialize, MySerialize};

    fn sample() -> HandshakeV10 {
        HandshakeV10 {
            server_version: "8.0.36-dbrouterd".into(),
            connection_id: 42,
            auth_plugin_data: (1..=20).collect(),
            capabilities: Capabilities::LONG_PASSWORD
                | Capabilities::PROTOCOL_41
                | Capabilities::SECURE_CONNECTION
                | Capabilities::PLUGIN_AUTH
                | Capabilities::CONNECT_WITH_DB
                | Capabilities::DEPRECATE_EOF,
            mariadb_capabilities: MariaDbCapabilities::empty(),
            charset: 45,
            status: StatusFlags::AUTOCOMMIT,
            auth_plugin_name: Some("mysql_native_password".into()),
        }
    }

    #[test]
    fn round_trips_and_is_read_by_the_reference_codec() {
        let hs = sample();
        let mut buf = Vec::new();
        hs.encode(&mut buf);
        assert_eq!(HandshakeV10::parse(&buf).unwrap(), hs);

        let theirs = HandshakePacket::deserialize((), &mut ParseBuf(&buf)).unwrap();
        assert_eq!(theirs.connection_id(), 42);
        assert_eq!(theirs.server_version_ref(), b"8.0.36-dbrouterd");
        assert_eq!(theirs.nonce(), hs.auth_plugin_data);
        assert_eq!(
            theirs.auth_plugin_name_ref(),
            Some(&b"mysql_native_password"[..])
        );
        assert!(theirs
            .capabilities()
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF));
        assert_eq!(theirs.status_flags(), RefStatus::SERVER_STATUS_AUTOCOMMIT);
    }

    #[test]
    fn parses_a_mariadb_greeting_with_extended_capabilities() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH;
        let theirs = HandshakePacket::new(
            10,
            &b"5.5.5-10.11.6-MariaDB-log"[..],
            7,
            *b"abcdefgh",
            // Servers end the second part with a NUL, as ours does.
            Some(&b"ijklmnopqrst\0"[..]),
            caps,
            33,
            RefStatus::SERVER_STATUS_AUTOCOMMIT,
            Some(&b"mysql_native_password"[..]),
        )
        .with_mariadb_ext_capabilities(
            mysql_common::constants::MariadbCapabilities::MARIADB_CLIENT_STMT_BULK_OPERATIONS,
        );
        let mut buf = Vec::new();
        theirs.serialize(&mut buf);
        let hs = HandshakeV10::parse(&buf).unwrap();
        assert!(hs.is_mariadb());
        assert_eq!(hs.auth_plugin_data, b"abcdefghijklmnopqrst");
        assert_eq!(
            hs.mariadb_capabilities,
            MariaDbCapabilities::STMT_BULK_OPERATIONS
        );
        assert_eq!(hs.charset, 33);
    }

    #[test]
    fn tolerates_a_missing_nul_after_the_plugin_name() {
        let mut buf = Vec::new();
        sample().encode(&mut buf);
        buf.pop();
        let hs = HandshakeV10::parse(&buf).unwrap();
        assert_eq!(
            hs.auth_plugin_name.as_deref(),
            Some("mysql_native_password")
        );
    }

    #[test]
    fn rejects_other_versions_and_truncation() {
        assert!(matches!(
            HandshakeV10::parse(b"\x09abc\0"),
            Err(ProtocolError::Unsupported { .. })
        ));
        let mut buf = Vec::new();
        sample().encode(&mut buf);
        for cut in 0..40 {
            assert!(HandshakeV10::parse(&buf[..cut]).is_err(), "cut at {cut}");
        }
    }
}
