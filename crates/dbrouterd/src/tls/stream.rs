//! A connection that starts as plain TCP and may switch to TLS inside the MySQL protocol,
//! after an SSLRequest: a client's ([`ClientStream`], dbrouterd the TLS server) or a
//! backend's (`pool::stream`, dbrouterd the TLS client).
//!
//! The client starts its TLS handshake right after the SSLRequest packet, so the session's
//! read buffer may already hold the first TLS bytes when it switches; [`Rewind`] hands those
//! to the TLS layer before reading the socket again.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub use ha_core::io::Rewind;

/// Plain TCP, or `T` (a TLS stream) after the switch.
#[derive(Debug)]
pub enum Switching<T> {
    Plain(TcpStream),
    Tls(Box<T>),
    /// Only while the TLS handshake runs (or after it failed): reads and writes fail.
    Detached,
}

/// What a session talks to its client over.
pub type ClientStream = Switching<tokio_rustls::server::TlsStream<Rewind>>;

impl<T> Switching<T> {
    pub fn is_tls(&self) -> bool {
        matches!(self, Switching::Tls(_))
    }
}

pub(crate) fn detached() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the stream is switching to TLS",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Switching<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Switching::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Switching::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Switching::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Switching<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Switching::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Switching::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Switching::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Switching::Plain(s) => Pin::new(s).poll_flush(cx),
            Switching::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Switching::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Switching::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Switching::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Switching::Detached => Poll::Ready(Err(detached())),
        }
    }
}
