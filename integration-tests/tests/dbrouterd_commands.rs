//! The MySQL commands besides COM_QUERY, end to end through dbrouterd against real MariaDB:
//! COM_FIELD_LIST, LOAD DATA LOCAL INFILE (sent, a packet over 16 MiB, refused, missing file),
//! server-side cursors (COM_STMT_EXECUTE with a read-only cursor, COM_STMT_FETCH in batches),
//! COM_STMT_SEND_LONG_DATA (also lost with its backend connection), COM_STMT_RESET,
//! COM_STMT_CLOSE, the per-connection cap on backend prepared statements (least recently used
//! closed, prepared again when used, never one with an open cursor), COM_SET_OPTION (not
//! carried to the next client of a pooled connection, kept through COM_RESET_CONNECTION as
//! MariaDB keeps it), COM_INIT_DB and COM_STATISTICS. Each
//! checks what the client saw, which server answered (`@@server_id`: 1 the primary, 3 and 4
//! the replicas) and that written data arrived. One topology for all of it, to keep the suite
//! light; the scenarios run one after the other.

use std::process::{Command, Stdio};
use std::time::Duration;

use integration_tests::mariadb::DbServer;
use integration_tests::mysql_client::{Dbrouter, ListenerSpec};
use integration_tests::mysql_raw::{caps, status, LoginOptions, Param, RawConn, Reply, Value};
use integration_tests::wait_until;

const PRIMARY: i64 = 1;
const REPLICAS: [i64; 2] = [3, 4];
/// `max_prepared_per_connection` of the `capped` listener's pool.
const PREPARED_CAP: i64 = 3;

fn start() -> Dbrouter {
    let pool = |extra: &str| {
        format!("{{ writers: [db1, db2], readers: [db3, db4], balance: round_robin{extra} }}")
    };
    let r = Dbrouter::start(
        "dbr-commands",
        &[
            ListenerSpec {
                name: "app",
                pool: pool(""),
            },
            ListenerSpec {
                name: "single",
                pool: "{ writers: [db1], readers: [db3], connection_pool: { max_per_backend: 1, checkout_timeout: 20s } }".into(),
            },
            ListenerSpec {
                name: "capped",
                pool: pool(&format!(
                    ", connection_pool: {{ max_prepared_per_connection: {PREPARED_CAP} }}"
                )),
            },
        ],
    )
    .expect("topology and dbrouterd");
    for server in r.db.servers() {
        // Room for a LOCAL INFILE packet over 16 MiB (new connections take the global value).
        r.db.root_sql(
            server,
            "SET GLOBAL local_infile = 1; SET GLOBAL max_allowed_packet = 64 * 1024 * 1024",
        )
        .expect("local_infile on");
    }
    r
}

fn connect(r: &Dbrouter, listener: &str, extra_caps: u32) -> RawConn {
    RawConn::connect(
        r.addr(listener),
        &LoginOptions::new("app", "apppw", Some("appdb")).with_caps(extra_caps),
    )
    .unwrap_or_else(|e| panic!("login through {listener}: {e:#}"))
}

fn ok(reply: Reply, what: &str) -> Reply {
    assert!(
        !matches!(reply, Reply::Err(_)),
        "{what}: server error {reply:?}"
    );
    reply
}

fn server_id(c: &mut RawConn, sql: &str) -> i64 {
    c.query_i64(sql).unwrap_or_else(|e| panic!("{sql}: {e:#}"))
}

fn is_replica(id: i64) -> bool {
    REPLICAS.contains(&id)
}

/// `sql` run as root directly on `server`.
fn on_server(r: &Dbrouter, server: &DbServer, sql: &str) -> String {
    r.db.root_sql(server, sql)
        .unwrap_or_else(|e| panic!("{sql} on {}: {e:#}", server.name))
}

#[test]
fn protocol_commands_work_through_dbrouterd() {
    let r = start();
    let mut admin = connect(&r, "app", caps::MULTI_STATEMENTS);
    for sql in [
        "CREATE TABLE cmd_t (id INT PRIMARY KEY, v VARCHAR(20))",
        "CREATE TABLE cur (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO cur SELECT seq, CONCAT('row', seq) FROM seq_1_to_10",
        "CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)",
        "CREATE TABLE loaded (id INT PRIMARY KEY, v VARCHAR(20))",
        "CREATE TABLE lru (id INT PRIMARY KEY, k INT)",
    ] {
        ok(admin.query(sql).expect(sql), sql);
    }
    r.db.wait_replicated(Duration::from_secs(60))
        .expect("schema replicated");

    // First, while no other session has statements open on the servers.
    backend_statements_stay_under_the_cap(&r);
    field_list_is_answered_where_a_read_runs(&r);
    load_data_local_infile_reaches_the_primary(&r);
    cursor_fetches_in_batches_from_one_backend(&r, 0);
    cursor_fetches_in_batches_from_one_backend(&r, caps::DEPRECATE_EOF);
    a_cursor_statement_leaves_a_drained_replica(&r);
    long_data_is_sent_where_the_statement_runs(&r);
    set_option_init_db_and_statistics(&r);
    session_options_do_not_outlive_the_session(&r);
    reset_connection_keeps_the_options_the_server_keeps(&r);

    admin.quit().expect("quit");
}

/// Every server's `Prepared_stmt_count`, primary first.
fn prepared_counts(r: &Dbrouter) -> Vec<i64> {
    r.db.servers()
        .iter()
        .map(|s| {
            let line = on_server(r, s, "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'");
            line.split('\t')
                .nth(1)
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("Prepared_stmt_count on {}: {line:?}", s.name))
        })
        .collect()
}

/// With `max_prepared_per_connection: 3`, a session prepares and runs ten statements (reads
/// on the replicas, writes on the primary): each server never holds more than three of them
/// (the session has one connection per server), the old ones run again after being closed
/// there, and closing them all leaves none.
fn backend_statements_stay_under_the_cap(r: &Dbrouter) {
    let counts = || prepared_counts(r);
    wait_until(
        "no prepared statements left on the servers",
        Duration::from_secs(30),
        || counts().iter().all(|n| *n == 0).then_some(()),
    );
    let mut c = connect(r, "capped", 0);
    let check = |what: &str| {
        let now = counts();
        assert!(
            now.iter().all(|n| *n <= PREPARED_CAP),
            "{what}: Prepared_stmt_count per server {now:?} over the cap {PREPARED_CAP}"
        );
        now
    };
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    for k in 0..5 {
        let sql = format!("SELECT ? + {k}, @@server_id");
        reads.push((k, c.prepare_ok(&sql).expect("prepare read")));
        check(&sql);
        let sql = format!("INSERT INTO lru VALUES (?, {k})");
        writes.push((k, c.prepare_ok(&sql).expect("prepare write")));
        let now = check(&sql);
        if k + 1 >= PREPARED_CAP {
            assert_eq!(
                now[0], PREPARED_CAP,
                "the primary holds as many statements as the cap allows, not fewer: {now:?}"
            );
        }
    }
    let mut row_id = 0;
    for round in 0..2 {
        for ((k, read), (w, write)) in reads.iter().zip(&writes) {
            let reply = ok(
                c.execute(*read, &[Param::Int(100 * round)], false)
                    .expect("execute read"),
                "read",
            );
            let row = &reply.rows()[0];
            assert_eq!(row[0].as_i64(), Some(100 * round + k), "read {k}: {row:?}");
            let id = row[1].as_i64().unwrap_or_default();
            assert!(is_replica(id), "read {k} answered by server {id}");
            check("after a read");
            row_id += 1;
            let reply = ok(
                c.execute(*write, &[Param::Int(row_id)], false)
                    .expect("execute write"),
                "write",
            );
            assert_eq!(
                reply,
                Reply::Ok {
                    affected_rows: 1,
                    status: reply.status()
                },
                "write {w}"
            );
            check("after a write");
        }
    }
    let on_primary = on_server(r, r.db.primary(), "SELECT COUNT(*), SUM(k) FROM appdb.lru");
    assert_eq!(on_primary, "10\t20", "every write reached the primary");
    for (_, s) in reads.iter().chain(&writes) {
        c.close(*s).expect("close");
    }
    wait_until(
        "statements closed on the servers",
        Duration::from_secs(30),
        || counts().iter().all(|n| *n == 0).then_some(()),
    );
    assert!(is_replica(server_id(&mut c, "SELECT @@server_id")));

    // A statement whose cursor is open is not the one closed to make room: its rows keep
    // coming while newer statements push older ones out.
    let cursor = c
        .prepare_ok("SELECT id FROM cur ORDER BY id")
        .expect("prepare");
    ok(c.execute(cursor, &[], true).expect("execute"), "cursor");
    let mut ids = Vec::new();
    let fetch = |c: &mut RawConn, ids: &mut Vec<i64>| {
        let reply = ok(c.fetch(cursor, 2).expect("fetch"), "fetch");
        ids.extend(reply.rows().iter().filter_map(|r| r[0].as_i64()));
        reply.status() & status::LAST_ROW_SENT != 0
    };
    let mut done = fetch(&mut c, &mut ids);
    for k in 0..2 * PREPARED_CAP {
        let s = c.prepare_ok(&format!("SELECT {k} + ?")).expect("prepare");
        let reply = ok(
            c.execute(s, &[Param::Int(1)], false).expect("execute"),
            "read",
        );
        assert_eq!(reply.rows()[0][0].as_i64(), Some(k + 1));
        check("with a cursor open");
        if !done {
            done = fetch(&mut c, &mut ids);
        }
    }
    while !done {
        assert!(ids.len() < 10, "{ids:?}");
        done = fetch(&mut c, &mut ids);
    }
    assert_eq!(
        ids,
        (1..=10).collect::<Vec<_>>(),
        "the cursor's rows, all of them"
    );
    c.quit().expect("quit");
}

/// COM_FIELD_LIST is a read: outside a transaction a replica answers it (a table only the
/// replicas have is listed), inside one the primary does (that table is unknown there); an
/// unknown table is an ERR and the session goes on.
fn field_list_is_answered_where_a_read_runs(r: &Dbrouter) {
    for replica in r.db.replicas() {
        on_server(
            r,
            replica,
            "SET SESSION sql_log_bin = 0; CREATE TABLE appdb.only_replicas (a INT, b TEXT, c DATE)",
        );
    }
    for extra_caps in [0, caps::DEPRECATE_EOF] {
        field_list_on(r, extra_caps);
    }
    cli_completion_lists_fields_on_a_replica(r);
}

/// Every server's `Com_show_fields` (COM_FIELD_LIST counts there), primary first.
fn field_lists_served(r: &Dbrouter) -> Vec<i64> {
    r.db.servers()
        .iter()
        .map(|s| {
            let line = on_server(r, s, "SHOW GLOBAL STATUS LIKE 'Com_show_fields'");
            line.split('\t')
                .nth(1)
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("Com_show_fields on {}: {line:?}", s.name))
        })
        .collect()
}

/// The interactive `mariadb` CLI (on a terminal, `script` gives it one) reads every table's
/// columns with COM_FIELD_LIST for its name completion: a replica answers them all and the
/// session goes on.
fn cli_completion_lists_fields_on_a_replica(r: &Dbrouter) {
    use std::io::Write;
    let before = field_lists_served(r);
    let cli = format!(
        "mariadb --no-defaults --protocol=TCP --host=127.0.0.1 --port={} --user=app \
         --auto-rehash appdb",
        r.port("app")
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cli, "/dev/null"])
        .env("MYSQL_PWD", "apppw")
        // Interactive: no history file in the home directory, no terminal effects.
        .env("MYSQL_HISTFILE", "/dev/null")
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mariadb under script");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(b"SELECT 40 + 2;\nquit\n")
            .expect("write to mariadb");
    }
    let out = child.wait_with_output().expect("mariadb");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "interactive CLI: {text}");
    assert!(text.contains("Reading table information"), "{text}");
    assert!(
        text.contains(" 42 |"),
        "the session works after completion: {text}"
    );
    let after = field_lists_served(r);
    let served: Vec<i64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(served[0], 0, "no field list on the primary: {served:?}");
    assert!(
        served[2] + served[3] >= 5,
        "a field list per table of appdb on the replicas: {served:?}"
    );
}

fn field_list_on(r: &Dbrouter, extra_caps: u32) {
    let mut c = connect(r, "app", extra_caps);
    let names = |cols: Vec<integration_tests::mysql_raw::Column>| -> Vec<String> {
        cols.into_iter().map(|c| c.name).collect()
    };
    let cols = c
        .field_list("cmd_t", "")
        .expect("field list")
        .expect("cmd_t's columns");
    assert_eq!(names(cols), ["id", "v"]);
    let cols = c
        .field_list("only_replicas", "")
        .expect("field list")
        .expect("a replica answered");
    assert_eq!(names(cols), ["a", "b", "c"]);
    let cols = c
        .field_list("only_replicas", "b%")
        .expect("field list")
        .expect("with a wildcard");
    assert_eq!(names(cols), ["b"]);
    let err = c
        .field_list("no_such_table", "")
        .expect("field list")
        .expect_err("unknown table");
    assert_eq!(err.code, 1146, "{err:?}");
    assert!(is_replica(server_id(&mut c, "SELECT @@server_id")));

    ok(c.query("BEGIN").expect("begin"), "begin");
    let err = c
        .field_list("only_replicas", "")
        .expect("field list")
        .expect_err("inside a transaction the primary answers");
    assert_eq!(err.code, 1146, "{err:?}");
    assert_eq!(server_id(&mut c, "SELECT @@server_id"), PRIMARY);
    ok(c.query("COMMIT").expect("commit"), "commit");
    c.quit().expect("quit");
}

/// The `mariadb` CLI through `listener` with `args`, `sql` on stdin: (succeeded, stdout,
/// stderr).
fn cli(r: &Dbrouter, args: &[&str], sql: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new("mariadb")
        .arg("--no-defaults")
        .args(["--protocol=TCP", "--host=127.0.0.1", "--batch"])
        .args(["--skip-column-names", "--connect-timeout=10", "--user=app"])
        // Keep the `/* route=primary */` hints (the CLI strips comments by default).
        .arg("--comments")
        .arg(format!("--port={}", r.port("app")))
        .args(args)
        .arg("appdb")
        .env("MYSQL_PWD", "apppw")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mariadb");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(sql.as_bytes()).expect("write to mariadb");
    }
    let out = child.wait_with_output().expect("mariadb");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn infile_rows(r: &Dbrouter, server: &DbServer) -> String {
    on_server(
        r,
        server,
        "SELECT COUNT(*), COALESCE(SUM(id), 0) FROM appdb.loaded",
    )
}

/// LOAD DATA LOCAL INFILE: the CLI sends a file, the rows land on the primary and replicate;
/// a client that cannot read its file (or never offered LOCAL INFILE) gets an error and its
/// session keeps working.
fn load_data_local_infile_reaches_the_primary(r: &Dbrouter) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rows.csv");
    let lines: String = (1..=300).map(|i| format!("{i},line {i}\n")).collect();
    std::fs::write(&file, lines).expect("write rows.csv");
    let load = |path: &std::path::Path| {
        format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE loaded FIELDS TERMINATED BY ',';\n",
            path.display()
        )
    };
    let (success, out, err) = cli(
        r,
        &["--local-infile=1"],
        &format!(
            "{}SELECT /* route=primary */ COUNT(*) FROM loaded;\nSELECT @@server_id;\n",
            load(&file)
        ),
    );
    assert!(
        success,
        "LOAD DATA LOCAL INFILE through dbrouterd: {err}{out}"
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("300"), "{out}");
    let id: i64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or_default();
    assert!(is_replica(id), "a read after the load ran on server {id}");
    assert_eq!(infile_rows(r, r.db.primary()), "300\t45150");
    r.db.wait_replicated(Duration::from_secs(60))
        .expect("replicated");
    for replica in r.db.replicas() {
        assert_eq!(infile_rows(r, replica), "300\t45150", "on {}", replica.name);
    }

    // A file the client cannot read: it says so, the server loads nothing, the session goes
    // on (--force: the CLI keeps reading statements after the error).
    let missing = dir.path().join("missing.csv");
    let (success, out, err) = cli(
        r,
        &["--local-infile=1", "--force"],
        &format!(
            "{}SELECT /* route=primary */ COUNT(*) FROM loaded;\n",
            load(&missing)
        ),
    );
    assert!(
        err.contains("ERROR") && err.contains("missing.csv"),
        "{success} {err}"
    );
    assert_eq!(out.trim(), "300", "the session still works: {out}{err}");
    // A client that does not allow LOCAL INFILE: the server refuses the statement.
    let (success, out, err) = cli(
        r,
        &["--local-infile=0", "--force"],
        &format!(
            "{}SELECT /* route=primary */ COUNT(*) FROM loaded;\n",
            load(&file)
        ),
    );
    assert!(
        err.contains("ERROR"),
        "LOCAL INFILE not allowed by the client: {success} {err}"
    );
    assert_eq!(out.trim(), "300", "the session still works: {out}{err}");

    // Raw: a file sent in many small packets, and a client that answers the request with no
    // data at all.
    let mut c = connect(r, "app", caps::LOCAL_FILES);
    let data: String = (1001..=1100).map(|i| format!("{i},raw {i}\n")).collect();
    let reply = c
        .load_local(
            "LOAD DATA LOCAL INFILE 'raw.csv' INTO TABLE loaded FIELDS TERMINATED BY ','",
            Some(data.as_bytes()),
            97,
        )
        .expect("load");
    assert!(
        matches!(
            reply,
            Reply::Ok {
                affected_rows: 100,
                ..
            }
        ),
        "{reply:?}"
    );
    let reply = c
        .load_local(
            "LOAD DATA LOCAL INFILE 'none.csv' INTO TABLE loaded",
            None,
            1,
        )
        .expect("load nothing");
    assert!(
        matches!(
            reply,
            Reply::Ok {
                affected_rows: 0,
                ..
            }
        ),
        "{reply:?}"
    );
    assert_eq!(
        c.query_i64("SELECT /* route=primary */ COUNT(*) FROM loaded")
            .expect("count"),
        400
    );
    // One packet of the file over 16 MiB: the client sends it in two chunks.
    let mut big = b"2000,".to_vec();
    big.extend(std::iter::repeat_n(b'z', 17 * 1024 * 1024));
    big.extend_from_slice(b"\n2001,after\n");
    let reply = c
        .load_local(
            "LOAD DATA LOCAL INFILE 'big.csv' INTO TABLE blobs FIELDS TERMINATED BY ','",
            Some(&big),
            big.len(),
        )
        .expect("load a packet over 16 MiB");
    assert!(
        matches!(
            reply,
            Reply::Ok {
                affected_rows: 2,
                ..
            }
        ),
        "{reply:?}"
    );
    assert_eq!(
        on_server(
            r,
            r.db.primary(),
            "SELECT id, LENGTH(b) FROM appdb.blobs WHERE id >= 2000"
        ),
        format!("2000\t{}\n2001\t5", 17 * 1024 * 1024)
    );
    ok(
        c.query("DELETE FROM blobs WHERE id >= 2000")
            .expect("delete"),
        "delete",
    );
    assert!(is_replica(server_id(&mut c, "SELECT @@server_id")));
    c.quit().expect("quit");
    assert_eq!(infile_rows(r, r.db.primary()), "400\t150200");
}

/// A read-only cursor on a read (a replica) and inside a transaction (the primary): rows come
/// in batches from the server that opened the cursor while other statements run in between;
/// re-executing reopens it, RESET closes it, CLOSE forgets the statement.
fn cursor_fetches_in_batches_from_one_backend(r: &Dbrouter, extra_caps: u32) {
    let mut c = connect(r, "app", extra_caps);
    let what = if extra_caps & caps::DEPRECATE_EOF != 0 {
        "DEPRECATE_EOF"
    } else {
        "EOF packets"
    };
    let stmt = c
        .prepare_ok("SELECT id, v, @@server_id FROM cur WHERE id > ? ORDER BY id")
        .expect("prepare");
    let other = c.prepare_ok("SELECT @@server_id + ?").expect("prepare");
    let reply = ok(
        c.execute(stmt, &[Param::Int(0)], true).expect("execute"),
        what,
    );
    assert!(
        reply.rows().is_empty() && reply.status() & status::CURSOR_EXISTS != 0,
        "{what}: the cursor is open and no rows came yet: {reply:?}"
    );
    let mut rows = Vec::new();
    let mut servers = Vec::new();
    let mut batch = 0;
    loop {
        let reply = ok(c.fetch(stmt, 3).expect("fetch"), what);
        let got = reply.rows();
        assert!(got.len() <= 3, "{what}: a batch of {}", got.len());
        for row in got {
            rows.push(row[0].as_i64().unwrap_or_default());
            servers.push(row[2].as_i64().unwrap_or_default());
        }
        if reply.status() & status::LAST_ROW_SENT != 0 {
            break;
        }
        assert!(batch < 10, "{what}: the cursor never ended");
        batch += 1;
        // Statements in between: a text read, a write, another prepared statement.
        assert!(is_replica(server_id(&mut c, "SELECT @@server_id")));
        ok(
            c.query(&format!("REPLACE INTO cmd_t VALUES ({batch}, 'between')"))
                .expect("write"),
            "write between fetches",
        );
        let reply = ok(
            c.execute(other, &[Param::Int(0)], false).expect("other"),
            what,
        );
        assert!(is_replica(reply.rows()[0][0].as_i64().unwrap_or_default()));
    }
    assert_eq!(
        rows,
        (1..=10).collect::<Vec<_>>(),
        "{what}: every row, once"
    );
    assert!(
        is_replica(servers[0]) && servers.iter().all(|s| *s == servers[0]),
        "{what}: all rows from the replica that opened the cursor: {servers:?}"
    );
    // Executed again: the cursor opens again, from a replica.
    ok(
        c.execute(stmt, &[Param::Int(7)], true).expect("execute"),
        what,
    );
    let reply = ok(c.fetch(stmt, 100).expect("fetch"), what);
    let ids: Vec<_> = reply.rows().iter().map(|r| r[0].as_i64()).collect();
    assert_eq!(ids, [Some(8), Some(9), Some(10)], "{what}");
    assert!(reply.status() & status::LAST_ROW_SENT != 0, "{what}");
    // RESET closes the cursor: nothing more to fetch.
    ok(
        c.execute(stmt, &[Param::Int(0)], true).expect("execute"),
        what,
    );
    ok(c.fetch(stmt, 2).expect("fetch"), what);
    assert!(c.reset(stmt).expect("reset").is_ok(), "{what}: reset");
    let after_reset = c.fetch(stmt, 2).expect("fetch after reset");
    assert!(
        matches!(after_reset, Reply::Err(_)),
        "{what}: a fetch after RESET: {after_reset:?}"
    );
    // Inside a transaction the primary opens it.
    ok(c.query("BEGIN").expect("begin"), what);
    ok(
        c.execute(stmt, &[Param::Int(5)], true).expect("execute"),
        what,
    );
    let reply = ok(c.fetch(stmt, 100).expect("fetch"), what);
    assert_eq!(reply.rows().len(), 5, "{what}");
    assert!(reply.rows().iter().all(|r| r[2].as_i64() == Some(PRIMARY)));
    ok(c.query("COMMIT").expect("commit"), what);
    // CLOSE: the statement is gone, the session goes on.
    c.close(stmt).expect("close");
    let gone = c.execute(stmt, &[Param::Int(0)], false).expect("execute");
    assert_eq!(gone.err_code(), Some(1243), "{what}: {gone:?}");
    let reply = ok(
        c.execute(other, &[Param::Int(1)], false).expect("other"),
        what,
    );
    assert!(is_replica(
        reply.rows()[0][0].as_i64().unwrap_or_default() - 1
    ));
    assert_eq!(
        c.query_i64("SELECT /* route=primary */ COUNT(*) FROM cmd_t")
            .expect("count"),
        i64::from(batch),
        "{what}: the writes between fetches are there"
    );
    ok(c.query("DELETE FROM cmd_t").expect("delete"), what);
    c.quit().expect("quit");
}

fn sha1_hex(data: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// COM_STMT_SEND_LONG_DATA in chunks before EXECUTE: an insert stores exactly the bytes sent
/// (on the primary, then the replicas), a read on a replica sees them, and RESET drops chunks
/// sent before it.
fn long_data_is_sent_where_the_statement_runs(r: &Dbrouter) {
    let mut c = connect(r, "app", 0);
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let insert = c
        .prepare_ok("INSERT INTO blobs VALUES (?, ?)")
        .expect("prepare");
    for chunk in blob.chunks(64 * 1024) {
        c.send_long_data(insert, 1, chunk).expect("long data");
    }
    let reply = ok(
        c.execute(insert, &[Param::Int(1), Param::LongData], false)
            .expect("execute"),
        "insert with long data",
    );
    assert!(
        matches!(
            reply,
            Reply::Ok {
                affected_rows: 1,
                ..
            }
        ),
        "{reply:?}"
    );
    let expected = format!("{}\t{}", blob.len(), sha1_hex(&blob));
    let stored = "SELECT LENGTH(b), SHA1(b) FROM appdb.blobs WHERE id = 1";
    assert_eq!(on_server(r, r.db.primary(), stored), expected);
    r.db.wait_replicated(Duration::from_secs(60))
        .expect("replicated");
    for replica in r.db.replicas() {
        assert_eq!(
            on_server(r, replica, stored),
            expected,
            "on {}",
            replica.name
        );
    }

    let read = c
        .prepare_ok("SELECT @@server_id, LENGTH(?), SHA1(?)")
        .expect("prepare");
    for round in 0..3 {
        let piece = &blob[..100_000 + round * 1000];
        for chunk in piece.chunks(30_000) {
            c.send_long_data(read, 0, chunk).expect("long data");
            c.send_long_data(read, 1, chunk).expect("long data");
        }
        let reply = ok(
            c.execute(read, &[Param::LongData, Param::LongData], false)
                .expect("execute"),
            "read with long data",
        );
        let row = &reply.rows()[0];
        assert!(is_replica(row[0].as_i64().unwrap_or_default()), "{row:?}");
        assert_eq!(row[1].as_i64(), Some(piece.len() as i64), "round {round}");
        assert_eq!(
            row[2].as_bytes(),
            Some(sha1_hex(piece).as_bytes()),
            "round {round}"
        );
    }
    // RESET drops the long data sent so far.
    c.send_long_data(read, 0, b"dropped").expect("long data");
    c.send_long_data(read, 1, b"dropped").expect("long data");
    assert!(c.reset(read).expect("reset").is_ok());
    c.send_long_data(read, 0, b"kept").expect("long data");
    c.send_long_data(read, 1, b"kept").expect("long data");
    let reply = ok(
        c.execute(read, &[Param::LongData, Param::LongData], false)
            .expect("execute"),
        "after reset",
    );
    assert_eq!(reply.rows()[0][1].as_i64(), Some(4), "{reply:?}");
    // Long data that goes with its backend connection before EXECUTE: an error, not a
    // statement run without it; sent again, it works.
    c.send_long_data(read, 0, b"lost").expect("long data");
    c.send_long_data(read, 1, b"lost").expect("long data");
    kill_app_connections(r, r.db.replicas());
    let lost = c
        .execute(read, &[Param::LongData, Param::LongData], false)
        .expect("execute");
    assert_eq!(lost.err_code(), Some(2013), "{lost:?}");
    c.send_long_data(read, 0, b"again").expect("long data");
    c.send_long_data(read, 1, b"again").expect("long data");
    let reply = ok(
        c.execute(read, &[Param::LongData, Param::LongData], false)
            .expect("execute"),
        "long data sent again",
    );
    let row = &reply.rows()[0];
    assert!(is_replica(row[0].as_i64().unwrap_or_default()), "{row:?}");
    assert_eq!(row[1].as_i64(), Some(5), "{row:?}");
    assert_eq!(row[2].as_bytes(), Some(sha1_hex(b"again").as_bytes()));
    // Without long data the statement runs as usual.
    let reply = ok(
        c.execute(
            read,
            &[Param::Bytes(b"abc".to_vec()), Param::Bytes(b"abc".to_vec())],
            false,
        )
        .expect("execute"),
        "plain",
    );
    assert_eq!(reply.rows()[0][1].as_i64(), Some(3));
    c.close(read).expect("close");
    c.close(insert).expect("close");
    assert!(is_replica(server_id(&mut c, "SELECT @@server_id")));
    c.quit().expect("quit");
}

/// Kills the app user's connections on `servers` and waits until they are gone.
fn kill_app_connections(r: &Dbrouter, servers: &[DbServer]) {
    let app = "SELECT id FROM information_schema.processlist WHERE user = 'app'";
    for server in servers {
        for id in on_server(r, server, app).lines() {
            // Gone already is fine.
            let _ = r.db.root_sql(server, &format!("KILL CONNECTION {id}"));
        }
        wait_until(
            "the app connections killed",
            Duration::from_secs(30),
            || on_server(r, server, app).is_empty().then_some(()),
        );
    }
}

/// COM_SET_OPTION turns multi-statements on and off for the session; COM_INIT_DB switches
/// the schema on every backend connection and a missing one is an error that leaves it;
/// COM_STATISTICS answers.
fn set_option_init_db_and_statistics(r: &Dbrouter) {
    let mut c = connect(r, "app", 0);
    let multi = "SELECT 1; SELECT @@server_id";
    let refused = c.query_all(multi).expect("multi");
    assert_eq!(
        refused[0].err_code(),
        Some(1064),
        "off at login: {refused:?}"
    );
    assert!(c.set_multi_statements(true).expect("set option").is_ok());
    let replies = c.query_all(multi).expect("multi");
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(
        replies[1].rows()[0][0].as_i64(),
        Some(PRIMARY),
        "multi-statement text runs on the primary"
    );
    assert!(is_replica(server_id(&mut c, "SELECT @@server_id")));
    assert!(c.set_multi_statements(false).expect("set option").is_ok());
    let refused = c.query_all(multi).expect("multi");
    assert_eq!(refused[0].err_code(), Some(1064), "off again: {refused:?}");

    let bad = c.init_db("no_such_db").expect("init db");
    // 1044: app may not see a schema it has no grant on, whether or not it exists.
    assert_eq!(bad.err_code(), Some(1044), "{bad:?}");
    assert!(c.init_db("sbtest").expect("init db").is_ok());
    for _ in 0..4 {
        let schema = c.query("SELECT DATABASE(), @@server_id").expect("schema");
        assert_eq!(
            schema.rows()[0][0],
            Value::Bytes(b"sbtest".to_vec()),
            "{schema:?}"
        );
    }
    assert!(c.init_db("appdb").expect("init db").is_ok());
    let stats = c.statistics().expect("statistics");
    assert!(stats.starts_with("Uptime:"), "{stats}");
    assert!(c.ping().expect("ping").is_ok());
    assert!(is_replica(server_id(&mut c, "SELECT @@server_id")));
    c.quit().expect("quit");
}

/// A pooled backend connection goes to the next client as it was at login: multi-statements
/// turned on with COM_SET_OPTION by one session are off again for the next, which gets the
/// same connection (the pool holds one per backend).
fn session_options_do_not_outlive_the_session(r: &Dbrouter) {
    let multi = "SELECT 1; SELECT 2";
    let connection = "SELECT /* route=primary */ CONNECTION_ID()";
    let mut first = connect(r, "single", 0);
    let first_id = first.query_i64(connection).expect("connection id");
    assert!(first
        .set_multi_statements(true)
        .expect("set option")
        .is_ok());
    assert_eq!(first.query_all(multi).expect("multi").len(), 2);
    first.quit().expect("quit");
    let mut next = connect(r, "single", 0);
    assert_eq!(
        next.query_i64(connection).expect("connection id"),
        first_id,
        "the pooled connection is reused"
    );
    let replies = next.query_all(multi).expect("multi");
    assert_eq!(
        replies[0].err_code(),
        Some(1064),
        "multi-statements are off for a client that did not ask for them: {replies:?}"
    );
    next.quit().expect("quit");
}

/// After COM_RESET_CONNECTION a session's multi-statements option is what MariaDB itself
/// leaves it at (measured on the primary directly, then through dbrouterd, on and off).
fn reset_connection_keeps_the_options_the_server_keeps(r: &Dbrouter) {
    let multi = "SELECT 1; SELECT 2";
    let after_reset = |c: &mut RawConn, on: bool| -> bool {
        assert!(c.set_multi_statements(on).expect("set option").is_ok());
        assert!(c.reset_connection().expect("reset").is_ok());
        let replies = c.query_all(multi).expect("multi");
        replies.len() == 2 && replies.iter().all(|r| r.err_code().is_none())
    };
    let login = LoginOptions::new("app", "apppw", Some("appdb"));
    let mut direct = RawConn::connect(r.db.primary().addr, &login).expect("login on the primary");
    let mut through = connect(r, "app", 0);
    for on in [true, false] {
        let server = after_reset(&mut direct, on);
        // Twice through dbrouterd: the second time on backend connections opened afresh.
        for round in 0..2 {
            assert_eq!(
                after_reset(&mut through, on),
                server,
                "multi-statements {on} then COM_RESET_CONNECTION (round {round}): MariaDB \
                 leaves them {}",
                if server { "on" } else { "off" }
            );
        }
    }
    direct.quit().expect("quit");
    through.quit().expect("quit");
}

/// A statement whose cursor was opened on a replica runs its next EXECUTE there while that
/// replica takes reads, and elsewhere once it is drained (FETCH of an open cursor stays).
fn a_cursor_statement_leaves_a_drained_replica(r: &Dbrouter) {
    let mut c = connect(r, "app", 0);
    let stmt = c
        .prepare_ok("SELECT @@server_id, id FROM cur WHERE id > ? ORDER BY id")
        .expect("prepare");
    let opened_on = |c: &mut RawConn| -> i64 {
        ok(
            c.execute(stmt, &[Param::Int(0)], true).expect("execute"),
            "cursor",
        );
        let reply = ok(c.fetch(stmt, 2).expect("fetch"), "fetch");
        reply.rows()[0][0].as_i64().unwrap_or_default()
    };
    let first = opened_on(&mut c);
    assert!(is_replica(first), "opened on {first}");
    assert_eq!(
        opened_on(&mut c),
        first,
        "kept while the replica takes reads"
    );
    let name = format!("db{first}");
    let drained = r.control(serde_json::json!({"cmd": "backend.drain", "args": {"backend": name}}));
    assert_eq!(drained["ok"], true, "{drained}");
    let moved = opened_on(&mut c);
    let enabled =
        r.control(serde_json::json!({"cmd": "backend.enable", "args": {"backend": name}}));
    assert_eq!(enabled["ok"], true, "{enabled}");
    assert!(
        is_replica(moved) && moved != first,
        "executed again after db{first} was drained: opened on {moved}"
    );
    let rest = ok(c.fetch(stmt, 100).expect("fetch"), "fetch the rest");
    assert_eq!(rest.rows().len(), 8, "{rest:?}");
    assert!(rest.rows().iter().all(|row| row[0].as_i64() == Some(moved)));
    c.quit().expect("quit");
}
