//! A request head as proxyd's HTTP/1.1 server reads it: httparse over the bytes received,
//! turned into `http` request parts that share those bytes (no copy of the target or the
//! header values), plus what the connection needs to know: how the body is framed, whether
//! the connection stays open, whether the client waits for `100 Continue`. Pure.
//!
//! Framing follows RFC 9112 §6: a `Transfer-Encoding` must end in `chunked`; a request with
//! both `Transfer-Encoding` and `Content-Length`, or with differing `Content-Length`s, is
//! refused (the classic request-smuggling shapes).

use std::mem::MaybeUninit;

use bytes::BytesMut;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING,
};
use hyper::http::request::Parts;
use hyper::{Method, Request, Uri, Version};

/// Most header fields accepted in one request (hyper's default).
const MAX_HEADERS: usize = 100;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    pub parts: Parts,
    pub framing: Framing,
    /// Whether the client keeps the connection open after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue` with a body to come.
    pub expects_continue: bool,
}

/// Why a head could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request header section too large")]
    TooLarge,
    /// The HTTP/2 connection preface (h2c with prior knowledge).
    #[error("HTTP/2 preface")]
    H2Preface,
}

/// Parses the head at the start of `buf`: `Ok(None)` while incomplete; when complete, the
/// head's bytes are split off `buf` (what follows, body or next request, stays).
pub fn parse(buf: &mut BytesMut, max_head: usize) -> Result<Option<Head>, HeadError> {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= max_head => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(httparse::Error::Version) if buf.starts_with(b"PRI * HTTP/2.0") => {
            return Err(HeadError::H2Preface)
        }
        Err(_) => return Err(HeadError::Malformed("invalid request line or header field")),
    };
    if len > max_head {
        return Err(HeadError::TooLarge);
    }
    // Where the parts are in `buf`, to find them again in the head's shared bytes.
    let base = buf.as_ptr() as usize;
    let span = |part: &[u8]| match part.as_ptr() as usize {
        // httparse's parts are slices of `buf` (an empty one may point anywhere).
        at if !part.is_empty() && at >= base => (at - base, part.len()),
        _ => (0, 0),
    };
    let method = span(req.method.unwrap_or("").as_bytes());
    let target = span(req.path.unwrap_or("").as_bytes());
    let version = if req.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let count = req.headers.len();
    let fields: Vec<_> = req
        .headers
        .iter()
        .map(|h| (span(h.name.as_bytes()), span(h.value)))
        .collect();
    let bytes = buf.split_to(len).freeze();
    let at = |(start, len): (usize, usize)| bytes.slice(start..start + len);
    let method =
        Method::from_bytes(&at(method)).map_err(|_| HeadError::Malformed("invalid method"))?;
    let uri = Uri::from_maybe_shared(at(target))
        .map_err(|_| HeadError::Malformed("invalid request target"))?;
    // Room for the forwarding headers proxyd adds, so the map does not grow on the way.
    let mut map = HeaderMap::with_capacity(count + 6);
    for &(name, value) in &fields {
        let name = HeaderName::from_bytes(&at(name))
            .map_err(|_| HeadError::Malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(at(value))
            .map_err(|_| HeadError::Malformed("invalid header value"))?;
        map.append(name, value);
    }
    let framing = framing(&map, version)?;
    let keep_alive = keep_alive(&map, version);
    let expects_continue = version == Version::HTTP_11
        && framing != Framing::Empty
        && map
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = map;
    let (parts, ()) = request.into_parts();
    Ok(Some(Head {
        parts,
        framing,
        keep_alive,
        expects_continue,
    }))
}

fn framing(headers: &HeaderMap, version: Version) -> Result<Framing, HeadError> {
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let text = value
            .to_str()
            .map_err(|_| HeadError::Malformed("invalid Content-Length"))?;
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::Malformed("invalid Content-Length"));
            }
            let n: u64 = item
                .parse()
                .map_err(|_| HeadError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Malformed("conflicting Content-Length"));
            }
            length = Some(n);
        }
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return Err(HeadError::Malformed(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        if length.is_some() {
            return Err(HeadError::Malformed(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        let last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|c| !c.is_empty());
        return match last {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(HeadError::Malformed(
                "Transfer-Encoding not ending in chunked",
            )),
        };
    }
    Ok(match length {
        None | Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
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

    fn parse_all(text: &[u8]) -> Result<Option<Head>, HeadError> {
        parse(&mut BytesMut::from(text), 64 * 1024)
    }

    #[test]
    fn a_head_is_split_off_and_what_follows_stays() {
        let mut buf = BytesMut::from(
            &b"POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET"[..],
        );
        let head = parse(&mut buf, 1024).expect("valid").expect("complete");
        assert_eq!(head.parts.method, Method::POST);
        assert_eq!(head.parts.uri, "/a?b");
        assert_eq!(head.parts.headers["host"], "x");
        assert_eq!(head.framing, Framing::Length(3));
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"abcGET");
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_are_refused() {
        assert!(parse_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .expect("ok")
            .is_none());
        let big = [b"GET / HTTP/1.1\r\nx: ".as_slice(), &[b'y'; 2000]].concat();
        assert_eq!(
            parse(&mut BytesMut::from(&big[..]), 1024).err(),
            Some(HeadError::TooLarge)
        );
    }

    #[test]
    fn framing_and_keep_alive_follow_rfc_9112() {
        let head = |t: &[u8]| parse_all(t).expect("valid").expect("complete");
        assert_eq!(
            head(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").framing,
            Framing::Chunked
        );
        assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(
            head(b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n")
                .expects_continue
        );
        for bad in [
            &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"THIS IS NOT HTTP\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
        ] {
            assert!(
                matches!(parse_all(bad), Err(HeadError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").err(),
            Some(HeadError::H2Preface)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&mut BytesMut::from(&input[..]), 200);
        }
    }
}
