//! dbrouterd's routing, checked by the `@@server_id` of the server that answers (1 primary,
//! 3 and 4 replicas): every rule, transactions (also opened where the SQL text does not show
//! it), hints, temporary tables, session state following the session between backends,
//! read-your-writes, prepared statements, pooled connections that carry no state, and
//! `route.explain`. One topology for all of it, to keep the suite light.

use std::time::Duration;

use integration_tests::mysql_client::{Dbrouter, ListenerSpec};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder};

const PRIMARY: u32 = 1;
const REPLICAS: [u32; 2] = [3, 4];

fn opts(port: u16, db: Option<&str>) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("app"))
        .pass(Some("apppw"))
        .db_name(db)
        .prefer_socket(false)
        .into()
}

async fn server_id(conn: &mut Conn, sql: &str) -> u32 {
    conn.query_first::<u32, _>(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

async fn assert_replica(conn: &mut Conn, sql: &str) {
    let id = server_id(conn, sql).await;
    assert!(
        REPLICAS.contains(&id),
        "{sql} answered by server {id}, expected a replica"
    );
}

async fn assert_primary(conn: &mut Conn, sql: &str) {
    assert_eq!(server_id(conn, sql).await, PRIMARY, "{sql}");
}

fn start() -> Dbrouter {
    let pool = |extra: &str| {
        format!("{{ writers: [db1, db2], readers: [db3, db4], balance: round_robin{extra} }}")
    };
    Dbrouter::start(
        "dbr-routing",
        &[
            ListenerSpec {
                name: "app",
                pool: pool(""),
            },
            ListenerSpec {
                name: "window",
                pool: pool(", read_your_writes: { mode: writer_window, window: 30s }"),
            },
            ListenerSpec {
                name: "causal",
                pool: pool(", read_your_writes: { mode: causal, timeout: 10s }"),
            },
            ListenerSpec {
                name: "tiny",
                pool: "{ writers: [db1], readers: [db3], connection_pool: { max_per_backend: 1 } }"
                    .into(),
            },
        ],
    )
    .expect("topology and dbrouterd")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_routing_rule_lands_on_the_right_server() {
    let r = tokio::task::spawn_blocking(start).await.expect("start");
    let port = r.port("app");
    r.db.sql(
        r.db.primary(),
        "app",
        "apppw",
        "CREATE TABLE appdb.t (id INT AUTO_INCREMENT PRIMARY KEY, sid INT) ENGINE=InnoDB",
    )
    .expect("create table");

    // The CLI: a script of reads and writes, zero errors.
    let out = r
        .cli("app", "app", "apppw", "SELECT @@server_id;\nINSERT INTO appdb.t (sid) SELECT @@server_id;\nSELECT /* route=primary */ sid FROM appdb.t;")
        .expect("mariadb CLI through dbrouterd");
    let lines: Vec<&str> = out.lines().collect();
    assert!(["3", "4"].contains(&lines[0]), "{out}");
    assert_eq!(lines[1], "1", "the INSERT ran on the primary: {out}");

    let mut c = Conn::new(opts(port, Some("appdb"))).await.expect("connect");
    // Reads to replicas, writes and locking reads to the primary.
    assert_replica(&mut c, "SELECT @@server_id").await;
    assert_replica(&mut c, "SELECT @@server_id FROM appdb.t LIMIT 1").await;
    c.query_drop("INSERT INTO t (sid) SELECT @@server_id")
        .await
        .expect("insert");
    assert_eq!(
        c.query_first::<u32, _>("SELECT /* route=primary */ sid FROM t ORDER BY id DESC LIMIT 1")
            .await
            .expect("q"),
        Some(PRIMARY),
        "INSERT ... SELECT ran on the primary"
    );
    assert_primary(&mut c, "SELECT @@server_id FROM t LIMIT 1 FOR UPDATE").await;
    assert_primary(
        &mut c,
        "SELECT @@server_id FROM t LIMIT 1 LOCK IN SHARE MODE",
    )
    .await;
    // A user-level lock lives on its connection: the session stays on the primary.
    let mut l = Conn::new(opts(port, Some("appdb"))).await.expect("connect");
    assert_primary(&mut l, "SELECT @@server_id + 0 * GET_LOCK('x', 0)").await;
    assert_primary(&mut l, "SELECT @@server_id").await;
    l.query_drop("DO RELEASE_LOCK('x')").await.expect("release");
    // Hints.
    assert_primary(&mut c, "SELECT /* route=primary */ @@server_id").await;
    // Transactions: pinned to the primary until COMMIT; READ ONLY ones may use a replica.
    c.query_drop("BEGIN").await.expect("begin");
    assert_primary(&mut c, "SELECT @@server_id").await;
    c.query_drop("COMMIT").await.expect("commit");

    let mut ro = Conn::new(opts(port, Some("appdb"))).await.expect("connect");
    ro.query_drop("START TRANSACTION READ ONLY")
        .await
        .expect("start ro");
    let in_ro = server_id(&mut ro, "SELECT @@server_id").await;
    assert!(
        REPLICAS.contains(&in_ro),
        "read-only transaction on {in_ro}"
    );
    assert_eq!(
        server_id(&mut ro, "SELECT @@server_id").await,
        in_ro,
        "stays on its replica"
    );
    ro.query_drop("COMMIT").await.expect("commit");
    assert_replica(&mut ro, "SELECT @@server_id").await;
    // autocommit=0, in text and hidden in a prepared statement: the server's status flags pin.
    ro.query_drop("SET autocommit = 0")
        .await
        .expect("autocommit off");
    assert_primary(&mut ro, "SELECT @@server_id").await;
    ro.query_drop("ROLLBACK").await.expect("rollback");
    ro.query_drop("SET autocommit = 1")
        .await
        .expect("autocommit on");
    assert_replica(&mut ro, "SELECT @@server_id").await;
    ro.exec_drop("SET autocommit = 0", ())
        .await
        .expect("prepared autocommit off");
    assert_primary(&mut ro, "SELECT @@server_id").await;
    ro.query_drop("COMMIT").await.expect("commit");
    ro.exec_drop("SET autocommit = 1", ())
        .await
        .expect("prepared autocommit on");
    // A transaction opened inside a stored procedure.
    c.query_drop("CREATE PROCEDURE open_tx() BEGIN START TRANSACTION; END")
        .await
        .expect("create procedure");
    c.query_drop("CALL open_tx()").await.expect("call");
    assert_primary(&mut c, "SELECT @@server_id").await;
    c.query_drop("COMMIT").await.expect("commit");
    assert_replica(&mut c, "SELECT @@server_id").await;

    // Session state follows the session: set while on the primary, read on a replica.
    let mut s = Conn::new(opts(port, None)).await.expect("connect");
    s.query_drop("SET @v = 42, SESSION wait_timeout = 1234, NAMES latin1")
        .await
        .expect("set");
    s.query_drop("USE appdb").await.expect("use");
    let row: Option<(u32, i64, u32, String, String)> = s
        .query_first(
            "SELECT @@server_id, @v, @@session.wait_timeout, @@character_set_client, DATABASE()",
        )
        .await
        .expect("state on replica");
    let (sid, v, wt, cs, db) = row.expect("row");
    assert!(REPLICAS.contains(&sid), "read on {sid}");
    assert_eq!(
        (v, wt, cs.as_str(), db.as_str()),
        (42, 1234, "latin1", "appdb")
    );
    let row: Option<(u32, i64, u32)> = s
        .query_first("SELECT /* route=primary */ @@server_id, @v, @@session.wait_timeout")
        .await
        .expect("state on primary");
    assert_eq!(row, Some((PRIMARY, 42, 1234)));
    // Temporary tables pin the session to the primary.
    s.query_drop("CREATE TEMPORARY TABLE tmp (a INT)")
        .await
        .expect("temp table");
    s.query_drop("INSERT INTO tmp VALUES (1)")
        .await
        .expect("insert tmp");
    assert_primary(&mut s, "SELECT @@server_id FROM tmp").await;
    assert_primary(&mut s, "SELECT @@server_id").await;

    // Prepared statements: run where their class says, re-prepared when they move.
    let mut p = Conn::new(opts(port, Some("appdb"))).await.expect("connect");
    let stmt = p.prep("SELECT @@server_id + ? - ?").await.expect("prepare");
    for _ in 0..4 {
        let id: Option<u32> = p.exec_first(&stmt, (5, 5)).await.expect("execute");
        assert!(
            REPLICAS.contains(&id.expect("row")),
            "prepared read on {id:?}"
        );
    }
    p.query_drop("BEGIN").await.expect("begin");
    let id: Option<u32> = p.exec_first(&stmt, (7, 7)).await.expect("execute in tx");
    assert_eq!(id, Some(PRIMARY), "prepared read inside a transaction");
    p.query_drop("COMMIT").await.expect("commit");
    let insert = p
        .prep("INSERT INTO t (sid) VALUES (@@server_id + ?)")
        .await
        .expect("prepare insert");
    p.exec_drop(&insert, (0,)).await.expect("prepared insert");
    let last: Option<u32> = p
        .query_first("SELECT /* route=primary */ sid FROM t ORDER BY id DESC LIMIT 1")
        .await
        .expect("q");
    assert_eq!(last, Some(PRIMARY), "prepared insert ran on the primary");

    // Read-your-writes, writer window: reads after a write go to the primary.
    let mut w = Conn::new(opts(r.port("window"), Some("appdb")))
        .await
        .expect("connect");
    assert_replica(&mut w, "SELECT @@server_id").await;
    w.query_drop("INSERT INTO t (sid) VALUES (0)")
        .await
        .expect("insert");
    assert_primary(&mut w, "SELECT @@server_id").await;
    // Causal: reads after a write wait for its GTID on a replica and see the row.
    let mut k = Conn::new(opts(r.port("causal"), Some("appdb")))
        .await
        .expect("connect");
    for n in 0..5 {
        k.query_drop(format!("INSERT INTO t (sid) VALUES ({})", 1000 + n))
            .await
            .expect("insert");
        let row: Option<(u32, u32)> = k
            .query_first(format!(
                "SELECT @@server_id, COUNT(*) FROM t WHERE sid = {}",
                1000 + n
            ))
            .await
            .expect("causal read");
        let (sid, count) = row.expect("row");
        assert!(REPLICAS.contains(&sid), "causal read on {sid}");
        assert_eq!(count, 1, "causal read on {sid} sees the session's write");
    }

    // Pooled connections carry no state: one connection per backend in the tiny pool, so the
    // second client gets the very same server connection.
    let tiny = r.port("tiny");
    let mut a = Conn::new(opts(tiny, Some("appdb"))).await.expect("connect");
    a.query_drop("SET @leak = 'secret', SESSION sql_mode = 'ANSI'")
        .await
        .expect("set");
    a.query_drop("CREATE TEMPORARY TABLE leak (a INT)")
        .await
        .expect("temp");
    let first_id: u32 = a
        .query_first("SELECT CONNECTION_ID()")
        .await
        .expect("q")
        .expect("row");
    a.query_drop("BEGIN").await.expect("begin");
    a.query_drop("INSERT INTO t (sid) VALUES (777)")
        .await
        .expect("insert");
    drop(a); // disconnect with the transaction open
    let mut b = Conn::new(opts(tiny, Some("appdb"))).await.expect("connect");
    let row: Option<(u32, Option<String>, String)> = b
        .query_first("SELECT /* route=primary */ CONNECTION_ID(), @leak, @@session.sql_mode")
        .await
        .expect("q");
    let (second_id, leak, mode) = row.expect("row");
    assert_eq!(
        second_id, first_id,
        "the pool handed out the same backend connection"
    );
    assert_eq!(leak, None, "user variable leaked");
    assert!(!mode.contains("ANSI_QUOTES"), "sql_mode leaked: {mode}");
    assert!(
        b.query_drop("SELECT /* route=primary */ * FROM leak")
            .await
            .is_err(),
        "temporary table leaked"
    );
    let rolled_back: Option<u32> = b
        .query_first("SELECT /* route=primary */ COUNT(*) FROM t WHERE sid = 777")
        .await
        .expect("q");
    assert_eq!(rolled_back, Some(0), "the open transaction was rolled back");

    // max_per_backend counts every connection of the pool to a backend, whichever user it is
    // for: with one allowed, report's session on db1 closes app's idle connection to make room.
    b.disconnect().await.expect("disconnect");
    let mut rep = Conn::new(
        OptsBuilder::from_opts(opts(tiny, None))
            .user(Some("report"))
            .pass(Some("reportpw")),
    )
    .await
    .expect("report connects");
    let report_id: u32 = rep
        .query_first("SELECT /* route=primary */ CONNECTION_ID()")
        .await
        .expect("q")
        .expect("row");
    assert_ne!(report_id, first_id, "report's own backend connection");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = r.db.root_sql(
            r.db.primary(),
            &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {first_id}"),
        );
        if left.as_deref().ok() == Some("0") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "app's idle connection {first_id} to db1 was not closed to make room: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rep.disconnect().await.expect("disconnect");

    // route.explain names the rule.
    let answer = r.control(
        serde_json::json!({"cmd": "route.explain", "args": {"sql": "SELECT * FROM t FOR UPDATE"}}),
    );
    assert_eq!(answer["data"]["route"], "primary", "{answer}");
    assert_eq!(answer["data"]["backend"], "db1", "{answer}");
    let answer = r.control(serde_json::json!({"cmd": "route.explain", "args": {"sql": "SELECT /* route=primary */ 1"}}));
    assert_eq!(answer["data"]["rule"], "hint.primary", "{answer}");
    let answer =
        r.control(serde_json::json!({"cmd": "route.explain", "args": {"sql": "SELECT 1"}}));
    assert_eq!(answer["data"]["route"], "replica", "{answer}");
    // Status counts sessions and queries per backend.
    let status = r.control(serde_json::json!({"cmd": "status"}));
    let backends = status["data"]["service"]["backends"]
        .as_array()
        .expect("backends")
        .clone();
    let db1 = backends.iter().find(|b| b["name"] == "db1").expect("db1");
    assert!(
        db1["queries"]["write"].as_u64().unwrap_or(0) > 0,
        "{status}"
    );

    for conn in [c, l, ro, s, p, w, k] {
        conn.disconnect().await.expect("disconnect");
    }
    tokio::time::timeout(Duration::from_secs(5), async {})
        .await
        .ok();
}
