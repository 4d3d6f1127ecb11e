//! proxyd's graceful stop and its access log: SIGTERM closes idle keep-alive connections,
//! lets the request in flight finish, then exits; every request and TCP session leaves one
//! structured line.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use integration_tests::backend::{get, Backend, Proxyd};
use integration_tests::{shared_tempdir, wait_until};

/// Whether `pid` has exited (gone, or a zombie not reaped yet).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// Sends a keep-alive GET and reads exactly its answer (the backend's body is `<name>\n`).
fn keep_alive_exchange(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "closed mid-answer");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length: ")
                        .or_else(|| l.strip_prefix("Content-Length: "))
                })
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if body.len() >= length {
                return text.into_owned();
            }
        }
    }
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_and_lets_the_request_in_flight_finish() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let proxyd = Proxyd::start(
        dir.path(),
        &format!(
            "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
             pools:\n  app:\n    servers: [{{ address: {} }}]\n",
            a.addr
        ),
    );
    let addr = proxyd.addr("web");
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let first = keep_alive_exchange(&mut idle);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    a.set_hold(true);
    let in_flight = std::thread::spawn(move || get(addr, "/", &[]));
    wait_until("the request in flight", Duration::from_secs(10), || {
        (a.requests() == 2).then_some(())
    });
    let pid = proxyd.daemon.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");

    // The idle connection is closed by proxyd (end of stream, no answer); the read timing out
    // means it was left open.
    let mut buf = [0u8; 64];
    let n = match idle.read(&mut buf) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
        Err(e) => panic!("the idle keep-alive connection was not closed on SIGTERM: {e}"),
    };
    assert_eq!(
        n,
        0,
        "idle connection got {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(!exited(pid), "the request in flight keeps proxyd up");

    a.set_hold(false);
    let reply = in_flight.join().expect("client").expect("reply");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-server"), Some("a"));
    wait_until("proxyd to exit", Duration::from_secs(20), || {
        exited(pid).then_some(())
    });
}

#[test]
fn every_request_and_tcp_session_leaves_one_access_log_line() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let echo = Backend::tcp_echo("echo");
    let log = dir.path().join("access.log");
    let proxyd = Proxyd::start(
        dir.path(),
        &format!(
            "access_log: {{ enabled: true, format: json, path: {} }}\n\
             listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
             \x20 - {{ name: raw, protocol: tcp, listen: 127.0.0.1:0, pool: tcp }}\n\
             pools:\n  app:\n    servers: [{{ address: {} }}]\n  tcp:\n    servers: [{{ address: {} }}]\n",
            log.display(),
            a.addr,
            echo.addr
        ),
    );
    for path in ["/one", "/status/404", "/chunked-slow"] {
        get(proxyd.addr("web"), path, &[]).expect("get");
    }
    {
        let mut s = TcpStream::connect(proxyd.addr("raw")).expect("tcp");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut greeting = [0u8; 5];
        s.read_exact(&mut greeting).expect("greeting");
        s.write_all(b"ping").expect("write");
        let mut echoed = [0u8; 4];
        s.read_exact(&mut echoed).expect("echo");
    }
    let lines = wait_until("four access-log lines", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (lines.len() == 4).then_some(lines)
    });
    let http: Vec<_> = lines.iter().filter(|l| l["kind"] == "http").collect();
    assert_eq!(http.len(), 3, "{lines:?}");
    assert_eq!(http[0]["route"], "GET test.local /one");
    assert_eq!(http[1]["status"], 404);
    assert_eq!(http[0]["bytes_out"], 2); // "a\n": the backend's name and a newline
                                         // A chunked answer: the body bytes that went out, and the time until its last one (three
                                         // chunks 150 ms apart), not until its head.
    assert_eq!(http[2]["route"], "GET test.local /chunked-slow");
    assert_eq!(http[2]["bytes_out"], 12);
    let took = http[2]["duration_ms"].as_f64().unwrap_or(0.0);
    assert!(took >= 400.0, "duration_ms {took} ends at the head");
    for l in &http {
        assert_eq!(l["pool"], "app");
        assert_eq!(l["server"], a.addr.to_string());
        assert_eq!(l["listener"], "web");
        assert_eq!(l["retries"], 0);
        assert!(
            l["duration_ms"].as_f64().is_some()
                && l["time"].as_str().is_some_and(|t| t.ends_with('Z'))
        );
    }
    let tcp = lines.iter().find(|l| l["kind"] == "tcp").expect("tcp line");
    assert_eq!(tcp["server"], echo.addr.to_string());
    assert_eq!(tcp["bytes_in"], 4);
    assert_eq!(tcp["bytes_out"], 9); // "echo\n" and "ping"
    assert_eq!(proxyd.metric("proxyd_access_log_dropped_total"), 0);
}

#[test]
fn sigterm_lets_an_open_tcp_session_carry_on_until_it_ends() {
    let dir = shared_tempdir();
    let echo = Backend::tcp_echo("echo");
    let proxyd = Proxyd::start(
        dir.path(),
        &format!(
            "listeners:\n  - {{ name: raw, protocol: tcp, listen: 127.0.0.1:0, pool: tcp }}\n\
             pools:\n  tcp:\n    servers: [{{ address: {} }}]\n",
            echo.addr
        ),
    );
    let mut session = TcpStream::connect(proxyd.addr("raw")).expect("tcp");
    session
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut greeting = [0u8; 5];
    session.read_exact(&mut greeting).expect("greeting");
    let pid = proxyd.daemon.pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    // Stopping, and the session still relays both ways.
    wait_until("proxyd to stop accepting", Duration::from_secs(10), || {
        proxyd
            .daemon
            .log_text()
            .contains("stopped accepting")
            .then_some(())
    });
    for word in [&b"one"[..], b"two"] {
        session.write_all(word).expect("write");
        let mut back = vec![0u8; word.len()];
        session.read_exact(&mut back).expect("echo");
        assert_eq!(back, word);
    }
    assert!(!exited(pid));
    drop(session);
    wait_until("proxyd to exit", Duration::from_secs(20), || {
        exited(pid).then_some(())
    });
}
