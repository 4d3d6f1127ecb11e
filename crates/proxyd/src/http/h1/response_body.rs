//! A server's response as it streams to the client: its header lines as the server wrote
//! them (hop-by-hop ones left out), copied through, and its body read from the upstream
//! connection on demand (Content-Length, chunked, or until the server closes), never
//! buffered whole.
//!
//! The stream holds the upstream connection for as long as the body lasts. Once the body has
//! been read to its end, a connection the server keeps open can carry another request:
//! [`ResponseStream::reusable`] hands it back for the server's keep-alive pool. A body not
//! read to its end leaves the connection mid-message: it is closed, never reused.
//!
//! The wait for each read of the body is bounded by the pool's `timeouts.read` (nginx's
//! `proxy_read_timeout`: between two successive reads, not for the whole body). When it
//! expires the body ends with a [`io::ErrorKind::TimedOut`] error: the client's response is
//! cut short and the connection dropped. The timer is allocated only the first time a read
//! has to wait, so a body that is already in the buffer costs none.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

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
    /// Longest wait for one read of the body.
    read_timeout: Duration,
    /// The timer of the current wait; `None` until a read first has to wait.
    read_timer: Option<Pin<Box<Sleep>>>,
    /// Whether `read_timer` is set for the current wait (cleared by each read that brings
    /// bytes, so a client slow to take the body does not count against the server).
    waiting: bool,
}

impl ResponseStream {
    pub fn new(conn: Conn, head: &ResponseHead, read_timeout: Duration) -> Self {
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
            read_timeout,
            read_timer: None,
            waiting: false,
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

    /// Reads more of the body into the connection's buffer, within the read timeout.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        if let Poll::Ready(read) = fill(conn, cx) {
            self.waiting = false;
            return Poll::Ready(read);
        }
        let deadline = Instant::now() + self.read_timeout;
        let timer = match (&mut self.read_timer, self.waiting) {
            (Some(timer), true) => timer,
            (Some(timer), false) => {
                timer.as_mut().reset(deadline);
                timer
            }
            (timer @ None, _) => timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        self.waiting = true;
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no data from the server within the read timeout ({:?})",
                self.read_timeout
            ),
        )))
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
                        match ready!(this.fill(cx)) {
                            Ok(0) => return this.fail(closed_early()),
                            Ok(_) => {}
                            Err(e) => return this.fail(e),
                        }
                        continue;
                    }
                    Err(e) => return this.fail(io::Error::new(io::ErrorKind::InvalidData, e)),
                },
                Remaining::Length(_) | Remaining::UntilClose => {
                    match ready!(this.fill(cx)) {
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
    conn.buf.reserve(READ_SIZE);
    ha_core::io::poll_read_buf(&conn.stream, cx, &mut conn.buf)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;
    use http_body_util::BodyExt;
    use hyper::StatusCode;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A connection to a local server and the server's end of it.
    async fn connected() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let conn = Conn {
            stream: client.expect("connect"),
            buf: BytesMut::new(),
        };
        (conn, server.expect("accept").0)
    }

    fn head(framing: ResponseFraming) -> ResponseHead {
        ResponseHead {
            status: StatusCode::OK,
            headers: Bytes::new(),
            framing,
            keep_alive: true,
        }
    }

    #[tokio::test]
    async fn a_body_the_server_stops_sending_ends_with_a_timeout_and_is_not_reused() {
        let (conn, mut server) = connected().await;
        server.write_all(b"0123").await.expect("write");
        let timeout = Duration::from_millis(100);
        let mut body = ResponseStream::new(conn, &head(ResponseFraming::Length(10)), timeout);
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().ok(), Some(Bytes::from_static(b"0123")));
        let started = std::time::Instant::now();
        let error = body.frame().await.expect("an end").expect_err("a timeout");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(body.reusable().is_none());
    }

    #[tokio::test]
    async fn each_read_restarts_the_timeout() {
        let (conn, mut server) = connected().await;
        // 8 reads 100 ms apart: longer in all than the timeout, each wait well within it.
        let timeout = Duration::from_millis(500);
        let mut body = ResponseStream::new(conn, &head(ResponseFraming::Length(8)), timeout);
        let writer = tokio::spawn(async move {
            for byte in b"abcdefgh" {
                tokio::time::sleep(Duration::from_millis(100)).await;
                server.write_all(&[*byte]).await?;
            }
            Ok::<_, io::Error>(server)
        });
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.expect("no timeout").into_data().ok();
            got.extend_from_slice(&data.unwrap_or_default());
        }
        assert_eq!(got, b"abcdefgh");
        assert!(body.reusable().is_some());
        let _server = writer.await.expect("writer").expect("writes");
    }
}
