//! The classifier's statement table: each row is a statement and the route, kind and rule it
//! must get. Add a row for every routing bug found.

use super::*;
use Route::{Primary as P, Replica as R};
use StatementKind as K;

#[rustfmt::skip]
const TABLE: &[(&str, Route, StatementKind, &str)] = &[
    // Plain reads.
    ("SELECT 1", R, K::Select, "select"),
    ("select * from t where id = 1", R, K::Select, "select"),
    ("  \n\tSeLeCt\n1", R, K::Select, "select"),
    ("SELECT 1;", R, K::Select, "select"),
    ("SELECT 1; -- bye", R, K::Select, "select"),
    ("(SELECT 1) UNION (SELECT 2)", R, K::Select, "select"),
    ("((SELECT 1))", R, K::Select, "select"),
    ("TABLE t", R, K::Select, "select"),
    ("VALUES ROW(1, 2)", R, K::Select, "select"),
    ("WITH c AS (SELECT 1) SELECT * FROM c", R, K::Select, "select"),
    ("WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT * FROM c",
        R, K::Select, "select"),
    ("SELECT @a", R, K::Select, "select"),
    ("SELECT NOW(), RAND(), UUID()", R, K::Select, "select"),
    ("SELECT * FROM t FOR SYSTEM_TIME AS OF '2024-01-01'", R, K::Select, "select"),
    // Text that only looks like a locking clause.
    ("SELECT 'FOR UPDATE'", R, K::Select, "select"),
    ("SELECT \"x FOR UPDATE\"", R, K::Select, "select"),
    ("SELECT 'it''s FOR UPDATE'", R, K::Select, "select"),
    ("SELECT 'a\\' FOR UPDATE'", R, K::Select, "select"),
    ("SELECT `for update` FROM t", R, K::Select, "select"),
    ("SELECT /* FOR UPDATE */ 1", R, K::Select, "select"),
    ("SELECT 1 -- FOR UPDATE", R, K::Select, "select"),
    ("SELECT 1 # FOR UPDATE", R, K::Select, "select"),
    ("SELECT /*+ MAX_EXECUTION_TIME(10) */ 1", R, K::Select, "select"),
    ("SELECT /*! SQL_NO_CACHE */ 1", R, K::Select, "select"),
    ("SELECT get_lock FROM t", R, K::Select, "select"),
    // Reads that must see the primary or the same connection.
    ("SELECT * FROM t FOR UPDATE", P, K::Select, "select.locking_read"),
    ("select * from t for update nowait", P, K::Select, "select.locking_read"),
    ("SELECT * FROM t FOR SHARE", P, K::Select, "select.locking_read"),
    ("SELECT * FROM t LOCK IN SHARE MODE", P, K::Select, "select.locking_read"),
    ("SELECT 1 /*!50000 FOR UPDATE */", P, K::Select, "select.locking_read"),
    ("(SELECT 1 FOR UPDATE)", P, K::Select, "select.locking_read"),
    ("WITH c AS (SELECT 1) SELECT * FROM c FOR UPDATE", P, K::Select, "select.locking_read"),
    ("SELECT a INTO @x FROM t", P, K::Select, "select.into"),
    ("SELECT * FROM t INTO OUTFILE '/tmp/t.csv'", P, K::Select, "select.into"),
    ("SELECT * INTO DUMPFILE '/tmp/t' FROM t", P, K::Select, "select.into"),
    ("SELECT GET_LOCK('job', 10)", P, K::Select, "select.user_lock"),
    ("SELECT RELEASE_LOCK('job')", P, K::Select, "select.user_lock"),
    ("SELECT RELEASE_ALL_LOCKS()", P, K::Select, "select.user_lock"),
    ("SELECT IS_USED_LOCK('job')", P, K::Select, "select.user_lock"),
    ("select is_free_lock ('job')", P, K::Select, "select.user_lock"),
    ("SELECT LAST_INSERT_ID()", P, K::Select, "select.last_insert_id"),
    ("SELECT @@identity", P, K::Select, "select.last_insert_id"),
    ("SELECT NEXTVAL(s)", P, K::Select, "select.sequence"),
    ("SELECT NEXT VALUE FOR s", P, K::Select, "select.sequence"),
    ("SELECT PREVIOUS VALUE FOR s", P, K::Select, "select.sequence"),
    ("SELECT LASTVAL(s)", P, K::Select, "select.sequence"),
    ("SELECT SETVAL(s, 10)", P, K::Select, "select.sequence"),
    ("SELECT FOUND_ROWS()", P, K::Select, "select.connection_bound"),
    ("SELECT ROW_COUNT()", P, K::Select, "select.connection_bound"),
    ("SELECT CONNECTION_ID()", P, K::Select, "select.connection_bound"),
    ("SELECT @@warning_count", P, K::Select, "select.connection_bound"),
    ("SELECT @a := 1", P, K::Select, "select.assigns_user_var"),
    // SHOW, DESCRIBE, EXPLAIN, HELP.
    ("SHOW TABLES", R, K::Show, "show"),
    ("show full processlist", R, K::Show, "show"),
    ("SHOW CREATE TABLE t", R, K::Show, "show"),
    ("SHOW SESSION VARIABLES LIKE 'x'", R, K::Show, "show"),
    ("SHOW WARNINGS", P, K::Show, "show.connection_bound"),
    ("SHOW COUNT(*) ERRORS", P, K::Show, "show.connection_bound"),
    ("SHOW MASTER STATUS", P, K::Show, "show.replication"),
    ("SHOW SLAVE STATUS", P, K::Show, "show.replication"),
    ("SHOW BINARY LOG STATUS", P, K::Show, "show.replication"),
    ("DESCRIBE t", R, K::Describe, "describe"),
    ("DESC t", R, K::Describe, "describe"),
    ("EXPLAIN `t`", R, K::Describe, "describe"),
    ("EXPLAIN SELECT * FROM t", R, K::Explain, "explain.select"),
    ("EXPLAIN FORMAT=JSON SELECT 1", R, K::Explain, "explain.select"),
    ("EXPLAIN ANALYZE SELECT 1", R, K::Explain, "explain.select"),
    ("DESCRIBE SELECT 1", R, K::Explain, "explain.select"),
    ("EXPLAIN UPDATE t SET a = 1", P, K::Explain, "explain.write"),
    ("EXPLAIN FOR CONNECTION 12", P, K::Explain, "explain.for_connection"),
    ("ANALYZE SELECT * FROM t", R, K::Explain, "analyze.select"),
    ("ANALYZE FORMAT=JSON SELECT 1", R, K::Explain, "analyze.select"),
    ("ANALYZE UPDATE t SET a = 1", P, K::Explain, "analyze.write"),
    ("ANALYZE TABLE t", P, K::Admin, "admin"),
    ("HELP 'contents'", R, K::Help, "help"),
    // Writes and DDL.
    ("INSERT INTO t VALUES (1)", P, K::Insert, "write.insert"),
    ("insert into t select * from u", P, K::Insert, "write.insert"),
    ("UPDATE t SET a = 1", P, K::Update, "write.update"),
    ("DELETE FROM t", P, K::Delete, "write.delete"),
    ("REPLACE INTO t VALUES (1)", P, K::Replace, "write.replace"),
    ("WITH c AS (SELECT id FROM t) UPDATE t JOIN c USING (id) SET x = 1", P, K::Update, "write.update"),
    ("WITH c AS (SELECT 1) DELETE FROM t", P, K::Delete, "write.delete"),
    ("LOAD DATA INFILE 'x' INTO TABLE t", P, K::LoadData, "write.load_data"),
    ("LOAD DATA LOCAL INFILE 'x' INTO TABLE t", P, K::LoadData, "write.load_data"),
    ("LOAD XML INFILE 'x' INTO TABLE t", P, K::LoadData, "write.load_data"),
    ("LOAD INDEX INTO CACHE t", P, K::Admin, "admin"),
    ("CALL p(1)", P, K::Call, "call"),
    ("DO SLEEP(1)", P, K::Do, "do"),
    ("CREATE TABLE t (a INT)", P, K::Ddl, "ddl"),
    ("CREATE VIEW v AS SELECT 1", P, K::Ddl, "ddl"),
    ("ALTER TABLE t ADD b INT", P, K::Ddl, "ddl"),
    ("DROP TABLE t", P, K::Ddl, "ddl"),
    ("TRUNCATE t", P, K::Ddl, "ddl"),
    ("RENAME TABLE a TO b", P, K::Ddl, "ddl"),
    ("GRANT SELECT ON *.* TO 'u'@'%'", P, K::Ddl, "ddl"),
    ("REVOKE SELECT ON *.* FROM 'u'@'%'", P, K::Ddl, "ddl"),
    ("CREATE TEMPORARY TABLE tmp (a INT)", P, K::CreateTemporaryTable, "ddl.create_temporary_table"),
    ("CREATE OR REPLACE TEMPORARY TABLE tmp AS SELECT 1", P, K::CreateTemporaryTable,
        "ddl.create_temporary_table"),
    ("DROP TEMPORARY TABLE IF EXISTS tmp", P, K::DropTemporaryTable, "ddl.drop_temporary_table"),
    ("KILL 12", P, K::Admin, "admin"),
    ("FLUSH TABLES", P, K::Admin, "admin"),
    ("OPTIMIZE TABLE t", P, K::Admin, "admin"),
    ("SET PASSWORD = 'x'", P, K::Admin, "admin.set_password_or_role"),
    // Transaction control.
    ("BEGIN", P, K::Begin, "tx.begin"),
    ("begin work;", P, K::Begin, "tx.begin"),
    ("START TRANSACTION", P, K::Begin, "tx.begin"),
    ("START TRANSACTION WITH CONSISTENT SNAPSHOT", P, K::Begin, "tx.begin"),
    ("START TRANSACTION READ ONLY", R, K::BeginReadOnly, "tx.start_read_only"),
    ("start transaction with consistent snapshot, read only", R, K::BeginReadOnly, "tx.start_read_only"),
    ("START TRANSACTION READ WRITE", P, K::BeginReadWrite, "tx.start_read_write"),
    ("START SLAVE", P, K::Admin, "admin"),
    ("BEGIN NOT ATOMIC SELECT 1; END", P, K::Unknown, "unknown.compound_statement"),
    ("COMMIT", P, K::Commit, "tx.commit"),
    ("COMMIT WORK", P, K::Commit, "tx.commit"),
    ("ROLLBACK", P, K::Rollback, "tx.rollback"),
    ("ROLLBACK WORK", P, K::Rollback, "tx.rollback"),
    ("ROLLBACK TO SAVEPOINT s1", P, K::RollbackToSavepoint, "tx.rollback_to_savepoint"),
    ("ROLLBACK WORK TO s1", P, K::RollbackToSavepoint, "tx.rollback_to_savepoint"),
    ("SAVEPOINT s1", P, K::Savepoint, "tx.savepoint"),
    ("RELEASE SAVEPOINT s1", P, K::ReleaseSavepoint, "tx.release_savepoint"),
    ("XA START 'x'", P, K::XaStart, "tx.xa_start"),
    ("XA BEGIN 'x'", P, K::XaStart, "tx.xa_start"),
    ("XA END 'x'", P, K::XaEnd, "tx.xa_end"),
    ("XA PREPARE 'x'", P, K::XaPrepare, "tx.xa_prepare"),
    ("XA COMMIT 'x' ONE PHASE", P, K::XaCommit, "tx.xa_commit"),
    ("XA ROLLBACK 'x'", P, K::XaRollback, "tx.xa_rollback"),
    ("XA RECOVER", P, K::XaRecover, "tx.xa_recover"),
    ("SET autocommit=0", P, K::SetAutocommit(Some(false)), "tx.autocommit"),
    ("SET autocommit = 1", P, K::SetAutocommit(Some(true)), "tx.autocommit"),
    ("SET @@autocommit=ON", P, K::SetAutocommit(Some(true)), "tx.autocommit"),
    ("set session autocommit = off", P, K::SetAutocommit(Some(false)), "tx.autocommit"),
    ("SET @@session.autocommit = 'ON'", P, K::SetAutocommit(Some(true)), "tx.autocommit"),
    ("SET LOCAL autocommit := TRUE", P, K::SetAutocommit(Some(true)), "tx.autocommit"),
    ("SET autocommit = @x", P, K::SetAutocommit(None), "tx.autocommit"),
    ("SET autocommit = 1 + 0", P, K::SetAutocommit(None), "tx.autocommit"),
    ("SET NAMES utf8, autocommit = 0", P, K::SetAutocommit(Some(false)), "tx.autocommit"),
    ("SET @@global.autocommit = 0", P, K::SetGlobalVariable, "admin.set_global"),
    ("LOCK TABLES t WRITE", P, K::LockTables, "tx.lock_tables"),
    ("LOCK TABLE t READ", P, K::LockTables, "tx.lock_tables"),
    ("UNLOCK TABLES", P, K::UnlockTables, "tx.unlock_tables"),
    // Session state.
    ("USE shop", P, K::UseDb, "session.use"),
    ("USE `my db`", P, K::UseDb, "session.use"),
    ("SET NAMES utf8mb4", P, K::SetNames, "session.set_names"),
    ("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'", P, K::SetNames, "session.set_names"),
    ("SET CHARACTER SET latin1", P, K::SetNames, "session.set_names"),
    ("SET CHARSET utf8", P, K::SetNames, "session.set_names"),
    ("/*!40101 SET NAMES utf8 */", P, K::SetNames, "session.set_names"),
    ("SET sql_mode = 'ANSI'", P, K::SetSessionVariable, "session.set_variable"),
    ("SET SESSION sql_mode = ''", P, K::SetSessionVariable, "session.set_variable"),
    ("SET @@session.time_zone = '+00:00'", P, K::SetSessionVariable, "session.set_variable"),
    ("SET @@time_zone = 'UTC'", P, K::SetSessionVariable, "session.set_variable"),
    ("SET ROLE ALL", P, K::SetSessionVariable, "session.set_role"),
    ("SET @a = 1", P, K::SetUserVariable, "session.set_user_variable"),
    ("SET @a := 1, @b = (SELECT 2)", P, K::SetUserVariable, "session.set_user_variable"),
    ("SET GLOBAL max_connections = 1000", P, K::SetGlobalVariable, "admin.set_global"),
    ("SET PERSIST max_connections = 1000", P, K::SetGlobalVariable, "admin.set_global"),
    ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY", P, K::SetTransaction,
        "session.set_transaction"),
    ("SET SESSION TRANSACTION READ ONLY", P, K::SetTransaction, "session.set_transaction"),
    ("SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE", P, K::SetGlobalVariable, "admin.set_global"),
    ("SET STATEMENT max_statement_time=1 FOR SELECT * FROM t", R, K::Select, "select"),
    ("SET STATEMENT max_statement_time=1 FOR UPDATE t SET a = 1", P, K::Update, "write.update"),
    ("PREPARE s FROM 'SELECT 1'", P, K::Prepare, "session.prepare"),
    ("EXECUTE s USING @a", P, K::Execute, "session.execute"),
    ("DEALLOCATE PREPARE s", P, K::Deallocate, "session.deallocate"),
    ("DROP PREPARE s", P, K::Deallocate, "session.deallocate"),
    // Everything else goes to the primary.
    ("", P, K::Empty, "empty"),
    ("  /* only a comment */ ", P, K::Empty, "empty"),
    (";", P, K::Empty, "empty"),
    ("FROBNICATE t", P, K::Unknown, "unknown.keyword"),
    ("123", P, K::Unknown, "unknown.not_a_statement"),
    ("(UPDATE t SET a = 1)", P, K::Unknown, "unknown.parenthesised"),
    ("SELECT 1; SELECT 2", P, K::Select, "multi_statement"),
    ("UPDATE t SET a = 1; SELECT 1", P, K::Update, "write.update"),
    ("SELECT 'abc", P, K::Select, "lex.unterminated"),
    ("SELECT 1 /* never closed", P, K::Select, "lex.unterminated"),
    // Hints.
    ("/* route=primary */ SELECT 1", P, K::Select, "hint.primary"),
    ("SELECT /* route=primary */ 1", P, K::Select, "hint.primary"),
    ("/* route=replica */ SELECT * FROM t FOR UPDATE", R, K::Select, "hint.replica"),
    ("/* route=replica */ SELECT 1", R, K::Select, "select"),
    ("/* route=replica */ CALL report()", R, K::Call, "hint.replica"),
    ("/* route=replica */ INSERT INTO t VALUES (1)", P, K::Insert, "write.insert"),
    ("/* route=replica */ SET @a = 1", P, K::SetUserVariable, "session.set_user_variable"),
    ("/* route=replica */ SELECT 1; SELECT 2", P, K::Select, "multi_statement"),
    ("-- route=primary\nSELECT 1", R, K::Select, "select"),
    ("/* route=primary */ INSERT INTO t VALUES (1)", P, K::Insert, "write.insert"),
];

#[test]
fn statement_table() {
    let mut failures = Vec::new();
    for &(sql, route, kind, rule) in TABLE {
        let c = classify(sql.as_bytes());
        if (c.route, c.kind, c.rule) != (route, kind, rule) {
            failures.push(format!(
                "{sql:?}\n    want {route:?} {kind:?} {rule}\n    got  {:?} {:?} {} {:?}",
                c.route, c.kind, c.rule, c.flags
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} misclassified:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn flags(sql: &str) -> Flags {
    classify(sql.as_bytes()).flags
}

#[test]
fn flags_tell_the_router_what_to_track() {
    assert!(flags("SELECT 1; SELECT 2").contains(Flags::MULTI_STATEMENT));
    assert!(flags("UPDATE t SET a = 1; SELECT 1").contains(Flags::MULTI_STATEMENT));
    assert!(flags("SELECT GET_LOCK('a', 1) FOR UPDATE")
        .contains(Flags::USER_LOCK | Flags::LOCKING_READ));
    assert!(
        flags("SELECT a INTO @x FROM t").contains(Flags::SELECT_INTO | Flags::USER_VARIABLE_WRITE)
    );
    assert!(flags("SELECT @a").contains(Flags::USER_VARIABLE_READ));
    assert!(flags("CREATE TEMPORARY TABLE t (a INT)").contains(Flags::TEMPORARY_TABLE));
    assert!(flags("SET NAMES utf8").contains(Flags::SESSION_STATE));
    assert!(flags("SET sql_mode = '', @a = 1")
        .contains(Flags::SESSION_STATE | Flags::USER_VARIABLE_WRITE));
    assert!(flags("SET GLOBAL x = 1").contains(Flags::GLOBAL_VARIABLE));
    assert!(flags("/*!40101 SET NAMES utf8 */").contains(Flags::EXECUTABLE_COMMENT));
    assert!(flags("COMMIT AND CHAIN").contains(Flags::TX_CHAIN));
    assert!(!flags("COMMIT AND NO CHAIN").contains(Flags::TX_CHAIN));
    assert!(flags("ROLLBACK RELEASE").contains(Flags::RELEASE_CONNECTION));
    assert!(!flags("COMMIT NO RELEASE").contains(Flags::RELEASE_CONNECTION));
    assert!(flags("SET STATEMENT a=1 FOR SELECT 1").contains(Flags::SET_STATEMENT));
    assert!(flags("SHOW WARNINGS").contains(Flags::CONNECTION_BOUND));
    assert!(flags("SELECT 'x").contains(Flags::UNTERMINATED));
    assert!(flags("/* route=replica */ SELECT 1").contains(Flags::HINTED));
    assert!(flags("/* route=replica */ INSERT INTO t VALUES (1)").contains(Flags::HINT_REFUSED));
    assert!(flags("/* route=primary */ INSERT INTO t VALUES (1)").contains(Flags::HINTED));
    assert_eq!(flags("SELECT 1"), Flags::empty());
    assert_eq!(
        format!("{:?}", flags("SELECT 1 FOR UPDATE")),
        "Flags(LOCKING_READ)"
    );
}

#[test]
fn the_session_dialect_decides_how_literals_end() {
    let sql = br"SELECT 'a\' FOR UPDATE -- '";
    assert_eq!(classify(sql).route, Route::Replica);
    let no_escapes = Dialect::from(StatusFlags::NO_BACKSLASH_ESCAPES | StatusFlags::AUTOCOMMIT);
    assert!(!no_escapes.backslash_escapes);
    let c = classify_with(sql, no_escapes);
    assert_eq!((c.route, c.rule), (Route::Primary, "select.locking_read"));

    let ansi = Dialect::from(StatusFlags::ANSI_QUOTES);
    assert!(ansi.ansi_quotes);
    assert_eq!(
        classify_with(br#"SELECT "FOR UPDATE" FROM t"#, ansi).route,
        Route::Replica
    );
}

#[test]
fn non_utf8_text_is_fine() {
    assert_eq!(classify(b"SELECT '\xff\xfe' FROM t").route, Route::Replica);
    assert_eq!(classify(b"SELECT \xe9t\xe9 FROM t").route, Route::Replica);
    assert_eq!(classify(b"\xff\xfe").kind, StatementKind::Unknown);
}

#[test]
fn kind_groups() {
    assert!(K::SetAutocommit(None).is_transaction_control());
    assert!(K::SetAutocommit(None).is_session_state());
    assert!(K::UseDb.is_session_state());
    assert!(!K::Select.is_session_state());
    assert!(K::Commit.is_transaction_control());
    assert!(!K::Insert.accepts_replica_hint());
    assert_eq!(Route::Replica.as_str(), "replica");
}
