//! Real clients through dbrouterd with zero errors: the `mariadb` CLI, a Rust driver (text and
//! binary protocol, packets over 16 MiB both ways, CHANGE_USER, RESET_CONNECTION, PING) and
//! sysbench `oltp_read_write` (server-side prepared statements); and bad input (garbage,
//! wrong sequence ids, unknown commands, bad passwords) answered with proper ERR packets while
//! another client keeps working. One topology for all of it.

use std::process::Command;
use std::time::Duration;

use integration_tests::mysql_client::{err_code, Dbrouter, ListenerSpec, RawClient};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};

fn opts(port: u16, user: &str, password: &str, db: Option<&str>) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(db)
        .prefer_socket(false)
        .into()
}

fn start() -> Dbrouter {
    let r = Dbrouter::start(
        "dbr-clients",
        &[ListenerSpec {
            name: "app",
            pool: "{ writers: [db1, db2], readers: [db3, db4], balance: least_conn }".into(),
        }],
    )
    .expect("topology and dbrouterd");
    // Room for packets over 16 MiB on every server (new connections take the global value).
    for server in r.db.servers() {
        r.db.root_sql(server, "SET GLOBAL max_allowed_packet = 64 * 1024 * 1024")
            .expect("max_allowed_packet");
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_work_and_bad_input_gets_errors() {
    let r = tokio::task::spawn_blocking(start).await.expect("start");
    let port = r.port("app");

    // The CLI: schema, writes, reads, COM_INIT_DB (`use`), COM_STATISTICS (`status`).
    let out = r
        .cli(
            "app",
            "app",
            "apppw",
            "use appdb\nCREATE TABLE cli (id INT PRIMARY KEY, v VARCHAR(20));\nINSERT INTO cli VALUES (1, 'one'), (2, 'two');\nSELECT /* route=primary */ COUNT(*) FROM cli;\nstatus\n",
        )
        .expect("mariadb CLI");
    assert!(out.lines().any(|l| l == "2"), "{out}");
    assert!(
        out.contains("Uptime"),
        "status (COM_STATISTICS) answered: {out}"
    );
    // A user configured with only its password hash logs in and reaches the backends.
    let report = r
        .cli("app", "report", "reportpw", "SELECT CURRENT_USER()")
        .expect("report user");
    assert!(report.starts_with("report@"), "{report}");
    let denied = r
        .cli("app", "app", "wrong", "SELECT 1")
        .expect_err("bad password must fail");
    assert!(denied.to_string().contains("1045"), "{denied}");

    // The driver: text and binary protocol, big packets both ways.
    let mut c = Conn::new(opts(port, "app", "apppw", Some("appdb")))
        .await
        .expect("connect");
    c.query_drop("CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB)")
        .await
        .expect("create");
    let blob: Vec<u8> = (0..17 * 1024 * 1024 + 123)
        .map(|i| (i % 251) as u8)
        .collect();
    c.exec_drop("INSERT INTO big VALUES (?, ?)", (1, blob.clone()))
        .await
        .expect("17 MiB insert");
    let back: Option<Vec<u8>> = c
        .query_first("SELECT /* route=primary */ b FROM big WHERE id = 1")
        .await
        .expect("17 MiB select (text)");
    assert!(
        back.as_ref() == Some(&blob),
        "text result over 16 MiB came back intact"
    );
    let back: Option<Vec<u8>> = c
        .exec_first("SELECT /* route=primary */ b FROM big WHERE id = ?", (1,))
        .await
        .expect("17 MiB select (binary)");
    assert!(
        back.as_ref() == Some(&blob),
        "binary result over 16 MiB came back intact"
    );
    c.ping().await.expect("COM_PING");
    c.query_drop("SET @x = 5").await.expect("set");
    c.reset().await.expect("COM_RESET_CONNECTION");
    let x: Option<Option<i64>> = c.query_first("SELECT @x").await.expect("after reset");
    assert_eq!(x, Some(None), "RESET_CONNECTION cleared user variables");
    c.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some("report".into()))
            .with_pass(Some("reportpw".into()))
            .with_db_name(Some("appdb".into())),
    )
    .await
    .expect("COM_CHANGE_USER");
    let user: Option<String> = c.query_first("SELECT CURRENT_USER()").await.expect("q");
    assert!(user.unwrap_or_default().starts_with("report@"));
    // The bystander, checked around every bad-input case.
    let mut bystander = Conn::new(opts(port, "app", "apppw", Some("appdb")))
        .await
        .expect("connect");
    let addr = r.addr("app");
    let greeting = |raw: &mut RawClient| raw.read_packet().expect("greeting").expect("greeting").1;

    // Garbage instead of a handshake response: an ERR, then closed.
    let mut raw = RawClient::connect(addr).expect("connect");
    greeting(&mut raw);
    use std::io::Write;
    raw.stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let (_, p) = raw.read_packet().expect("read").expect("an ERR packet");
    assert_eq!(err_code(&p), Some(1156), "garbage: {p:?}");
    assert!(raw.is_closed());
    // A malformed handshake response with the right sequence id.
    let mut raw = RawClient::connect(addr).expect("connect");
    greeting(&mut raw);
    raw.write_packet(1, b"\x01\x02\x03").expect("write");
    let (_, p) = raw.read_packet().expect("read").expect("an ERR packet");
    assert_eq!(err_code(&p), Some(1043), "malformed: {p:?}");
    // Wrong sequence id on the handshake response.
    let mut raw = RawClient::connect(addr).expect("connect");
    let g = greeting(&mut raw);
    raw.write_packet(7, &handshake_response(&g, "app", "apppw"))
        .expect("write");
    let (_, p) = raw.read_packet().expect("read").expect("an ERR packet");
    assert_eq!(err_code(&p), Some(1156), "wrong sequence: {p:?}");
    assert!(raw.is_closed());
    // A bad password: 1045, closed.
    let mut raw = RawClient::connect(addr).expect("connect");
    let g = greeting(&mut raw);
    raw.write_packet(1, &handshake_response(&g, "app", "not-the-password"))
        .expect("write");
    let (_, p) = raw.read_packet().expect("read").expect("an ERR packet");
    assert_eq!(err_code(&p), Some(1045), "bad password: {p:?}");
    assert!(raw.is_closed());
    // Logged in: an unknown command gets 1047 and the session goes on; a wrong sequence id
    // on a command gets 1156 and the connection closes.
    let mut raw = RawClient::connect(addr).expect("connect");
    let g = greeting(&mut raw);
    raw.write_packet(1, &handshake_response(&g, "app", "apppw"))
        .expect("write");
    let (_, ok) = raw.read_packet().expect("read").expect("OK");
    assert_eq!(<[u8]>::first(&ok), Some(&0), "login OK: {ok:?}");
    raw.write_packet(0, &[0xEE, 1, 2]).expect("write");
    let (_, p) = raw.read_packet().expect("read").expect("an ERR packet");
    assert_eq!(err_code(&p), Some(1047), "unknown command: {p:?}");
    raw.write_packet(0, &[0x0E]).expect("ping");
    let (_, p) = raw.read_packet().expect("read").expect("OK");
    assert_eq!(
        <[u8]>::first(&p),
        Some(&0),
        "still serving after an unknown command"
    );
    raw.write_packet(3, b"\x03SELECT 1").expect("write");
    let (_, p) = raw.read_packet().expect("read").expect("an ERR packet");
    assert_eq!(
        err_code(&p),
        Some(1156),
        "wrong sequence on a command: {p:?}"
    );
    assert!(raw.is_closed());
    let one: Option<u32> = bystander.query_first("SELECT 1").await.expect("bystander");
    assert_eq!(one, Some(1), "the other client kept working");

    // sysbench oltp_read_write (prepared statements) with zero errors.
    let sysbench = move |args: &[&str]| {
        let port_arg = format!("--mysql-port={port}");
        let mut cmd = Command::new("sysbench");
        cmd.args([
            "oltp_read_write",
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
        ])
        .arg(port_arg)
        .args([
            "--mysql-user=app",
            "--mysql-password=apppw",
            "--mysql-db=sbtest",
        ])
        .args(["--tables=4", "--table-size=10000"])
        .args(args);
        cmd.output().expect("run sysbench")
    };
    let prepared = tokio::task::spawn_blocking(move || sysbench(&["prepare"]))
        .await
        .expect("join");
    assert!(
        prepared.status.success(),
        "sysbench prepare: {}{}",
        String::from_utf8_lossy(&prepared.stdout),
        String::from_utf8_lossy(&prepared.stderr)
    );
    let db_wait = tokio::task::spawn_blocking(move || {
        r.db.wait_replicated(Duration::from_secs(60))
            .expect("replicated");
        r
    });
    let r = db_wait.await.expect("join");
    let run = tokio::task::spawn_blocking(move || {
        sysbench(&["--threads=4", "--time=8", "--db-ps-mode=auto", "run"])
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "sysbench run: {text}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // sysbench aborts on any error but the deadlocks and lock waits it retries (conflicts of
    // its own transactions, which happen direct to the server as well); dbrouterd itself must
    // have seen no backend or routing error (the bad-input cases above count as protocol errors).
    assert!(text.contains("transactions:"), "{text}");
    let status = r.control(serde_json::json!({"cmd": "status"}));
    let errors = &status["data"]["service"]["errors"];
    for kind in ["backend", "no_backend"] {
        assert_eq!(errors[kind], 0, "dbrouterd {kind} errors: {status}\n{text}");
    }

    bystander.disconnect().await.expect("disconnect");
    c.disconnect().await.expect("disconnect");
}

/// A HandshakeResponse41 logging in as `user` with a mysql_native_password response computed
/// from `password` and the greeting's scramble.
pub fn handshake_response(greeting: &[u8], user: &str, password: &str) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    // Scramble: 8 bytes after version NUL + 4-byte id, then 12 more after the fixed fields.
    let version_end = greeting.iter().skip(1).position(|b| *b == 0).unwrap_or(0) + 2;
    let part1 = &greeting[version_end + 4..version_end + 12];
    let part2_start = version_end + 12 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
    let part2 = &greeting[part2_start..part2_start + 12];
    let scramble: Vec<u8> = part1.iter().chain(part2).copied().collect();
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(&scramble);
    h.update(stage2);
    let mix = h.finalize();
    let auth: Vec<u8> = stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect();

    let caps: u32 = 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0100_0000 | 1; // 41, SECURE, PLUGIN_AUTH, DEPRECATE_EOF, LONG_PASSWORD
    let mut p = Vec::new();
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.push(auth.len() as u8);
    p.extend_from_slice(&auth);
    p.extend_from_slice(b"mysql_native_password\0");
    p
}
