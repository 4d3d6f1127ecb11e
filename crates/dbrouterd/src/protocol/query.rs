//! COM_QUERY: the SQL text the classifier routes on.
//!
//! Without `CLIENT_QUERY_ATTRIBUTES` the text is everything after the 0x03 byte. With it
//! (MySQL 8.0.23+; MariaDB never offers it) a parameter block comes first: `int<lenenc>`
//! parameter count, `int<lenenc>` parameter set count (always 1), and when there are
//! parameters a NULL bitmap, a new-params-bound flag, each parameter's type (`int<2>`) and name
//! (`string<lenenc>`), and the values in the binary protocol encoding. [`ComQuery::parse`]
//! skips that block, without allocating, to find the text.

use super::command::{expect, Command};
use super::wire::Reader;
use super::{Capabilities, ProtocolError};

const WHAT: &str = "COM_QUERY: query attributes";

/// A parsed COM_QUERY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComQuery<'a> {
    /// How many query attributes the client attached (0 without `QUERY_ATTRIBUTES`).
    pub attribute_count: u64,
    /// The statement text, in the connection's character set (not necessarily UTF-8).
    pub text: &'a [u8],
}

impl<'a> ComQuery<'a> {
    /// Parses a COM_QUERY payload; `caps` are the capabilities negotiated with the client.
    pub fn parse(payload: &'a [u8], caps: Capabilities) -> Result<Self, ProtocolError> {
        expect(payload, Command::Query)?;
        let mut r = Reader::new(&payload[1..]);
        if !caps.contains(Capabilities::QUERY_ATTRIBUTES) {
            return Ok(Self {
                attribute_count: 0,
                text: r.rest(),
            });
        }
        let count = r.lenenc_int(WHAT)?;
        if r.lenenc_int(WHAT)? != 1 {
            return Err(ProtocolError::Unsupported {
                what: "COM_QUERY: more than one query attribute set",
            });
        }
        if count > 0 {
            skip_attributes(&mut r, count)?;
        }
        Ok(Self {
            attribute_count: count,
            text: r.rest(),
        })
    }
}

fn skip_attributes(r: &mut Reader<'_>, count: u64) -> Result<(), ProtocolError> {
    let bitmap_len = count.div_ceil(8);
    let bitmap_len =
        usize::try_from(bitmap_len).map_err(|_| ProtocolError::Truncated { what: WHAT })?;
    let null_bitmap = r.bytes(bitmap_len, WHAT)?;
    if r.u8(WHAT)? != 1 {
        return Err(ProtocolError::Malformed {
            what: "COM_QUERY: query attributes without types",
        });
    }
    // Types and names come first, values after all of them: walk the types twice rather
    // than collecting them.
    let types = r.clone();
    for _ in 0..count {
        r.u16(WHAT)?;
        r.lenenc_bytes(WHAT)?;
    }
    let mut types = types;
    for index in 0..count {
        let param_type = types.u16(WHAT)?;
        types.lenenc_bytes(WHAT)?;
        let is_null = usize::try_from(index / 8)
            .ok()
            .and_then(|byte| null_bitmap.get(byte))
            .is_some_and(|bits| bits & (1 << (index % 8)) != 0);
        if !is_null {
            skip_binary_value(r, param_type as u8)?;
        }
    }
    Ok(())
}

/// Skips one value of MySQL column type `field_type` in the binary protocol encoding.
fn skip_binary_value(r: &mut Reader<'_>, field_type: u8) -> Result<(), ProtocolError> {
    match field_type {
        // NULL
        0x06 => {}
        // TINY
        0x01 => {
            r.bytes(1, WHAT)?;
        }
        // SHORT, YEAR
        0x02 | 0x0D => {
            r.bytes(2, WHAT)?;
        }
        // LONG, FLOAT, INT24
        0x03 | 0x04 | 0x09 => {
            r.bytes(4, WHAT)?;
        }
        // DOUBLE, LONGLONG
        0x05 | 0x08 => {
            r.bytes(8, WHAT)?;
        }
        // TIMESTAMP, DATE, TIME, DATETIME, NEWDATE and the internal *2 variants: a 1-byte
        // length, then that many bytes.
        0x07 | 0x0A | 0x0B | 0x0C | 0x0E | 0x11..=0x13 => {
            let len = r.u8(WHAT)?;
            r.bytes(usize::from(len), WHAT)?;
        }
        // DECIMAL, VARCHAR, BIT, and VECTOR..GEOMETRY (JSON, NEWDECIMAL, ENUM, SET, the BLOBs,
        // VAR_STRING, STRING): length-encoded.
        0x00 | 0x0F | 0x10 | 0xF2..=0xFF => {
            r.lenenc_bytes(WHAT)?;
        }
        _ => {
            return Err(ProtocolError::Malformed {
                what: "COM_QUERY: query attribute of unknown type",
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_query_text() {
        let q = ComQuery::parse(b"\x03SELECT 1", Capabilities::PROTOCOL_41).unwrap();
        assert_eq!(q.text, b"SELECT 1");
        assert_eq!(q.attribute_count, 0);
        assert!(ComQuery::parse(b"\x16SELECT 1", Capabilities::empty()).is_err());
        assert!(ComQuery::parse(b"", Capabilities::empty()).is_err());
    }

    #[test]
    fn skips_query_attributes() {
        let caps = Capabilities::QUERY_ATTRIBUTES;
        // No attributes: two zero lenenc counts... the set count is still 1.
        let q = ComQuery::parse(b"\x03\x00\x01SELECT 2", caps).unwrap();
        assert_eq!(q.text, b"SELECT 2");

        // Three attributes: a LONGLONG, a NULL-flagged string and a VARCHAR.
        let mut p = vec![0x03, 3, 1];
        p.push(0b010); // the second is NULL
        p.push(1); // types follow
        p.extend_from_slice(&[0x08, 0x80, 2, b'i', b'd']);
        p.extend_from_slice(&[0xFE, 0x00, 1, b'n']);
        p.extend_from_slice(&[0x0F, 0x00, 3, b't', b'a', b'g']);
        p.extend_from_slice(&42u64.to_le_bytes());
        p.extend_from_slice(&[4, b'w', b'e', b'b', b'1']);
        p.extend_from_slice(b"SELECT 3");
        let q = ComQuery::parse(&p, caps).unwrap();
        assert_eq!(q.attribute_count, 3);
        assert_eq!(q.text, b"SELECT 3");

        // A value cut short is an error, not a guess at where the text starts.
        let cut = &p[..p.len() - 8 - 3];
        assert!(ComQuery::parse(cut, caps).is_err());
    }

    #[test]
    fn a_huge_attribute_count_fails_cleanly() {
        let p = [
            0x03, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00,
        ];
        assert!(ComQuery::parse(&p, Capabilities::QUERY_ATTRIBUTES).is_err());
    }
}
