//! COM_CHANGE_USER: re-authenticates an open connection as another (or the same) user and
//! resets its session state. Connection pools in client drivers send it to reset a connection.
//!
//! Layout after the 0x11 command byte: user `string<NUL>`, auth response (a 1-byte length with
//! `SECURE_CONNECTION`, else `string<NUL>`), schema `string<NUL>`, then, if there is more:
//! character set `int<2>`, auth plugin name `string<NUL>` (`PLUGIN_AUTH`) and connection
//! attributes (`CONNECT_ATTRS`). The flags are those the client negotiated at connect time.

use bytes::BufMut;

use super::handshake_response::{parse_connect_attrs, put_connect_attrs, ConnectAttrs};
use super::wire::{put_nul_bytes, Reader};
use super::{Capabilities, Command, ProtocolError};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeUser {
    pub username: Vec<u8>,
    pub auth_response: Vec<u8>,
    /// An empty schema is reported as `None`.
    pub database: Option<Vec<u8>>,
    pub charset: Option<u16>,
    pub auth_plugin_name: Option<String>,
    pub connect_attrs: ConnectAttrs,
}

impl ChangeUser {
    /// Parses the whole command payload (with its 0x11 byte); `caps` are the capabilities the
    /// client negotiated.
    pub fn parse(payload: &[u8], caps: Capabilities) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("COM_CHANGE_USER: command")? != Command::ChangeUser as u8 {
            return Err(ProtocolError::Malformed {
                what: "COM_CHANGE_USER: command byte",
            });
        }
        let username = r.nul_bytes("COM_CHANGE_USER: user")?.to_vec();
        let auth_response = if caps.contains(Capabilities::SECURE_CONNECTION) {
            let len = r.u8("COM_CHANGE_USER: auth response length")?;
            r.bytes(usize::from(len), "COM_CHANGE_USER: auth response")?
        } else {
            r.nul_bytes("COM_CHANGE_USER: auth response")?
        }
        .to_vec();
        let database = Some(r.nul_bytes("COM_CHANGE_USER: schema")?)
            .filter(|db| !db.is_empty())
            .map(<[u8]>::to_vec);
        let mut out = Self {
            username,
            auth_response,
            database,
            ..Self::default()
        };
        if r.is_empty() {
            return Ok(out);
        }
        out.charset = Some(r.u16("COM_CHANGE_USER: character set")?);
        if caps.contains(Capabilities::PLUGIN_AUTH) && !r.is_empty() {
            out.auth_plugin_name = Some(r.nul_or_eof_bytes())
                .filter(|name| !name.is_empty())
                .map(|name| String::from_utf8_lossy(name).into_owned());
        }
        if caps.contains(Capabilities::CONNECT_ATTRS) && !r.is_empty() {
            out.connect_attrs = parse_connect_attrs(&mut r)?;
        }
        Ok(out)
    }

    /// Writes the command payload (with its 0x11 byte) for a connection with `caps`.
    pub fn encode(&self, caps: Capabilities, buf: &mut impl BufMut) {
        buf.put_u8(Command::ChangeUser as u8);
        put_nul_bytes(buf, &self.username);
        if caps.contains(Capabilities::SECURE_CONNECTION) {
            let len = self.auth_response.len().min(255);
            buf.put_u8(len as u8);
            buf.put_slice(&self.auth_response[..len]);
        } else {
            put_nul_bytes(buf, &self.auth_response);
        }
        put_nul_bytes(buf, self.database.as_deref().unwrap_or_default());
        buf.put_u16_le(self.charset.unwrap_or(45));
        if caps.contains(Capabilities::PLUGIN_AUTH) {
            let name = self.auth_plugin_name.as_deref().unwrap_or_default();
            put_nul_bytes(buf, name.as_bytes());
        }
        if caps.contains(Capabilities::CONNECT_ATTRS) {
            put_connect_attrs(buf, &self.connect_attrs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Capabilities {
        Capabilities::PROTOCOL_41
            | Capabilities::SECURE_CONNECTION
            | Capabilities::PLUGIN_AUTH
            | Capabilities::CONNECT_ATTRS
    }

    #[test]
    fn round_trips_with_every_optional_field() {
        let cu = ChangeUser {
            username: b"report".to_vec(),
            auth_response: vec![3; 20],
            database: Some(b"reports".to_vec()),
            charset: Some(45),
            auth_plugin_name: Some("mysql_native_password".into()),
            connect_attrs: vec![(b"_pid".to_vec(), b"12".to_vec())],
        };
        let mut buf = Vec::new();
        cu.encode(caps(), &mut buf);
        assert_eq!(ChangeUser::parse(&buf, caps()).unwrap(), cu);
    }

    #[test]
    fn accepts_the_short_form_and_rejects_truncation() {
        let short = b"\x11app\0\x00\0";
        let cu = ChangeUser::parse(short, caps()).unwrap();
        assert_eq!(cu.username, b"app");
        assert!(cu.auth_response.is_empty());
        assert_eq!(cu.database, None);
        assert_eq!(cu.charset, None);
        assert!(ChangeUser::parse(b"\x11app\0\x05ab", caps()).is_err());
        assert!(ChangeUser::parse(b"\x03app\0\x00\0", caps()).is_err());
    }
}
