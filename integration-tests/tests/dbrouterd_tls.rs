//! TLS between clients and dbrouterd, in front of the real MariaDB topology: the `mariadb`
//! CLI over TLS (the server certificate verified against the test's own CA) with its queries
//! routed as usual (checked by `@@server_id`), `caching_sha2_password` full authentication for
//! a user configured with only a hash (over TLS, and without TLS by dbrouterd's RSA key), a
//! user admitted over TLS only (`require_tls`), a listener that requires TLS refusing plain
//! clients with ERROR 3159, and bad TLS bytes costing nobody else anything.

use std::io::{Read, Write};

use integration_tests::dbrouter_tls::{BackendSpec, TlsDbrouter, TlsListenerSpec};
use integration_tests::mariadb::DbTopology;
use integration_tests::mysql_client::{err_code, RawClient};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};

const PRIMARY: &str = "1";
const REPLICAS: [&str; 2] = ["3", "4"];
const CLIENT_SSL: u32 = 0x800;

struct Setup {
    router: TlsDbrouter,
    // Dropped after dbrouterd.
    _db: DbTopology,
}

fn start() -> Setup {
    let db = DbTopology::start("dbr-tls").expect("MariaDB topology");
    // A user dbrouterd admits over TLS only (`require_tls`).
    db.root_sql(
        db.primary(),
        "CREATE USER 'secure'@'127.0.0.1' IDENTIFIED BY 'securepw'; \
         GRANT SELECT ON *.* TO 'secure'@'127.0.0.1';",
    )
    .expect("create the TLS-only user");
    db.wait_replicated(std::time::Duration::from_secs(60))
        .expect("the user on every server");
    let backends = BackendSpec::topology(&db);
    let pool = "{ writers: [db1, db2], readers: [db3, db4] }";
    let router = TlsDbrouter::start(
        &backends,
        &[
            TlsListenerSpec {
                name: "tls",
                pool: pool.into(),
                tls: Some(false),
            },
            TlsListenerSpec {
                name: "tlsonly",
                pool: pool.into(),
                tls: Some(true),
            },
        ],
        &[
            "{ name: app, password: apppw }",
            "{ name: report, password_hash: \"*791C51FBA9525165285F44C57F2B3F5E11DDE6AC\" }",
            "{ name: secure, password: securepw, require_tls: true }",
        ],
        "{ user: monitor, password: monitorpw }",
    )
    .expect("dbrouterd");
    Setup { router, _db: db }
}

/// The capability flags of a greeting payload.
fn greeting_caps(greeting: &[u8]) -> u32 {
    let version_end = greeting[1..]
        .iter()
        .position(|&b| b == 0)
        .expect("server version")
        + 1;
    let at = version_end + 1 + 4 + 8 + 1;
    let low = u32::from(u16::from_le_bytes([greeting[at], greeting[at + 1]]));
    let high = u32::from(u16::from_le_bytes([
        greeting[at + 3 + 2],
        greeting[at + 3 + 3],
    ]));
    low | high << 16
}

/// The 32 fixed bytes of a handshake response (an SSLRequest when `caps` has CLIENT_SSL).
fn fixed_response(caps: u32) -> Vec<u8> {
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 23]);
    p
}

/// Whether the server closes the connection (after whatever TLS alert it sends) within the
/// client's read timeout.
fn closes(raw: &mut RawClient) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match raw.stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

/// PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH.
const BASIC_CAPS: u32 = 0x200 | 0x8000 | 0x8_0000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_through_dbrouterd() {
    let setup = tokio::task::spawn_blocking(start).await.expect("start");
    let r = &setup.router;
    let tls = r.verified_tls();
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();

    // The CLI over TLS, the certificate verified: the client shows the cipher, and reads and
    // writes go where they always go.
    let out = r
        .mariadb(
            "tls",
            "app",
            "apppw",
            &tls,
            "status\nSELECT @@server_id;\nSELECT /* route=primary */ @@server_id;\n",
        )
        .expect("mariadb over TLS");
    assert!(
        out.lines()
            .any(|l| l.starts_with("SSL:") && l.contains("Cipher in use")),
        "the client reports TLS: {out}"
    );
    let ids: Vec<&str> = out.lines().rev().take(2).collect();
    assert_eq!(ids[0], PRIMARY, "routed to the primary: {out}");
    assert!(REPLICAS.contains(&ids[1]), "read from a replica: {out}");

    // caching_sha2_password over TLS: the fast path for a user with a password, full
    // authentication (the cleartext, inside TLS) for a user with only a hash.
    for (user, password) in [("app", "apppw"), ("report", "reportpw")] {
        let mut options = tls.clone();
        options.push("--default-auth=caching_sha2_password");
        let who = r
            .mariadb("tls", user, password, &options, "SELECT CURRENT_USER()")
            .unwrap_or_else(|e| panic!("{user} with caching_sha2_password over TLS: {e}"));
        assert!(who.starts_with(&format!("{user}@")), "{who}");
        let denied = r
            .mariadb("tls", user, "wrong", &options, "SELECT 1")
            .expect_err("a wrong password over TLS must fail");
        assert!(denied.to_string().contains("1045"), "{denied}");
    }
    // Without TLS the hash-only user's password comes encrypted with dbrouterd's RSA key,
    // which the client asks for: the pair is generated for that first login (the log says
    // so), and a wrong password is still refused.
    let plain_sha2 = ["--skip-ssl", "--default-auth=caching_sha2_password"];
    assert!(
        !r.daemon.log_text().contains("generated an RSA key pair"),
        "no key pair before a client needs one"
    );
    let who = r
        .mariadb(
            "tls",
            "report",
            "reportpw",
            &plain_sha2,
            "SELECT CURRENT_USER()",
        )
        .expect("report without TLS, by RSA");
    assert!(who.starts_with("report@"), "{who}");
    let log = r.daemon.log_text();
    assert!(
        log.contains("generated an RSA key pair") && log.contains("bits=2048"),
        "the RSA exchange was used: {log}"
    );
    let denied = r
        .mariadb("tls", "report", "wrong", &plain_sha2, "SELECT 1")
        .expect_err("a wrong password by RSA must fail");
    assert!(denied.to_string().contains("1045"), "{denied}");
    assert!(
        !r.daemon.log_text().contains("reportpw"),
        "the password never reaches the log"
    );

    // A plain client on the same listener still works; it watches the bad input below.
    let mut bystander = Conn::new(
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(r.port("tls"))
            .user(Some("app"))
            .pass(Some("apppw"))
            .prefer_socket(false),
    )
    .await
    .expect("plain client on a TLS listener");
    let id: Option<String> = bystander
        .query_first("SELECT /* route=primary */ @@server_id")
        .await
        .expect("bystander query");
    assert_eq!(id.as_deref(), Some(PRIMARY));

    // A user that requires TLS: in over TLS, refused without it even with its password.
    let who = r
        .mariadb("tls", "secure", "securepw", &tls, "SELECT CURRENT_USER()")
        .expect("the TLS-only user over TLS");
    assert!(who.starts_with("secure@"), "{who}");
    let refused = r
        .mariadb("tls", "secure", "securepw", &["--skip-ssl"], "SELECT 1")
        .expect_err("the TLS-only user without TLS must be refused");
    assert!(refused.to_string().contains("1045"), "{refused}");
    assert!(
        r.daemon.log_text().contains("the user requires TLS"),
        "the log says why"
    );

    // The listener that requires TLS: plain clients get 3159, TLS clients get in.
    let refused = r
        .mariadb("tlsonly", "app", "apppw", &["--skip-ssl"], "SELECT 1")
        .expect_err("a plain client must be refused");
    assert!(refused.to_string().contains("3159"), "{refused}");
    let id = r
        .mariadb(
            "tlsonly",
            "app",
            "apppw",
            &tls,
            "SELECT /* route=primary */ @@server_id",
        )
        .expect("TLS client on the TLS-only listener");
    assert_eq!(id, PRIMARY);
    let mut raw = RawClient::connect(r.addr("tlsonly")).expect("connect");
    let (_, greeting) = raw.read_packet().expect("read").expect("greeting");
    assert_ne!(
        greeting_caps(&greeting) & CLIENT_SSL,
        0,
        "CLIENT_SSL offered"
    );
    let mut response = fixed_response(BASIC_CAPS);
    response.extend_from_slice(b"app\0\0");
    raw.write_packet(1, &response).expect("write");
    let (_, err) = raw.read_packet().expect("read").expect("an ERR packet");
    assert_eq!(err_code(&err), Some(3159), "{err:?}");
    assert!(raw.is_closed());

    // Bad TLS bytes after an SSLRequest: that connection closes, nobody else notices.
    for listener in ["tls", "tlsonly"] {
        let mut raw = RawClient::connect(r.addr(listener)).expect("connect");
        raw.read_packet().expect("read").expect("greeting");
        raw.write_packet(1, &fixed_response(BASIC_CAPS | CLIENT_SSL))
            .expect("SSLRequest");
        raw.stream
            .write_all(b"\x16\x03\x01\x00\x05hello, this is not TLS\r\n")
            .expect("garbage");
        assert!(
            closes(&mut raw),
            "{listener}: bad TLS bytes close the connection"
        );
    }
    // One that asks for TLS and then says nothing stays pending without holding anyone up.
    let mut silent = RawClient::connect(r.addr("tls")).expect("connect");
    silent.read_packet().expect("read").expect("greeting");
    silent
        .write_packet(1, &fixed_response(BASIC_CAPS | CLIENT_SSL))
        .expect("SSLRequest");
    let id: Option<String> = bystander
        .query_first("SELECT /* route=primary */ @@server_id")
        .await
        .expect("bystander after bad TLS");
    assert_eq!(
        id.as_deref(),
        Some(PRIMARY),
        "the other client kept working"
    );
    let out = r
        .mariadb("tls", "app", "apppw", &tls, "SELECT @@server_id")
        .expect("TLS client after bad TLS");
    assert!(REPLICAS.contains(&out.as_str()), "{out}");
    drop(silent);
    bystander.disconnect().await.expect("disconnect");

    let log = r.daemon.log_text();
    for secret in ["apppw", "reportpw"] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
}
