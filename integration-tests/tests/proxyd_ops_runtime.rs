//! Runtime control of proxyd's servers over the control channel, with the real `hactl`:
//! drain, disable/enable, weight, add/remove; changes shown in status and kept across a
//! reload that leaves the pool unchanged; refused for callers who are not admins.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use integration_tests::backend::{get, Backend, Proxyd};
use integration_tests::daemon::{hactl_as_nobody, run};
use integration_tests::{require_root, shared_tempdir, wait_until, Daemon, DaemonKind};

fn hactl(dir: &Path, args: &[&str]) -> serde_json::Value {
    let socket_dir = dir.to_str().expect("utf-8");
    let mut all = vec!["--socket-dir", socket_dir, "--json", "call", "proxyd"];
    all.extend_from_slice(args);
    let out = run("hactl", &all);
    assert!(
        out.status.success(),
        "hactl {args:?}: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn server(status: &serde_json::Value, address: SocketAddr) -> &serde_json::Value {
    status["pools"]["app"]["servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["address"] == address.to_string()))
        .unwrap_or(&serde_json::Value::Null)
}

fn two_servers(a: &Backend, b: &Backend) -> String {
    format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
         pools:\n  app:\n    servers: [{{ address: {} }}, {{ address: {} }}]\n",
        a.addr, b.addr
    )
}

fn answered_by(addr: SocketAddr, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let reply = get(addr, "/", &[]).expect("get");
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.header("x-server").unwrap_or("").to_owned()
        })
        .collect()
}

#[test]
fn a_drained_server_gets_no_new_requests_while_its_in_flight_ones_complete() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let proxyd = Proxyd::start(dir.path(), &two_servers(&a, &b));
    let addr = proxyd.addr("web");

    // One request held on a (round robin sends one of two there).
    a.set_hold(true);
    let clients: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(addr, "/", &[])))
        .collect();
    wait_until("a request in flight on a", Duration::from_secs(10), || {
        (a.requests() == 1).then_some(())
    });
    let answer = hactl(
        dir.path(),
        &["backend.drain", "pool=app", &format!("server={}", a.addr)],
    );
    assert_eq!(answer["data"]["admin"], "drain", "{answer}");
    let status = proxyd.status();
    assert_eq!(server(&status, a.addr)["state"], "draining", "{status}");
    assert_eq!(
        server(&status, a.addr)["runtime"]["admin"],
        "drain",
        "{status}"
    );

    // New requests all go to b; a sees none.
    assert!(answered_by(addr, 20).iter().all(|s| s == "b"));
    assert_eq!(a.requests(), 1);

    // The held request completes, on a.
    a.set_hold(false);
    let replies: Vec<_> = clients
        .into_iter()
        .map(|c| c.join().expect("client").expect("reply"))
        .collect();
    assert!(replies.iter().all(|r| r.status == 200), "{replies:?}");
    assert!(replies.iter().any(|r| r.header("x-server") == Some("a")));
    wait_until("a drained", Duration::from_secs(10), || {
        (proxyd.server_state("app", a.addr) == "drained").then_some(())
    });

    // Back in rotation.
    hactl(
        dir.path(),
        &["backend.enable", "pool=app", &format!("server={}", a.addr)],
    );
    assert!(answered_by(addr, 10).iter().any(|s| s == "a"));
    assert!(server(&proxyd.status(), a.addr)["runtime"].is_null());
}

#[test]
fn disable_weight_add_and_remove_change_the_rotation_and_survive_an_unchanged_reload() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let c = Backend::http("c");
    let proxyd = Proxyd::start(dir.path(), &two_servers(&a, &b));
    let addr = proxyd.addr("web");

    hactl(
        dir.path(),
        &["backend.disable", "pool=app", &format!("server={}", b.addr)],
    );
    assert!(answered_by(addr, 10).iter().all(|s| s == "a"));
    assert_eq!(proxyd.server_state("app", b.addr), "disabled");

    hactl(
        dir.path(),
        &[
            "backend.add",
            "pool=app",
            &format!("server={}", c.addr),
            "weight=3",
        ],
    );
    let seen = answered_by(addr, 40);
    let to_c = seen.iter().filter(|s| *s == "c").count();
    assert!(to_c > 20, "c has weight 3 against a's 1: {to_c} of 40");
    assert!(!seen.iter().any(|s| s == "b"));

    hactl(
        dir.path(),
        &[
            "backend.weight",
            "pool=app",
            &format!("server={}", c.addr),
            "weight=1",
        ],
    );
    assert_eq!(server(&proxyd.status(), c.addr)["weight"], 1);

    // A reload of the same file keeps every runtime change.
    let answer = proxyd.daemon.request(r#"{"cmd":"reload"}"#);
    assert!(answer.contains("\"ok\":true"), "{answer}");
    let status = proxyd.status();
    assert_eq!(server(&status, b.addr)["state"], "disabled", "{status}");
    assert_eq!(server(&status, c.addr)["weight"], 1, "{status}");
    assert_eq!(
        status["pools"]["app"]["runtime"]["added"][0],
        c.addr.to_string()
    );

    hactl(
        dir.path(),
        &["backend.remove", "pool=app", &format!("server={}", a.addr)],
    );
    assert!(answered_by(addr, 10).iter().all(|s| s == "c"));
    let status = proxyd.status();
    assert!(server(&status, a.addr).is_null(), "{status}");
    assert_eq!(
        status["pools"]["app"]["runtime"]["removed"][0],
        a.addr.to_string()
    );

    // Unknown servers and bad arguments are refused with the reason.
    let socket_dir = dir.path().to_str().expect("utf-8");
    let out = run(
        "hactl",
        &[
            "--socket-dir",
            socket_dir,
            "call",
            "proxyd",
            "backend.weight",
            "pool=app",
            &format!("server={}", c.addr),
            "weight=0",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let out = run(
        "hactl",
        &[
            "--socket-dir",
            socket_dir,
            "call",
            "proxyd",
            "backend.drain",
            "pool=app",
            "server=127.0.0.1:1",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no server"),
        "{out:?}"
    );

    // A file that changes the pool wins: its runtime changes are dropped.
    let file = std::fs::read_to_string(&proxyd.daemon.config).expect("config");
    std::fs::write(
        &proxyd.daemon.config,
        file.replace(
            &format!("{{ address: {} }}]", b.addr),
            &format!("{{ address: {}, weight: 2 }}]", b.addr),
        ),
    )
    .expect("write");
    let answer = proxyd.daemon.request(r#"{"cmd":"reload"}"#);
    assert!(answer.contains("runtime_changes_dropped"), "{answer}");
    let status = proxyd.status();
    assert_eq!(server(&status, b.addr)["state"], "up", "{status}");
    assert!(server(&status, c.addr).is_null(), "{status}");
}

#[test]
fn runtime_commands_are_refused_for_callers_who_are_not_admins() {
    if !require_root("runtime_commands_are_refused_for_callers_who_are_not_admins") {
        return;
    }
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let socket = dir.path().join("proxyd.sock");
    let yaml = format!(
        "control: {{ socket: {}, admin_group: ha-it-no-such-group, group: nogroup }}\n\
         metrics: {{ listen: 127.0.0.1:0 }}\n{}",
        socket.display(),
        two_servers(&a, &b)
    );
    let proxyd = Daemon::start(DaemonKind::Proxyd, dir.path(), &socket, &yaml);
    let socket_dir = dir.path().to_str().expect("utf-8");
    let target = format!("server={}", a.addr);
    for cmd in [
        "backend.drain",
        "backend.disable",
        "backend.enable",
        "backend.weight",
        "backend.add",
        "backend.remove",
        "upgrade.handoff",
    ] {
        let out = hactl_as_nobody(
            dir.path(),
            &[
                "--socket-dir",
                socket_dir,
                "--json",
                "call",
                "proxyd",
                cmd,
                "pool=app",
                &target,
                "weight=2",
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{cmd} as nobody: {text}");
        assert!(text.contains("forbidden"), "{cmd}: {text}");
    }
    // Nothing changed.
    let status = proxyd.request(r#"{"cmd":"status"}"#);
    assert!(
        !status.contains("\"drain\"") && !status.contains("disabled"),
        "{status}"
    );
}
