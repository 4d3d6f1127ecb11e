//! `hactl status` and `hactl reload` against running daemons and against none.

use std::path::Path;

use integration_tests::daemon::run;
use integration_tests::{shared_tempdir, workspace_root, Daemon, DaemonKind};

/// An example config with its control socket moved into `dir` and metrics on a free port.
fn example_in(kind: DaemonKind, dir: &Path) -> (String, std::path::PathBuf) {
    let name = kind.name();
    let text =
        std::fs::read_to_string(workspace_root().join(format!("deploy/examples/{name}.yaml")))
            .expect("example");
    let socket = dir.join(format!("{name}.sock"));
    let text = text
        .replace(
            &format!("/run/ha/{name}.sock"),
            socket.to_str().expect("utf-8"),
        )
        .replace("127.0.0.1:9101", "127.0.0.1:0")
        .replace("127.0.0.1:9102", "127.0.0.1:0")
        .replace("127.0.0.1:9103", "127.0.0.1:0")
        // Listeners on free ports, so tests running in parallel never collide.
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:2525", "127.0.0.1:0")
        .replace("127.0.0.1:6033", "127.0.0.1:0")
        .replace("127.0.0.1:6034", "127.0.0.1:0");
    (text, socket)
}

fn start(kind: DaemonKind, dir: &Path) -> Daemon {
    let (text, socket) = example_in(kind, dir);
    Daemon::start(kind, dir, &socket, &text)
}

#[test]
fn status_shows_every_running_daemon_in_one_table() {
    let dir = shared_tempdir();
    let _daemons: Vec<Daemon> = [DaemonKind::Vrrpd, DaemonKind::Proxyd, DaemonKind::Dbrouterd]
        .iter()
        .map(|k| start(*k, dir.path()))
        .collect();
    let socket_dir = dir.path().to_str().expect("utf-8");
    let out = run(
        "hactl",
        &[
            "--socket-dir",
            socket_dir,
            "--config-dir",
            socket_dir,
            "status",
        ],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("DAEMON") && lines[0].contains("STATE"),
        "{table}"
    );
    for name in ["vrrpd", "proxyd", "dbrouterd"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(name) && l.contains("healthy")),
            "{name} missing:\n{table}"
        );
    }

    let out = run(
        "hactl",
        &[
            "--socket-dir",
            socket_dir,
            "--config-dir",
            socket_dir,
            "--json",
            "status",
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(json["healthy"], true);
    assert_eq!(json["daemons"].as_array().map(Vec::len), Some(3));
}

#[test]
fn status_with_nothing_running_says_so_and_fails() {
    let dir = shared_tempdir();
    let socket_dir = dir.path().to_str().expect("utf-8");
    let out = run(
        "hactl",
        &[
            "--socket-dir",
            socket_dir,
            "--config-dir",
            socket_dir,
            "status",
        ],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    for name in ["vrrpd", "proxyd", "dbrouterd"] {
        let expected = format!("not running, no socket at {socket_dir}/{name}.sock");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(name) && l.contains(&expected)),
            "{name}:\n{table}"
        );
    }
}

#[test]
fn a_daemon_that_died_is_reported_not_running() {
    let dir = shared_tempdir();
    let proxyd = start(DaemonKind::Proxyd, dir.path());
    let socket_dir = dir.path().to_str().expect("utf-8");
    // SIGKILL leaves the socket file behind: hactl must still say the daemon is down.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxyd.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    integration_tests::wait_until("proxyd to die", std::time::Duration::from_secs(10), || {
        let out = run("hactl", &["--socket-dir", socket_dir, "status", "proxyd"]);
        (out.status.code() == Some(1)).then_some(String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let out = run("hactl", &["--socket-dir", socket_dir, "status", "proxyd"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("not running, socket") && table.contains("nobody answers"),
        "{table}"
    );
}

#[test]
fn reload_of_an_invalid_file_keeps_the_old_config_and_hactl_shows_why() {
    let dir = shared_tempdir();
    let proxyd = start(DaemonKind::Proxyd, dir.path());
    let socket_dir = dir.path().to_str().expect("utf-8");
    let good = std::fs::read_to_string(&proxyd.config).expect("config");
    std::fs::write(
        &proxyd.config,
        good.replace("balance: round_robin", "balance: fastest"),
    )
    .expect("break config");
    let out = run("hactl", &["--socket-dir", socket_dir, "reload", "proxyd"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pools.app.balance") && stderr.contains("running configuration stays"),
        "{stderr}"
    );
    // Still serving, and a valid file reloads.
    std::fs::write(&proxyd.config, &good).expect("restore config");
    let out = run("hactl", &["--socket-dir", socket_dir, "reload", "proxyd"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = proxyd.request(r#"{"cmd":"status"}"#);
    assert!(
        status.contains("\"failed\":1") && status.contains("\"ok\":1"),
        "{status}"
    );
}
