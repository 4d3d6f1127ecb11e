//! proxyd's own HTTP/1.1 server for plain-text client connections, built the way nginx
//! serves them: a connection waiting for its next request holds no buffer (only its socket
//! and a small task), a request head is parsed in place with httparse, and the answer's head
//! and first bytes leave in one write.
//!
//! hyper's server keeps two 8 KiB buffers per connection for as long as it lives, so
//! thousands of idle keep-alive clients cost hundreds of MiB; here they cost a couple of
//! KiB each. TLS and HTTP/2 connections stay with hyper ([`super::serve`]); a plain-text
//! client opening with the HTTP/2 preface (h2c with prior knowledge) is handed to hyper too.
//!
//! The limits are those of the hyper path: a header section over [`MAX_HEADER_BYTES`] gets
//! 431, a malformed head 400, and a client must send a whole head within `header_timeout`
//! of its first byte (slowloris); between requests a client may stay silent for
//! `idle_timeout`. The pieces: [`head`] (parsing, framing), [`chunked`] (chunked bodies),
//! [`request_body`] (streaming a body upstream), [`response`] (writing the answer),
//! [`rewind`] (bytes put back in front of a socket). The client side of the same protocol,
//! towards the servers: [`upstream`] (one exchange on a keep-alive connection) and
//! [`response_body`] (streaming a server's body back).

pub mod chunked;
pub mod head;
pub mod request_body;
pub mod response;
pub mod response_body;
pub mod upstream;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use hyper::{Method, Request, StatusCode, Version};
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tracing::{debug, info};

use super::body::ClientBody;
use super::headers::is_upgrade;
use super::proxy::{self, Connection};
use super::upgrade::H1Upgrade;
use super::MAX_HEADER_BYTES;
pub use ha_core::io::Rewind;
use head::{Framing, Head, HeadError};
pub use request_body::RequestStream;
use response::Exchange;

/// Size of the first read of a request head (nginx's `client_header_buffer_size`); a
/// larger head doubles the buffer as it comes in.
const HEAD_READ: usize = 1024;

/// The timeouts of a listener's client connections.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

/// Serves one plain-text client connection until it closes.
///
/// This future is what an idle keep-alive client costs, so it holds only the socket, the
/// wait for the next request (readiness, the idle timer, the stop) and an empty buffer;
/// each request is read and answered in a boxed [`request`] future.
pub async fn serve(
    stream: TcpStream,
    conn: Arc<Connection>,
    timeouts: Timeouts,
    hyper_server: Arc<auto::Builder<TokioExecutor>>,
) {
    let (mut reader, mut writer) = stream.into_split();
    // Empty (no allocation) while the connection waits for a request.
    let mut buf = BytesMut::new();
    let mut first = true;
    loop {
        if buf.is_empty() {
            // Stopping closes a connection between requests, never before its first: a
            // client that just connected has a request on its way (during an upgrade the
            // old process may accept a connection just before it stops).
            let readable = std::future::poll_fn(|cx| reader.as_ref().poll_read_ready(cx));
            let idle = tokio::select! {
                biased;
                idle = tokio::time::timeout(timeouts.idle, readable) => idle,
                () = conn.drain.cancelled(), if !first => {
                    debug!(client = %conn.client, "stopping: idle keep-alive connection closed");
                    let _ = writer.shutdown().await;
                    return;
                }
            };
            match idle {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    debug!(client = %conn.client, "idle keep-alive connection timed out");
                    return;
                }
            }
        }
        // Readiness left from the last read: wait for the next request as idle, with no
        // buffer and without building a request's future.
        let at_hand = head_at_hand(&reader, &mut buf);
        if let AtHand::Nothing = at_hand {
            buf = BytesMut::new();
            continue;
        }
        let next = Box::pin(request(
            at_hand,
            reader,
            writer,
            buf,
            &conn,
            timeouts,
            &hyper_server,
            first,
        ))
        .await;
        match next {
            Next::KeepAlive(r, w, b) => {
                (reader, writer) = (r, w);
                // Drop the buffer while idle unless a pipelined request is already in it.
                buf = if b.is_empty() { BytesMut::new() } else { b };
                first = false;
            }
            Next::Close(mut w) => {
                let _ = w.shutdown().await;
                return;
            }
            Next::CloseLingering(mut w) => {
                let _ = w.shutdown().await;
                // Boxed: its state would otherwise be part of every connection's task.
                Box::pin(linger(w.as_ref())).await;
                return;
            }
            Next::Done => return,
        }
    }
}

/// Reads the rest of one request head (`at_hand`: what one read brought) and answers it.
#[allow(clippy::too_many_arguments)]
async fn request(
    at_hand: AtHand,
    mut reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
    mut buf: BytesMut,
    conn: &Arc<Connection>,
    timeouts: Timeouts,
    hyper_server: &auto::Builder<TokioExecutor>,
    first: bool,
) -> Next {
    // A head already at hand needs no timer; one still coming must be in within the
    // header timeout.
    let read = match at_hand {
        AtHand::Head(result) => Ok(result),
        // (`serve` waits as idle rather than come here with nothing.)
        AtHand::Partial | AtHand::Nothing => {
            tokio::time::timeout(timeouts.header, read_head(&mut reader, &mut buf)).await
        }
    };
    let head = match read {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => return Next::Done, // closed between requests
        Ok(Err(ReadError::Io(e))) => {
            client_error(conn, "io", &e.to_string());
            return Next::Done;
        }
        Ok(Err(ReadError::Head(HeadError::H2Preface))) if first => {
            let Ok(stream) = reader.reunite(writer) else {
                return Next::Done;
            };
            let io = Rewind::new(buf.freeze(), stream);
            Box::pin(super::serve(io, Arc::clone(conn), hyper_server)).await;
            return Next::Done;
        }
        Ok(Err(ReadError::Head(e))) => {
            let (status, kind) = match e {
                HeadError::TooLarge => (
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "header_too_large",
                ),
                _ => (StatusCode::BAD_REQUEST, "bad_request"),
            };
            client_error(conn, kind, &e.to_string());
            let _ = writer.write_all(&response::error_head(status)).await;
            return Next::Close(writer);
        }
        Err(_) => {
            client_error(
                conn,
                "header_timeout",
                "request header not received in time",
            );
            return Next::Done;
        }
    };
    exchange(head, reader, writer, buf, conn).await
}

enum ReadError {
    Io(std::io::Error),
    Head(HeadError),
}

/// What one read without waiting brought.
// Matched at once where it is returned: boxing the head would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum AtHand {
    /// A whole head (a keep-alive client's next request usually comes whole), or the end.
    Head(Result<Option<Head>, ReadError>),
    /// Nothing at all: the socket was not readable after all.
    Nothing,
    /// Part of a head: the rest must be waited for.
    Partial,
}

fn head_at_hand(reader: &OwnedReadHalf, buf: &mut BytesMut) -> AtHand {
    if buf.capacity() == buf.len() {
        buf.reserve(if buf.is_empty() { HEAD_READ } else { buf.len() });
    }
    match ha_core::io::try_read_buf(reader.as_ref(), buf) {
        Ok(0) if buf.is_empty() => return AtHand::Head(Ok(None)),
        Ok(0) => {
            return AtHand::Head(Err(ReadError::Head(HeadError::Malformed(
                "connection closed mid-head",
            ))))
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => return AtHand::Head(Err(ReadError::Io(e))),
    }
    if buf.is_empty() {
        return AtHand::Nothing;
    }
    match head::parse(buf, MAX_HEADER_BYTES) {
        Ok(Some(head)) => AtHand::Head(Ok(Some(head))),
        Ok(None) => AtHand::Partial,
        Err(e) => AtHand::Head(Err(ReadError::Head(e))),
    }
}

/// Reads until a whole head is in `buf`; `None` when the client closed before sending one.
async fn read_head(
    reader: &mut OwnedReadHalf,
    buf: &mut BytesMut,
) -> Result<Option<Head>, ReadError> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = head::parse(buf, MAX_HEADER_BYTES).map_err(ReadError::Head)? {
                return Ok(Some(head));
            }
        }
        if buf.capacity() == buf.len() {
            buf.reserve(if buf.is_empty() { HEAD_READ } else { buf.len() });
        }
        let n = ha_core::io::read_buf(reader.as_ref(), buf)
            .await
            .map_err(ReadError::Io)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Head(HeadError::Malformed(
                    "connection closed mid-head",
                )))
            };
        }
    }
}

/// What the connection does after a request.
enum Next {
    KeepAlive(OwnedReadHalf, OwnedWriteHalf, BytesMut),
    /// The connection is over (closed, failed, or handed to hyper).
    Done,
    Close(OwnedWriteHalf),
    /// Closing while the client may still be sending its request body (the answer came
    /// before it was all read): see [`linger`].
    CloseLingering(OwnedWriteHalf),
}

/// One request and its answer.
async fn exchange(
    head: Head,
    reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
    buf: BytesMut,
    conn: &Connection,
) -> Next {
    let Head {
        parts,
        framing,
        keep_alive,
        expects_continue,
    } = head;
    let mut answer = Exchange {
        head_request: parts.method == Method::HEAD,
        http10: parts.version == Version::HTTP_10,
        keep_alive,
    };
    if expects_continue
        && writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .is_err()
    {
        return Next::Close(writer);
    }
    // A body borrows the read half; a request without one leaves it here.
    let home: request_body::Home = Arc::new(Mutex::new(None));
    let (body, mut kept) = match framing {
        Framing::Empty => (ClientBody::empty(), Some((reader, buf))),
        framing => (
            ClientBody::H1(RequestStream::new(framing, reader, buf, Arc::clone(&home))),
            None,
        ),
    };
    let mut req = Request::from_parts(parts, body);
    let upgrade = (req.version() == Version::HTTP_11 && is_upgrade(req.headers())).then(|| {
        let (sender, receiver) = oneshot::channel();
        req.extensions_mut().insert(H1Upgrade::new(receiver));
        sender
    });
    let response = proxy::handle(req, conn).await;
    // Stopping: this answer is the connection's last.
    answer.keep_alive &= !conn.drain.is_cancelled();
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let written = response::write(&mut writer, response, answer).await;
    let keep_alive = match written {
        Ok(keep_alive) => keep_alive,
        Err(e) => {
            client_error(conn, "io", &e.to_string());
            return Next::Close(writer);
        }
    };
    if switching {
        let (Some(sender), Some((reader, rest))) = (upgrade, kept.take()) else {
            return Next::Close(writer);
        };
        return match reader.reunite(writer) {
            Ok(stream) => {
                // The socket goes to the upgrade tunnel.
                let _ = sender.send(Rewind::new(rest.freeze(), stream));
                Next::Done
            }
            Err(e) => Next::Close(e.1),
        };
    }
    match kept.or_else(|| request_body::reclaim(&home)) {
        Some((reader, rest)) if keep_alive => Next::KeepAlive(reader, writer, rest),
        Some(_) => Next::Close(writer),
        // The body was not read to its end: its rest cannot be told from a next request, and
        // the client may still be sending it.
        None => Next::CloseLingering(writer),
    }
}

/// The longest a closing connection reads what its client still sends (nginx's
/// `lingering_time`), and the longest it waits for more (`lingering_timeout`).
const LINGER_TIME: Duration = Duration::from_secs(10);
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);

/// After the answer and our FIN, reads and discards what the client still sends, until it
/// closes or [`LINGER_TIMEOUT`]/[`LINGER_TIME`] runs out, as nginx's lingering close does:
/// closing a socket with unread data makes the kernel send a reset, and a client still
/// uploading would lose the answer it has not read yet (curl: "Send failure: Broken pipe"
/// instead of the 413).
async fn linger(stream: &TcpStream) {
    let mut scratch = vec![0u8; 4096];
    let drain = async {
        loop {
            match tokio::time::timeout(LINGER_TIMEOUT, stream.readable()).await {
                Ok(Ok(())) => match stream.try_read(&mut scratch) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                },
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

fn client_error(conn: &Connection, kind: &'static str, why: &str) {
    conn.shared
        .metrics
        .client_errors
        .with_label_values(&[&conn.shared.listener, kind])
        .inc();
    if kind == "io" {
        debug!(client = %conn.client, error = why, "client connection ended with an error");
    } else {
        info!(client = %conn.client, listener = %conn.shared.listener, kind, error = why, "bad input from client");
    }
}
