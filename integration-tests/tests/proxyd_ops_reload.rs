//! proxyd reloads under load: valid files swap in without a failed request and keep the
//! servers that did not change; an invalid file is refused, the old configuration keeps
//! serving, and the error reaches `hactl`.

use std::time::Duration;

use integration_tests::backend::{get, Backend, Load, Proxyd};
use integration_tests::daemon::run;
use integration_tests::{shared_tempdir, wait_until};

fn config(a: &Backend, b: &Backend, weight_b: u32, extra_listener: bool) -> String {
    let extra = if extra_listener {
        "  - { name: extra, protocol: http, listen: 127.0.0.1:0, pool: app }\n"
    } else {
        ""
    };
    format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n{extra}\
         pools:\n  app:\n    servers: [{{ address: {} }}, {{ address: {}, weight: {weight_b} }}]\n",
        a.addr, b.addr
    )
}

fn write_config(proxyd: &Proxyd, body: &str) {
    let current = std::fs::read_to_string(&proxyd.daemon.config).expect("config");
    let head = current.split("listeners:").next().expect("head");
    std::fs::write(&proxyd.daemon.config, format!("{head}{body}")).expect("write config");
}

fn server_requests(proxyd: &Proxyd, address: std::net::SocketAddr) -> u64 {
    proxyd.status()["pools"]["app"]["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["address"] == address.to_string())
        .and_then(|s| s["requests"].as_u64())
        .unwrap_or(0)
}

#[test]
fn ten_reloads_during_load_fail_no_request_and_keep_unchanged_servers() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let mut proxyd = Proxyd::start(dir.path(), &config(&a, &b, 1, false));
    let addr = proxyd.addr("web");
    let load = Load::start(addr, 4);
    load.wait_for_more(100);
    for i in 0..10u32 {
        // Every reload changes something: b's weight, and a listener opened or closed.
        write_config(&proxyd, &config(&a, &b, 1 + i % 3, i % 2 == 0));
        let before = server_requests(&proxyd, a.addr);
        let answer = proxyd.daemon.request(r#"{"cmd":"reload"}"#);
        assert!(answer.contains("\"ok\":true"), "reload {i}: {answer}");
        // a did not change: its counters carry over instead of starting again at zero.
        assert!(server_requests(&proxyd, a.addr) >= before, "reload {i}");
        proxyd.refresh_listeners();
        assert_eq!(
            proxyd.listeners.contains_key("extra"),
            i % 2 == 0,
            "reload {i}"
        );
        load.wait_for_more(50);
    }
    let report = load.stop();
    report.assert_no_failure();
    assert_eq!(
        proxyd.addr("web"),
        addr,
        "the unchanged listener kept its socket"
    );
    let status: serde_json::Value =
        serde_json::from_str(&proxyd.daemon.request(r#"{"cmd":"status"}"#)).expect("json");
    assert_eq!(status["data"]["reloads"]["ok"], 10, "{status}");
    assert_eq!(proxyd.metric("proxyd_reloads_total{result=\"ok\"}"), 10);
    let weight_b = status["data"]["service"]["pools"]["app"]["servers"][1]["weight"].clone();
    // The last reload (i = 9) set 1 + 9 % 3.
    assert_eq!(weight_b, 1, "{status}");
}

#[test]
fn an_invalid_file_on_reload_is_refused_the_old_one_serves_and_hactl_says_why() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let proxyd = Proxyd::start(dir.path(), &config(&a, &b, 1, false));
    let addr = proxyd.addr("web");
    let good = std::fs::read_to_string(&proxyd.daemon.config).expect("config");
    let load = Load::start(addr, 2);
    load.wait_for_more(50);

    std::fs::write(
        &proxyd.daemon.config,
        good.replace("pool: app }", "pool: nowhere }"),
    )
    .expect("break config");
    let socket_dir = dir.path().to_str().expect("utf-8");
    let out = run("hactl", &["--socket-dir", socket_dir, "reload", "proxyd"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nowhere") && stderr.contains("running configuration stays"),
        "{stderr}"
    );
    load.wait_for_more(50);
    let report = load.stop();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let reply = get(addr, "/", &[]).expect("get");
    assert_eq!(reply.status, 200);
    let status = proxyd.daemon.request(r#"{"cmd":"status"}"#);
    assert!(status.contains("\"failed\":1"), "{status}");
    assert!(
        status.contains("nowhere"),
        "the last error is in status: {status}"
    );
    // A valid file again reloads.
    std::fs::write(&proxyd.daemon.config, &good).expect("restore");
    let out = run("hactl", &["--socket-dir", socket_dir, "reload", "proxyd"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        "serving after the valid reload",
        Duration::from_secs(5),
        || get(addr, "/", &[]).ok().filter(|r| r.status == 200),
    );
}

#[test]
fn a_server_that_is_down_stays_down_across_a_reload_that_does_not_change_it() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let b = Backend::http("b");
    let other = Backend::http("other");
    let pools = |other_weight: u32| {
        format!(
            "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
             pools:\n  app:\n    servers: [{{ address: {} }}, {{ address: {} }}]\n\
             \x20   active_health: {{ kind: http, path: /healthz, interval: 100ms, timeout: 100ms, rise: 2, fall: 1 }}\n\
             \x20 other:\n    servers: [{{ address: {}, weight: {other_weight} }}]\n",
            a.addr, b.addr, other.addr
        )
    };
    let proxyd = Proxyd::start(dir.path(), &pools(1));
    b.set_healthy(false);
    wait_until("b down", Duration::from_secs(10), || {
        (proxyd.server_state("app", b.addr) == "down").then_some(())
    });
    // A reload that changes another pool only: b keeps its health state (no window in which
    // a fresh "up" sends it requests).
    write_config(&proxyd, &pools(2));
    let answer = proxyd.daemon.request(r#"{"cmd":"reload"}"#);
    assert!(answer.contains("\"ok\":true"), "{answer}");
    assert_eq!(proxyd.server_state("app", b.addr), "down");
    let before = b.requests();
    for _ in 0..10 {
        let reply = get(proxyd.addr("web"), "/", &[]).expect("get");
        assert_eq!(reply.header("x-server"), Some("a"));
    }
    assert_eq!(b.requests(), before);
}
