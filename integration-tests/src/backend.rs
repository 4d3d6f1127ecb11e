//! Purpose-built servers for proxyd's tests, and a plain HTTP/1.1 client.
//!
//! A [`Backend`] listens on `127.0.0.1:0` on a runtime thread of its own and answers every
//! HTTP request with its name (body `<name>\n`, header `x-server: <name>`), so a test sees
//! which server answered. `GET /headers` answers the request's headers; `/status/<code>`
//! answers that status; `/healthz` answers 200 or 500 as [`Backend::set_healthy`] says. It can
//! be made to hang (accept, read, never answer), to hold requests until released (requests
//! in flight for as long as a test wants), or to answer garbage, and [`Backend::kill`]
//! drops its runtime: the listening socket and every open connection close at once, as when
//! the process dies. A WebSocket upgrade is accepted (RFC 6455 handshake) and text frames are
//! echoed. [`Backend::tcp_echo`] greets with its name and echoes bytes.
//!
//! Only tokio is used, so the bytes on the wire are exactly what the test wrote.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

#[derive(Debug, Default)]
struct Behaviour {
    unhealthy: AtomicBool,
    hang: AtomicBool,
    garbage: AtomicBool,
    hold: AtomicBool,
    requests: AtomicU64,
}

/// A test server; see the [module docs](self).
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    behaviour: Arc<Behaviour>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy)]
enum Kind {
    Http,
    TcpEcho,
}

impl Backend {
    /// An HTTP backend named `name`.
    pub fn http(name: &str) -> Backend {
        Self::start(name, Kind::Http, None)
    }

    /// An HTTP backend on a given address (e.g. to come back where a killed one was).
    pub fn http_at(name: &str, addr: SocketAddr) -> Backend {
        Self::start(name, Kind::Http, Some(addr))
    }

    /// A TCP backend that writes `<name>\n` on connect, then echoes.
    pub fn tcp_echo(name: &str) -> Backend {
        Self::start(name, Kind::TcpEcho, None)
    }

    fn start(name: &str, kind: Kind, at: Option<SocketAddr>) -> Backend {
        let std_listener =
            crate::wait_until("backend port to bind", Duration::from_secs(10), || {
                std::net::TcpListener::bind(
                    at.unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr")),
                )
                .ok()
            });
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local addr");
        let behaviour = Arc::new(Behaviour::default());
        let (stop, stopped) = oneshot::channel();
        let name_owned = name.to_owned();
        let shared = Arc::clone(&behaviour);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("backend runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let name = name_owned.clone();
                        let behaviour = Arc::clone(&shared);
                        tokio::spawn(async move {
                            match kind {
                                Kind::Http => {
                                    let _ = serve_http(stream, &name, &behaviour).await;
                                }
                                Kind::TcpEcho => {
                                    let _ = serve_echo(stream, &name).await;
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops every connection task: all sockets close at once.
            drop(runtime);
        });
        Backend {
            name: name.to_owned(),
            addr,
            behaviour,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.behaviour.unhealthy.store(!healthy, Ordering::SeqCst);
    }

    /// Accept and read requests but never answer them.
    pub fn set_hang(&self, hang: bool) {
        self.behaviour.hang.store(hang, Ordering::SeqCst);
    }

    /// Hold every request (read, counted, unanswered) until `set_hold(false)`; then they are
    /// answered as usual.
    pub fn set_hold(&self, hold: bool) {
        self.behaviour.hold.store(hold, Ordering::SeqCst);
    }

    /// Answer every request with bytes that are not HTTP.
    pub fn set_garbage(&self, garbage: bool) {
        self.behaviour.garbage.store(garbage, Ordering::SeqCst);
    }

    /// Requests answered or hung so far (health checks excluded).
    pub fn requests(&self) -> u64 {
        self.behaviour.requests.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection at once.
    pub fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn serve_echo(mut stream: TcpStream, name: &str) -> std::io::Result<()> {
    stream.write_all(format!("{name}\n").as_bytes()).await?;
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        stream.write_all(&buf[..n]).await?;
    }
}

async fn serve_http(stream: TcpStream, name: &str, behaviour: &Behaviour) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let Some((request_line, headers)) = read_head(&mut reader).await? else {
            return Ok(());
        };
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
        let is_check = path == "/healthz";
        if !is_check {
            behaviour.requests.fetch_add(1, Ordering::SeqCst);
        }
        if behaviour.hang.load(Ordering::SeqCst) && !is_check {
            std::future::pending::<()>().await;
        }
        while behaviour.hold.load(Ordering::SeqCst) && !is_check {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stream = reader.get_mut();
        if behaviour.garbage.load(Ordering::SeqCst) && !is_check {
            stream.write_all(b"THIS IS NOT HTTP\r\n\r\n").await?;
            return stream.shutdown().await;
        }
        if header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            let key = header("sec-websocket-key").unwrap_or("").to_owned();
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nx-server: {name}\r\n\r\n",
                websocket_accept(&key)
            );
            stream.write_all(answer.as_bytes()).await?;
            return echo_websocket(reader).await;
        }
        let close = header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        if path == "/chunked-slow" {
            // Three chunks 150 ms apart, 12 body bytes: what an access log must count and time.
            let head = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-server: {name}\r\n{}\r\n",
                if close { "Connection: close\r\n" } else { "" }
            );
            stream.write_all(head.as_bytes()).await?;
            for part in ["aaaa", "bbbbbb", "cc"] {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let chunk = format!("{:x}\r\n{part}\r\n", part.len());
                stream.write_all(chunk.as_bytes()).await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
            if close {
                return stream.shutdown().await;
            }
            continue;
        }
        let (status, text) = if is_check {
            if behaviour.unhealthy.load(Ordering::SeqCst) {
                (500, "unhealthy\n".to_owned())
            } else {
                (200, "ok\n".to_owned())
            }
        } else if let Some(code) = path
            .strip_prefix("/status/")
            .and_then(|c| c.parse::<u16>().ok())
        {
            (code, format!("{name}\n"))
        } else if path == "/headers" {
            let mut text = String::new();
            for (k, v) in &headers {
                text.push_str(&format!("{}: {v}\n", k.to_ascii_lowercase()));
            }
            (200, text)
        } else if path == "/body-length" {
            (200, format!("{}\n", body.len()))
        } else {
            (200, format!("{name}\n"))
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nx-server: {name}\r\n{}\r\n{text}",
            text.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        stream.write_all(response.as_bytes()).await?;
        if close {
            return stream.shutdown().await;
        }
    }
}

/// The request line and headers, or `None` at a clean end of the connection.
async fn read_head(
    reader: &mut BufReader<TcpStream>,
) -> std::io::Result<Option<(String, Vec<(String, String)>)>> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).await? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Some((request_line.trim_end().to_owned(), headers)))
}

/// Echoes WebSocket text frames (client frames are masked; answers are not).
async fn echo_websocket(mut reader: BufReader<TcpStream>) -> std::io::Result<()> {
    loop {
        let mut head = [0u8; 2];
        if reader.read_exact(&mut head).await.is_err() {
            return Ok(());
        }
        let opcode = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            len = u64::from(reader.read_u16().await?);
        } else if len == 127 {
            len = reader.read_u64().await?;
        }
        let mut mask = [0u8; 4];
        if masked {
            reader.read_exact(&mut mask).await?;
        }
        let mut payload = vec![0u8; len as usize];
        reader.read_exact(&mut payload).await?;
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= if masked { mask[i % 4] } else { 0 };
        }
        if opcode == 0x8 {
            return Ok(());
        }
        let mut frame = vec![0x80 | opcode];
        push_len(&mut frame, payload.len(), false);
        frame.extend_from_slice(&payload);
        reader.get_mut().write_all(&frame).await?;
    }
}

fn push_len(frame: &mut Vec<u8>, len: usize, masked: bool) {
    let bit = if masked { 0x80 } else { 0 };
    if len < 126 {
        frame.push(bit | len as u8);
    } else if len <= 0xffff {
        frame.push(bit | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(bit | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A masked client text frame carrying `text`.
pub fn websocket_text_frame(text: &str) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81];
    push_len(&mut frame, text.len(), true);
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key + GUID)).
pub fn websocket_accept(key: &str) -> String {
    let digest = sha1(format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes());
    base64(&digest)
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in message.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, word) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An HTTP answer as the test client read it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a request or answer head byte by byte, up to and including its `\r\n\r\n` (nothing
/// past it), from a blocking stream; what came before the end or an error otherwise (a
/// complete head ends with `\r\n\r\n`).
pub fn read_head_blocking(stream: &mut impl std::io::Read) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    head
}

/// Sends raw bytes on a new connection and reads until the server closes it (or 10 s pass).
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request)?;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    Ok(out)
}

/// Parses an HTTP/1.1 answer (Content-Length or read-to-end bodies).
pub fn parse_reply(bytes: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// `GET path` with extra header lines, on a new connection with `Connection: close`.
pub fn get(addr: SocketAddr, path: &str, extra_headers: &[(&str, &str)]) -> std::io::Result<Reply> {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n");
    for (k, v) in extra_headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let bytes = raw_exchange(addr, request.as_bytes())?;
    parse_reply(&bytes).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an HTTP answer: {:?}", String::from_utf8_lossy(&bytes)),
        )
    })
}

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// proxyd started for a test on a config whose listeners bind `127.0.0.1:0`; the addresses it
/// bound are read from its status.
pub struct Proxyd {
    pub daemon: crate::Daemon,
    pub listeners: std::collections::BTreeMap<String, SocketAddr>,
}

impl Proxyd {
    /// Starts proxyd in `dir` with `body` (listeners and pools) below a control and metrics
    /// section of its own.
    pub fn start(dir: &std::path::Path, body: &str) -> Proxyd {
        let socket = dir.join("proxyd.sock");
        let yaml = format!(
            "workers: 2\ncontrol: {{ socket: {} }}\nmetrics: {{ listen: 127.0.0.1:0 }}\n{body}",
            socket.display()
        );
        let daemon = crate::Daemon::start(crate::DaemonKind::Proxyd, dir, &socket, &yaml);
        let mut proxyd = Proxyd {
            daemon,
            listeners: Default::default(),
        };
        proxyd.refresh_listeners();
        proxyd
    }

    /// Re-reads the bound listener addresses (after a reload).
    pub fn refresh_listeners(&mut self) {
        let status = self.status();
        self.listeners = status["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| {
                Some((
                    l["name"].as_str()?.to_owned(),
                    l["listen"].as_str()?.parse().ok()?,
                ))
            })
            .collect();
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        *self
            .listeners
            .get(listener)
            .unwrap_or_else(|| panic!("no listener {listener} in {:?}", self.listeners))
    }

    /// The `service` part of the status answer.
    pub fn status(&self) -> serde_json::Value {
        let answer = self.daemon.request(r#"{"cmd":"status"}"#);
        let value: serde_json::Value = serde_json::from_str(&answer).expect("status JSON");
        value["data"]["service"].clone()
    }

    /// The state (`up`, `down`, `backup`, `full`) of a server of a pool.
    pub fn server_state(&self, pool: &str, address: SocketAddr) -> String {
        let status = self.status();
        status["pools"][pool]["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["address"] == address.to_string())
            .and_then(|s| s["state"].as_str())
            .unwrap_or("missing")
            .to_owned()
    }

    /// The text of `GET /metrics`.
    pub fn metrics(&self) -> String {
        let log = self.daemon.log_text();
        let addr: SocketAddr = log
            .lines()
            .find(|l| l.contains("metrics listening"))
            .and_then(|l| l.split("listen=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .expect("metrics address in the log");
        let bytes = raw_exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
        )
        .expect("metrics");
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The value of a metric line starting with `prefix` (summed over matching lines).
    pub fn metric(&self, prefix: &str) -> u64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

/// A steady load from a few client threads until [`Load::stop`]: [`Load::start`] sends
/// `GET /` requests (one connection each), every answer other than a 200 and every connection
/// error a failure; [`Load::of_clients`] runs any client.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Vec<String>>>,
    /// How long [`Load::wait_for_more`] waits.
    patience: Duration,
}

/// What a [`Load`] saw.
#[derive(Debug)]
pub struct LoadReport {
    pub ok: u64,
    pub failures: Vec<String>,
}

impl LoadReport {
    /// Fails the test, showing the first failures, unless every request succeeded.
    pub fn assert_no_failure(&self) {
        assert!(
            self.failures.is_empty(),
            "{} failed of {}: {:?}",
            self.failures.len(),
            self.ok + self.failures.len() as u64,
            &self.failures[..self.failures.len().min(10)]
        );
    }
}

impl Load {
    pub fn start(addr: SocketAddr, clients: usize) -> Load {
        Load::of_clients(clients, Duration::from_secs(20), move |_| {
            move || {
                vec![match get(addr, "/", &[]) {
                    Ok(reply) if reply.status == 200 => Ok(()),
                    Ok(reply) => Err(format!("status {}: {}", reply.status, reply.body)),
                    Err(e) => Err(format!("{:?}: {e}", e.kind())),
                }]
            }
        })
    }

    /// `clients` threads, client `i` calling the round `client(i)` makes until stopped; a
    /// round returns one result per request it made. [`Load::wait_for_more`] waits up to
    /// `patience`.
    pub fn of_clients<C, R>(clients: usize, patience: Duration, client: C) -> Load
    where
        C: Fn(usize) -> R,
        R: FnMut() -> Vec<Result<(), String>> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|i| {
                let (stop, ok) = (Arc::clone(&stop), Arc::clone(&ok));
                let mut round = client(i);
                std::thread::spawn(move || {
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        for result in round() {
                            match result {
                                Ok(()) => {
                                    ok.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(e) => failures.push(e),
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        Load {
            stop,
            ok,
            threads,
            patience,
        }
    }

    /// Requests answered 200 so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `more` further requests succeeded (at most the load's patience).
    pub fn wait_for_more(&self, more: u64) {
        let target = self.ok() + more;
        crate::wait_until("the load to make progress", self.patience, || {
            (self.ok() >= target).then_some(())
        });
    }

    pub fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut failures = Vec::new();
        for t in self.threads {
            failures.extend(
                t.join()
                    .unwrap_or_else(|_| vec!["client thread panicked".into()]),
            );
        }
        LoadReport {
            ok: self.ok.load(Ordering::SeqCst),
            failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_accept_matches_rfc_6455_example() {
        assert_eq!(
            websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
