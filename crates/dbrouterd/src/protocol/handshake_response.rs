//! The client's answer to the greeting: Protocol::HandshakeResponse41, or the short
//! Protocol::SSLRequest that precedes it when the client wants TLS.
//!
//! dbrouterd parses these from its clients (and relays nothing of them verbatim: it
//! authenticates the client itself) and builds one for each backend connection it opens.
//!
//! Layout: capabilities `int<4>`, max packet size `int<4>`, character set `int<1>`, 23 filler
//! bytes (MariaDB: the last 4 are its extended capabilities). An SSLRequest stops there (32
//! bytes). A full response continues with the user name `string<NUL>`, the auth response
//! (`string<lenenc>` with `PLUGIN_AUTH_LENENC_CLIENT_DATA`, else a 1-byte length with
//! `SECURE_CONNECTION`, else `string<NUL>`), the database `string<NUL>` with
//! `CONNECT_WITH_DB`, the auth plugin name `string<NUL>` with `PLUGIN_AUTH`, and the connection
//! attributes with `CONNECT_ATTRS`.

use bytes::BufMut;

use super::wire::{lenenc_int_len, put_lenenc_bytes, put_lenenc_int, put_nul_bytes, Reader};
use super::{Capabilities, HandshakeV10, MariaDbCapabilities, ProtocolError};

/// Length of the fixed part shared by SSLRequest and HandshakeResponse41.
const FIXED_LEN: usize = 32;

/// Connection attributes (`_client_name`, `_os`, `program_name`, ...) in the order sent.
pub type ConnectAttrs = Vec<(Vec<u8>, Vec<u8>)>;

/// The client asks to switch to TLS before sending its real response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SslRequest {
    pub capabilities: Capabilities,
    pub max_packet_size: u32,
    pub charset: u8,
    pub mariadb_capabilities: MariaDbCapabilities,
}

/// A full HandshakeResponse41.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse41 {
    pub capabilities: Capabilities,
    pub max_packet_size: u32,
    pub charset: u8,
    pub mariadb_capabilities: MariaDbCapabilities,
    /// Raw bytes: compare with configured names byte for byte rather than after a lossy
    /// conversion that could make two different names equal.
    pub username: Vec<u8>,
    pub auth_response: Vec<u8>,
    /// The initial schema (`CONNECT_WITH_DB`); an empty name is reported as `None`.
    pub database: Option<Vec<u8>>,
    pub auth_plugin_name: Option<String>,
    pub connect_attrs: ConnectAttrs,
}

/// What a client sends after the greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHello {
    SslRequest(SslRequest),
    Response(HandshakeResponse41),
}

impl ClientHello {
    /// Tells an SSLRequest (exactly the 32 fixed bytes, `SSL` set) from a full response.
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let fixed = SslRequest::parse_fixed(payload)?;
        if payload.len() == FIXED_LEN && fixed.capabilities.contains(Capabilities::SSL) {
            return Ok(Self::SslRequest(fixed));
        }
        HandshakeResponse41::parse(payload).map(Self::Response)
    }
}

impl SslRequest {
    fn parse_fixed(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let capabilities = Capabilities::from_bits(r.u32("handshake response: capabilities")?);
        if !capabilities.contains(Capabilities::PROTOCOL_41) {
            return Err(ProtocolError::Unsupported {
                what: "pre-4.1 handshake response (HandshakeResponse320)",
            });
        }
        let max_packet_size = r.u32("handshake response: max packet size")?;
        let charset = r.u8("handshake response: character set")?;
        r.bytes(19, "handshake response: filler")?;
        let ext = r.u32("handshake response: MariaDB capabilities")?;
        let mariadb_capabilities = if capabilities.has_mariadb_extensions() {
            MariaDbCapabilities::from_bits(ext)
        } else {
            MariaDbCapabilities::empty()
        };
        Ok(Self {
            capabilities,
            max_packet_size,
            charset,
            mariadb_capabilities,
        })
    }

    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u32_le(self.capabilities.bits());
        buf.put_u32_le(self.max_packet_size);
        buf.put_u8(self.charset);
        buf.put_bytes(0, 19);
        if self.capabilities.has_mariadb_extensions() {
            buf.put_u32_le(self.mariadb_capabilities.bits());
        } else {
            buf.put_u32_le(0);
        }
    }
}

impl HandshakeResponse41 {
    /// A response for a backend connection: our `wanted` capabilities narrowed to what the
    /// server offers, with `CONNECT_WITH_DB`, `PLUGIN_AUTH` and `CONNECT_ATTRS` set exactly
    /// when the matching field is given.
    pub fn for_server(
        server: &HandshakeV10,
        wanted: Capabilities,
        username: &[u8],
        auth_response: Vec<u8>,
        database: Option<&[u8]>,
        connect_attrs: ConnectAttrs,
    ) -> Self {
        let optional = Capabilities::CONNECT_WITH_DB | Capabilities::CONNECT_ATTRS;
        let mut capabilities = wanted
            .difference(optional)
            .intersection(server.capabilities);
        // Never ask for compression or TLS implicitly: both change the byte stream.
        capabilities.remove(Capabilities::COMPRESS | Capabilities::SSL);
        let database = database.filter(|db| !db.is_empty()).map(<[u8]>::to_vec);
        let offered = server.capabilities;
        capabilities.set(
            Capabilities::CONNECT_WITH_DB,
            database.is_some() && offered.contains(Capabilities::CONNECT_WITH_DB),
        );
        capabilities.set(
            Capabilities::CONNECT_ATTRS,
            !connect_attrs.is_empty() && offered.contains(Capabilities::CONNECT_ATTRS),
        );
        let auth_plugin_name = if capabilities.contains(Capabilities::PLUGIN_AUTH) {
            server.auth_plugin_name.clone()
        } else {
            None
        };
        Self {
            capabilities,
            max_packet_size: 16 * 1024 * 1024,
            charset: server.charset,
            mariadb_capabilities: MariaDbCapabilities::empty(),
            username: username.to_vec(),
            auth_response,
            database,
            auth_plugin_name,
            connect_attrs,
        }
    }

    /// Parses a full response (an SSLRequest is rejected as truncated: use
    /// [`ClientHello::parse`] where TLS may be requested).
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let fixed = SslRequest::parse_fixed(payload)?;
        let caps = fixed.capabilities;
        let mut r = Reader::new(payload.get(FIXED_LEN..).unwrap_or_default());
        let username = r.nul_bytes("handshake response: user name")?.to_vec();
        let auth_response = if caps.contains(Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA) {
            r.lenenc_bytes("handshake response: auth response")?
        } else if caps.contains(Capabilities::SECURE_CONNECTION) {
            let len = r.u8("handshake response: auth response length")?;
            r.bytes(usize::from(len), "handshake response: auth response")?
        } else {
            r.nul_bytes("handshake response: auth response")?
        }
        .to_vec();
        let database = if caps.contains(Capabilities::CONNECT_WITH_DB) {
            Some(r.nul_bytes("handshake response: database")?)
                .filter(|db| !db.is_empty())
                .map(<[u8]>::to_vec)
        } else {
            None
        };
        let auth_plugin_name = if caps.contains(Capabilities::PLUGIN_AUTH) {
            // Some clients end the packet without the NUL; an empty name means "default".
            Some(r.nul_or_eof_bytes())
                .filter(|name| !name.is_empty())
                .map(|name| String::from_utf8_lossy(name).into_owned())
        } else {
            None
        };
        let connect_attrs = if caps.contains(Capabilities::CONNECT_ATTRS) && !r.is_empty() {
            parse_connect_attrs(&mut r)?
        } else {
            Vec::new()
        };
        Ok(Self {
            capabilities: caps,
            max_packet_size: fixed.max_packet_size,
            charset: fixed.charset,
            mariadb_capabilities: fixed.mariadb_capabilities,
            username,
            auth_response,
            database,
            auth_plugin_name,
            connect_attrs,
        })
    }

    /// Writes the payload, with the fields the capability flags call for.
    pub fn encode(&self, buf: &mut impl BufMut) {
        let caps = self.capabilities;
        SslRequest {
            capabilities: caps,
            max_packet_size: self.max_packet_size,
            charset: self.charset,
            mariadb_capabilities: self.mariadb_capabilities,
        }
        .encode(buf);
        put_nul_bytes(buf, &self.username);
        if caps.contains(Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA) {
            put_lenenc_bytes(buf, &self.auth_response);
        } else if caps.contains(Capabilities::SECURE_CONNECTION) {
            let len = self.auth_response.len().min(255);
            buf.put_u8(len as u8);
            buf.put_slice(&self.auth_response[..len]);
        } else {
            put_nul_bytes(buf, &self.auth_response);
        }
        if caps.contains(Capabilities::CONNECT_WITH_DB) {
            put_nul_bytes(buf, self.database.as_deref().unwrap_or_default());
        }
        if caps.contains(Capabilities::PLUGIN_AUTH) {
            let name = self.auth_plugin_name.as_deref().unwrap_or_default();
            put_nul_bytes(buf, name.as_bytes());
        }
        if caps.contains(Capabilities::CONNECT_ATTRS) {
            put_connect_attrs(buf, &self.connect_attrs);
        }
    }
}

/// Reads `int<lenenc>` total length, then that many bytes of `string<lenenc>` key/value pairs.
pub(crate) fn parse_connect_attrs(r: &mut Reader<'_>) -> Result<ConnectAttrs, ProtocolError> {
    const WHAT: &str = "connection attributes";
    let mut attrs = Reader::new(r.lenenc_bytes(WHAT)?);
    let mut out = Vec::new();
    while !attrs.is_empty() {
        let key = attrs.lenenc_bytes(WHAT)?;
        let value = attrs.lenenc_bytes(WHAT)?;
        out.push((key.to_vec(), value.to_vec()));
    }
    Ok(out)
}

pub(crate) fn put_connect_attrs(buf: &mut impl BufMut, attrs: &[(Vec<u8>, Vec<u8>)]) {
    let field = |b: &[u8]| lenenc_int_len(b.len() as u64) + b.len();
    let total: usize = attrs.iter().map(|(k, v)| field(k) + field(v)).sum();
    put_lenenc_int(buf, total as u64);
    for (key, value) in attrs {
        put_lenenc_bytes(buf, key);
        put_lenenc_bytes(buf, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::constants::CapabilityFlags;
    use mysql_common::io::ParseBuf;
    use mysql_common::packets::{AuthPlugin, HandshakeResponse};
    use mysql_common::proto::{MyDeserialize, MySerialize};
    use std::collections::HashMap;

    #[test]
    fn parses_the_reference_codecs_response_with_db_plugin_and_attrs() {
        let caps = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | CapabilityFlags::CLIENT_CONNECT_WITH_DB
            | CapabilityFlags::CLIENT_CONNECT_ATTRS
            | CapabilityFlags::CLIENT_LONG_PASSWORD;
        let attrs = HashMap::from([("_client_name".to_string(), "libmysql".to_string())]);
        let theirs = HandshakeResponse::new(
            Some(&[7u8; 20][..]),
            (8, 0, 36),
            Some(&b"app"[..]),
            Some(&b"shop"[..]),
            Some(AuthPlugin::MysqlNativePassword),
            caps,
            Some(attrs),
            1 << 24,
        );
        let mut buf = Vec::new();
        theirs.serialize(&mut buf);

        let ours = match ClientHello::parse(&buf).unwrap() {
            ClientHello::Response(r) => r,
            other => panic!("expected a response, got {other:?}"),
        };
        assert_eq!(ours.username, b"app");
        assert_eq!(ours.auth_response, [7u8; 20]);
        assert_eq!(ours.database.as_deref(), Some(&b"shop"[..]));
        assert_eq!(
            ours.auth_plugin_name.as_deref(),
            Some("mysql_native_password")
        );
        assert_eq!(
            ours.connect_attrs,
            vec![(b"_client_name".to_vec(), b"libmysql".to_vec())]
        );
        assert_eq!(ours.max_packet_size, 1 << 24);

        // And ours encodes to something the reference reads back the same.
        let mut again = Vec::new();
        ours.encode(&mut again);
        let back = HandshakeResponse::deserialize((), &mut ParseBuf(&again)).unwrap();
        assert_eq!(back.user(), b"app");
        assert_eq!(back.db_name(), Some(&b"shop"[..]));
        assert_eq!(HandshakeResponse41::parse(&again).unwrap(), ours);
    }

    #[test]
    fn detects_an_ssl_request() {
        let req = SslRequest {
            capabilities: Capabilities::PROTOCOL_41 | Capabilities::SSL,
            max_packet_size: 1024,
            charset: 255,
            mariadb_capabilities: MariaDbCapabilities::PROGRESS,
        };
        let mut buf = Vec::new();
        req.encode(&mut buf);
        assert_eq!(buf.len(), 32);
        assert_eq!(
            ClientHello::parse(&buf).unwrap(),
            ClientHello::SslRequest(req)
        );
        // Without SSL the same 32 bytes are a truncated response.
        buf[1] = 0;
        assert!(ClientHello::parse(&buf).is_err());
    }

    #[test]
    fn for_server_narrows_capabilities_and_sets_field_flags() {
        let server = HandshakeV10 {
            server_version: "10.11.6-MariaDB".into(),
            connection_id: 1,
            auth_plugin_data: vec![1; 20],
            capabilities: Capabilities::PROTOCOL_41
                | Capabilities::SECURE_CONNECTION
                | Capabilities::PLUGIN_AUTH
                | Capabilities::CONNECT_WITH_DB
                | Capabilities::SSL,
            mariadb_capabilities: MariaDbCapabilities::empty(),
            charset: 45,
            status: Default::default(),
            auth_plugin_name: Some("mysql_native_password".into()),
        };
        let wanted = Capabilities::PROTOCOL_41
            | Capabilities::SECURE_CONNECTION
            | Capabilities::PLUGIN_AUTH
            | Capabilities::DEPRECATE_EOF
            | Capabilities::SSL;
        let resp =
            HandshakeResponse41::for_server(&server, wanted, b"app", vec![9; 20], None, vec![]);
        assert!(!resp.capabilities.contains(Capabilities::DEPRECATE_EOF));
        assert!(!resp.capabilities.contains(Capabilities::SSL));
        assert!(!resp.capabilities.contains(Capabilities::CONNECT_WITH_DB));
        let with_db =
            HandshakeResponse41::for_server(&server, wanted, b"app", vec![], Some(b"shop"), vec![]);
        assert!(with_db.capabilities.contains(Capabilities::CONNECT_WITH_DB));
        let mut buf = Vec::new();
        with_db.encode(&mut buf);
        assert_eq!(HandshakeResponse41::parse(&buf).unwrap(), with_db);
    }

    #[test]
    fn rejects_pre_41_and_bounds_checks_attrs() {
        assert!(matches!(
            HandshakeResponse41::parse(&[0; 40]),
            Err(ProtocolError::Unsupported { .. })
        ));
        let resp = HandshakeResponse41 {
            capabilities: Capabilities::PROTOCOL_41
                | Capabilities::SECURE_CONNECTION
                | Capabilities::CONNECT_ATTRS,
            username: b"u".to_vec(),
            connect_attrs: vec![(b"k".to_vec(), b"v".to_vec())],
            ..Default::default()
        };
        let mut buf = Vec::new();
        resp.encode(&mut buf);
        assert_eq!(HandshakeResponse41::parse(&buf).unwrap(), resp);
        buf.pop();
        assert!(HandshakeResponse41::parse(&buf).is_err());
    }
}
