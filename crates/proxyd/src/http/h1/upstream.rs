//! One exchange with a server over HTTP/1.1, written like proxyd's own server ([`super`]):
//! in the client connection's task, on a raw connection of the server's keep-alive pool
//! ([`crate::pool::upstream`]). The request head is written as bytes prepared once per
//! request ([`request_head`], the forwarding headers written straight into it), the body
//! streamed after it; the response head is parsed in place with httparse
//! ([`parse_response`]) and its header lines copied through as bytes, hop-by-hop ones left
//! out, with no `HeaderMap` (one is built only for hyper's server: TLS and HTTP/2 clients);
//! its body is streamed back ([`super::response_body`]).
//!
//! A request that fails on a reused connection before any byte of the response came back
//! (the server closed it while it was idle) is sent again on the next idle connection or a
//! fresh one, whatever its method, as long as none of its body was sent. Interim answers
//! (100 Continue, 103 Early Hints) are skipped.
//!
//! The waits, as nginx's: connecting (the pool's connect timeout); each write of the request
//! to the server (`timeouts.send`); each read of the request body from the client
//! (`timeouts.client_body`: a client that stops sending is the client's failure, not the
//! server's); the response head, from when the whole request was sent (`timeouts.read`). So an
//! upload takes as long as it keeps moving.

use std::mem::MaybeUninit;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use hyper::{Method, Response, StatusCode, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

use super::response_body::{ResponseFraming, ResponseStream};
use crate::http::body::RequestBody;
use crate::http::headers::{self, ClientInfo};
use crate::pool::upstream::{is_open, Conn, ConnPool, UpstreamError};

/// Largest response header section accepted from a server.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Most header fields accepted in one response.
const MAX_HEADERS: usize = 100;
/// Size of the first read of a response head.
const HEAD_READ: usize = 4096;

/// Who the request is forwarded for: the client and the Host it asked for.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    pub client: &'a ClientInfo,
    pub host: Option<&'a HeaderValue>,
}

/// How a request's body goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    /// As the client framed it, with its `Content-Length`.
    Length,
    Chunked,
}

/// The request head as it goes to every server tried: `method target HTTP/1.1`, the client's
/// headers (hop-by-hop ones already removed), `Host` if the client sent none, the forwarding
/// headers naming `client` ([`headers::put_forwarded`]), and the framing of the body.
pub fn request_head(
    method: &Method,
    target: &Uri,
    headers: &HeaderMap,
    forwarding: Forwarding<'_>,
    body: &SizeHint,
    body_empty: bool,
) -> (Bytes, BodyFraming) {
    let mut out = BytesMut::with_capacity(256 + headers.len() * 32);
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(
        target
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .as_bytes(),
    );
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if headers::is_forwarded(name) {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    if let (false, Some(host)) = (headers.contains_key(HOST), forwarding.host) {
        out.put_slice(b"host: ");
        out.put_slice(host.as_bytes());
        out.put_slice(b"\r\n");
    }
    headers::put_forwarded(&mut out, headers, forwarding.client, forwarding.host);
    let framing = if headers.contains_key(CONTENT_LENGTH) {
        if body_empty {
            BodyFraming::None
        } else {
            BodyFraming::Length
        }
    } else if body_empty || body.exact() == Some(0) {
        if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            out.put_slice(b"content-length: 0\r\n");
        }
        BodyFraming::None
    } else if let Some(n) = body.exact() {
        out.put_slice(b"content-length: ");
        out.put_slice(n.to_string().as_bytes());
        out.put_slice(b"\r\n");
        BodyFraming::Length
    } else {
        out.put_slice(b"transfer-encoding: chunked\r\n");
        BodyFraming::Chunked
    };
    out.put_slice(b"\r\n");
    (out.freeze(), framing)
}

/// The waits of one transfer with a server: the pool's `timeouts.read` (the response head
/// after the request was sent, then each read of its body) and `timeouts.send` (each write
/// of the request), and the listener's `body_timeout` (each read of the client's body). Each
/// bounds one step, not the whole transfer.
#[derive(Debug, Clone, Copy)]
pub struct TransferTimeouts {
    pub read: Duration,
    pub send: Duration,
    pub client_body: Duration,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The server took none of the request within the send timeout: a timeout for the
    /// client's answer (504) and for passive health.
    #[error("send timeout: {0}")]
    SendTimeout(String),
    /// The whole request was sent and no response head came within the read timeout.
    #[error("no response within the read timeout ({0:?}) after the request was sent")]
    ReadTimeout(Duration),
    /// The client's body failed (it stopped sending, closed, or framed it wrongly): no
    /// fault of the server's.
    #[error(transparent)]
    Client(#[from] ClientBodyError),
}

/// Why the client's request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    #[error("the client sent no more of the request body within {0:?}")]
    Timeout(Duration),
    #[error("the client's request body failed: {0}")]
    Failed(String),
}

/// Why sending a request failed: on the server's side (a write error, or the send timeout as
/// `TimedOut`) or on the client's.
#[derive(Debug)]
enum SendError {
    Server(std::io::Error),
    Client(ClientBodyError),
}

impl From<std::io::Error> for SendError {
    fn from(e: std::io::Error) -> Self {
        SendError::Server(e)
    }
}

/// Why an exchange failed, and whether the server had sent anything yet.
struct Failed {
    why: String,
    answered: bool,
}

impl Failed {
    fn before_answer(why: impl Into<String>) -> Self {
        Self {
            why: why.into(),
            answered: false,
        }
    }
}

/// Sends the request (`head`, then `body` framed as `framing`) to the server of `pool` and
/// reads the response head; see the [module docs](self).
pub async fn exchange(
    pool: &ConnPool,
    address: &str,
    head: &[u8],
    mut body: RequestBody,
    framing: BodyFraming,
    head_request: bool,
    timeouts: TransferTimeouts,
) -> Result<Response<ResponseStream>, ExchangeError> {
    loop {
        let (mut conn, reused) = match pool.pop_idle() {
            // A body sent on a connection the server has closed could not be sent again.
            Some(conn) if framing != BodyFraming::None && !is_open(&conn) => continue,
            Some(conn) => (conn, true),
            None => (pool.connect(address).await?, false),
        };
        let sent = if framing == BodyFraming::None {
            send(&mut conn.stream, head, &mut body, framing, timeouts)
                .await
                .map(|()| Sent::Whole)
        } else {
            send_or_early_answer(&mut conn, head, &mut body, framing, head_request, timeouts).await
        };
        let result = match sent {
            Ok(sent) => {
                let answer = read_response(&mut conn, head_request);
                match tokio::time::timeout(timeouts.read, answer).await {
                    Ok(answer) => answer.map(|head| (head, sent)),
                    Err(_) => return Err(ExchangeError::ReadTimeout(timeouts.read)),
                }
            }
            Err(SendError::Client(e)) => return Err(e.into()),
            Err(SendError::Server(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(ExchangeError::SendTimeout(e.to_string()));
            }
            Err(SendError::Server(e)) => Err(Failed::before_answer(format!("write error: {e}"))),
        };
        match result {
            Ok((mut head, sent)) => {
                if sent == Sent::Cut {
                    // The rest of the body was never sent: the connection is not reusable.
                    head.keep_alive = false;
                }
                let mut response = Response::new(ResponseStream::new(conn, &head, timeouts.read));
                *response.status_mut() = head.status;
                return Ok(response);
            }
            Err(failed) if reused && !failed.answered && body.untouched() => {
                debug!(server = address, reason = %failed.why, "reused connection failed before an answer; sending again");
            }
            Err(failed) => return Err(UpstreamError::Exchange(failed.why).into()),
        }
    }
}

/// How much of a request went out before its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Whole,
    /// The server answered before the whole body was sent (a 413, a redirect, a 401); the
    /// rest was not sent.
    Cut,
}

/// Sends the request with its body while watching the connection for an early final answer,
/// as HAProxy and hyper do: a server may answer (and close) before reading the whole body,
/// and that answer, not a write error, is what the client must get. Interim (1xx) answers
/// arriving meanwhile stay in the buffer and the body goes on.
async fn send_or_early_answer(
    conn: &mut Conn,
    head: &[u8],
    body: &mut RequestBody,
    framing: BodyFraming,
    head_request: bool,
    timeouts: TransferTimeouts,
) -> Result<Sent, SendError> {
    let Conn { stream, buf } = conn;
    let (mut reader, mut writer) = stream.split();
    let sending = send(&mut writer, head, body, framing, timeouts);
    tokio::pin!(sending);
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(HEAD_READ);
        }
        tokio::select! {
            biased;
            sent = &mut sending => return match sent {
                Ok(()) => Ok(Sent::Whole),
                Err(e @ SendError::Client(_)) => Err(e),
                // A server that answered and closed with the body unread resets the
                // connection; its answer may still be waiting in the socket.
                Err(e) => {
                    if read_answer_left(&mut reader, buf, head_request).await {
                        Ok(Sent::Cut)
                    } else {
                        Err(e)
                    }
                }
            },
            read = ha_core::io::read_buf(reader.as_ref(), buf) => match read {
                // Closed or broken without an answer: the write side says why, or the
                // response read after it does.
                Ok(0) | Err(_) => return sending.await.map(|()| Sent::Whole),
                Ok(_) if holds_final_head(buf, head_request) => return Ok(Sent::Cut),
                Ok(_) => {}
            },
        }
    }
}

/// Reads what a server left in the socket before it reset the connection (bounded by
/// [`ANSWER_LEFT_WAIT`]); true when a final response head is then in `buf`.
async fn read_answer_left<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    head_request: bool,
) -> bool {
    let read = async {
        loop {
            if holds_final_head(buf, head_request) {
                return true;
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(HEAD_READ);
            }
            match reader.read_buf(buf).await {
                Ok(n) if n > 0 => {}
                _ => return holds_final_head(buf, head_request),
            }
        }
    };
    tokio::time::timeout(ANSWER_LEFT_WAIT, read)
        .await
        .unwrap_or(false)
}

/// How long a failed body write waits for the answer the server may have left.
const ANSWER_LEFT_WAIT: Duration = Duration::from_millis(200);

/// Whether `buf` holds a whole final response head (after any interim ones) or bytes that
/// are no response at all; leaves `buf` as it is.
fn holds_final_head(buf: &BytesMut, head_request: bool) -> bool {
    let mut copy = buf.clone();
    loop {
        match parse_response(&mut copy, head_request) {
            Ok(Some(Parsed::Interim)) => continue,
            Ok(Some(Parsed::Final(_))) | Err(_) => return true,
            Ok(None) => return false,
        }
    }
}

/// Writes `data` whole, each write waiting at most `timeout` for the server to take bytes
/// (nginx's `proxy_send_timeout`); an [`std::io::ErrorKind::TimedOut`] error when it does not.
async fn write_all_within<W: tokio::io::AsyncWrite + Unpin>(
    stream: &mut W,
    mut data: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    while !data.is_empty() {
        match tokio::time::timeout(timeout, stream.write(data)).await {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the server took no request bytes within {timeout:?}"),
                ))
            }
        }
    }
    Ok(())
}

/// Writes the head and the body, each write within `timeouts.send` and each read of the
/// client's body within `timeouts.client_body`.
async fn send<W: tokio::io::AsyncWrite + Unpin>(
    stream: &mut W,
    head: &[u8],
    body: &mut RequestBody,
    framing: BodyFraming,
    timeouts: TransferTimeouts,
) -> Result<(), SendError> {
    let timeout = timeouts.send;
    // Let the worker's other ready connections read and parse their requests first, so that
    // the requests leave for the servers together: an event-driven server (nginx, another
    // proxyd) then takes several per wake-up instead of being woken for each one. On this
    // machine that was about 5% fewer CPU per request and 5 to 10% more requests/s.
    tokio::task::yield_now().await;
    write_all_within(stream, head, timeout).await?;
    if framing == BodyFraming::None {
        return Ok(());
    }
    let mut body = std::pin::Pin::new(body);
    loop {
        let next = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx));
        let frame = match tokio::time::timeout(timeouts.client_body, next).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => {
                return Err(SendError::Client(ClientBodyError::Timeout(
                    timeouts.client_body,
                )))
            }
        };
        let frame: Frame<Bytes> =
            frame.map_err(|e| SendError::Client(ClientBodyError::Failed(e.to_string())))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: not relayed
        };
        if data.is_empty() {
            continue;
        }
        if framing == BodyFraming::Chunked {
            let mut chunk = BytesMut::with_capacity(data.len() + 16);
            chunk.put_slice(format!("{:x}\r\n", data.len()).as_bytes());
            chunk.put_slice(&data);
            chunk.put_slice(b"\r\n");
            write_all_within(stream, &chunk, timeout).await?;
        } else {
            write_all_within(stream, &data, timeout).await?;
        }
    }
    if framing == BodyFraming::Chunked {
        write_all_within(stream, b"0\r\n\r\n", timeout).await?;
    }
    Ok(())
}

/// Reads until a final response head is in; interim answers are skipped.
async fn read_response(conn: &mut Conn, head_request: bool) -> Result<ResponseHead, Failed> {
    let mut answered = false;
    loop {
        if !conn.buf.is_empty() {
            answered = true;
            match parse_response(&mut conn.buf, head_request) {
                Ok(Some(Parsed::Final(head))) => return Ok(head),
                Ok(Some(Parsed::Interim)) => continue,
                Ok(None) => {}
                Err(why) => {
                    return Err(Failed {
                        why: format!("invalid response: {why}"),
                        answered,
                    })
                }
            }
        }
        if conn.buf.capacity() - conn.buf.len() < 1024 {
            conn.buf
                .reserve(HEAD_READ.max(conn.buf.len()).min(MAX_RESPONSE_HEAD));
        }
        match ha_core::io::read_buf(&conn.stream, &mut conn.buf).await {
            Ok(0) => {
                return Err(Failed {
                    why: "server closed the connection before answering".into(),
                    answered,
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Failed {
                    why: format!("read error: {e}"),
                    answered,
                })
            }
        }
    }
}

/// A server's final response head, ready to be copied through: the status, the header lines
/// (`name: value\r\n`, as the server wrote them) without the hop-by-hop ones and without a
/// `Content-Length` the body's framing carries, how the body is framed, and whether the
/// server keeps the connection open.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: Bytes,
    pub framing: ResponseFraming,
    pub keep_alive: bool,
}

/// A parsed response head.
#[derive(Debug)]
pub enum Parsed {
    /// 1xx other than 101: skipped, the final answer follows.
    Interim,
    Final(ResponseHead),
}

/// Headers that describe one connection, never relayed (besides `Connection`,
/// `Transfer-Encoding` and those `Connection` names).
const HOP_BY_HOP: [&str; 7] = [
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Parses the response head at the start of `buf`: `Ok(None)` while incomplete; when
/// complete, the head's bytes are taken off `buf` (the body's first bytes stay). Pure.
pub fn parse_response(
    buf: &mut BytesMut,
    head_request: bool,
) -> Result<Option<Parsed>, &'static str> {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_RESPONSE_HEAD => {
            return Err("header section too large")
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("too many header fields"),
        Err(_) => return Err("malformed status line or header field"),
    };
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or("invalid status code")?;
    if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
        buf.advance(len);
        return Ok(Some(Parsed::Interim));
    }
    let fields = &*response.headers;
    // One look at each name; most responses have nothing more to drop than `Connection`.
    let mut kinds = [Kind::Other; MAX_HEADERS];
    for (kind, field) in kinds.iter_mut().zip(fields) {
        *kind = Kind::of(field.name.as_bytes());
    }
    let kinds = &kinds[..fields.len()];
    let with = |wanted: Kind| {
        fields
            .iter()
            .zip(kinds)
            .filter(move |(_, &kind)| kind == wanted)
            .map(|(field, _)| field)
    };
    let connection_tokens = || {
        with(Kind::Connection)
            .flat_map(|h| h.value.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
    };
    // After a 101 the connection speaks another protocol: never reused.
    let keep_alive = status != StatusCode::SWITCHING_PROTOCOLS
        && if response.version == Some(0) {
            connection_tokens().any(|t| t.eq_ignore_ascii_case(b"keep-alive"))
        } else {
            !connection_tokens().any(|t| t.eq_ignore_ascii_case(b"close"))
        };
    // `Connection` naming other headers, to be dropped too (rare).
    let names_others = connection_tokens().any(|t| {
        !t.is_empty() && !t.eq_ignore_ascii_case(b"close") && !t.eq_ignore_ascii_case(b"keep-alive")
    });
    let framing = framing(
        with(Kind::TransferEncoding),
        with(Kind::ContentLength),
        status,
        head_request,
    )?;
    // The body's framing goes out as the writer frames it for the client.
    let keep_length = matches!(framing, ResponseFraming::Empty);
    let mut out = BytesMut::with_capacity(len);
    for (field, &kind) in fields.iter().zip(kinds) {
        let relayed = match kind {
            Kind::Other => {
                !names_others
                    || !connection_tokens().any(|t| t.eq_ignore_ascii_case(field.name.as_bytes()))
            }
            Kind::ContentLength => keep_length,
            Kind::Connection | Kind::TransferEncoding | Kind::HopByHop => false,
        };
        if relayed {
            out.put_slice(field.name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(field.value);
            out.put_slice(b"\r\n");
        }
    }
    buf.advance(len);
    Ok(Some(Parsed::Final(ResponseHead {
        status,
        headers: out.freeze(),
        framing,
        keep_alive,
    })))
}

/// What a response header field is to proxyd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connection,
    TransferEncoding,
    ContentLength,
    /// The other hop-by-hop headers: never relayed.
    HopByHop,
    Other,
}

impl Kind {
    fn of(name: &[u8]) -> Kind {
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted.as_bytes());
        // Compared by length first: most names are none of these.
        match name.len() {
            10 if is("connection") => Kind::Connection,
            17 if is("transfer-encoding") => Kind::TransferEncoding,
            14 if is("content-length") => Kind::ContentLength,
            2 | 7 | 10 | 16 | 18 | 19 if HOP_BY_HOP.iter().any(|h| is(h)) => Kind::HopByHop,
            _ => Kind::Other,
        }
    }
}

/// RFC 9112 §6.3. A `Transfer-Encoding` wins over a `Content-Length`.
fn framing<'a>(
    transfer_encoding: impl Iterator<Item = &'a httparse::Header<'a>> + Clone,
    content_length: impl Iterator<Item = &'a httparse::Header<'a>>,
    status: StatusCode,
    head_request: bool,
) -> Result<ResponseFraming, &'static str> {
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(ResponseFraming::Empty);
    }
    let codings = || {
        transfer_encoding
            .clone()
            .flat_map(|h| h.value.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
    };
    if codings().next().is_some() {
        let chunked = codings()
            .filter(|c| !c.is_empty())
            .last()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        return Ok(if chunked {
            ResponseFraming::Chunked
        } else {
            ResponseFraming::UntilClose
        });
    }
    let mut length: Option<u64> = None;
    for field in content_length {
        for item in field.value.split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
                return Err("invalid Content-Length");
            }
            let n = item.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length");
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => ResponseFraming::Length(n),
        None => ResponseFraming::UntilClose,
    })
}

/// Adds header lines as [`parse_response`] left them to `map` (for hyper's server: TLS and
/// HTTP/2 clients).
pub fn append_header_lines(lines: &Bytes, map: &mut HeaderMap) {
    let mut rest = &lines[..];
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = &rest[..end];
        rest = &rest[end + 2..];
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        let start = value.as_ptr() as usize - lines.as_ptr() as usize;
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_maybe_shared(lines.slice(start..start + value.len())),
        ) {
            map.append(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(text: &[u8], head_request: bool) -> (ResponseHead, BytesMut) {
        let mut buf = BytesMut::from(text);
        loop {
            match parse_response(&mut buf, head_request).expect("valid") {
                Some(Parsed::Final(head)) => return (head, buf),
                Some(Parsed::Interim) => {}
                None => panic!("incomplete"),
            }
        }
    }

    #[test]
    fn a_response_head_is_taken_off_and_its_body_stays() {
        let (head, rest) = parsed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            false,
        );
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(&head.headers[..], b"X-A: b\r\n");
        assert_eq!(head.framing, ResponseFraming::Length(5));
        assert!(head.keep_alive);
        assert_eq!(&rest[..], b"hello");
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_not_relayed() {
        let (head, _) = parsed(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\nTrailer: x\r\nUpgrade: h2c\r\nX-Kept: yes\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert_eq!(&head.headers[..], b"X-Kept: yes\r\n");
        let mut map = HeaderMap::new();
        append_header_lines(&head.headers, &mut map);
        assert_eq!(map["x-kept"], "yes");
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn interim_answers_are_skipped() {
        let (head, rest) = parsed(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
            false,
        );
        assert_eq!(head.status, StatusCode::CREATED);
        assert_eq!(head.framing, ResponseFraming::Chunked);
        assert!(head.headers.is_empty());
        assert_eq!(&rest[..], b"0\r\n\r\n");
    }

    #[test]
    fn framing_and_keep_alive_follow_rfc_9112() {
        let framing_of = |t: &[u8], head| parsed(t, head).0.framing;
        let (head, _) = parsed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true);
        assert_eq!(head.framing, ResponseFraming::Empty);
        // A HEAD answer keeps the length of the body it stands for.
        assert_eq!(&head.headers[..], b"Content-Length: 5\r\n");
        assert_eq!(
            framing_of(
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
                false
            ),
            ResponseFraming::Empty
        );
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\n\r\n", false),
            ResponseFraming::UntilClose
        );
        assert!(
            !parsed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false)
                .0
                .keep_alive
        );
        assert!(
            parsed(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n", false)
                .0
                .keep_alive
        );
        assert!(
            !parsed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", false)
                .0
                .keep_alive
        );
        assert!(
            !parsed(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
                false
            )
            .0
            .keep_alive
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"NOT HTTP\r\n\r\n",
        ] {
            assert!(parse_response(&mut BytesMut::from(bad), false).is_err());
        }
    }

    #[test]
    fn the_request_head_carries_the_rewritten_headers_and_the_body_framing() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", HeaderValue::from_static("gopher"));
        let target: Uri = "/a?b".parse().expect("uri");
        let client = ClientInfo::new("192.0.2.1".parse().expect("ip"), "http");
        let host = HeaderValue::from_static("example");
        let forwarding = Forwarding {
            client: &client,
            host: Some(&host),
        };
        let forwarded = "x-forwarded-for: 192.0.2.1\r\nx-forwarded-proto: http\r\n\
                         x-forwarded-host: example\r\n\
                         forwarded: for=192.0.2.1;proto=http;host=example\r\n";
        let (head, framing) = request_head(
            &Method::POST,
            &target,
            &headers,
            forwarding,
            &SizeHint::default(),
            false,
        );
        assert_eq!(
            std::str::from_utf8(&head).expect("utf-8"),
            format!(
                "POST /a?b HTTP/1.1\r\nhost: example\r\n{forwarded}transfer-encoding: chunked\r\n\r\n"
            )
        );
        assert_eq!(framing, BodyFraming::Chunked);
        let (head, framing) = request_head(
            &Method::GET,
            &target,
            &headers,
            forwarding,
            &SizeHint::with_exact(0),
            true,
        );
        assert_eq!(
            std::str::from_utf8(&head).expect("utf-8"),
            format!("GET /a?b HTTP/1.1\r\nhost: example\r\n{forwarded}\r\n")
        );
        assert_eq!(framing, BodyFraming::None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            let parsed = parse_response(&mut BytesMut::from(&input[..]), false);
            if let Ok(Some(Parsed::Final(head))) = parsed {
                append_header_lines(&head.headers, &mut HeaderMap::new());
            }
        }
    }
}
