//! The rule table: dispatch on a statement's first keyword to the family that recognises it,
//! and the families simple enough to live here (writes, DDL, administration).
//!
//! Reads are in [`read`](super::read), transaction control in
//! [`transaction`](super::transaction), session state in [`session`](super::session). Each
//! family returns a [`Classification`] whose `rule` names the branch that decided it.

use super::cursor::Cursor;
use super::lexer::Token;
use super::{read, session, transaction, Classification, Flags, Route, StatementKind};

use StatementKind as K;

pub(crate) fn primary(kind: StatementKind, rule: &'static str) -> Classification {
    Classification {
        route: Route::Primary,
        kind,
        rule,
        flags: Flags::empty(),
    }
}

pub(crate) fn replica(kind: StatementKind, rule: &'static str) -> Classification {
    Classification {
        route: Route::Replica,
        ..primary(kind, rule)
    }
}

pub(crate) fn unknown(rule: &'static str) -> Classification {
    primary(K::Unknown, rule)
}

/// Classifies the statement at the cursor. `nesting` counts enclosing statements (only
/// MariaDB's `SET STATEMENT ... FOR <statement>` nests, and only once).
pub(crate) fn statement(cur: &mut Cursor<'_>, nesting: u8) -> Classification {
    let mut parens = 0;
    while cur.peek().is_some_and(|t| t.is_punct(b'(')) {
        cur.next();
        parens += 1;
    }
    let first = cur.next();
    let kw = super::cursor::Keyword::of(first);
    match (first, parens) {
        (None, 0) => return primary(K::Empty, "empty"),
        (Some(Token::Word(_)), _) => {}
        _ => return unknown("unknown.not_a_statement"),
    }
    if parens > 0 && !matches!(kw.as_bytes(), b"SELECT" | b"WITH" | b"TABLE" | b"VALUES") {
        return unknown("unknown.parenthesised");
    }
    match kw.as_bytes() {
        b"SELECT" | b"TABLE" | b"VALUES" => read::select(cur),
        b"WITH" => read::with(cur),
        b"SHOW" => read::show(cur),
        b"DESCRIBE" | b"DESC" | b"EXPLAIN" => read::explain(cur),
        b"ANALYZE" => read::analyze(cur),
        b"HELP" => replica(K::Help, "help"),
        b"INSERT" => primary(K::Insert, "write.insert"),
        b"UPDATE" => primary(K::Update, "write.update"),
        b"DELETE" => primary(K::Delete, "write.delete"),
        b"REPLACE" => primary(K::Replace, "write.replace"),
        b"LOAD" => match cur.next_keyword().as_bytes() {
            b"DATA" | b"XML" => primary(K::LoadData, "write.load_data"),
            _ => primary(K::Admin, "admin"),
        },
        b"CALL" => primary(K::Call, "call"),
        b"DO" => primary(K::Do, "do"),
        b"CREATE" => create(cur),
        b"DROP" => drop(cur),
        b"ALTER" | b"TRUNCATE" | b"RENAME" | b"GRANT" | b"REVOKE" => primary(K::Ddl, "ddl"),
        b"BEGIN" | b"START" | b"COMMIT" | b"ROLLBACK" | b"SAVEPOINT" | b"RELEASE" | b"XA"
        | b"LOCK" | b"UNLOCK" => transaction::statement(cur, kw),
        b"USE" => session::use_db(cur),
        b"SET" => session::set(cur, nesting),
        b"PREPARE" => session::flagged(K::Prepare, "session.prepare"),
        b"EXECUTE" => session::flagged(K::Execute, "session.execute"),
        b"DEALLOCATE" => session::flagged(K::Deallocate, "session.deallocate"),
        b"KILL" | b"FLUSH" | b"RESET" | b"PURGE" | b"OPTIMIZE" | b"REPAIR" | b"CHECK"
        | b"CHECKSUM" | b"CACHE" | b"INSTALL" | b"UNINSTALL" | b"SHUTDOWN" | b"CHANGE"
        | b"STOP" | b"BINLOG" | b"HANDLER" | b"CLONE" | b"RESTART" | b"BACKUP" | b"SIGNAL"
        | b"RESIGNAL" | b"GET" | b"IMPORT" => primary(K::Admin, "admin"),
        _ => unknown("unknown.keyword"),
    }
}

/// CREATE [OR REPLACE] [TEMPORARY] TABLE ... and the rest of CREATE.
fn create(cur: &mut Cursor<'_>) -> Classification {
    if cur.eat_kw(b"OR") {
        cur.eat_kw(b"REPLACE");
    }
    if cur.eat_kw(b"TEMPORARY") && cur.eat_kw(b"TABLE") {
        let mut c = primary(K::CreateTemporaryTable, "ddl.create_temporary_table");
        c.flags = Flags::TEMPORARY_TABLE | Flags::SESSION_STATE;
        return c;
    }
    primary(K::Ddl, "ddl")
}

/// DROP TEMPORARY TABLE, DROP PREPARE (= DEALLOCATE PREPARE), and the rest of DROP.
fn drop(cur: &mut Cursor<'_>) -> Classification {
    match cur.next_keyword().as_bytes() {
        b"TEMPORARY" => {
            let mut c = primary(K::DropTemporaryTable, "ddl.drop_temporary_table");
            c.flags = Flags::TEMPORARY_TABLE | Flags::SESSION_STATE;
            c
        }
        b"PREPARE" => session::flagged(K::Deallocate, "session.deallocate"),
        _ => primary(K::Ddl, "ddl"),
    }
}
