//! The control channel as operators and other daemons meet it: authorization by the caller's
//! uid, error answers for bad lines on a connection that stays usable, one instance per socket.

use std::path::Path;
use std::process::Command;

use integration_tests::daemon::hactl_as_nobody;
use integration_tests::{bin, require_root, shared_tempdir, Daemon, DaemonKind};

/// A minimal proxyd config with its control socket in `dir`, readable by `group`.
fn proxyd_config(socket: &Path, group: &str) -> String {
    format!(
        "control: {{ socket: {}, admin_group: ha-it-no-such-group, group: {group} }}\n\
         metrics: {{ listen: 127.0.0.1:0 }}\n\
         listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
         pools:\n  app:\n    servers: [{{ address: 127.0.0.1:2 }}]\n",
        socket.display()
    )
}

/// Starts proxyd with [`proxyd_config`] and its control socket in `dir`.
fn start_proxyd(dir: &Path, group: &str) -> Daemon {
    let socket = dir.join("proxyd.sock");
    Daemon::start(
        DaemonKind::Proxyd,
        dir,
        &socket,
        &proxyd_config(&socket, group),
    )
}

#[test]
fn non_admin_is_refused_changing_commands_but_may_read_status() {
    if !require_root("non_admin_is_refused_changing_commands_but_may_read_status") {
        return;
    }
    let dir = shared_tempdir();
    let proxyd = start_proxyd(dir.path(), "nogroup");
    let socket_dir = dir.path().to_str().expect("utf-8 path");

    let status = hactl_as_nobody(
        dir.path(),
        &["--socket-dir", socket_dir, "--json", "status", "proxyd"],
    );
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "status as nobody failed: {out} {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(out.contains("\"healthy\":true"), "{out}");

    let reload = hactl_as_nobody(
        dir.path(),
        &["--socket-dir", socket_dir, "--json", "reload", "proxyd"],
    );
    let out = String::from_utf8_lossy(&reload.stdout);
    assert_eq!(
        reload.status.code(),
        Some(1),
        "reload as nobody must fail: {out}"
    );
    assert!(out.contains("forbidden"), "{out}");

    // Root may reload; the refusal was counted and logged.
    let answer = proxyd.request(r#"{"cmd":"reload"}"#);
    assert!(answer.contains("\"ok\":true"), "{answer}");
    let log = proxyd.log_text();
    assert!(
        log.contains("refused changing command"),
        "refusal not logged:\n{log}"
    );
    let metrics = metrics_of(&proxyd);
    assert!(metrics.contains("ha_control_refused_total 1"), "{metrics}");
}

/// The daemon's /metrics, found through the address it logged.
fn metrics_of(daemon: &Daemon) -> String {
    let log = daemon.log_text();
    let addr = log
        .lines()
        .find(|l| l.contains("metrics listening"))
        .and_then(|l| l.split("listen=").nth(1))
        .map(|s| s.trim().to_string())
        .expect("metrics address in log");
    let out = Command::new("curl")
        .args(["-sf", &format!("http://{addr}/metrics")])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bad_lines_get_error_answers_and_the_connection_stays_usable() {
    use std::io::{BufRead, BufReader, Write};
    let dir = shared_tempdir();
    let proxyd = start_proxyd(dir.path(), "root");
    let socket = proxyd.socket.clone();

    let stream = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut ask = |line: &[u8]| -> String {
        writer.write_all(line).expect("write");
        writer.write_all(b"\n").expect("write");
        let mut answer = String::new();
        reader.read_line(&mut answer).expect("answer");
        answer
    };
    let malformed = ask(b"{\"cmd\": ");
    assert!(
        malformed.contains("\"kind\":\"bad_request\""),
        "{malformed}"
    );
    let long = vec![b'x'; 70 * 1024];
    let too_long = ask(&long);
    assert!(
        too_long.contains("\"kind\":\"line_too_long\""),
        "{too_long}"
    );
    let unknown = ask(br#"{"cmd":"frobnicate"}"#);
    assert!(
        unknown.contains("\"kind\":\"unknown_command\""),
        "{unknown}"
    );
    // Still usable on the same connection.
    let status = ask(br#"{"cmd":"status"}"#);
    assert!(
        status.contains("\"ok\":true") && status.contains("\"daemon\":\"proxyd\""),
        "{status}"
    );
    let metrics = metrics_of(&proxyd);
    assert!(
        metrics.contains("ha_control_bad_requests_total 3"),
        "{metrics}"
    );
}

#[test]
fn a_second_instance_on_the_same_socket_refuses_to_start() {
    let dir = shared_tempdir();
    let first = start_proxyd(dir.path(), "root");
    let second = Command::new(bin("proxyd"))
        .arg("-c")
        .arg(&first.config)
        .output()
        .expect("run second");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another proxyd is already running"),
        "{stderr}"
    );
    // The first one is undisturbed.
    assert!(first
        .request(r#"{"cmd":"health"}"#)
        .contains("\"ready\":true"));
}

#[test]
fn a_stale_socket_left_by_a_crash_is_replaced() {
    let dir = shared_tempdir();
    let socket = dir.path().join("proxyd.sock");
    // A socket file nobody listens on, as a killed daemon leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind stale"));
    assert!(socket.exists());
    let proxyd = Daemon::start(
        DaemonKind::Proxyd,
        dir.path(),
        &socket,
        &proxyd_config(&socket, "root"),
    );
    assert!(proxyd
        .request(r#"{"cmd":"hello"}"#)
        .contains("\"name\":\"proxyd\""));
    let status = proxyd.stop();
    assert!(status.success(), "graceful stop failed: {status}");
    assert!(!socket.exists(), "socket not removed on graceful stop");
}

#[test]
fn vrrp_transitions_announced_by_vrrpd_show_in_status() {
    let dir = shared_tempdir();
    let proxyd = start_proxyd(dir.path(), "root");
    // What vrrpd's notify.sockets sends on a transition.
    let answer = proxyd.request(
        r#"{"cmd":"vrrp.transition","args":{"instance":"front","state":"master","priority":150,"reason":"master_down_timer_expired"}}"#,
    );
    assert!(answer.contains("\"ok\":true"), "{answer}");
    let status = proxyd.request(r#"{"cmd":"status"}"#);
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    let events = status["data"]["vrrp_events"]
        .as_array()
        .expect("vrrp_events");
    assert_eq!(events.len(), 1, "{status}");
    assert_eq!(events[0]["instance"], "front");
    assert_eq!(events[0]["state"], "master");
    assert!(proxyd.log_text().contains("vrrp transition announced"));
}
