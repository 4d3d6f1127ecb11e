//! Packet framing: a 3-byte little-endian payload length and a 1-byte sequence id before every
//! payload.
//!
//! A payload of 16 MiB - 1 (`0xFFFFFF`) bytes or more is split into chunks of exactly that size
//! followed by a shorter final chunk, each with the next sequence id; a payload that is an exact
//! multiple of `0xFFFFFF` therefore ends with an empty chunk. [`PacketCodec`] reassembles such
//! payloads on the way in and splits them on the way out.
//!
//! The sequence id is one counter per connection shared by both directions: a client's command
//! has id 0, the server's replies continue at 1, 2, ...; the handshake runs 0 (greeting), 1
//! (response), 2 (OK) the same way. So the codec keeps one counter, advances it on every chunk
//! decoded or encoded, and the session calls [`PacketCodec::reset_sequence`] before a new
//! command. The compressed protocol (`CLIENT_COMPRESS`) is not supported: never advertise it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::ProtocolError;

/// The largest payload one chunk carries; a chunk of this size means "more follows".
pub const MAX_CHUNK_LEN: usize = 0xFF_FFFF;

/// Length of a chunk header: 3 bytes of length, 1 byte of sequence id.
pub const HEADER_LEN: usize = 4;

/// Default cap on one reassembled payload, the `max_allowed_packet` default of MySQL 8.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 64 * 1024 * 1024;

/// One logical packet: its payload reassembled from however many chunks carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence id of the first chunk.
    pub sequence_id: u8,
    pub payload: Bytes,
}

/// Incremental framing for one connection: decodes whole packets out of a read buffer and
/// frames outgoing payloads, keeping the connection's sequence counter.
#[derive(Debug, Clone)]
pub struct PacketCodec {
    max_packet_size: usize,
    sequence_id: u8,
}

impl Default for PacketCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PACKET_SIZE)
    }
}

impl PacketCodec {
    /// A codec that refuses reassembled payloads larger than `max_packet_size` bytes.
    pub fn new(max_packet_size: usize) -> Self {
        Self {
            max_packet_size,
            sequence_id: 0,
        }
    }

    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// The sequence id the next chunk (in either direction) must carry.
    pub fn sequence_id(&self) -> u8 {
        self.sequence_id
    }

    pub fn set_sequence_id(&mut self, sequence_id: u8) {
        self.sequence_id = sequence_id;
    }

    /// Starts a new command exchange: the client's next packet carries id 0.
    pub fn reset_sequence(&mut self) {
        self.sequence_id = 0;
    }

    /// Takes one whole packet off the front of `buf`, or returns `Ok(None)` (leaving `buf`
    /// untouched) when more bytes are needed. A wrong sequence id or an oversized packet is
    /// reported as soon as its header is in, before the payload is buffered.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, ProtocolError> {
        let decoded = decode_packet(buf, self.sequence_id, self.max_packet_size)?;
        if let Some((packet, next)) = decoded {
            self.sequence_id = next;
            return Ok(Some(packet));
        }
        Ok(None)
    }

    /// Frames `payload` (splitting it when needed) into `dst` with the codec's sequence ids.
    pub fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) {
        dst.reserve(payload.len() + HEADER_LEN * (payload.len() / MAX_CHUNK_LEN + 1));
        self.sequence_id = encode_packet(payload, self.sequence_id, dst);
    }
}

/// Decodes one packet whose first chunk must carry `expected_seq`. Returns the packet and the
/// sequence id that follows its last chunk, or `None` if `buf` does not yet hold all of it.
pub fn decode_packet(
    buf: &mut BytesMut,
    expected_seq: u8,
    max_packet_size: usize,
) -> Result<Option<(Packet, u8)>, ProtocolError> {
    let mut offset = 0usize;
    let mut total = 0usize;
    let mut chunks = 0usize;
    let mut seq = expected_seq;
    loop {
        let Some(header) = buf.get(offset..offset + HEADER_LEN) else {
            return Ok(None);
        };
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        if header[3] != seq {
            return Err(ProtocolError::WrongSequence {
                expected: seq,
                got: header[3],
            });
        }
        total += len;
        if total > max_packet_size {
            return Err(ProtocolError::TooLarge {
                size: total,
                limit: max_packet_size,
            });
        }
        if buf.len() - offset - HEADER_LEN < len {
            return Ok(None);
        }
        offset += HEADER_LEN + len;
        chunks += 1;
        seq = seq.wrapping_add(1);
        if len < MAX_CHUNK_LEN {
            break;
        }
    }

    let payload = if chunks == 1 {
        // The common case: hand out the bytes without copying.
        let mut frame = buf.split_to(offset);
        frame.advance(HEADER_LEN);
        frame.freeze()
    } else {
        let mut payload = BytesMut::with_capacity(total);
        let mut frames = buf.split_to(offset);
        while frames.has_remaining() {
            let len =
                usize::from(frames[0]) | usize::from(frames[1]) << 8 | usize::from(frames[2]) << 16;
            frames.advance(HEADER_LEN);
            payload.extend_from_slice(&frames.split_to(len));
        }
        payload.freeze()
    };
    let packet = Packet {
        sequence_id: expected_seq,
        payload,
    };
    Ok(Some((packet, seq)))
}

/// Writes `payload` as one or more chunks starting at sequence id `first_seq`; returns the
/// sequence id after the last chunk.
pub fn encode_packet(payload: &[u8], first_seq: u8, dst: &mut impl BufMut) -> u8 {
    let mut seq = first_seq;
    let mut rest = payload;
    loop {
        let len = rest.len().min(MAX_CHUNK_LEN);
        let (chunk, tail) = rest.split_at(len);
        dst.put_uint_le(len as u64, 3);
        dst.put_u8(seq);
        dst.put_slice(chunk);
        seq = seq.wrapping_add(1);
        rest = tail;
        // A full chunk always needs a successor, even an empty one.
        if len < MAX_CHUNK_LEN {
            return seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8], seq: u8) -> BytesMut {
        let mut buf = BytesMut::new();
        encode_packet(payload, seq, &mut buf);
        buf
    }

    #[test]
    fn decodes_a_single_packet_and_advances_the_sequence() {
        let mut buf = framed(b"\x03SELECT 1", 0);
        buf.extend_from_slice(b"\x01\x00\x00\x01\x0e"); // next packet, seq 1
        let mut codec = PacketCodec::default();
        let p = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&p.payload[..], b"\x03SELECT 1");
        assert_eq!(p.sequence_id, 0);
        assert_eq!(codec.sequence_id(), 1);
        let p = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&p.payload[..], b"\x0e");
        assert!(buf.is_empty());
    }

    #[test]
    fn incomplete_input_returns_none_and_keeps_the_bytes() {
        let whole = framed(b"hello", 0);
        let mut codec = PacketCodec::default();
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(codec.decode(&mut buf), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut);
            assert_eq!(codec.sequence_id(), 0);
        }
    }

    #[test]
    fn wrong_sequence_is_reported_with_both_ids() {
        let mut buf = framed(b"x", 3);
        let mut codec = PacketCodec::default();
        codec.set_sequence_id(1);
        assert_eq!(
            codec.decode(&mut buf),
            Err(ProtocolError::WrongSequence {
                expected: 1,
                got: 3
            })
        );
    }

    #[test]
    fn too_large_is_reported_from_the_header_alone() {
        // Header announcing 1000 bytes, none of them here yet.
        let mut buf = BytesMut::from(&[0xE8, 0x03, 0x00, 0x00][..]);
        let mut codec = PacketCodec::new(999);
        assert_eq!(
            codec.decode(&mut buf),
            Err(ProtocolError::TooLarge {
                size: 1000,
                limit: 999
            })
        );
    }

    #[test]
    fn payload_of_exactly_one_chunk_ends_with_an_empty_packet() {
        let payload = vec![0xAB; MAX_CHUNK_LEN];
        let mut buf = BytesMut::new();
        let mut codec = PacketCodec::new(usize::MAX);
        codec.encode(&payload, &mut buf);
        assert_eq!(buf.len(), MAX_CHUNK_LEN + 2 * HEADER_LEN);
        assert_eq!(&buf[buf.len() - 4..], &[0, 0, 0, 1]);
        assert_eq!(codec.sequence_id(), 2);

        let mut decoder = PacketCodec::new(usize::MAX);
        let p = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(p.payload.len(), MAX_CHUNK_LEN);
        assert_eq!(decoder.sequence_id(), 2);
        assert!(buf.is_empty());
    }

    #[test]
    fn split_packets_reassemble_across_partial_reads() {
        let payload: Vec<u8> = (0..MAX_CHUNK_LEN * 2 + 10).map(|i| i as u8).collect();
        let whole = framed(&payload, 250);
        let mut codec = PacketCodec::new(usize::MAX);
        codec.set_sequence_id(250);
        let mut buf = BytesMut::from(&whole[..MAX_CHUNK_LEN + 100]);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&whole[MAX_CHUNK_LEN + 100..]);
        let p = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(p.payload[..], payload[..]);
        assert_eq!(p.sequence_id, 250);
        // Three chunks: 250, 251, 252; the id wraps after 255.
        assert_eq!(codec.sequence_id(), 253);
    }

    #[test]
    fn the_limit_applies_to_the_reassembled_size() {
        let payload = vec![0; MAX_CHUNK_LEN + 1];
        let mut buf = framed(&payload, 0);
        let mut codec = PacketCodec::new(MAX_CHUNK_LEN);
        assert_eq!(
            codec.decode(&mut buf),
            Err(ProtocolError::TooLarge {
                size: MAX_CHUNK_LEN + 1,
                limit: MAX_CHUNK_LEN
            })
        );
    }

    #[test]
    fn empty_payload_is_one_empty_chunk() {
        let mut buf = framed(b"", 7);
        assert_eq!(&buf[..], &[0, 0, 0, 7]);
        let (p, next) = decode_packet(&mut buf, 7, 10).unwrap().unwrap();
        assert!(p.payload.is_empty());
        assert_eq!(next, 8);
    }
}
