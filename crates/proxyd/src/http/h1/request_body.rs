//! A request body as proxyd's HTTP/1.1 server streams it upstream: read from the client's
//! socket on demand (Content-Length or chunked), never buffered whole.
//!
//! The stream borrows the connection's read half and its buffer for as long as the body
//! lasts; once the body has been read to its end it puts both back in a [`Home`], where the
//! connection takes them to read the next request. A body not read to its end (the server
//! answered early, or proxyd answered itself) never puts them back, and the connection
//! closes after its response: what is left of the body cannot be told from a next request.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;

use super::chunked::{ChunkedDecoder, Step};
use super::head::Framing;

/// Where a finished body puts the connection's read half and buffer back.
pub type Home = Arc<Mutex<Option<(OwnedReadHalf, BytesMut)>>>;

/// Takes back what a finished body left in `home`.
pub fn reclaim(home: &Home) -> Option<(OwnedReadHalf, BytesMut)> {
    home.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Size of the reads of a body (and of the buffer that holds them).
const READ_SIZE: usize = 16 * 1024;

#[derive(Debug)]
enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
}

#[derive(Debug)]
struct Source {
    reader: OwnedReadHalf,
    buf: BytesMut,
    remaining: Remaining,
    home: Home,
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct RequestStream {
    source: Option<Box<Source>>,
    hint: SizeHint,
}

impl RequestStream {
    pub fn empty() -> Self {
        Self {
            source: None,
            hint: SizeHint::with_exact(0),
        }
    }

    /// The body framed as `framing`, read from `reader` after the bytes already in `buf`.
    pub fn new(framing: Framing, reader: OwnedReadHalf, buf: BytesMut, home: Home) -> Self {
        let (remaining, hint) = match framing {
            Framing::Empty => (Remaining::Length(0), SizeHint::with_exact(0)),
            Framing::Length(n) => (Remaining::Length(n), SizeHint::with_exact(n)),
            Framing::Chunked => (
                Remaining::Chunked(ChunkedDecoder::default()),
                SizeHint::default(),
            ),
        };
        Self {
            source: Some(Box::new(Source {
                reader,
                buf,
                remaining,
                home,
            })),
            hint,
        }
    }

    /// Ends the stream, handing the read half and the bytes after the body back home.
    fn finish(&mut self) {
        if let Some(source) = self.source.take() {
            let Source {
                reader, buf, home, ..
            } = *source;
            *home.lock().unwrap_or_else(PoisonError::into_inner) = Some((reader, buf));
        }
    }
}

impl Body for RequestStream {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            let Some(source) = self.source.as_mut() else {
                return Poll::Ready(None);
            };
            let data = match &mut source.remaining {
                Remaining::Length(0) => None,
                Remaining::Length(n) if !source.buf.is_empty() => {
                    let take = usize::try_from(*n)
                        .unwrap_or(usize::MAX)
                        .min(source.buf.len());
                    *n -= take as u64;
                    Some(source.buf.split_to(take).freeze())
                }
                Remaining::Length(_) => {
                    ready!(fill(source, cx))?;
                    continue;
                }
                Remaining::Chunked(decoder) => match decoder.step(&mut source.buf) {
                    Ok(Step::Data(data)) => Some(data),
                    Ok(Step::Done) => None,
                    Ok(Step::NeedMore) => {
                        ready!(fill(source, cx))?;
                        continue;
                    }
                    Err(e) => {
                        self.source = None;
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            e,
                        ))));
                    }
                },
            };
            match data {
                Some(data) => {
                    if matches!(source.remaining, Remaining::Length(0)) {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                None => {
                    self.finish();
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.source.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// Reads more of the body into the buffer; the client closing mid-body is an error.
fn fill(source: &mut Source, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let n = ready!(poll_read_into(
        Pin::new(&mut source.reader),
        &mut source.buf,
        cx
    ))?;
    if n == 0 {
        return Poll::Ready(Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "client closed the connection before the end of the request body",
        )));
    }
    Poll::Ready(Ok(()))
}

/// Appends one read's worth of bytes to `buf`.
fn poll_read_into<R: AsyncRead>(
    reader: Pin<&mut R>,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let start = buf.len();
    buf.resize(start + READ_SIZE, 0);
    let mut read = ReadBuf::new(&mut buf[start..]);
    let polled = reader.poll_read(cx, &mut read);
    let n = read.filled().len();
    buf.truncate(start + n);
    polled.map_ok(|()| n)
}
