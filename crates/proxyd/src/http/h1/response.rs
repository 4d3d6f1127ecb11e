//! Writing a response to an HTTP/1.1 client: the head, then the body framed for this client.
//!
//! A body keeps the framing the server gave it when it has a `Content-Length`; a body of
//! known size (proxyd's own answers) gets one; any other body is re-chunked for an HTTP/1.1
//! client, or delimited by closing the connection for an HTTP/1.0 one. HEAD answers, 1xx,
//! 204 and 304 have no body. A server's header lines are copied as they came
//! ([`super::upstream`]). The head and whatever of the body is already at hand go out in one
//! write, so a small answer costs one system call.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::{Body, Frame};
use hyper::header::{HeaderMap, CONTENT_LENGTH};
use hyper::{Response, StatusCode};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::http::body::ResponseBody;

/// Bytes gathered before a write while more of the body is immediately at hand.
const GATHER: usize = 64 * 1024;

/// How the body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    AsIs,
    Chunked,
    UntilClose,
}

/// What the client asked, as far as writing its answer is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    pub head_request: bool,
    pub http10: bool,
    pub keep_alive: bool,
}

/// Writes `response`; returns whether the connection can carry another request.
pub async fn write<W: AsyncWrite + Unpin>(
    writer: &mut W,
    response: Response<ResponseBody>,
    exchange: Exchange,
) -> io::Result<bool> {
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let no_body = exchange.head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::None
    } else if parts.headers.contains_key(CONTENT_LENGTH) || body.size_hint().exact().is_some() {
        Framing::AsIs
    } else if exchange.http10 {
        Framing::UntilClose
    } else {
        Framing::Chunked
    };
    let keep_alive = exchange.keep_alive && framing != Framing::UntilClose;
    let mut out = BytesMut::with_capacity(512 + body.header_lines().len());
    write_head(&mut out, status, &parts.headers, exchange, keep_alive);
    out.put_slice(body.header_lines());
    if !no_body && !parts.headers.contains_key(CONTENT_LENGTH) {
        if let Some(n) = body.size_hint().exact() {
            put_header(&mut out, b"content-length", n.to_string().as_bytes());
        } else if framing == Framing::Chunked {
            out.put_slice(b"transfer-encoding: chunked\r\n");
        }
    }
    out.put_slice(b"\r\n");
    if framing == Framing::None {
        writer.write_all(&out).await?;
        return Ok(keep_alive);
    }
    let mut body = Pin::new(&mut body);
    loop {
        // Gather what is ready without waiting, then write it in one go.
        let mut ended = body.is_end_stream();
        while !ended && out.len() < GATHER {
            match poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await {
                Poll::Ready(Some(Ok(frame))) => {
                    put_frame(&mut out, frame, framing);
                    ended = body.is_end_stream();
                }
                Poll::Ready(Some(Err(e))) => return Err(io::Error::other(e)),
                Poll::Ready(None) => ended = true,
                Poll::Pending => break,
            }
        }
        if ended && framing == Framing::Chunked {
            out.put_slice(b"0\r\n\r\n");
        }
        if !out.is_empty() {
            writer.write_all(&out).await?;
            out.clear();
        }
        if ended {
            return Ok(keep_alive);
        }
        // Nothing more at hand: wait for the next frame.
        match poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            Some(Ok(frame)) => put_frame(&mut out, frame, framing),
            Some(Err(e)) => return Err(io::Error::other(e)),
            None => {
                if framing == Framing::Chunked {
                    out.put_slice(b"0\r\n\r\n");
                }
                writer.write_all(&out).await?;
                return Ok(keep_alive);
            }
        }
    }
}

fn write_head(
    out: &mut BytesMut,
    status: StatusCode,
    headers: &HeaderMap,
    exchange: Exchange,
    keep_alive: bool,
) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\n");
    for (name, value) in headers {
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !keep_alive {
        out.put_slice(b"connection: close\r\n");
    } else if exchange.http10 {
        out.put_slice(b"connection: keep-alive\r\n");
    }
}

fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

fn put_frame(out: &mut BytesMut, frame: Frame<Bytes>, framing: Framing) {
    let Ok(data) = frame.into_data() else {
        return; // trailers: not relayed
    };
    if data.is_empty() {
        return;
    }
    if framing == Framing::Chunked {
        out.put_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.put_slice(&data);
        out.put_slice(b"\r\n");
    } else {
        out.put_slice(&data);
    }
}

/// A short answer proxyd writes itself before closing (400, 431).
pub fn error_head(status: StatusCode) -> Bytes {
    let mut out = BytesMut::with_capacity(96);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Error").as_bytes());
    out.put_slice(b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn written(response: Response<ResponseBody>, exchange: Exchange) -> (String, bool) {
        let mut out = Vec::new();
        let keep = write(&mut out, response, exchange).await.expect("write");
        (String::from_utf8(out).expect("utf-8"), keep)
    }

    const KEEP: Exchange = Exchange {
        head_request: false,
        http10: false,
        keep_alive: true,
    };

    #[tokio::test]
    async fn a_short_body_gets_its_length_in_one_write() {
        let (text, keep) = written(Response::new(ResponseBody::text("hi\n")), KEEP).await;
        assert_eq!(text, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nhi\n");
        assert!(keep);
    }

    #[tokio::test]
    async fn head_answers_and_closing_exchanges() {
        let exchange = Exchange {
            head_request: true,
            http10: true,
            keep_alive: false,
        };
        let mut response = Response::new(ResponseBody::empty());
        response.headers_mut().insert(CONTENT_LENGTH, 42.into());
        let (text, keep) = written(response, exchange).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-length: 42\r\nconnection: close\r\n\r\n"
        );
        assert!(!keep);
    }
}
