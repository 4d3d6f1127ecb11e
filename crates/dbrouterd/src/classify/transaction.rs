//! Transaction control: BEGIN / START TRANSACTION (read only, read write), COMMIT, ROLLBACK
//! (whole or to a savepoint), SAVEPOINT, RELEASE SAVEPOINT, XA, LOCK/UNLOCK TABLES.
//! (SET autocommit is parsed with the other SETs in [`session`](super::session).)
//!
//! All of these go to the primary except `START TRANSACTION READ ONLY`, which a replica can
//! serve; the router uses the kind to know when a backend connection becomes free again.

use super::cursor::{Cursor, Keyword};
use super::rules::{primary, replica, unknown};
use super::{Classification, Flags, StatementKind};

use StatementKind as K;

/// Dispatches on the leading keyword `kw` (already consumed).
pub(crate) fn statement(cur: &mut Cursor<'_>, kw: Keyword) -> Classification {
    match kw.as_bytes() {
        b"BEGIN" => begin(cur),
        b"START" => start(cur),
        b"COMMIT" => ending(cur, primary(K::Commit, "tx.commit")),
        b"ROLLBACK" => rollback(cur),
        b"SAVEPOINT" => primary(K::Savepoint, "tx.savepoint"),
        b"RELEASE" if cur.eat_kw(b"SAVEPOINT") => {
            primary(K::ReleaseSavepoint, "tx.release_savepoint")
        }
        b"XA" => xa(cur),
        b"LOCK" | b"UNLOCK" => {
            let lock = kw.as_bytes() == b"LOCK";
            match cur.next_keyword().as_bytes() {
                b"TABLES" | b"TABLE" if lock => primary(K::LockTables, "tx.lock_tables"),
                b"TABLES" | b"TABLE" => primary(K::UnlockTables, "tx.unlock_tables"),
                b"INSTANCE" => primary(K::Admin, "admin"),
                _ => unknown("unknown.lock"),
            }
        }
        _ => unknown("unknown.keyword"),
    }
}

/// BEGIN [WORK]; MariaDB's `BEGIN NOT ATOMIC` opens a compound statement instead.
fn begin(cur: &mut Cursor<'_>) -> Classification {
    cur.eat_kw(b"WORK");
    match cur.peek() {
        None => primary(K::Begin, "tx.begin"),
        Some(_) => unknown("unknown.compound_statement"),
    }
}

/// START TRANSACTION [WITH CONSISTENT SNAPSHOT] [, READ ONLY | READ WRITE]; any other START
/// (START SLAVE, START REPLICA, START GROUP_REPLICATION) is administration.
fn start(cur: &mut Cursor<'_>) -> Classification {
    if !cur.eat_kw(b"TRANSACTION") {
        return primary(K::Admin, "admin");
    }
    cur.skip_statement();
    let seen = cur.seen();
    match (seen.read_only, seen.read_write) {
        (true, false) => replica(K::BeginReadOnly, "tx.start_read_only"),
        (false, true) => primary(K::BeginReadWrite, "tx.start_read_write"),
        (false, false) => primary(K::Begin, "tx.begin"),
        (true, true) => unknown("unknown.transaction_access_mode"),
    }
}

/// ROLLBACK [WORK] TO [SAVEPOINT] name, or the end of the transaction.
fn rollback(cur: &mut Cursor<'_>) -> Classification {
    cur.eat_kw(b"WORK");
    if cur.eat_kw(b"TO") {
        return primary(K::RollbackToSavepoint, "tx.rollback_to_savepoint");
    }
    ending(cur, primary(K::Rollback, "tx.rollback"))
}

/// The tail of COMMIT/ROLLBACK: [AND [NO] CHAIN] [[NO] RELEASE].
fn ending(cur: &mut Cursor<'_>, mut c: Classification) -> Classification {
    cur.eat_kw(b"WORK");
    let mut after_no = false;
    while let Some(token) = cur.next() {
        let kw = Keyword::of(Some(token));
        match kw.as_bytes() {
            b"CHAIN" if !after_no => c.flags |= Flags::TX_CHAIN,
            b"RELEASE" if !after_no => c.flags |= Flags::RELEASE_CONNECTION,
            _ => {}
        }
        after_no = kw.as_bytes() == b"NO";
    }
    c
}

/// XA {START|BEGIN|END|PREPARE|COMMIT|ROLLBACK|RECOVER} ...
fn xa(cur: &mut Cursor<'_>) -> Classification {
    match cur.next_keyword().as_bytes() {
        b"START" | b"BEGIN" => primary(K::XaStart, "tx.xa_start"),
        b"END" => primary(K::XaEnd, "tx.xa_end"),
        b"PREPARE" => primary(K::XaPrepare, "tx.xa_prepare"),
        b"COMMIT" => primary(K::XaCommit, "tx.xa_commit"),
        b"ROLLBACK" => primary(K::XaRollback, "tx.xa_rollback"),
        b"RECOVER" => primary(K::XaRecover, "tx.xa_recover"),
        _ => unknown("unknown.xa"),
    }
}
