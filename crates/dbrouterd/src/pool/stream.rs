//! What a backend connection talks over: plain TCP, or TLS after the SSLRequest
//! (`backend_tls`); either can move to another worker's reactor ([`BackendStream::adopt`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::tls::stream::detached;
use crate::tls::Switching;

/// A backend connection's stream; its TCP stream under TLS can move ([`Movable`]).
pub type BackendStream = Switching<TlsStream<Movable>>;

impl BackendStream {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            BackendStream::Plain(s) => Some(s),
            BackendStream::Tls(s) => s.get_ref().0 .0.as_ref(),
            BackendStream::Detached => None,
        }
    }

    /// Whether the socket has nothing to read right now. On an idle connection anything
    /// readable (EOF, an error, a TLS alert) means it must not be used again; the byte this
    /// reads to find out is lost, so call it only on a connection about to be discarded if
    /// the answer is no.
    pub fn idle_and_open(&self) -> bool {
        self.tcp().is_some_and(ha_core::io::nothing_to_read)
    }

    /// Registers the socket with the calling runtime's reactor instead of the one it was
    /// registered with (a connection moving to another worker). On an error the stream is
    /// left unusable.
    pub fn adopt(&mut self) -> io::Result<()> {
        if let BackendStream::Tls(tls) = self {
            let movable = tls.get_mut().0;
            let tcp = movable.0.take().ok_or_else(detached)?;
            movable.0 = Some(ha_core::workers::adopt(tcp)?);
            return Ok(());
        }
        let BackendStream::Plain(tcp) = std::mem::replace(self, BackendStream::Detached) else {
            return Err(detached());
        };
        *self = BackendStream::Plain(ha_core::workers::adopt(tcp)?);
        Ok(())
    }
}

/// The TCP stream under a backend's TLS, which can be taken out and registered again
/// ([`BackendStream::adopt`]); empty only during that.
#[derive(Debug)]
pub struct Movable(pub Option<TcpStream>);

impl AsyncRead for Movable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().0.as_mut() {
            Some(s) => Pin::new(s).poll_read(cx, buf),
            None => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for Movable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().0.as_mut() {
            Some(s) => Pin::new(s).poll_write(cx, buf),
            None => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().0.as_mut() {
            Some(s) => Pin::new(s).poll_flush(cx),
            None => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().0.as_mut() {
            Some(s) => Pin::new(s).poll_shutdown(cx),
            None => Poll::Ready(Err(detached())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_stream_adopted_by_another_runtime_works_after_its_first_is_gone() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut peer, _)) = listener.accept() {
                let _ = std::io::copy(&mut peer.try_clone().expect("clone"), &mut peer);
            }
        });
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
        };
        let first = runtime();
        let mut stream = first.block_on(async {
            BackendStream::Plain(TcpStream::connect(addr).await.expect("connect"))
        });
        drop(first);
        let second = runtime();
        second.block_on(async {
            stream.adopt().expect("adopt");
            stream.write_all(b"ping").await.expect("write");
            let mut answer = [0u8; 4];
            stream.read_exact(&mut answer).await.expect("read");
            assert_eq!(&answer, b"ping");
        });
    }
}
