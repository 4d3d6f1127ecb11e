//! Reads: SELECT (and TABLE, VALUES, `WITH ... SELECT`), SHOW, DESCRIBE/EXPLAIN, MariaDB's
//! ANALYZE <statement>.
//!
//! A SELECT goes to a replica only when nothing in the whole statement ties it to the primary
//! or to one backend connection: the rule checks the facts the cursor gathered, in order of
//! how much a wrong replica would hurt.

use super::cursor::Cursor;
use super::lexer::Token;
use super::rules::{primary, replica, unknown};
use super::{Classification, Flags, Route, StatementKind};

use StatementKind as K;

/// The statement is a SELECT-like read; decide from everything in it.
pub(crate) fn select(cur: &mut Cursor<'_>) -> Classification {
    read_of_kind(cur, K::Select, "select")
}

/// Drains the statement and routes a read of `kind` by what it contains.
fn read_of_kind(cur: &mut Cursor<'_>, kind: StatementKind, rule: &'static str) -> Classification {
    cur.skip_statement();
    let seen = cur.seen();
    // (fact, flag, rule) in order of precedence for the rule name; every flag applies.
    let checks = [
        (seen.into, Flags::SELECT_INTO, "select.into"),
        (
            seen.locking_read,
            Flags::LOCKING_READ,
            "select.locking_read",
        ),
        (seen.user_lock, Flags::USER_LOCK, "select.user_lock"),
        (
            seen.last_insert_id,
            Flags::LAST_INSERT_ID,
            "select.last_insert_id",
        ),
        (seen.sequence, Flags::SEQUENCE, "select.sequence"),
        (
            seen.connection_bound,
            Flags::CONNECTION_BOUND,
            "select.connection_bound",
        ),
        (
            seen.assigns_user_var,
            Flags::USER_VARIABLE_WRITE,
            "select.assigns_user_var",
        ),
    ];
    let mut c = replica(kind, rule);
    for (hit, flag, rule) in checks {
        if hit {
            c.flags |= flag;
            if c.route == Route::Replica {
                c.route = Route::Primary;
                c.rule = rule;
            }
        }
    }
    if seen.into && cur.flags().contains(Flags::USER_VARIABLE_READ) {
        c.flags |= Flags::USER_VARIABLE_WRITE;
    }
    c
}

/// `WITH [RECURSIVE] cte AS (...), ... <statement>`: the statement after the CTE list (the
/// first verb at parenthesis depth 0) decides; MySQL 8 allows UPDATE and DELETE there.
pub(crate) fn with(cur: &mut Cursor<'_>) -> Classification {
    while let Some(token) = cur.next() {
        if cur.token_depth() != 0 {
            continue;
        }
        match super::cursor::Keyword::of(Some(token)).as_bytes() {
            b"SELECT" | b"TABLE" | b"VALUES" => return select(cur),
            b"UPDATE" => return primary(K::Update, "write.update"),
            b"DELETE" => return primary(K::Delete, "write.delete"),
            b"INSERT" => return primary(K::Insert, "write.insert"),
            b"REPLACE" => return primary(K::Replace, "write.replace"),
            _ => {}
        }
    }
    unknown("unknown.with")
}

/// SHOW: a replica answers the same, except for what is about this very connection (warnings
/// of the previous statement) or this very server's replication position.
pub(crate) fn show(cur: &mut Cursor<'_>) -> Classification {
    let mut kw = cur.next_keyword();
    if matches!(
        kw.as_bytes(),
        b"FULL" | b"GLOBAL" | b"SESSION" | b"EXTENDED"
    ) {
        kw = cur.next_keyword();
    }
    match kw.as_bytes() {
        b"WARNINGS" | b"ERRORS" | b"COUNT" | b"PROFILE" | b"PROFILES" => {
            let mut c = primary(K::Show, "show.connection_bound");
            c.flags = Flags::CONNECTION_BOUND;
            c
        }
        b"MASTER" | b"BINARY" | b"BINLOG" | b"SLAVE" | b"REPLICA" | b"REPLICAS" | b"RELAYLOG" => {
            primary(K::Show, "show.replication")
        }
        _ => replica(K::Show, "show"),
    }
}

/// DESCRIBE/DESC/EXPLAIN [modifiers] (<statement> | table | FOR CONNECTION n).
pub(crate) fn explain(cur: &mut Cursor<'_>) -> Classification {
    skip_explain_modifiers(cur);
    match cur.peek() {
        None => unknown("unknown.explain"),
        Some(Token::Word(_)) => {
            let kw = cur.peek_keyword();
            match kw.as_bytes() {
                b"SELECT" | b"WITH" | b"TABLE" | b"VALUES" => {
                    read_of_kind(cur, K::Explain, "explain.select")
                }
                b"UPDATE" | b"DELETE" | b"INSERT" | b"REPLACE" => {
                    primary(K::Explain, "explain.write")
                }
                b"FOR" => primary(K::Explain, "explain.for_connection"),
                _ => replica(K::Describe, "describe"),
            }
        }
        Some(Token::Punct(b'(')) => read_of_kind(cur, K::Explain, "explain.select"),
        Some(Token::QuotedIdent(_)) => replica(K::Describe, "describe"),
        Some(_) => unknown("unknown.explain"),
    }
}

/// MariaDB `ANALYZE [FORMAT=JSON] <statement>` runs the statement; `ANALYZE TABLE` is
/// maintenance.
pub(crate) fn analyze(cur: &mut Cursor<'_>) -> Classification {
    skip_explain_modifiers(cur);
    if cur.peek().is_some_and(|t| t.is_punct(b'(')) {
        return read_of_kind(cur, K::Explain, "analyze.select");
    }
    match cur.peek_keyword().as_bytes() {
        b"SELECT" | b"WITH" | b"VALUES" => read_of_kind(cur, K::Explain, "analyze.select"),
        b"UPDATE" | b"DELETE" | b"INSERT" | b"REPLACE" => primary(K::Explain, "analyze.write"),
        // ANALYZE [NO_WRITE_TO_BINLOG | LOCAL] TABLE: statistics maintenance.
        _ => primary(K::Admin, "admin"),
    }
}

/// EXTENDED, PARTITIONS, ANALYZE, FORMAT=x, FORMAT x.
fn skip_explain_modifiers(cur: &mut Cursor<'_>) {
    loop {
        match cur.peek_keyword().as_bytes() {
            b"EXTENDED" | b"PARTITIONS" | b"ANALYZE" => {
                cur.next();
            }
            b"FORMAT" => {
                cur.next();
                if cur.peek().is_some_and(|t| t.is_punct(b'=')) {
                    cur.next();
                }
                cur.next();
            }
            _ => return,
        }
    }
}
