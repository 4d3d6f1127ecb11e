//! Decoding and encoding the pieces of MySQL packets [`super::RawConn`] needs: length-encoded
//! integers and strings, OK/ERR/EOF, column definitions, text and binary rows, and the
//! `mysql_native_password` scramble.

use anyhow::{Context, Result};

use super::{types, Column, Reply, ServerError, Value};

/// The 20-byte scramble of a HandshakeV10.
pub(super) fn greeting_scramble(g: &[u8]) -> Result<Vec<u8>> {
    let version_end = g.iter().skip(1).position(|b| *b == 0).context("version")? + 2;
    let part1 = g
        .get(version_end + 4..version_end + 12)
        .context("scramble 1")?;
    let part2_start = version_end + 12 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
    let part2 = g.get(part2_start..part2_start + 12).context("scramble 2")?;
    Ok(part1.iter().chain(part2).copied().collect())
}

/// mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
pub(super) fn native_password(scramble: &[u8], password: &str) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(stage2);
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// A length-encoded integer and the bytes it took.
pub(super) fn lenenc(b: &[u8]) -> Option<(u64, usize)> {
    match *b.first()? {
        x @ 0..=0xfa => Some((u64::from(x), 1)),
        0xfc => Some((u64::from(u16::from_le_bytes([*b.get(1)?, *b.get(2)?])), 3)),
        0xfd => Some((
            u64::from(*b.get(1)?) | u64::from(*b.get(2)?) << 8 | u64::from(*b.get(3)?) << 16,
            4,
        )),
        0xfe => Some((u64::from_le_bytes(b.get(1..9)?.try_into().ok()?), 9)),
        _ => None,
    }
}

pub(super) fn put_lenenc(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfa => out.push(n as u8),
        0xfb..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&n.to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// A length-encoded string at `pos`; returns it and the position after it.
pub(super) fn lenenc_str(b: &[u8], pos: usize) -> Result<(&[u8], usize)> {
    let (len, n) = lenenc(b.get(pos..).unwrap_or_default()).context("string length")?;
    let start = pos + n;
    let end = start + usize::try_from(len)?;
    Ok((b.get(start..end).context("string")?, end))
}

pub(super) fn parse_ok(p: &[u8]) -> Reply {
    let (affected_rows, n) = lenenc(&p[1..]).unwrap_or((0, 1));
    let (_, m) = lenenc(p.get(1 + n..).unwrap_or_default()).unwrap_or((0, 1));
    let at = 1 + n + m;
    let status = p
        .get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .unwrap_or(0);
    Reply::Ok {
        affected_rows,
        status,
    }
}

pub(super) fn parse_err(p: &[u8]) -> ServerError {
    let code = p
        .get(1..3)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .unwrap_or(0);
    let text = p.get(3..).unwrap_or_default();
    let text = text
        .strip_prefix(b"#")
        .map(|t| t.get(5..).unwrap_or_default())
        .unwrap_or(text);
    ServerError {
        code,
        message: String::from_utf8_lossy(text).into_owned(),
    }
}

/// The status of an EOF packet or (under DEPRECATE_EOF) an OK packet with a 0xFE header.
pub(super) fn terminator_status(p: &[u8], deprecate_eof: bool) -> u16 {
    if deprecate_eof && p.len() >= 7 {
        match parse_ok(p) {
            Reply::Ok { status, .. } => status,
            _ => 0,
        }
    } else {
        p.get(3..5)
            .map(|s| u16::from_le_bytes([s[0], s[1]]))
            .unwrap_or(0)
    }
}

/// A column definition (Protocol::ColumnDefinition41): its name and type.
pub(super) fn parse_column(p: &[u8]) -> Result<Column> {
    let mut pos = 0;
    let mut name = Vec::new();
    for field in 0..6 {
        let (s, next) = lenenc_str(p, pos)?;
        if field == 4 {
            name = s.to_vec();
        }
        pos = next;
    }
    // Fixed fields: length 0x0c, charset 2, column length 4, type 1.
    let column_type = *p.get(pos + 1 + 2 + 4).context("column type")?;
    Ok(Column {
        name: String::from_utf8_lossy(&name).into_owned(),
        column_type,
    })
}

pub(super) fn parse_text_row(p: &[u8], columns: usize) -> Result<Vec<Value>> {
    let mut pos = 0;
    let mut row = Vec::with_capacity(columns);
    for _ in 0..columns {
        if p.get(pos) == Some(&0xFB) {
            row.push(Value::Null);
            pos += 1;
            continue;
        }
        let (s, next) = lenenc_str(p, pos)?;
        row.push(Value::Bytes(s.to_vec()));
        pos = next;
    }
    Ok(row)
}

/// A binary protocol row: 0x00, NULL bitmap (offset 2), values.
pub(super) fn parse_binary_row(p: &[u8], columns: &[Column]) -> Result<Vec<Value>> {
    let bitmap_len = (columns.len() + 7 + 2) / 8;
    let bitmap = p.get(1..1 + bitmap_len).context("NULL bitmap")?;
    let mut pos = 1 + bitmap_len;
    let mut row = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let bit = i + 2;
        if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
            row.push(Value::Null);
            continue;
        }
        let fixed = match c.column_type {
            types::TINY => Some(1),
            types::SHORT | types::YEAR => Some(2),
            types::LONG | types::INT24 => Some(4),
            types::LONGLONG => Some(8),
            _ => None,
        };
        match fixed {
            Some(n) => {
                let b = p.get(pos..pos + n).context("integer value")?;
                let mut le = [0u8; 8];
                le[..n].copy_from_slice(b);
                row.push(Value::Int(i64::from_le_bytes(le)));
                pos += n;
            }
            None => {
                let (s, next) = lenenc_str(p, pos)?;
                row.push(Value::Bytes(s.to_vec()));
                pos = next;
            }
        }
    }
    Ok(row)
}
