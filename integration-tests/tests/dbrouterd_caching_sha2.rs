//! dbrouterd logging in to MySQL 8 style backends whose `caching_sha2_password` accounts need
//! full authentication: the backend (a purpose-built server, see
//! `integration_tests::mysql8_backend`; no MySQL 8 is installable here) answers
//! `perform_full_authentication`, dbrouterd asks for its RSA public key and sends the password
//! encrypted with it. Once with `caching_sha2_password` named in the greeting, once switched to
//! it by an AuthSwitchRequest. The `mariadb` CLI's query reaches the backend (its
//! `@@server_id`), a wrong password at the client is refused by dbrouterd, and a password the
//! backend does not take is refused by the backend.

use std::time::Duration;

use integration_tests::dbrouter_tls::{BackendSpec, TlsDbrouter, TlsListenerSpec};
use integration_tests::mysql8_backend::{Greeting, Mysql8Backend};
use integration_tests::{shared_tempdir, wait_until};

fn mysql8_behind_dbrouterd(greeting: Greeting, server_id: u32) {
    let keys = shared_tempdir();
    let backend = Mysql8Backend::start(
        keys.path(),
        server_id,
        greeting,
        &[
            ("app", "apppw"),
            ("monitor", "monitorpw"),
            // dbrouterd is configured with another password for this one.
            ("stale", "the-real-password"),
        ],
    )
    .expect("MySQL 8 test server");
    let router = TlsDbrouter::start(
        &[BackendSpec {
            name: "m8".into(),
            address: backend.addr,
            role: "writer",
            tls_name: None,
        }],
        &[TlsListenerSpec {
            name: "app",
            pool: "{ writers: [m8] }".into(),
            tls: None,
        }],
        &[
            "{ name: app, password: apppw }",
            "{ name: stale, password: stalepw }",
        ],
        "{ user: monitor, password: monitorpw, interval: 100ms, rise: 1 }",
    )
    .expect("dbrouterd");

    // The monitor's login (RSA) makes m8 the writer; then the client's query goes there.
    let answer = wait_until(
        "a query through dbrouterd to reach the MySQL 8 server",
        Duration::from_secs(30),
        || {
            router
                .mariadb("app", "app", "apppw", &[], "SELECT @@server_id")
                .ok()
        },
    );
    assert_eq!(answer, server_id.to_string(), "{greeting:?}");
    assert!(
        backend.rsa_logins() >= 2,
        "the monitor and the pool logged in by RSA full authentication ({greeting:?}): {}",
        backend.rsa_logins()
    );

    let denied = router
        .mariadb("app", "app", "wrong", &[], "SELECT @@server_id")
        .expect_err("a wrong password must be refused");
    assert!(denied.to_string().contains("1045"), "{denied}");

    let refused_before = backend.refused();
    let refused = router
        .mariadb("app", "stale", "stalepw", &[], "SELECT @@server_id")
        .expect_err("the backend must refuse a password it does not know");
    assert!(refused.to_string().contains("1045"), "{refused}");
    assert!(
        backend.refused() > refused_before,
        "the refusal came from the backend's RSA check"
    );
    let log = router.daemon.log_text();
    for secret in ["apppw", "stalepw", "monitorpw"] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
}

#[test]
fn caching_sha2_full_authentication_by_rsa() {
    mysql8_behind_dbrouterd(Greeting::CachingSha2, 81);
}

#[test]
fn auth_switch_to_caching_sha2_then_rsa() {
    mysql8_behind_dbrouterd(Greeting::NativeThenSwitch, 82);
}
