//! A server may answer a request before reading its whole body (413 for a body too large, a
//! 401, a redirect) and close; the client must get that answer, not a 502, as it would from
//! the server directly (and as HAProxy and nginx relay it).

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use integration_tests::backend::{read_head_blocking, Proxyd};
use integration_tests::shared_tempdir;

/// A server that reads a request's head only, answers 413 and closes (with the body unread,
/// so its kernel resets the connection when more of the body arrives).
fn impatient_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            read_head_blocking(&mut stream);
            let _ = stream.write_all(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 10\r\nConnection: close\r\n\r\ntoo large\n",
            );
        }
    });
    addr
}

#[test]
fn an_answer_sent_before_the_whole_body_reaches_the_client() {
    let dir = shared_tempdir();
    let server = impatient_server();
    let proxyd = Proxyd::start(
        dir.path(),
        &format!(
            "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
             pools:\n  app:\n    servers: [{{ address: {server} }}]\n"
        ),
    );
    let body = dir.path().join("body.bin");
    std::fs::write(&body, vec![b'x'; 8 * 1024 * 1024]).expect("body file");
    for _ in 0..3 {
        let out = Command::new("curl")
            .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "30"])
            .arg("--data-binary")
            .arg(format!("@{}", body.display()))
            .arg(format!("http://{}/upload", proxyd.addr("web")))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.ends_with("\n413") && text.starts_with("too large"),
            "curl saw {text:?} ({})",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
