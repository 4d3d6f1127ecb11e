//! [`Rewind`]: a connection with bytes already read from it put back in front. A daemon that
//! reads ahead and then hands the socket to another layer replays what it read first: proxyd
//! when an HTTP/1.1 connection turns into HTTP/2 or a WebSocket tunnel, dbrouterd when the
//! first TLS bytes arrived in the same read as the client's SSLRequest. And
//! [`nothing_to_read`], the check of an idle pooled connection before reuse. And reads that
//! spend no system call on an empty socket ([`read_buf`], [`try_read_buf`],
//! [`poll_read_buf`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Whether nothing is waiting to be read from `stream` now (no end of stream, no error, no
/// stray bytes): an idle connection that is still fit to reuse. One non-blocking read; a byte
/// it finds is consumed, so a connection that fails the check must be dropped.
pub fn nothing_to_read(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Gives `buf` at least `min` bytes of spare capacity before a read, reserving `size` when it
/// has less. `read_buf` into a `BytesMut` whose capacity is used up is given 64 bytes, so a
/// buffer whose front keeps being advanced or split off (each packet taken out of it) would
/// otherwise end up reading one packet in several system calls. When what is left in `buf`
/// is small and nothing else shares it, `reserve` moves it to the front of the allocation it
/// has instead of allocating.
pub fn make_room(buf: &mut BytesMut, min: usize, size: usize) {
    if buf.capacity() - buf.len() < min {
        buf.reserve(size.max(min));
    }
}

/// Reads what `stream` has into the spare capacity of `buf` (64 bytes are reserved when it has
/// none), waiting until it is readable; `Ok(0)` at the end of the stream. As
/// [`try_read_buf`], a read that leaves room in `buf` ends the socket's readiness.
pub async fn read_buf(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_buf(stream, cx, buf)).await
}

/// [`read_buf`] as a poll function, for the `poll_*` methods of bodies and streams.
pub fn poll_read_buf(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    loop {
        std::task::ready!(stream.poll_read_ready(cx))?;
        match try_read_buf(stream, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            read => return Poll::Ready(read),
        }
    }
}

/// One read without waiting, as [`TcpStream::try_read_buf`], except that a read that leaves
/// room in `buf` also ends the socket's readiness on a worker.
///
/// tokio keeps a socket readable until a read fails with `WouldBlock`, so the read after
/// every short one costs a system call that finds nothing (`recvfrom` → `EAGAIN`): on a
/// keep-alive connection, one for each request and each response. TCP hands a read all it
/// has queued up to the room given, so a short read means the queue was empty, and anything
/// arriving later is a new edge from `epoll`; nginx clears `ready` after a short read for
/// the same reason. Only on a worker ([`crate::workers`]), whose single thread is the only
/// one that polls its reactor: there no readiness can arrive between the read and the
/// clearing. Elsewhere (the daemon's own runtime, tests) this is `try_read_buf`.
pub fn try_read_buf(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let room = buf.capacity() - buf.len();
    let n = stream.try_read_buf(buf)?;
    end_readiness_if_short(stream, n, room);
    Ok(n)
}

/// After a read of `n` bytes into `room`: see [`try_read_buf`].
fn end_readiness_if_short(stream: &TcpStream, n: usize, room: usize) {
    if n > 0 && n < room && crate::workers::current().is_some() {
        // A closure that reports `WouldBlock` makes tokio clear the readiness it saw; the end
        // of the stream (read-closed) is never cleared.
        let _ = stream.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
    }
}

#[derive(Debug)]
pub struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl Rewind {
    pub fn new(prefix: Bytes, inner: TcpStream) -> Self {
        Self { prefix, inner }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_prefix_is_read_before_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        client.write_all(b" world").await.expect("write");
        drop(client);
        let mut rewound = Rewind::new(Bytes::from_static(b"hello"), server);
        let mut all = String::new();
        rewound.read_to_string(&mut all).await.expect("read");
        assert_eq!(all, "hello world");
    }

    #[test]
    fn a_buffer_whose_front_was_taken_gets_room_back_before_a_read() {
        let mut buf = BytesMut::with_capacity(1024);
        // Packets taken off the front, as a codec does, until no room is left.
        let mut taken = Vec::new();
        while buf.capacity() > buf.len() {
            buf.extend_from_slice(&[7u8; 100][..(buf.capacity() - buf.len()).min(100)]);
            taken.push(buf.split_to(buf.len().min(90)));
        }
        drop(taken);
        let before = buf.capacity() - buf.len();
        make_room(&mut buf, 256, 1024);
        assert!(before < 256, "{before} bytes of room before");
        assert!(
            buf.capacity() - buf.len() >= 1024,
            "room {}",
            buf.capacity() - buf.len()
        );
        assert!(buf.iter().all(|b| *b == 7), "what was left is kept");
        // Enough room already: nothing changes.
        let cap = buf.capacity();
        make_room(&mut buf, 256, 4096);
        assert_eq!(buf.capacity(), cap);
    }

    /// Whether `stream` still says it is readable, without waiting.
    async fn still_readable(stream: &TcpStream) -> bool {
        std::future::poll_fn(|cx| Poll::Ready(stream.poll_read_ready(cx).is_ready())).await
    }

    /// A server socket on this process's side of a loopback connection, and its client.
    fn connected_pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        (server, client)
    }

    #[test]
    fn a_short_read_on_a_worker_ends_readiness_and_later_bytes_and_the_end_still_arrive() {
        use std::io::Write;
        let stop = tokio_util::sync::CancellationToken::new();
        let workers = crate::workers::Workers::start("short-read", 1, &stop).expect("workers");
        let (server, mut client) = connected_pair();
        client.write_all(b"first").expect("write");
        let (said, heard) = std::sync::mpsc::channel();
        let (go_on, next) = tokio::sync::oneshot::channel::<()>();
        workers.handles()[0].spawn(async move {
            let stream = TcpStream::from_std(server).expect("register");
            let mut buf = BytesMut::with_capacity(64);
            let first = read_buf(&stream, &mut buf).await.expect("first read");
            let _ = said.send(format!("{first} {}", still_readable(&stream).await));
            let _ = next.await;
            buf.clear();
            let second = read_buf(&stream, &mut buf).await.expect("second read");
            let end = read_buf(&stream, &mut buf).await.expect("end");
            let _ = said.send(format!("{second} {end} {:?}", &buf[..]));
        });
        let wait = std::time::Duration::from_secs(30);
        // 5 bytes into 64 bytes of room: the socket was emptied, and tokio no longer says it
        // is readable (it would until a read failed with WouldBlock).
        assert_eq!(heard.recv_timeout(wait).expect("first"), "5 false");
        let _ = go_on.send(());
        client.write_all(b"second").expect("write");
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        // The bytes sent after that, and the end of the stream, still wake the reader.
        assert_eq!(
            heard.recv_timeout(wait).expect("second"),
            "6 0 [115, 101, 99, 111, 110, 100]"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn off_the_workers_a_short_read_leaves_readiness_as_tokio_does() {
        use std::io::Write;
        let (server, mut client) = connected_pair();
        client.write_all(b"first").expect("write");
        let stream = TcpStream::from_std(server).expect("register");
        let mut buf = BytesMut::with_capacity(64);
        assert_eq!(read_buf(&stream, &mut buf).await.expect("read"), 5);
        assert!(still_readable(&stream).await);
    }
}
