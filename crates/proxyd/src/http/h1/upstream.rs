//! One exchange with a server over HTTP/1.1, written like proxyd's own server ([`super`]):
//! in the client connection's task, on a raw connection of the server's keep-alive pool
//! ([`crate::pool::upstream`]). The request head is written as bytes prepared once per
//! request ([`request_head`]), the body streamed after it; the response head is parsed in
//! place with httparse ([`parse_response`]) and its body streamed back
//! ([`super::response_body`]).
//!
//! A request that fails on a reused connection before any byte of the response came back
//! (the server closed it while it was idle) is sent again on the next idle connection or a
//! fresh one, whatever its method, as long as none of its body was sent. Interim answers
//! (100 Continue, 103 Early Hints) are skipped.

use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING,
};
use hyper::http::response::Parts;
use hyper::{Method, Response, StatusCode, Uri, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

use super::response_body::{ResponseFraming, ResponseStream};
use crate::http::body::RequestBody;
use crate::pool::upstream::{is_open, Conn, ConnPool, UpstreamError};

/// Largest response header section accepted from a server.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Most header fields accepted in one response.
const MAX_HEADERS: usize = 100;
/// Size of the first read of a response head.
const HEAD_READ: usize = 4096;

/// How a request's body goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    /// As the client framed it, with its `Content-Length`.
    Length,
    Chunked,
}

/// The request head as it goes to every server tried: `method target HTTP/1.1`, the headers
/// (already rewritten for forwarding), and the framing of the body. `headers` must not carry
/// `Transfer-Encoding` (hop-by-hop, removed before).
pub fn request_head(
    method: &Method,
    target: &Uri,
    headers: &HeaderMap,
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
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
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
) -> Result<Response<ResponseStream>, UpstreamError> {
    loop {
        let (mut conn, reused) = match pool.pop_idle() {
            // A body sent on a connection the server has closed could not be sent again.
            Some(conn) if framing != BodyFraming::None && !is_open(&conn) => continue,
            Some(conn) => (conn, true),
            None => (pool.connect(address).await?, false),
        };
        let result = match send(&mut conn, head, &mut body, framing).await {
            Ok(()) => read_response(&mut conn, head_request).await,
            Err(e) => Err(Failed::before_answer(format!("write error: {e}"))),
        };
        match result {
            Ok((parts, framing, keep_alive)) => {
                let stream = ResponseStream::new(conn, framing, keep_alive);
                return Ok(Response::from_parts(parts, stream));
            }
            Err(failed) if reused && !failed.answered && body.untouched() => {
                debug!(server = address, reason = %failed.why, "reused connection failed before an answer; sending again");
            }
            Err(failed) => return Err(UpstreamError::Exchange(failed.why)),
        }
    }
}

/// Writes the head and the body.
async fn send(
    conn: &mut Conn,
    head: &[u8],
    body: &mut RequestBody,
    framing: BodyFraming,
) -> std::io::Result<()> {
    conn.stream.write_all(head).await?;
    if framing == BodyFraming::None {
        return Ok(());
    }
    let mut body = std::pin::Pin::new(body);
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame: Frame<Bytes> = frame.map_err(std::io::Error::other)?;
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
            conn.stream.write_all(&chunk).await?;
        } else {
            conn.stream.write_all(&data).await?;
        }
    }
    if framing == BodyFraming::Chunked {
        conn.stream.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

/// Reads until a final response head is in; interim answers are skipped.
async fn read_response(
    conn: &mut Conn,
    head_request: bool,
) -> Result<(Parts, ResponseFraming, bool), Failed> {
    let mut answered = false;
    loop {
        if !conn.buf.is_empty() {
            answered = true;
            match parse_response(&mut conn.buf, head_request) {
                Ok(Some(Parsed::Final(parts, framing, keep_alive))) => {
                    return Ok((parts, framing, keep_alive))
                }
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
        match conn.stream.read_buf(&mut conn.buf).await {
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

/// A parsed response head.
#[derive(Debug)]
pub enum Parsed {
    /// 1xx other than 101: skipped, the final answer follows.
    Interim,
    Final(Parts, ResponseFraming, bool),
}

/// Parses the response head at the start of `buf`: `Ok(None)` while incomplete; when
/// complete, the head's bytes are split off `buf` and shared by the header values. Returns
/// the parts, how the body is framed and whether the server keeps the connection open. Pure.
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
        let _ = buf.split_to(len);
        return Ok(Some(Parsed::Interim));
    }
    let version = if response.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let base = buf.as_ptr() as usize;
    let span = |part: &[u8]| match part.as_ptr() as usize {
        at if !part.is_empty() && at >= base => (at - base, part.len()),
        _ => (0, 0),
    };
    let fields: Vec<_> = response
        .headers
        .iter()
        .map(|h| (span(h.name.as_bytes()), span(h.value)))
        .collect();
    let bytes = buf.split_to(len).freeze();
    let at = |(start, len): (usize, usize)| bytes.slice(start..start + len);
    let mut map = HeaderMap::with_capacity(fields.len() + 2);
    for &(name, value) in &fields {
        let name = HeaderName::from_bytes(&bytes[name.0..name.0 + name.1])
            .map_err(|_| "invalid header name")?;
        let value =
            HeaderValue::from_maybe_shared(at(value)).map_err(|_| "invalid header value")?;
        map.append(name, value);
    }
    let keep_alive = keep_alive(&map, version);
    let framing = framing(&mut map, status, head_request)?;
    let mut parts = Response::new(()).into_parts().0;
    parts.status = status;
    parts.version = version;
    parts.headers = map;
    Ok(Some(Parsed::Final(parts, framing, keep_alive)))
}

/// RFC 9112 §6.3. A `Transfer-Encoding` wins over a `Content-Length`, which is dropped.
fn framing(
    headers: &mut HeaderMap,
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
    if headers.contains_key(TRANSFER_ENCODING) {
        headers.remove(CONTENT_LENGTH);
        let chunked = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|c| !c.is_empty())
            .is_some_and(|c| c.eq_ignore_ascii_case("chunked"));
        return Ok(if chunked {
            ResponseFraming::Chunked
        } else {
            ResponseFraming::UntilClose
        });
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                return Err("invalid Content-Length");
            }
            let n = std::str::from_utf8(item)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or("invalid Content-Length")?;
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

fn keep_alive(headers: &HeaderMap, version: Version) -> bool {
    let has = |token: &str| {
        headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if version == Version::HTTP_10 {
        has("keep-alive")
    } else {
        !has("close")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(text: &[u8], head_request: bool) -> (Parts, ResponseFraming, bool, BytesMut) {
        let mut buf = BytesMut::from(text);
        loop {
            match parse_response(&mut buf, head_request).expect("valid") {
                Some(Parsed::Final(parts, framing, keep)) => return (parts, framing, keep, buf),
                Some(Parsed::Interim) => {}
                None => panic!("incomplete"),
            }
        }
    }

    #[test]
    fn a_response_head_is_split_off_and_its_body_stays() {
        let (parts, framing, keep, rest) = parsed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            false,
        );
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(parts.headers["x-a"], "b");
        assert_eq!(framing, ResponseFraming::Length(5));
        assert!(keep);
        assert_eq!(&rest[..], b"hello");
    }

    #[test]
    fn interim_answers_are_skipped() {
        let (parts, framing, _, rest) = parsed(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
            false,
        );
        assert_eq!(parts.status, StatusCode::CREATED);
        assert_eq!(framing, ResponseFraming::Chunked);
        assert!(!parts.headers.contains_key(CONTENT_LENGTH));
        assert_eq!(&rest[..], b"0\r\n\r\n");
    }

    #[test]
    fn framing_and_keep_alive_follow_rfc_9112() {
        let framing_of = |t: &[u8], head| parsed(t, head).1;
        assert_eq!(
            framing_of(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true),
            ResponseFraming::Empty
        );
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
        assert!(!parsed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false).2);
        assert!(!parsed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", false).2);
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"NOT HTTP\r\n\r\n",
        ] {
            assert!(parse_response(&mut BytesMut::from(bad), false).is_err());
        }
    }

    #[test]
    fn the_request_head_carries_the_rewritten_headers_and_the_body_framing() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example"));
        let target: Uri = "/a?b".parse().expect("uri");
        let (head, framing) = request_head(
            &Method::POST,
            &target,
            &headers,
            &SizeHint::default(),
            false,
        );
        assert_eq!(
            &head[..],
            b"POST /a?b HTTP/1.1\r\nhost: example\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(framing, BodyFraming::Chunked);
        let (head, framing) = request_head(
            &Method::GET,
            &target,
            &headers,
            &SizeHint::with_exact(0),
            true,
        );
        assert_eq!(&head[..], b"GET /a?b HTTP/1.1\r\nhost: example\r\n\r\n");
        assert_eq!(framing, BodyFraming::None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_response(&mut BytesMut::from(&input[..]), false);
        }
    }
}
