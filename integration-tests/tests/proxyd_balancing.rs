//! proxyd's balancing as a client sees it: each algorithm's distribution, affinity that holds
//! (also across two proxyd nodes sharing a sticky secret), and backup servers.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::backend::{get, Backend, Proxyd};
use integration_tests::{shared_tempdir, wait_until};

fn servers_yaml(backends: &[(&Backend, &str)]) -> String {
    backends
        .iter()
        .map(|(b, extra)| format!("      - {{ address: \"{}\"{extra} }}\n", b.addr))
        .collect()
}

fn pool_config(balance_lines: &str, servers: &str) -> String {
    format!(
        "listeners:\n  - {{ name: web, protocol: http, listen: \"127.0.0.1:0\", pool: app }}\n\
         pools:\n  app:\n{balance_lines}    servers:\n{servers}"
    )
}

/// Which server answered each of `n` GETs of `path`.
fn tally(
    proxy: &Proxyd,
    n: usize,
    path: &str,
    headers: &[(&str, &str)],
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let reply = get(proxy.addr("web"), path, headers).expect("GET through proxyd");
        assert_eq!(reply.status, 200, "{reply:?}");
        *counts.entry(reply.body.trim().to_owned()).or_default() += 1;
    }
    counts
}

#[test]
fn round_robin_follows_the_weights() {
    let dir = shared_tempdir();
    let (a, b) = (Backend::http("a"), Backend::http("b"));
    let proxy = Proxyd::start(
        dir.path(),
        &pool_config(
            "    balance: round_robin\n",
            &servers_yaml(&[(&a, ", weight: 2"), (&b, "")]),
        ),
    );
    let counts = tally(&proxy, 30, "/", &[]);
    assert_eq!(counts.get("a"), Some(&20), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");
}

#[test]
fn least_conn_and_random_two_spread_sequential_requests_over_every_server() {
    for balance in ["least_conn", "random_two"] {
        let dir = shared_tempdir();
        let (a, b, c) = (Backend::http("a"), Backend::http("b"), Backend::http("c"));
        let proxy = Proxyd::start(
            dir.path(),
            &pool_config(
                &format!("    balance: {balance}\n"),
                &servers_yaml(&[(&a, ""), (&b, ""), (&c, "")]),
            ),
        );
        let counts = tally(&proxy, 90, "/", &[]);
        for name in ["a", "b", "c"] {
            let n = counts.get(name).copied().unwrap_or(0);
            // least_conn with idle servers shares ties round robin: exactly 30 each;
            // random_two is random: every server gets a fair share.
            assert!(n >= 10, "{balance}: {counts:?}");
        }
        if balance == "least_conn" {
            assert!(counts.values().all(|&n| n == 30), "{counts:?}");
        }
    }
}

#[test]
fn ip_hash_and_hash_keep_a_key_on_one_server_and_spread_keys() {
    let dir = shared_tempdir();
    let (a, b, c) = (Backend::http("a"), Backend::http("b"), Backend::http("c"));
    let servers = servers_yaml(&[(&a, ""), (&b, ""), (&c, "")]);
    let proxy = Proxyd::start(dir.path(), &pool_config("    balance: ip_hash\n", &servers));
    let counts = tally(&proxy, 20, "/", &[]);
    assert_eq!(
        counts.len(),
        1,
        "one client address, one server: {counts:?}"
    );
    drop(proxy);

    let dir = shared_tempdir();
    let proxy = Proxyd::start(
        dir.path(),
        &pool_config(
            "    balance: hash\n    hash_key: \"$request_uri$http_x_user\"\n",
            &servers,
        ),
    );
    let mut seen = BTreeMap::new();
    for key in 0..30 {
        let path = format!("/item/{key}");
        let counts = tally(&proxy, 3, &path, &[("x-user", "u1")]);
        assert_eq!(
            counts.len(),
            1,
            "{path} always goes to one server: {counts:?}"
        );
        let server = counts.keys().next().cloned().expect("server");
        *seen.entry(server).or_insert(0) += 1;
    }
    assert_eq!(
        seen.len(),
        3,
        "30 keys are spread over the 3 servers: {seen:?}"
    );
}

#[test]
fn sticky_cookie_holds_across_two_load_balancer_nodes_with_the_same_secret() {
    let dir = shared_tempdir();
    let secret = dir.path().join("sticky.key");
    std::fs::write(&secret, "a shared secret for both nodes\n").expect("secret");
    let (a, b, c) = (Backend::http("a"), Backend::http("b"), Backend::http("c"));
    let config = pool_config(
        &format!(
            "    balance: sticky\n    sticky: {{ cookie: HASRV, secret_file: {} }}\n",
            secret.display()
        ),
        &servers_yaml(&[(&a, ""), (&b, ""), (&c, "")]),
    );
    let dir1 = shared_tempdir();
    let dir2 = shared_tempdir();
    let lb1 = Proxyd::start(dir1.path(), &config);
    let lb2 = Proxyd::start(dir2.path(), &config);

    let mut servers_of_new_clients = BTreeMap::new();
    for _ in 0..6 {
        let first = get(lb1.addr("web"), "/", &[]).expect("GET");
        let cookie = first
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .expect("proxyd sets the sticky cookie")
            .to_owned();
        let server = first.body.trim().to_owned();
        *servers_of_new_clients.entry(server.clone()).or_insert(0) += 1;
        for lb in [&lb1, &lb2, &lb1, &lb2] {
            let again = get(lb.addr("web"), "/", &[("cookie", &cookie)]).expect("GET");
            assert_eq!(
                again.body.trim(),
                server,
                "the cookie {cookie} pins {server}"
            );
            assert!(
                again.header("set-cookie").is_none(),
                "a valid cookie is not reset"
            );
        }
    }
    assert!(
        servers_of_new_clients.len() > 1,
        "new clients are balanced: {servers_of_new_clients:?}"
    );

    // A forged cookie is ignored (the algorithm chooses, and a fresh cookie is set).
    let forged = get(
        lb2.addr("web"),
        "/",
        &[("cookie", "HASRV=3132372e302e302e313a31.00")],
    )
    .expect("GET");
    assert_eq!(forged.status, 200);
    assert!(forged.header("set-cookie").is_some());
}

#[test]
fn backup_servers_serve_only_while_every_primary_is_down() {
    let dir = shared_tempdir();
    let (mut a, mut b, spare) = (
        Backend::http("a"),
        Backend::http("b"),
        Backend::http("spare"),
    );
    let proxy = Proxyd::start(
        dir.path(),
        &pool_config(
            "    balance: round_robin\n    passive_health: { max_fails: 1, fail_timeout: 30s }\n",
            &servers_yaml(&[(&a, ""), (&b, ""), (&spare, ", backup: true")]),
        ),
    );
    let counts = tally(&proxy, 10, "/", &[]);
    assert!(!counts.contains_key("spare"), "{counts:?}");
    assert_eq!(proxy.server_state("app", spare.addr), "backup");

    a.kill();
    b.kill();
    // Every GET still succeeds: failed attempts go to the next server, then the backup.
    let counts = tally(&proxy, 10, "/", &[]);
    assert_eq!(counts.get("spare"), Some(&10), "{counts:?}");
    wait_until(
        "spare to be reported up (serving)",
        Duration::from_secs(10),
        || (proxy.server_state("app", spare.addr) == "up").then_some(()),
    );
    assert_eq!(proxy.server_state("app", a.addr), "down");
}
