//! OK and EOF packets, and telling the first packet of a response apart.
//!
//! OK (`0x00`) ends a successful command: affected rows, last insert id, status flags,
//! warnings, an optional human-readable info string and, with `CLIENT_SESSION_TRACK` and
//! `SESSION_STATE_CHANGED`, the session state changes ([`session_track`](super::session_track)).
//! With `CLIENT_DEPRECATE_EOF` the end of a result set is the same OK with a `0xFE` header;
//! without it the old EOF packet (`0xFE`, warnings, status; under 9 bytes) ends column
//! definitions and rows. Which one to expect follows from the negotiated capabilities, so the
//! parsers accept both headers and the caller decides.

use bytes::BufMut;

use super::session_track::SessionChanges;
use super::wire::{put_lenenc_bytes, put_lenenc_int, Reader};
use super::{Capabilities, ProtocolError, StatusFlags};

/// An OK packet; the byte fields borrow from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OkPacket<'a> {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: StatusFlags,
    pub warnings: u16,
    pub info: &'a [u8],
    /// The raw session state information (see [`OkPacket::session_changes`]).
    pub session_state: &'a [u8],
}

impl<'a> OkPacket<'a> {
    /// Whether a payload starts like an OK packet (header 0x00, long enough).
    pub fn is_ok(payload: &[u8]) -> bool {
        payload.first() == Some(&0x00) && payload.len() >= 7
    }

    /// Parses an OK packet with a `0x00` or `0xFE` header; `caps` are the negotiated
    /// capabilities (only 4.1 is supported).
    pub fn parse(payload: &'a [u8], caps: Capabilities) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let header = r.u8("OK packet: header")?;
        if header != 0x00 && header != 0xFE {
            return Err(ProtocolError::Malformed {
                what: "OK packet: header is not 0x00 or 0xFE",
            });
        }
        let affected_rows = r.lenenc_int("OK packet: affected rows")?;
        let last_insert_id = r.lenenc_int("OK packet: last insert id")?;
        let status = StatusFlags::from_bits(r.u16("OK packet: status flags")?);
        let warnings = r.u16("OK packet: warnings")?;
        // The protocol documentation calls info `string<EOF>` without session tracking, but
        // servers always write it length-encoded (net_send_ok), and omit it when empty.
        let info = if r.is_empty() {
            &[][..]
        } else {
            r.lenenc_bytes("OK packet: info")?
        };
        let session_state = if caps.contains(Capabilities::SESSION_TRACK)
            && status.contains(StatusFlags::SESSION_STATE_CHANGED)
            && !r.is_empty()
        {
            r.lenenc_bytes("OK packet: session state info")?
        } else {
            &[][..]
        };
        Ok(Self {
            affected_rows,
            last_insert_id,
            status,
            warnings,
            info,
            session_state,
        })
    }

    /// The session state changes this OK reports, in order.
    pub fn session_changes(&self) -> SessionChanges<'a> {
        SessionChanges::new(self.session_state)
    }

    /// Writes an OK packet (header 0x00).
    pub fn encode(&self, caps: Capabilities, buf: &mut impl BufMut) {
        self.encode_with_header(0x00, caps, buf);
    }

    /// Writes the OK that ends a result set under `CLIENT_DEPRECATE_EOF` (header 0xFE).
    pub fn encode_result_set_end(&self, caps: Capabilities, buf: &mut impl BufMut) {
        self.encode_with_header(0xFE, caps, buf);
    }

    fn encode_with_header(&self, header: u8, caps: Capabilities, buf: &mut impl BufMut) {
        buf.put_u8(header);
        put_lenenc_int(buf, self.affected_rows);
        put_lenenc_int(buf, self.last_insert_id);
        let track = caps.contains(Capabilities::SESSION_TRACK)
            && self.status.contains(StatusFlags::SESSION_STATE_CHANGED)
            && !self.session_state.is_empty();
        let mut status = self.status;
        status.set(StatusFlags::SESSION_STATE_CHANGED, track);
        buf.put_u16_le(status.bits());
        buf.put_u16_le(self.warnings);
        if track || !self.info.is_empty() {
            put_lenenc_bytes(buf, self.info);
        }
        if track {
            put_lenenc_bytes(buf, self.session_state);
        }
    }
}

/// The pre-`DEPRECATE_EOF` end of column definitions and of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EofPacket {
    pub warnings: u16,
    pub status: StatusFlags,
}

impl EofPacket {
    /// Whether a payload is an EOF packet: header 0xFE and shorter than 9 bytes (a row or an
    /// OK can start with 0xFE too, but is then longer).
    pub fn is_eof(payload: &[u8]) -> bool {
        payload.first() == Some(&0xFE) && payload.len() < 9
    }

    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        if !Self::is_eof(payload) {
            return Err(ProtocolError::Malformed {
                what: "EOF packet: not 0xFE or 9 bytes or longer",
            });
        }
        let mut r = Reader::new(&payload[1..]);
        Ok(Self {
            warnings: r.u16("EOF packet: warnings")?,
            status: StatusFlags::from_bits(r.u16("EOF packet: status flags")?),
        })
    }

    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(0xFE);
        buf.put_u16_le(self.warnings);
        buf.put_u16_le(self.status.bits());
    }
}

/// What the first packet of a command's response says comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStart {
    /// An OK packet: the command is done.
    Ok,
    /// An ERR packet: the command failed.
    Err,
    /// `LOAD DATA LOCAL INFILE`: the server asks the client for a file (the rest of the
    /// payload is its name).
    LocalInfile,
    /// A result set with this many columns follows.
    ResultSet { columns: u64 },
}

impl ResponseStart {
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        match payload.first() {
            None => Err(ProtocolError::Truncated {
                what: "response: first byte",
            }),
            Some(0x00) => Ok(Self::Ok),
            Some(0xFF) => Ok(Self::Err),
            Some(0xFB) => Ok(Self::LocalInfile),
            Some(_) => {
                let mut r = Reader::new(payload);
                let columns = r.lenenc_int("response: column count")?;
                if columns == 0 || !r.is_empty() {
                    return Err(ProtocolError::Malformed {
                        what: "response: column count packet",
                    });
                }
                Ok(Self::ResultSet { columns })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::constants::CapabilityFlags;
    use mysql_common::io::ParseBuf;
    use mysql_common::packets::{CommonOkPacket, OkPacketDeserializer};
    use mysql_common::proto::MyDeserialize;

    const TRACK: Capabilities = Capabilities::PROTOCOL_41.union(Capabilities::SESSION_TRACK);

    #[test]
    fn parses_a_plain_ok_like_the_reference() {
        let payload = b"\x00\x03\xfc\x00\x01\x02\x00\x01\x00\x05hello";
        let ok = OkPacket::parse(payload, Capabilities::PROTOCOL_41).unwrap();
        assert_eq!(ok.affected_rows, 3);
        assert_eq!(ok.last_insert_id, 256);
        assert_eq!(ok.status, StatusFlags::AUTOCOMMIT);
        assert_eq!(ok.warnings, 1);
        assert_eq!(ok.info, b"hello");

        let theirs = OkPacketDeserializer::<CommonOkPacket>::deserialize(
            CapabilityFlags::CLIENT_PROTOCOL_41,
            &mut ParseBuf(payload),
        )
        .unwrap()
        .into_inner();
        assert_eq!(theirs.affected_rows(), ok.affected_rows);
        assert_eq!(theirs.last_insert_id(), Some(ok.last_insert_id));
        assert_eq!(theirs.info_ref(), Some(&b"hello"[..]));
    }

    #[test]
    fn minimal_and_result_set_end_forms() {
        let ok = OkPacket::parse(b"\x00\x00\x00\x02\x00\x00\x00", TRACK).unwrap();
        assert!(ok.info.is_empty() && ok.session_state.is_empty());
        let end = OkPacket::parse(b"\xfe\x00\x00\x03\x00\x00\x00", TRACK).unwrap();
        assert!(end.status.contains(StatusFlags::IN_TRANS));
        assert!(OkPacket::parse(b"\xff\x00\x00", TRACK).is_err());
        assert!(OkPacket::parse(b"\x00\x00\x00\x02", TRACK).is_err());
    }

    #[test]
    fn round_trips_with_session_state() {
        // One schema change: type 1, data = lenenc "shop".
        let state = b"\x01\x05\x04shop";
        let ok = OkPacket {
            affected_rows: 1,
            last_insert_id: 0,
            status: StatusFlags::AUTOCOMMIT | StatusFlags::SESSION_STATE_CHANGED,
            warnings: 0,
            info: b"",
            session_state: state,
        };
        let mut buf = Vec::new();
        ok.encode(TRACK, &mut buf);
        assert_eq!(OkPacket::parse(&buf, TRACK).unwrap(), ok);
        // A client without session tracking gets neither the flag nor the data.
        let mut plain = Vec::new();
        ok.encode(Capabilities::PROTOCOL_41, &mut plain);
        let back = OkPacket::parse(&plain, Capabilities::PROTOCOL_41).unwrap();
        assert!(!back.status.contains(StatusFlags::SESSION_STATE_CHANGED));
        assert!(back.session_state.is_empty());
    }

    #[test]
    fn eof_packets() {
        let eof = EofPacket {
            warnings: 2,
            status: StatusFlags::MORE_RESULTS_EXISTS,
        };
        let mut buf = Vec::new();
        eof.encode(&mut buf);
        assert!(EofPacket::is_eof(&buf));
        assert_eq!(EofPacket::parse(&buf).unwrap(), eof);
        assert!(EofPacket::parse(&[0xFE, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(EofPacket::parse(&[0xFE, 0]).is_err());
    }

    #[test]
    fn response_start() {
        assert_eq!(ResponseStart::parse(b"\x00\x00\x00"), Ok(ResponseStart::Ok));
        assert_eq!(
            ResponseStart::parse(b"\xff\x15\x04"),
            Ok(ResponseStart::Err)
        );
        assert_eq!(
            ResponseStart::parse(b"\xfbdata.csv"),
            Ok(ResponseStart::LocalInfile)
        );
        assert_eq!(
            ResponseStart::parse(b"\x03"),
            Ok(ResponseStart::ResultSet { columns: 3 })
        );
        assert!(ResponseStart::parse(b"").is_err());
        assert!(ResponseStart::parse(b"\x03\x00").is_err());
    }
}
