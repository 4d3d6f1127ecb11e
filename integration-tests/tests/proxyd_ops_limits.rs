//! proxyd's limits and the metrics they leave: a pool's queue in front of servers at
//! `max_conns` answers 503 when full; per-server counts in `/metrics` match the requests
//! the test made.

use std::time::Duration;

use integration_tests::backend::{get, Backend, Proxyd};
use integration_tests::{shared_tempdir, wait_until};

#[test]
fn a_full_queue_answers_503_and_the_queued_request_is_served_when_a_slot_frees() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let proxyd = Proxyd::start(
        dir.path(),
        &format!(
            "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
             pools:\n  app:\n    servers: [{{ address: {}, max_conns: 1 }}]\n    queue: {{ max: 1, timeout: 20s }}\n",
            a.addr
        ),
    );
    let addr = proxyd.addr("web");
    a.set_hold(true);
    let first = std::thread::spawn(move || get(addr, "/", &[]));
    wait_until("the first request on a", Duration::from_secs(10), || {
        (a.requests() == 1).then_some(())
    });
    let second = std::thread::spawn(move || get(addr, "/", &[]));
    wait_until("the second request queued", Duration::from_secs(10), || {
        (proxyd.status()["pools"]["app"]["queue"]["waiting"] == 1).then_some(())
    });
    assert_eq!(proxyd.metric("proxyd_pool_queue_length{pool=\"app\"}"), 1);

    let third = get(addr, "/", &[]).expect("third");
    assert_eq!(third.status, 503, "{third:?}");
    assert!(third.body.contains("queue full"), "{third:?}");
    assert_eq!(a.requests(), 1, "the queued request waits for the slot");

    a.set_hold(false);
    for client in [first, second] {
        let reply = client.join().expect("client").expect("reply");
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(a.requests(), 2);

    // The metrics show exactly what happened.
    let server = format!("pool=\"app\",server=\"{}\"", a.addr);
    assert_eq!(
        proxyd.metric(&format!("proxyd_server_requests_total{{{server}}}")),
        2
    );
    assert_eq!(
        proxyd.metric(&format!(
            "proxyd_server_responses_total{{class=\"2xx\",{server}}}"
        )),
        2
    );
    assert_eq!(
        proxyd.metric(&format!("proxyd_server_response_seconds_count{{{server}}}")),
        2
    );
    assert_eq!(
        proxyd.metric("proxyd_proxy_errors_total{kind=\"queue_full\",listener=\"web\"}"),
        1
    );
    assert_eq!(
        proxyd.metric("proxyd_requests_total{class=\"5xx\",listener=\"web\"}"),
        1
    );
    assert_eq!(
        proxyd.metric("proxyd_requests_total{class=\"2xx\",listener=\"web\"}"),
        2
    );
    assert_eq!(
        proxyd.metric("proxyd_connections_total{listener=\"web\"}"),
        3
    );
    assert_eq!(
        proxyd.metric(&format!("proxyd_server_active{{{server}}}")),
        0
    );
    assert_eq!(proxyd.metric(&format!("proxyd_server_up{{{server}}}")), 1);
    assert_eq!(proxyd.metric("proxyd_pool_queue_length{pool=\"app\"}"), 0);
}

#[test]
fn a_request_that_waits_past_the_queue_timeout_gets_503() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let proxyd = Proxyd::start(
        dir.path(),
        &format!(
            "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
             pools:\n  app:\n    servers: [{{ address: {}, max_conns: 1 }}]\n    queue: {{ max: 5, timeout: 200ms }}\n",
            a.addr
        ),
    );
    let addr = proxyd.addr("web");
    a.set_hold(true);
    let first = std::thread::spawn(move || get(addr, "/", &[]));
    wait_until("the first request on a", Duration::from_secs(10), || {
        (a.requests() == 1).then_some(())
    });
    let second = get(addr, "/", &[]).expect("second");
    assert_eq!(second.status, 503, "{second:?}");
    assert!(second.body.contains("queue timeout"), "{second:?}");
    a.set_hold(false);
    assert_eq!(first.join().expect("client").expect("reply").status, 200);
    assert_eq!(
        proxyd.metric("proxyd_proxy_errors_total{kind=\"queue_timeout\",listener=\"web\"}"),
        1
    );
}

#[test]
fn a_client_over_the_listener_rate_limit_gets_429_and_others_do_not() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let proxyd = Proxyd::start(
        dir.path(),
        &format!(
            "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app, rate_limit: {{ rate: 0.001, burst: 3 }} }}\n\
             \x20 - {{ name: open, protocol: http, listen: 127.0.0.1:0, pool: app }}\n\
             pools:\n  app:\n    servers: [{{ address: {} }}]\n",
            a.addr
        ),
    );
    let statuses: Vec<u16> = (0..5)
        .map(|_| get(proxyd.addr("web"), "/", &[]).expect("get").status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // Another listener has no limit.
    assert_eq!(get(proxyd.addr("open"), "/", &[]).expect("get").status, 200);
    assert_eq!(a.requests(), 4);
    assert_eq!(
        proxyd.metric("proxyd_proxy_errors_total{kind=\"rate_limited\",listener=\"web\"}"),
        2
    );
}

/// Replaces everything from `listeners:` on in the running proxyd's file (the test's head —
/// control socket and such — stays).
fn rewrite_config(proxyd: &Proxyd, body: &str) {
    let current = std::fs::read_to_string(&proxyd.daemon.config).expect("config");
    let head = current.split("listeners:").next().expect("head");
    std::fs::write(&proxyd.daemon.config, format!("{head}{body}")).expect("write config");
}

#[test]
fn a_reload_keeps_an_unchanged_rate_limit_exhausted_and_a_changed_one_starts_fresh() {
    let dir = shared_tempdir();
    let a = Backend::http("a");
    let body = |burst: u32, weight: u32| {
        format!(
            "listeners:\n  - {{ name: web, protocol: http, listen: 127.0.0.1:0, pool: app, rate_limit: {{ rate: 0.001, burst: {burst} }} }}\n\
             pools:\n  app:\n    servers: [{{ address: {}, weight: {weight} }}]\n",
            a.addr
        )
    };
    let proxyd = Proxyd::start(dir.path(), &body(2, 1));
    let addr = proxyd.addr("web");
    let status = || get(addr, "/", &[]).expect("get").status;
    let statuses: Vec<u16> = (0..3).map(|_| status()).collect();
    assert_eq!(statuses, [200, 200, 429]);

    let reload = |why: &str| {
        let answer = proxyd.daemon.request(r#"{"cmd":"reload"}"#);
        assert!(answer.contains("\"ok\":true"), "{why}: {answer}");
    };
    // The same file, then one changing only the pool: the client's bucket stays empty.
    reload("unchanged file");
    assert_eq!(status(), 429, "after reloading an unchanged file");
    rewrite_config(&proxyd, &body(2, 3));
    reload("pool weight changed");
    assert_eq!(status(), 429, "after a reload that changed only the pool");

    // A changed limit starts with a full bucket.
    rewrite_config(&proxyd, &body(3, 3));
    reload("burst changed");
    let statuses: Vec<u16> = (0..4).map(|_| status()).collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(a.requests(), 5);
}
