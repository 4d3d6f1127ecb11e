//! The chunked transfer coding of HTTP/1.1 request bodies (RFC 9112 §7.1), decoded. Pure: fed
//! the bytes read so far, it takes what it can and says what came out.
//!
//! Chunk extensions are skipped and trailer fields dropped (they are hop-by-hop here: the
//! body is re-framed on its way upstream). Sizes, extensions and trailers are bounded so a
//! client cannot make proxyd buffer without limit.

use bytes::{Bytes, BytesMut};

/// Longest chunk-size line (size, extensions, CRLF) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 64 * 1024;

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body data.
    Data(Bytes),
    /// The input is used up: read more.
    NeedMore,
    /// The last chunk and the trailers are in: the body is complete.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunked body: {0}")]
pub struct ChunkError(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of the size; `digits` seen so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// Extensions or whitespace after the size, up to CR LF.
    SizeRest {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// After the last chunk: trailer lines until an empty one. `line` counts the current
    /// line's bytes.
    Trailer {
        line: usize,
    },
    TrailerLf {
        line: usize,
    },
    Done,
}

#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Bytes of size lines or trailers consumed since the last data (for the limits).
    overhead: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self {
            state: State::Size { size: 0, digits: 0 },
            overhead: 0,
        }
    }
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes bytes of `input` up to the next data, or all of it.
    pub fn step(&mut self, input: &mut BytesMut) -> Result<Step, ChunkError> {
        loop {
            if let State::Data { remaining } = self.state {
                if input.is_empty() {
                    return Ok(Step::NeedMore);
                }
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                let left = remaining - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining: left }
                };
                self.overhead = 0;
                return Ok(Step::Data(input.split_to(take).freeze()));
            }
            if self.state == State::Done {
                return Ok(Step::Done);
            }
            let Some(&byte) = input.first() else {
                return Ok(Step::NeedMore);
            };
            let _ = input.split_to(1);
            self.overhead += 1;
            self.state = self.next(byte)?;
        }
    }

    fn next(&self, byte: u8) -> Result<State, ChunkError> {
        let state = match self.state {
            State::Size { size, digits } => match hex(byte) {
                Some(v) if digits < 16 => State::Size {
                    size: size << 4 | u64::from(v),
                    digits: digits + 1,
                },
                Some(_) => return Err(ChunkError("chunk size too large")),
                None if digits == 0 => return Err(ChunkError("chunk size expected")),
                None if byte == b'\r' => State::SizeLf { size },
                None if matches!(byte, b';' | b' ' | b'\t') => State::SizeRest { size },
                None => return Err(ChunkError("invalid chunk size")),
            },
            State::SizeRest { size } => match byte {
                b'\r' => State::SizeLf { size },
                b'\n' => return Err(ChunkError("bare LF in chunk size line")),
                _ => State::SizeRest { size },
            },
            State::SizeLf { size } => match byte {
                b'\n' if size == 0 => State::Trailer { line: 0 },
                b'\n' => State::Data { remaining: size },
                _ => return Err(ChunkError("CR without LF in chunk size line")),
            },
            State::DataCr => match byte {
                b'\r' => State::DataLf,
                _ => return Err(ChunkError("chunk data longer than its size")),
            },
            State::DataLf => match byte {
                b'\n' => State::Size { size: 0, digits: 0 },
                _ => return Err(ChunkError("CR without LF after chunk data")),
            },
            State::Trailer { line } => match byte {
                b'\r' => State::TrailerLf { line },
                _ => State::Trailer { line: line + 1 },
            },
            State::TrailerLf { line } => match byte {
                b'\n' if line == 0 => State::Done,
                b'\n' => State::Trailer { line: 0 },
                _ => return Err(ChunkError("CR without LF in trailers")),
            },
            State::Data { .. } | State::Done => self.state,
        };
        let limit = match state {
            State::Trailer { .. } | State::TrailerLf { .. } => MAX_TRAILERS,
            _ => MAX_SIZE_LINE,
        };
        if self.overhead > limit {
            return Err(ChunkError("chunk size line or trailers too long"));
        }
        Ok(state)
    }
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), ChunkError> {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        let mut input = BytesMut::new();
        for piece in pieces {
            input.extend_from_slice(piece);
            loop {
                match d.step(&mut input)? {
                    Step::Data(b) => out.extend_from_slice(&b),
                    Step::NeedMore => break,
                    Step::Done => return Ok((out, true)),
                }
            }
        }
        Ok((out, false))
    }

    #[test]
    fn chunks_extensions_and_trailers() {
        let body = b"5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(decode_all(&[body]), Ok((b"hello, world!!!".to_vec(), true)));
    }

    #[test]
    fn bytes_after_the_body_stay_in_the_input() {
        let mut d = ChunkedDecoder::default();
        let mut input = BytesMut::from(&b"0\r\n\r\nGET / HTTP/1.1\r\n"[..]);
        assert_eq!(d.step(&mut input), Ok(Step::Done));
        assert_eq!(&input[..], b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(decode_all(&[b"zz\r\n"]).is_err());
        assert!(decode_all(&[b"3\r\nhelloo\r\n"]).is_err());
        assert!(decode_all(&[b"11111111111111111\r\n"]).is_err());
        assert!(decode_all(&[b"\r\n"]).is_err());
        let long = [b"1;".as_slice(), &[b'x'; 5000]].concat();
        assert!(decode_all(&[&long]).is_err());
    }

    proptest! {
        #[test]
        fn any_split_decodes_the_same(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..400) {
            let mut encoded = Vec::new();
            for chunk in data.chunks(37) {
                encoded.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                encoded.extend_from_slice(chunk);
                encoded.extend_from_slice(b"\r\n");
            }
            encoded.extend_from_slice(b"0\r\n\r\n");
            let cut = cut.min(encoded.len());
            let (a, b) = encoded.split_at(cut);
            prop_assert_eq!(decode_all(&[a, b]), Ok((data, true)));
        }

        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_all(&[&input]);
        }
    }
}
