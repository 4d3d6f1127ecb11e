//! Relaying bytes both ways between a client and a server with half-close: when one side
//! ends its stream, the other side's write half is shut down and the other direction goes
//! on, until both directions have ended or nothing moved in either for the idle timeout. Used
//! by TCP listeners and by upgraded HTTP connections (WebSocket).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const BUFFER: usize = 16 * 1024;

/// Bytes moved each way, and whether the session ended by idling out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    pub client_to_server: u64,
    pub server_to_client: u64,
    pub idle_timeout: bool,
}

/// Relays until both directions end or `idle` passes with no byte either way.
pub async fn relay(
    client: &mut TcpStream,
    server: &mut TcpStream,
    idle: Duration,
) -> io::Result<Relayed> {
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    relay_halves(client_read, client_write, server_read, server_write, idle).await
}

/// [`relay`] for any two streams (an upgraded HTTP connection, TLS): each split with
/// [`tokio::io::split`].
pub async fn relay_streams<C, S>(client: C, server: S, idle: Duration) -> io::Result<Relayed>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (client_read, client_write) = tokio::io::split(client);
    let (server_read, server_write) = tokio::io::split(server);
    relay_halves(client_read, client_write, server_read, server_write, idle).await
}

async fn relay_halves<CR, CW, SR, SW>(
    mut client_read: CR,
    mut client_write: CW,
    mut server_read: SR,
    mut server_write: SW,
    idle: Duration,
) -> io::Result<Relayed>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
    SR: AsyncRead + Unpin,
    SW: AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last_activity = AtomicU64::new(0);
    let up = one_way(&mut client_read, &mut server_write, &last_activity, start);
    let down = one_way(&mut server_read, &mut client_write, &last_activity, start);
    let watchdog = async {
        loop {
            let last = start + Duration::from_nanos(last_activity.load(Ordering::Relaxed));
            let due = last + idle;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due.into()).await;
        }
    };
    tokio::select! {
        (up, down) = async { tokio::join!(up, down) } => Ok(Relayed {
            client_to_server: up?,
            server_to_client: down?,
            idle_timeout: false,
        }),
        () = watchdog => Ok(Relayed { client_to_server: 0, server_to_client: 0, idle_timeout: true }),
    }
}

async fn one_way<R, W>(
    reader: &mut R,
    writer: &mut W,
    last_activity: &AtomicU64,
    start: Instant,
) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            // Half-close: the peer ended its stream, pass that on and keep the other way open.
            let _ = writer.shutdown().await;
            return Ok(total);
        }
        writer.write_all(&buf[..n]).await?;
        total += n as u64;
        last_activity.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (a.expect("connect"), b.expect("accept").0)
    }

    #[tokio::test]
    async fn half_close_lets_the_other_direction_finish() {
        let (mut client_outer, mut client_inner) = pair().await;
        let (mut server_inner, mut server_outer) = pair().await;
        let relay = tokio::spawn(async move {
            relay(
                &mut client_inner,
                &mut server_inner,
                Duration::from_secs(30),
            )
            .await
        });
        client_outer.write_all(b"request").await.expect("write");
        client_outer.shutdown().await.expect("half-close");
        let mut got = Vec::new();
        server_outer
            .read_to_end(&mut got)
            .await
            .expect("server reads to EOF");
        assert_eq!(got, b"request");
        server_outer
            .write_all(b"answer after client's EOF")
            .await
            .expect("write");
        server_outer.shutdown().await.expect("close");
        let mut answer = Vec::new();
        client_outer.read_to_end(&mut answer).await.expect("read");
        assert_eq!(answer, b"answer after client's EOF");
        let relayed = relay.await.expect("join").expect("relay");
        assert_eq!(relayed.client_to_server, 7);
        assert!(!relayed.idle_timeout);
    }

    #[tokio::test]
    async fn an_idle_session_is_ended() {
        let (_client_outer, mut client_inner) = pair().await;
        let (mut server_inner, _server_outer) = pair().await;
        let relayed = relay(
            &mut client_inner,
            &mut server_inner,
            Duration::from_millis(100),
        )
        .await
        .expect("relay");
        assert!(relayed.idle_timeout);
    }
}
