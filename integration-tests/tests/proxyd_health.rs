//! Servers failing under proxyd: passive and active health checks taking a server out and
//! back, a server killed during a load of GETs (no GET fails), a hung server (timeout, then
//! the next server).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use integration_tests::backend::{get, Backend, Proxyd};
use integration_tests::{shared_tempdir, wait_until};

fn config(pool_extra: &str, backends: &[&Backend]) -> String {
    let servers: String = backends
        .iter()
        .map(|b| format!("      - {{ address: \"{}\" }}\n", b.addr))
        .collect();
    format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: \"127.0.0.1:0\", pool: app }}\n\
         pools:\n  app:\n{pool_extra}    servers:\n{servers}"
    )
}

fn tally(proxy: &Proxyd, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let reply = get(proxy.addr("web"), "/", &[]).expect("GET through proxyd");
        assert_eq!(reply.status, 200, "{reply:?}");
        *counts.entry(reply.body.trim().to_owned()).or_default() += 1;
    }
    counts
}

#[test]
fn passive_health_takes_a_failing_server_out_for_fail_timeout_then_back() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let mut b = Backend::http("b");
    let b_addr = b.addr;
    let proxy = Proxyd::start(
        dir.path(),
        &config(
            "    passive_health: { max_fails: 2, fail_timeout: 2s, on: [error, timeout] }\n",
            &[&a, &b],
        ),
    );
    assert_eq!(tally(&proxy, 4).len(), 2);
    b.kill();
    // Every GET succeeds (retried on a) while b's failures are counted; 2 failures take it out.
    let counts = tally(&proxy, 10);
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");
    wait_until("b to be marked down", Duration::from_secs(10), || {
        (proxy.server_state("app", b_addr) == "down").then_some(())
    });
    let b = Backend::http_at("b", b_addr);
    wait_until(
        "b to come back after fail_timeout",
        Duration::from_secs(20),
        || (proxy.server_state("app", b_addr) == "up").then_some(()),
    );
    wait_until("b to get requests again", Duration::from_secs(10), || {
        tally(&proxy, 4).contains_key("b").then_some(())
    });
    assert!(b.requests() > 0);
    assert!(proxy.metric("proxyd_health_transitions_total{pool=\"app\"") >= 1);
}

#[test]
fn active_health_checks_take_a_server_out_and_bring_it_back() {
    let dir = shared_tempdir();
    let (a, b) = (Backend::http("a"), Backend::http("b"));
    let proxy = Proxyd::start(
        dir.path(),
        &config(
            "    active_health: { kind: http, path: /healthz, expect_status: \"200-299\", interval: 100ms, timeout: 100ms, rise: 2, fall: 2 }\n",
            &[&a, &b],
        ),
    );
    assert_eq!(tally(&proxy, 4).len(), 2);
    b.set_healthy(false);
    wait_until(
        "b to be marked down by active checks",
        Duration::from_secs(20),
        || (proxy.server_state("app", b.addr) == "down").then_some(()),
    );
    let before = b.requests();
    assert_eq!(tally(&proxy, 10).get("a"), Some(&10));
    assert_eq!(b.requests(), before, "a server down gets no traffic");
    let status = proxy.status();
    let why = status["pools"]["app"]["servers"][1]["why"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(why.contains("active check failed"), "{why}");

    b.set_healthy(true);
    wait_until("b to be up again", Duration::from_secs(20), || {
        (proxy.server_state("app", b.addr) == "up").then_some(())
    });
    wait_until("b to get requests again", Duration::from_secs(10), || {
        tally(&proxy, 4).contains_key("b").then_some(())
    });
}

#[test]
fn a_tcp_active_check_marks_a_dead_server_down() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let mut b = Backend::http("b");
    let b_addr = b.addr;
    let proxy = Proxyd::start(
        dir.path(),
        &config(
            "    active_health: { kind: tcp, interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }\n    slow_start: 1s\n",
            &[&a, &b],
        ),
    );
    b.kill();
    wait_until("b to be marked down", Duration::from_secs(20), || {
        (proxy.server_state("app", b_addr) == "down").then_some(())
    });
    let _b = Backend::http_at("b", b_addr);
    wait_until("b to be up again", Duration::from_secs(20), || {
        (proxy.server_state("app", b_addr) == "up").then_some(())
    });
}

#[test]
fn a_server_killed_during_a_load_of_gets_fails_no_request() {
    let dir = shared_tempdir();
    let (a, mut b, c) = (Backend::http("a"), Backend::http("b"), Backend::http("c"));
    let proxy = Proxyd::start(dir.path(), &config("", &[&a, &b, &c]));
    let addr = proxy.addr("web");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let stop = Arc::clone(&stop);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match get(addr, "/", &[]) {
                        Ok(reply) if reply.status == 200 => {}
                        other => failures.push(format!("{other:?}")),
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
                failures
            })
        })
        .collect();
    wait_until("some load before the kill", Duration::from_secs(20), || {
        (done.load(Ordering::SeqCst) >= 100).then_some(())
    });
    b.kill();
    let at_kill = done.load(Ordering::SeqCst);
    wait_until("more load after the kill", Duration::from_secs(30), || {
        (done.load(Ordering::SeqCst) >= at_kill + 300).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    assert!(failures.is_empty(), "failed GETs: {failures:?}");
    assert!(a.requests() > 0 && c.requests() > 0);
}

#[test]
fn a_hung_server_times_out_and_the_request_goes_to_the_next_server() {
    let dir = shared_tempdir();
    let (a, b) = (Backend::http("a"), Backend::http("b"));
    a.set_hang(true);
    let proxy = Proxyd::start(
        dir.path(),
        &config(
            "    timeouts: { connect: 1s, read: 500ms, send: 1s }\n    passive_health: { max_fails: 1, fail_timeout: 30s }\n",
            &[&a, &b],
        ),
    );
    let counts = tally(&proxy, 6);
    assert_eq!(counts.get("b"), Some(&6), "{counts:?}");
    assert!(a.requests() >= 1, "the hung server was tried");
    assert!(proxy.metric("proxyd_upstream_failures_total{kind=\"timeout\",pool=\"app\"") >= 1);
    assert_eq!(proxy.server_state("app", a.addr), "down");
}
