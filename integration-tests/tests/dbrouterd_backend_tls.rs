//! TLS between dbrouterd and the database servers (`backend_tls`), against the real MariaDB
//! topology started with certificates from the test's own CA, and accounts that `REQUIRE SSL`
//! (the monitor's among them) or `REQUIRE X509`:
//! - `verify_identity`: reads reach a replica and a transaction the primary (by `@@server_id`),
//!   each over TLS (`Ssl_version` of the backend session), and the monitor, which can only log
//!   in over TLS, sees every server up;
//! - without `backend_tls` the servers refuse the monitor, which status shows, and no client
//!   gets through;
//! - `verify_ca` with another CA, and `verify_identity` with a name the certificate does not
//!   carry, refuse the server; `verify_ca` with that name accepts it (the name is not checked);
//! - an account that requires a client certificate gets the server's refusal without one, and
//!   logs in with `backend_tls.cert`;
//! - `failover.replication_ssl`: after a switchover the servers replicate from the new writer
//!   over TLS, with a replication account that requires it.

use std::path::Path;
use std::time::Duration;

use integration_tests::certificate::TestCa;
use integration_tests::dbrouter_tls::{BackendSpec, TlsDbrouter, TlsListenerSpec};
use integration_tests::mariadb::DbTopology;
use integration_tests::wait_until;

const PRIMARY: &str = "1";
const REPLICAS: [&str; 2] = ["3", "4"];

const USERS: &[&str] = &[
    "{ name: secure, password: securepw }",
    "{ name: certified, password: certifiedpw }",
];

fn backends(db: &DbTopology, tls_name: Option<&str>) -> Vec<BackendSpec> {
    let mut backends = BackendSpec::topology(db);
    for b in &mut backends {
        b.tls_name = tls_name.map(str::to_string);
    }
    backends
}

fn router(db: &DbTopology, tls_name: Option<&str>, backend_tls: &str) -> TlsDbrouter {
    let extra = if backend_tls.is_empty() {
        String::new()
    } else {
        format!("backend_tls: {backend_tls}\n")
    };
    TlsDbrouter::start_with(
        &backends(db, tls_name),
        &[TlsListenerSpec {
            name: "app",
            pool: "{ writers: [db1, db2], readers: [db3, db4] }".into(),
            tls: None,
        }],
        USERS,
        "{ user: monitor, password: monitorpw }",
        &extra,
    )
    .expect("dbrouterd")
}

fn verified(mode: &str, ca: &Path) -> String {
    format!("{{ mode: {mode}, ca: {} }}", ca.display())
}

/// What `secure` sees of its backend session through dbrouterd: the server's id and the
/// session's TLS version, read outside and inside a transaction.
fn seen(router: &TlsDbrouter, user: &str, password: &str) -> anyhow::Result<String> {
    router.mariadb(
        "app",
        user,
        password,
        &[],
        "SELECT @@server_id, VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
         WHERE VARIABLE_NAME = 'SSL_VERSION';\n\
         BEGIN;\n\
         SELECT @@server_id, VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
         WHERE VARIABLE_NAME = 'SSL_VERSION';\n\
         COMMIT;\n",
    )
}

/// The backends as dbrouterd's status shows them.
fn backends_in_status(router: &TlsDbrouter) -> Option<Vec<serde_json::Value>> {
    let status: serde_json::Value =
        serde_json::from_str(&router.daemon.request(r#"{"cmd":"status"}"#)).ok()?;
    status["data"]["service"]["backends"].as_array().cloned()
}

/// Waits until dbrouterd's log says `what` (the monitor's reason for a server being down).
fn logged(router: &TlsDbrouter, what: &str) {
    wait_until(
        &format!("dbrouterd to log {what}"),
        Duration::from_secs(30),
        || router.daemon.log_text().contains(what).then_some(()),
    );
}

#[test]
fn dbrouterd_reaches_servers_over_verified_tls_and_refuses_what_it_cannot_verify() {
    if !integration_tests::require_root(
        "dbrouterd_reaches_servers_over_verified_tls_and_refuses_what_it_cannot_verify",
    ) {
        return;
    }
    let certs = integration_tests::shared_tempdir();
    let ca = TestCa::new(certs.path(), "ca");
    ca.issue("server", "localhost", "IP:127.0.0.1,DNS:localhost");
    let (client_cert, client_key) = ca.issue("dbrouterd", "dbrouterd", "DNS:dbrouterd");
    let other = TestCa::new(certs.path(), "other-ca");
    let tls_dir = certs.path().display().to_string();
    let db = DbTopology::start_with("dbr-backend-tls", &[("TOPOLOGY_TLS_DIR", &tls_dir)])
        .expect("MariaDB topology with TLS");
    db.root_sql(
        db.primary(),
        "CREATE USER 'secure'@'127.0.0.1' IDENTIFIED BY 'securepw' REQUIRE SSL;
         GRANT ALL PRIVILEGES ON appdb.* TO 'secure'@'127.0.0.1';
         CREATE USER 'certified'@'127.0.0.1' IDENTIFIED BY 'certifiedpw' REQUIRE X509;
         GRANT ALL PRIVILEGES ON appdb.* TO 'certified'@'127.0.0.1';
         ALTER USER 'monitor'@'127.0.0.1' REQUIRE SSL;",
    )
    .expect("accounts that require TLS");
    db.wait_replicated(Duration::from_secs(30))
        .expect("the accounts reach every server");

    // verify_identity: the certificate names 127.0.0.1, the host of every backend address.
    let verifying = router(&db, None, &verified("verify_identity", &ca.cert));
    let rows = seen(&verifying, "secure", "securepw").expect("secure through TLS");
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        REPLICAS.contains(&rows[0][0]),
        "a read on a replica: {rows:?}"
    );
    assert_eq!(
        rows[1][0], PRIMARY,
        "the transaction on the primary: {rows:?}"
    );
    for row in &rows {
        assert!(row[1].starts_with("TLSv1."), "a TLS session: {rows:?}");
    }
    // The monitor logs in only over TLS (REQUIRE SSL): every server is seen up.
    wait_until(
        "the monitor to see every server up over TLS",
        Duration::from_secs(30),
        || {
            let backends = backends_in_status(&verifying)?;
            let all = backends.iter().all(|b| {
                b["state"] == "up" && b["tls"] == "verify_identity" && b["reachable"] == true
            });
            (backends.len() == 4 && all).then_some(())
        },
    );
    drop(verifying);

    // No backend_tls: the servers refuse the monitor (REQUIRE SSL), status says so, and no
    // client gets through.
    let plain = router(&db, None, "");
    wait_until(
        "the monitor's refusal in status",
        Duration::from_secs(30),
        || {
            backends_in_status(&plain)?
                .iter()
                .all(|b| {
                    b["state"] == "down"
                        && b["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains("Access denied for user 'monitor'"))
                })
                .then_some(())
        },
    );
    seen(&plain, "secure", "securepw").expect_err("no server takes the monitor");
    drop(plain);

    // A certificate from another CA is refused.
    let wrong_ca = router(&db, None, &verified("verify_ca", &other.cert));
    seen(&wrong_ca, "secure", "securepw").expect_err("unknown issuer");
    logged(&wrong_ca, "invalid peer certificate: UnknownIssuer");
    drop(wrong_ca);

    // A name the certificate does not carry: refused by verify_identity, not by verify_ca.
    let wrong_name = router(
        &db,
        Some("db.example"),
        &verified("verify_identity", &ca.cert),
    );
    seen(&wrong_name, "secure", "securepw").expect_err("the certificate names 127.0.0.1");
    logged(&wrong_name, "certificate not valid for name");
    drop(wrong_name);
    let chain_only = router(&db, Some("db.example"), &verified("verify_ca", &ca.cert));
    seen(&chain_only, "secure", "securepw").expect("verify_ca does not check the name");
    drop(chain_only);

    // An account that requires a client certificate: dbrouterd presents its own.
    let without = router(&db, None, "{ mode: required }");
    seen(&without, "secure", "securepw").expect("required: TLS, certificate unchecked");
    let err = seen(&without, "certified", "certifiedpw").expect_err("REQUIRE X509");
    assert!(
        err.to_string()
            .contains("Access denied for user 'certified'"),
        "the server's refusal reaches the client: {err}"
    );
    drop(without);
    let with = router(
        &db,
        None,
        &format!(
            "{{ mode: verify_identity, ca: {}, cert: {}, key: {} }}",
            ca.cert.display(),
            client_cert.display(),
            client_key.display()
        ),
    );
    let rows = seen(&with, "certified", "certifiedpw").expect("REQUIRE X509 with a certificate");
    assert!(rows.lines().all(|l| l.contains("TLSv1.")), "{rows}");
    drop(with);

    // failover.replication_ssl: the replication account now requires TLS, and after a
    // switchover every server dbrouterd pointed at the new writer (the old writer with the
    // account, the replicas keeping theirs) replicates from it over TLS.
    db.root_sql(
        db.primary(),
        "ALTER USER 'repl'@'127.0.0.1' REQUIRE SSL; ALTER USER 'repl'@'localhost' REQUIRE SSL;",
    )
    .expect("the replication account requires TLS");
    db.wait_replicated(Duration::from_secs(30))
        .expect("the account change reaches every server");
    let switching = router(
        &db,
        None,
        &format!(
            "{}\nfailover: {{ replication_user: repl, replication_password: replpw, replication_ssl: true }}",
            verified("verify_identity", &ca.cert)
        ),
    );
    wait_until(
        "the monitor to see every server up",
        Duration::from_secs(30),
        || {
            let backends = backends_in_status(&switching)?;
            (backends.len() == 4 && backends.iter().all(|b| b["state"] == "up")).then_some(())
        },
    );
    let answer: serde_json::Value =
        serde_json::from_str(&switching.daemon.request(r#"{"cmd":"db.switchover"}"#))
            .expect("switchover answer");
    assert_eq!(answer["ok"], true, "switchover: {answer}");
    assert_eq!(answer["data"]["writer"], "db2", "{answer}");
    let standby_port = db.standby().addr.port();
    for server in [db.primary(), &db.replicas()[0], &db.replicas()[1]] {
        wait_until(
            &format!("the {} to replicate from db2 over TLS", server.name),
            Duration::from_secs(30),
            || {
                let status = db.replica_status(server).ok()??;
                (status.master_port == Some(standby_port)
                    && status.io_running == "Yes"
                    && status.master_ssl_allowed == "Yes")
                    .then_some(())
            },
        );
    }
}
