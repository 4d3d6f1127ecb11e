//! Bad input on either side of proxyd: malformed requests (400), oversized headers (431), a
//! client too slow to send its headers (timed out), a server answering garbage (502), no
//! server available (503). Each is counted, and proxyd keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use integration_tests::backend::{free_port, get, raw_exchange, Backend, Proxyd};
use integration_tests::shared_tempdir;

fn start(backends: &[&Backend], pool_extra: &str) -> (tempfile::TempDir, Proxyd) {
    let dir = shared_tempdir();
    let servers: String = backends
        .iter()
        .map(|b| format!("      - {{ address: \"{}\" }}\n", b.addr))
        .collect();
    let config = format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: \"127.0.0.1:0\", pool: app, header_timeout: 500ms }}\n\
         pools:\n  app:\n{pool_extra}    servers:\n{servers}"
    );
    let proxy = Proxyd::start(dir.path(), &config);
    (dir, proxy)
}

fn still_serving(proxy: &Proxyd) {
    let reply = get(proxy.addr("web"), "/", &[]).expect("GET");
    assert_eq!(reply.status, 200, "{reply:?}");
}

fn status_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[test]
fn malformed_requests_get_400_and_are_counted() {
    let a = Backend::http("a");
    let (_dir, proxy) = start(&[&a], "");
    for bad in [
        &b"THIS IS NOT HTTP\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nbad header line\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
    ] {
        let answer = raw_exchange(proxy.addr("web"), bad).expect("exchange");
        assert!(
            status_line(&answer).starts_with("HTTP/1.1 400"),
            "{:?}: {}",
            String::from_utf8_lossy(bad),
            status_line(&answer)
        );
        still_serving(&proxy);
    }
    assert!(proxy.metric("proxyd_client_errors_total{kind=\"bad_request\"") >= 3);
    assert!(proxy.daemon.log_text().contains("bad input from client"));
}

#[test]
fn oversized_headers_get_431() {
    let a = Backend::http("a");
    let (_dir, proxy) = start(&[&a], "");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nx-big: {}\r\n\r\n",
        "y".repeat(100_000)
    );
    let answer = raw_exchange(proxy.addr("web"), request.as_bytes()).expect("exchange");
    assert!(
        status_line(&answer).starts_with("HTTP/1.1 431"),
        "{}",
        status_line(&answer)
    );
    still_serving(&proxy);
    assert!(proxy.metric("proxyd_client_errors_total{kind=\"header_too_large\"") >= 1);
}

#[test]
fn a_client_sending_headers_too_slowly_is_cut_off_while_others_are_served() {
    let a = Backend::http("a");
    let (_dir, proxy) = start(&[&a], "");
    let mut slow = TcpStream::connect(proxy.addr("web")).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        .expect("partial headers");
    let started = Instant::now();
    still_serving(&proxy);
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest);
    assert!(closed.is_ok(), "proxyd closes the connection: {closed:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "closed by the header timeout"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains("200"),
        "no request was relayed"
    );
    integration_tests::wait_until("the timeout to be counted", Duration::from_secs(10), || {
        (proxy.metric("proxyd_client_errors_total{kind=\"header_timeout\"") >= 1).then_some(())
    });
}

#[test]
fn a_server_answering_garbage_gets_the_client_a_502() {
    let a = Backend::http("a");
    a.set_garbage(true);
    let (_dir, proxy) = start(&[&a], "");
    let reply = get(proxy.addr("web"), "/", &[]).expect("GET");
    assert_eq!(reply.status, 502, "{reply:?}");
    assert!(
        reply.body.starts_with("upstream server failed"),
        "{}",
        reply.body
    );
    a.set_garbage(false);
    still_serving(&proxy);
    assert!(proxy.metric("proxyd_proxy_errors_total{kind=\"upstream_failed\"") >= 1);
}

#[test]
fn no_server_available_gets_503_saying_so() {
    let dead = format!(
        "      - {{ address: \"127.0.0.1:{}\" }}\n      - {{ address: \"127.0.0.1:{}\" }}\n",
        free_port(),
        free_port()
    );
    let dir = shared_tempdir();
    let config = format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: \"127.0.0.1:0\", pool: app }}\n\
         pools:\n  app:\n    passive_health: {{ max_fails: 1, fail_timeout: 60s }}\n    servers:\n{dead}"
    );
    let proxy = Proxyd::start(dir.path(), &config);
    let first = get(proxy.addr("web"), "/", &[]).expect("GET");
    assert_eq!(first.status, 502, "both servers refused: {first:?}");
    assert!(first.body.contains("failed"), "{}", first.body);
    let second = get(proxy.addr("web"), "/", &[]).expect("GET");
    assert_eq!(second.status, 503, "{second:?}");
    assert!(
        second.body.starts_with("no server available"),
        "{}",
        second.body
    );
    assert!(proxy.metric("proxyd_proxy_errors_total{kind=\"no_server_available\"") >= 1);
}
