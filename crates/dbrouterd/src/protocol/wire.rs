//! The protocol's primitive field types: fixed-width little-endian integers, length-encoded
//! integers and strings, NUL-terminated strings.
//!
//! [`Reader`] is a bounds-checked cursor over a payload: every read names the field it is for,
//! so a short payload becomes `Truncated { what: "OK packet: affected rows" }` instead of an
//! index panic. The `put_*` functions write the same types into any [`BufMut`].

use bytes::BufMut;

use super::ProtocolError;

/// A bounds-checked cursor over one packet payload.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next byte without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Everything not read yet (consumes it).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Exactly `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        if n > self.buf.len() {
            return Err(ProtocolError::Truncated { what });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// A fixed-size array of bytes.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, ProtocolError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u24(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        let [a, b, c] = self.array(what)?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length-encoded integer (`int<lenenc>`).
    pub fn lenenc_int(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        match self.u8(what)? {
            prefix @ 0..=0xFA => Ok(u64::from(prefix)),
            0xFC => self.u16(what).map(u64::from),
            0xFD => self.u24(what).map(u64::from),
            0xFE => self.u64(what),
            prefix => Err(ProtocolError::BadLenenc { what, prefix }),
        }
    }

    /// A length-encoded string (`string<lenenc>`).
    pub fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let len = self.lenenc_int(what)?;
        let len = usize::try_from(len).map_err(|_| ProtocolError::Truncated { what })?;
        self.bytes(len, what)
    }

    /// A NUL-terminated string (`string<NUL>`), without the NUL.
    pub fn nul_bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(ProtocolError::Truncated { what })?;
        let s = self.bytes(end, what)?;
        self.bytes(1, what)?;
        Ok(s)
    }

    /// A NUL-terminated string that may also end at the end of the payload (some servers omit
    /// the final NUL after the auth plugin name).
    pub fn nul_or_eof_bytes(&mut self) -> &'a [u8] {
        match self.buf.iter().position(|&b| b == 0) {
            Some(end) => {
                let s = &self.buf[..end];
                self.buf = &self.buf[end + 1..];
                s
            }
            None => self.rest(),
        }
    }
}

/// The number of bytes `put_lenenc_int` writes for `value`.
pub fn lenenc_int_len(value: u64) -> usize {
    match value {
        0..=0xFA => 1,
        0xFB..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 9,
    }
}

pub fn put_lenenc_int(buf: &mut impl BufMut, value: u64) {
    match value {
        0..=0xFA => buf.put_u8(value as u8),
        0xFB..=0xFFFF => {
            buf.put_u8(0xFC);
            buf.put_u16_le(value as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            buf.put_u8(0xFD);
            buf.put_uint_le(value, 3);
        }
        _ => {
            buf.put_u8(0xFE);
            buf.put_u64_le(value);
        }
    }
}

pub fn put_lenenc_bytes(buf: &mut impl BufMut, bytes: &[u8]) {
    put_lenenc_int(buf, bytes.len() as u64);
    buf.put_slice(bytes);
}

/// Writes `bytes` up to (not including) its first NUL, then a NUL: a NUL inside would end the
/// string early on the other side anyway, so it is cut here where it is visible.
pub fn put_nul_bytes(buf: &mut impl BufMut, bytes: &[u8]) {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    buf.put_slice(&bytes[..end]);
    buf.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_int_round_trips_at_every_width_boundary() {
        for value in [
            0,
            1,
            0xFA,
            0xFB,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_lenenc_int(&mut buf, value);
            assert_eq!(buf.len(), lenenc_int_len(value), "width of {value:#x}");
            let mut r = Reader::new(&buf);
            assert_eq!(r.lenenc_int("test").unwrap(), value);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn lenenc_int_rejects_null_and_err_prefixes() {
        for prefix in [0xFB, 0xFF] {
            let err = Reader::new(&[prefix, 0, 0]).lenenc_int("x").unwrap_err();
            assert_eq!(err, ProtocolError::BadLenenc { what: "x", prefix });
        }
    }

    #[test]
    fn truncated_fields_name_what_was_missing() {
        let mut r = Reader::new(&[0xFC, 0x01]);
        assert_eq!(
            r.lenenc_int("affected rows"),
            Err(ProtocolError::Truncated {
                what: "affected rows"
            })
        );
        // A length prefix promising more than there is.
        let mut r = Reader::new(&[0x05, b'a', b'b']);
        assert!(matches!(
            r.lenenc_bytes("info"),
            Err(ProtocolError::Truncated { .. })
        ));
        // A huge 8-byte length must not overflow or allocate.
        let mut r = Reader::new(&[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(r.lenenc_bytes("blob").is_err());
    }

    #[test]
    fn nul_strings() {
        let mut r = Reader::new(b"user\0rest");
        assert_eq!(r.nul_bytes("user").unwrap(), b"user");
        assert_eq!(r.rest(), b"rest");
        assert!(Reader::new(b"no-nul").nul_bytes("x").is_err());
        let mut r = Reader::new(b"plugin");
        assert_eq!(r.nul_or_eof_bytes(), b"plugin");
        let mut buf = Vec::new();
        put_nul_bytes(&mut buf, b"ab\0cd");
        assert_eq!(buf, b"ab\0");
    }
}
