//! The pool's `timeouts.read` and `timeouts.send` bound each wait of a transfer with a
//! server, as nginx's `proxy_read_timeout` and `proxy_send_timeout` do: a server that stops
//! sending its response body midway has the client's response cut short (not left hanging),
//! one that sends slowly but steadily is not cut, and one that stops reading the request
//! body gets the client a 504. Those waits are per step, so an upload takes as long as it keeps
//! moving, and a client that stops sending its body gets a 408 (the listener's
//! `body_timeout`, nginx's `client_body_timeout`) without the server being blamed.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::backend::{read_head_blocking, Proxyd};
use integration_tests::shared_tempdir;
use integration_tests::wait::wait_until;

/// A raw HTTP/1.1 server: for each connection, reads the request head, then hands the
/// connection to `serve` (in its own thread).
fn raw_server(serve: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                if !read_head_blocking(&mut stream).ends_with(b"\r\n\r\n") {
                    return;
                }
                serve(stream);
            });
        }
    });
    addr
}

/// Sends the head and 10 of the 100 bytes of the body, then neither sends nor closes.
fn stalls_midway(mut stream: TcpStream) {
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    // Held open (the read times out after 20 s, or ends when proxyd closes).
    let _ = stream.read(&mut [0u8; 1]);
}

/// Sends a 10-byte body a byte every 200 ms (2 s in all).
fn trickles(mut stream: TcpStream) {
    if stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return;
    }
    for byte in b"abcdefghij" {
        std::thread::sleep(Duration::from_millis(200));
        if stream.write_all(&[*byte]).is_err() {
            return;
        }
    }
}

/// Never reads the request body: holds the connection until proxyd closes it.
fn never_reads(stream: TcpStream) {
    let _ = stream.set_read_timeout(None);
    let start = Instant::now();
    // Peek without consuming anything, so the body stays in the socket buffers.
    while start.elapsed() < Duration::from_secs(20) {
        match stream.peek(&mut [0u8; 1]) {
            Ok(0) | Err(_) => return,
            Ok(_) => std::thread::park_timeout(Duration::from_secs(1)),
        }
    }
}

/// The length of the uploads below.
const UPLOAD: usize = 1000;

/// Reads an [`UPLOAD`]-byte body, then answers 200 with the number of bytes it got.
fn reads_the_upload(mut stream: TcpStream) {
    let mut body = vec![0u8; UPLOAD];
    let got = match stream.read_exact(&mut body) {
        Ok(()) => UPLOAD,
        Err(_) => 0,
    };
    let text = got.to_string();
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )
        .as_bytes(),
    );
}

/// Sends a POST of [`UPLOAD`] bytes: the first `pieces` pieces `pause` apart, the rest never
/// (the connection stays open); what came back and how long it took.
fn upload(addr: SocketAddr, pieces: usize, pause: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect to proxyd");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: {UPLOAD}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send head");
    for _ in 0..pieces {
        std::thread::sleep(pause);
        if stream.write_all(&[b'u'; UPLOAD / 10]).is_err() {
            break;
        }
    }
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

fn proxyd_with(dir: &std::path::Path, server: SocketAddr, timeouts: &str) -> Proxyd {
    Proxyd::start(
        dir,
        &format!(
            "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
             pools:\n  app:\n    servers: [{{ address: {server} }}]\n    timeouts: {timeouts}\n"
        ),
    )
}

/// Sends a GET and reads until the connection ends (or 10 s pass); what came back and how long.
fn get_until_closed(addr: SocketAddr) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect to proxyd");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        .expect("send request");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "proxyd left the response hanging for 10 s: {:?}",
                    String::from_utf8_lossy(&got)
                )
            }
            // A reset also ends a response cut short.
            Err(_) => break,
        }
    }
    (got, started.elapsed())
}

fn body_of(response: &[u8]) -> &[u8] {
    response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&[][..], |at| &response[at + 4..])
}

#[test]
fn a_server_stalling_midway_through_its_body_has_the_response_cut_after_the_read_timeout() {
    let dir = shared_tempdir();
    let server = raw_server(stalls_midway);
    let proxyd = proxyd_with(dir.path(), server, "{ read: 500ms }");
    let (got, took) = get_until_closed(proxyd.addr("web"));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "got {text:?}");
    assert_eq!(body_of(&got), b"0123456789", "got {text:?}");
    assert!(took < Duration::from_secs(5), "cut after {took:?}");
    wait_until("the read timeout counted", Duration::from_secs(5), || {
        (proxyd.metric("proxyd_upstream_failures_total{kind=\"timeout\",pool=\"app\"") >= 1)
            .then_some(())
    });
}

#[test]
fn a_server_sending_slowly_but_steadily_is_not_cut_by_the_read_timeout() {
    let dir = shared_tempdir();
    let server = raw_server(trickles);
    let proxyd = proxyd_with(dir.path(), server, "{ read: 500ms }");
    let (got, took) = get_until_closed(proxyd.addr("web"));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "got {text:?}");
    assert_eq!(body_of(&got), b"abcdefghij", "got {text:?} after {took:?}");
    assert_eq!(
        proxyd.metric("proxyd_upstream_failures_total{kind=\"timeout\",pool=\"app\""),
        0
    );
}

#[test]
fn a_server_not_reading_the_request_body_gets_the_client_a_504_after_the_send_timeout() {
    let dir = shared_tempdir();
    let server = raw_server(never_reads);
    let proxyd = proxyd_with(dir.path(), server, "{ send: 500ms }");
    let body = dir.path().join("body.bin");
    std::fs::write(&body, vec![b'x'; 32 * 1024 * 1024]).expect("body file");
    let started = Instant::now();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "30",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(format!("http://{}/upload", proxyd.addr("web")))
        .output()
        .expect("curl");
    let took = started.elapsed();
    let code = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        code,
        "504",
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    wait_until("the send timeout counted", Duration::from_secs(5), || {
        (proxyd.metric("proxyd_upstream_failures_total{kind=\"timeout\",pool=\"app\"") >= 1)
            .then_some(())
    });
}

#[test]
fn an_upload_that_keeps_moving_is_not_cut_however_long_it_takes() {
    let dir = shared_tempdir();
    let server = raw_server(reads_the_upload);
    // Connect and read add up to 800 ms; the upload takes about 2 s.
    let proxyd = proxyd_with(dir.path(), server, "{ connect: 300ms, read: 500ms }");
    let (answer, took) = upload(proxyd.addr("web"), 10, Duration::from_millis(200));
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "after {took:?}: {answer:?}"
    );
    assert_eq!(body_of(answer.as_bytes()), UPLOAD.to_string().as_bytes());
    assert!(took >= Duration::from_secs(2), "the upload took {took:?}");
    assert_eq!(
        proxyd.metric("proxyd_upstream_failures_total{kind=\"timeout\",pool=\"app\""),
        0
    );
}

#[test]
fn a_client_that_stops_sending_its_body_gets_a_408_and_the_server_is_not_blamed() {
    let dir = shared_tempdir();
    let server = raw_server(reads_the_upload);
    let proxyd = Proxyd::start(
        dir.path(),
        &format!(
            "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app, body_timeout: 500ms }}\n\
             pools:\n  app:\n    servers: [{{ address: {server} }}]\n"
        ),
    );
    // Three of ten pieces, then nothing.
    let (answer, took) = upload(proxyd.addr("web"), 3, Duration::from_millis(100));
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {took:?}: {answer:?}"
    );
    assert!(answer.contains("request body timeout"), "{answer:?}");
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    assert_eq!(
        proxyd.metric("proxyd_upstream_failures_total{kind=\"timeout\",pool=\"app\""),
        0,
        "the server is not blamed for the client's silence"
    );
    assert_eq!(
        proxyd.metric("proxyd_upstream_failures_total{kind=\"error\",pool=\"app\""),
        0
    );
}
