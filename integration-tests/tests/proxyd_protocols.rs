//! What proxyd carries besides plain GETs: client identity headers, streamed bodies,
//! WebSocket upgrades, TCP sessions (with a server killed), PROXY protocol both ways, and TLS
//! termination choosing the certificate by SNI.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use integration_tests::backend::{
    get, parse_reply, raw_exchange, read_head_blocking, websocket_accept, websocket_text_frame,
    Backend, Proxyd,
};
use integration_tests::certificate::self_signed;
use integration_tests::shared_tempdir;

fn http_config(listener_extra: &str, pool_extra: &str, backends: &[&Backend]) -> String {
    let servers: String = backends
        .iter()
        .map(|b| format!("      - {{ address: \"{}\" }}\n", b.addr))
        .collect();
    format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: \"127.0.0.1:0\", pool: app{listener_extra} }}\n\
         pools:\n  app:\n{pool_extra}    servers:\n{servers}"
    )
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// Reads until `\r\n\r\n`.
fn read_head(stream: &mut TcpStream) -> String {
    String::from_utf8_lossy(&read_head_blocking(stream)).into_owned()
}

#[test]
fn the_server_sees_the_client_in_forwarded_headers_and_no_hop_by_hop_headers() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let proxy = Proxyd::start(dir.path(), &http_config("", "", &[&a]));
    let reply = get(
        proxy.addr("web"),
        "/headers",
        &[
            ("x-forwarded-for", "203.0.113.1"),
            ("connection", "close, x-drop"),
            ("x-drop", "1"),
            ("keep-alive", "5"),
        ],
    )
    .expect("GET");
    let seen = reply.body;
    assert!(
        seen.contains("x-forwarded-for: 203.0.113.1, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(seen.contains("x-forwarded-host: test.local\n"), "{seen}");
    assert!(
        seen.contains("forwarded: for=127.0.0.1;proto=http;host=test.local\n"),
        "{seen}"
    );
    assert!(!seen.contains("x-drop"), "{seen}");
    assert!(!seen.contains("keep-alive"), "{seen}");
}

#[test]
fn request_bodies_are_streamed_to_the_server() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let proxy = Proxyd::start(dir.path(), &http_config("", "", &[&a]));
    let body = "x".repeat(300_000);
    let request = format!(
        "POST /body-length HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = parse_reply(&raw_exchange(proxy.addr("web"), request.as_bytes()).expect("POST"))
        .expect("reply");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.trim(), "300000");
}

/// A WebSocket is echoed both ways, and closed once nothing moved either way for the
/// listener's `idle_timeout` (as a TCP session is).
#[test]
fn websocket_echo_through_proxyd() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let proxy = Proxyd::start(dir.path(), &http_config(", idle_timeout: 1s", "", &[&a]));
    let mut stream = connect(proxy.addr("web"));
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    write!(
        stream,
        "GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("handshake");
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains(
            &format!("sec-websocket-accept: {}", websocket_accept(key)).to_ascii_lowercase()
        ),
        "{head}"
    );
    for message in ["hello", "through proxyd"] {
        stream
            .write_all(&websocket_text_frame(message))
            .expect("frame");
        let mut answer = vec![0u8; 2 + message.len()];
        stream.read_exact(&mut answer).expect("echo");
        assert_eq!(answer[0], 0x81);
        assert_eq!(&answer[2..], message.as_bytes());
    }
    let quiet = std::time::Instant::now();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("read timeout");
    let read = stream.read(&mut [0u8; 16]);
    assert!(
        matches!(read, Ok(0)),
        "the idle tunnel is closed, not left open: {read:?} after {:?}",
        quiet.elapsed()
    );
    assert!(quiet.elapsed() >= std::time::Duration::from_millis(900));
}

#[test]
fn tcp_sessions_are_relayed_and_a_killed_server_is_skipped() {
    let dir = shared_tempdir();
    let (one, mut two) = (Backend::tcp_echo("one"), Backend::tcp_echo("two"));
    let config = format!(
        "listeners:\n  - {{ name: relay, protocol: tcp, listen: \"127.0.0.1:0\", pool: relay }}\n\
         pools:\n  relay:\n    balance: round_robin\n    servers:\n      - {{ address: \"{}\" }}\n      - {{ address: \"{}\" }}\n",
        one.addr, two.addr
    );
    let proxy = Proxyd::start(dir.path(), &config);
    let session = |expect: Option<&str>| {
        let mut stream = connect(proxy.addr("relay"));
        stream.write_all(b"ping\n").expect("write");
        // Half-close: the echo server sees EOF, ends its side, and we read to the end.
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half-close");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read");
        let (greeting, echo) = text.split_once('\n').expect("greeting line");
        assert_eq!(echo, "ping\n");
        if let Some(expect) = expect {
            assert_eq!(greeting, expect);
        }
        greeting.to_owned()
    };
    let mut seen: Vec<String> = (0..4).map(|_| session(None)).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, vec!["one", "two"]);
    two.kill();
    for _ in 0..10 {
        session(Some("one"));
    }
}

#[test]
fn proxy_protocol_headers_go_to_servers_and_are_accepted_from_trusted_balancers() {
    let dir = shared_tempdir();
    let echo = Backend::tcp_echo("echo");
    let web = Backend::http("web");
    let config = format!(
        "listeners:\n  - {{ name: relay, protocol: tcp, listen: \"127.0.0.1:0\", pool: relay }}\n\
         \x20 - {{ name: web, protocol: http, listen: \"127.0.0.1:0\", pool: app, accept_proxy_from: [127.0.0.1] }}\n\
         pools:\n  relay:\n    proxy_protocol: v1\n    servers: [{{ address: \"{}\" }}]\n\
         \x20 app:\n    servers: [{{ address: \"{}\" }}]\n",
        echo.addr, web.addr
    );
    let proxy = Proxyd::start(dir.path(), &config);

    // The echo server sends back what it got: first the PROXY line proxyd wrote.
    let mut stream = connect(proxy.addr("relay"));
    let client_port = stream.local_addr().expect("local").port();
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let expected = format!(
        "echo\nPROXY TCP4 127.0.0.1 127.0.0.1 {client_port} {}\r\n",
        proxy.addr("relay").port()
    );
    assert_eq!(text, expected);

    // A trusted balancer in front says who the client is, in v1 and in v2.
    let v1 = b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\nGET /headers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let reply = parse_reply(&raw_exchange(proxy.addr("web"), v1).expect("v1")).expect("reply");
    assert!(
        reply.body.contains("x-forwarded-for: 203.0.113.7\n"),
        "{}",
        reply.body
    );
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[198, 51, 100, 9, 127, 0, 0, 1, 0x15, 0xb3, 0, 80]);
    v2.extend_from_slice(b"GET /headers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let reply = parse_reply(&raw_exchange(proxy.addr("web"), &v2).expect("v2")).expect("reply");
    assert!(
        reply.body.contains("x-forwarded-for: 198.51.100.9\n"),
        "{}",
        reply.body
    );
    // A trusted peer that sends no PROXY header is refused, and counted.
    let answer =
        raw_exchange(proxy.addr("web"), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").expect("plain");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert!(proxy.metric("proxyd_client_errors_total{kind=\"proxy_header\"") >= 1);
}

#[test]
fn tls_is_terminated_with_the_certificate_sni_asks_for() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let (one_cert, one_key) = self_signed(dir.path(), "one.test");
    let (two_cert, two_key) = self_signed(dir.path(), "two.test");
    let config = format!(
        "listeners:\n  - name: web\n    protocol: http\n    listen: \"127.0.0.1:0\"\n    pool: app\n\
         \x20   tls:\n      certificates:\n        - {{ cert: {one_cert}, key: {one_key} }}\n        - {{ cert: {two_cert}, key: {two_key} }}\n\
         pools:\n  app:\n    servers: [{{ address: \"{}\" }}]\n",
        a.addr
    );
    let proxy = Proxyd::start(dir.path(), &config);
    let port = proxy.addr("web").port();
    for (name, cert, http) in [
        ("one.test", &one_cert, "--http1.1"),
        ("two.test", &two_cert, "--http2"),
    ] {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                http,
                "--cacert",
                cert,
                "--resolve",
            ])
            .arg(format!("{name}:{port}:127.0.0.1"))
            .args(["-w", "\n%{http_version}"])
            .arg(format!("https://{name}:{port}/headers"))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("x-forwarded-proto: https"), "{text}");
        let version = text.lines().last().unwrap_or("");
        assert_eq!(
            version,
            if http == "--http2" { "2" } else { "1.1" },
            "{text}"
        );
    }
}
