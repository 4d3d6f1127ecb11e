//! A server's response as it streams to the client: its header lines as the server wrote
//! them (hop-by-hop ones left out), copied through, and its body read from the upstream
//! connection on demand (Content-Length, chunked, or until the server closes), never
//! buffered whole.
//!
//! The stream holds the upstream connection for as long as the body lasts. Once the body has
//! been read to its end, a connection the server keeps open can carry another request:
//! [`ResponseStream::reusable`] hands it back for the server's keep-alive pool. A body not
//! read to its end leaves the connection mid-message: it is closed, never reused.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::chunked::{ChunkedDecoder, Step};
use super::upstream::ResponseHead;
use crate::pool::upstream::Conn;

/// Most bytes asked of one read of a body.
const READ_SIZE: usize = 16 * 1024;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection (which then cannot be reused).
    UntilClose,
}

#[derive(Debug)]
enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct ResponseStream {
    conn: Option<Conn>,
    remaining: Remaining,
    /// Whether the server keeps the connection open after this response.
    keep_alive: bool,
    hint: SizeHint,
    /// The response's header lines, copied through to the client.
    headers: Bytes,
}

impl ResponseStream {
    pub fn new(conn: Conn, head: &ResponseHead) -> Self {
        let framing = head.framing;
        let (remaining, hint) = match framing {
            ResponseFraming::Empty | ResponseFraming::Length(0) => {
                (Remaining::Done, SizeHint::with_exact(0))
            }
            ResponseFraming::Length(n) => (Remaining::Length(n), SizeHint::with_exact(n)),
            ResponseFraming::Chunked => (
                Remaining::Chunked(ChunkedDecoder::default()),
                SizeHint::default(),
            ),
            ResponseFraming::UntilClose => (Remaining::UntilClose, SizeHint::default()),
        };
        Self {
            conn: Some(conn),
            remaining,
            keep_alive: head.keep_alive && framing != ResponseFraming::UntilClose,
            hint,
            headers: head.headers.clone(),
        }
    }

    /// The server's header lines (`name: value\r\n`), hop-by-hop ones left out.
    pub fn headers(&self) -> &Bytes {
        &self.headers
    }

    /// Takes the header lines, leaving none.
    pub fn take_headers(&mut self) -> Bytes {
        std::mem::take(&mut self.headers)
    }

    /// The connection, once the body has been read to its end and the server keeps it open.
    pub fn reusable(&mut self) -> Option<Conn> {
        if matches!(self.remaining, Remaining::Done) && self.keep_alive {
            self.conn.take()
        } else {
            None
        }
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.conn = None;
        self.remaining = Remaining::Done;
        self.keep_alive = false;
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for ResponseStream {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let data = match &mut this.remaining {
                Remaining::Done => return Poll::Ready(None),
                Remaining::Length(n) if !conn.buf.is_empty() => {
                    let take = usize::try_from(*n)
                        .unwrap_or(usize::MAX)
                        .min(conn.buf.len());
                    *n -= take as u64;
                    if *n == 0 {
                        this.remaining = Remaining::Done;
                    }
                    conn.buf.split_to(take).freeze()
                }
                Remaining::UntilClose if !conn.buf.is_empty() => conn.buf.split().freeze(),
                Remaining::Chunked(decoder) => match decoder.step(&mut conn.buf) {
                    Ok(Step::Data(data)) => data,
                    Ok(Step::Done) => {
                        this.remaining = Remaining::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Step::NeedMore) => {
                        match ready!(fill(conn, cx)) {
                            Ok(0) => return this.fail(closed_early()),
                            Ok(_) => {}
                            Err(e) => return this.fail(e),
                        }
                        continue;
                    }
                    Err(e) => return this.fail(io::Error::new(io::ErrorKind::InvalidData, e)),
                },
                Remaining::Length(_) | Remaining::UntilClose => {
                    match ready!(fill(conn, cx)) {
                        Ok(0) if matches!(this.remaining, Remaining::UntilClose) => {
                            this.remaining = Remaining::Done;
                            this.keep_alive = false;
                            return Poll::Ready(None);
                        }
                        Ok(0) => return this.fail(closed_early()),
                        Ok(_) => {}
                        Err(e) => return this.fail(e),
                    }
                    continue;
                }
            };
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.remaining, Remaining::Done)
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

fn closed_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "server closed the connection before the end of the response body",
    )
}

/// Reads what the server has sent into the connection's buffer; `Ok(0)` at its end.
fn fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    loop {
        ready!(conn.stream.poll_read_ready(cx))?;
        conn.buf.reserve(READ_SIZE);
        match conn.stream.try_read_buf(&mut conn.buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return Poll::Ready(result),
        }
    }
}
