//! Session state: USE, the many forms of SET, SQL-level PREPARE/EXECUTE/DEALLOCATE.
//!
//! SET is parsed assignment by assignment (`SET NAMES utf8mb4, @a = 1, autocommit = 0` sets
//! three kinds of state): each target is a user variable (`@x`), NAMES / CHARACTER SET, a
//! session variable (`x`, `SESSION x`, `LOCAL x`, `@@x`, `@@session.x`, `@@local.x`) or a
//! global one (`GLOBAL x`, `PERSIST x`, `@@global.x` ...). `autocommit` is picked out with its
//! value, since it opens and closes transactions. The kind reported is autocommit if it is
//! set, otherwise the first assignment's; the flags say what else was set. MariaDB's
//! `SET STATEMENT var = v [, ...] FOR <statement>` is classified by its inner statement.

use super::cursor::{Cursor, Keyword};
use super::lexer::Token;
use super::rules::{primary, statement, unknown};
use super::{Classification, Flags, StatementKind};

use StatementKind as K;

/// A session-state statement (route primary, flagged for replay).
pub(crate) fn flagged(kind: StatementKind, rule: &'static str) -> Classification {
    let mut c = primary(kind, rule);
    c.flags = Flags::SESSION_STATE;
    c
}

pub(crate) fn use_db(cur: &mut Cursor<'_>) -> Classification {
    match cur.next() {
        Some(Token::Word(_) | Token::QuotedIdent(_)) => flagged(K::UseDb, "session.use"),
        _ => unknown("unknown.use"),
    }
}

/// What one SET assignment sets.
enum Target<'a> {
    /// SET [GLOBAL|SESSION] TRANSACTION ...
    Transaction {
        global: bool,
    },
    /// NAMES, CHARACTER SET, CHARSET.
    Names,
    UserVariable,
    Variable {
        name: &'a [u8],
        global: bool,
    },
    Unknown,
}

impl<'a> Target<'a> {
    /// The target named by `token`, after an optional scope keyword (`global` if it was
    /// GLOBAL/PERSIST/PERSIST_ONLY).
    fn of(token: Token<'a>, global: bool) -> Self {
        match token {
            Token::UserVar(_) => Self::UserVariable,
            Token::SysVar(name) => {
                let (global_scope, name) = split_scope(name);
                Self::Variable {
                    name,
                    global: global || global_scope,
                }
            }
            Token::Word(name) => match Keyword::of(Some(token)).as_bytes() {
                b"TRANSACTION" => Self::Transaction { global },
                b"NAMES" | b"CHARSET" | b"CHARACTER" => Self::Names,
                _ => Self::Variable { name, global },
            },
            Token::QuotedIdent(name) => Self::Variable { name, global },
            _ => Self::Unknown,
        }
    }
}

pub(crate) fn set(cur: &mut Cursor<'_>, nesting: u8) -> Classification {
    match cur.peek_keyword().as_bytes() {
        b"STATEMENT" => return set_statement(cur, nesting),
        b"PASSWORD" | b"DEFAULT" => return primary(K::Admin, "admin.set_password_or_role"),
        b"ROLE" => return flagged(K::SetSessionVariable, "session.set_role"),
        _ => {}
    }
    let mut first: Option<Classification> = None;
    let mut autocommit: Option<Option<bool>> = None;
    let mut flags = Flags::empty();
    while let Some(token) = cur.next() {
        let (global, target) = match Keyword::of(Some(token)).as_bytes() {
            b"GLOBAL" | b"PERSIST" | b"PERSIST_ONLY" => (true, cur.next()),
            b"SESSION" | b"LOCAL" => (false, cur.next()),
            _ => (false, Some(token)),
        };
        let Some(target) = target else { break };
        let this = match Target::of(target, global) {
            Target::Transaction { global } => {
                // Its characteristics contain commas: the rest is all one assignment.
                cur.skip_statement();
                if global {
                    global_variable()
                } else {
                    flagged(K::SetTransaction, "session.set_transaction")
                }
            }
            Target::Names => flagged(K::SetNames, "session.set_names"),
            Target::UserVariable => {
                let mut c = flagged(K::SetUserVariable, "session.set_user_variable");
                c.flags |= Flags::USER_VARIABLE_WRITE;
                c
            }
            Target::Variable { global: true, .. } => global_variable(),
            Target::Variable { name, .. } => {
                if name.eq_ignore_ascii_case(b"autocommit") {
                    autocommit = Some(autocommit_value(cur));
                }
                flagged(K::SetSessionVariable, "session.set_variable")
            }
            Target::Unknown => unknown("unknown.set"),
        };
        flags |= this.flags;
        first.get_or_insert(this);
        if !skip_to_next_assignment(cur) {
            break;
        }
    }
    let mut c = match (autocommit, first) {
        (Some(value), _) => primary(K::SetAutocommit(value), "tx.autocommit"),
        (None, Some(c)) => c,
        (None, None) => unknown("unknown.set"),
    };
    c.flags |= flags;
    c
}

fn global_variable() -> Classification {
    let mut c = primary(K::SetGlobalVariable, "admin.set_global");
    c.flags = Flags::GLOBAL_VARIABLE;
    c
}

/// `global.x` → (true, x); `session.x`/`local.x` → (false, x); `x` → (false, x).
fn split_scope(name: &[u8]) -> (bool, &[u8]) {
    if let Some(dot) = name.iter().position(|&b| b == b'.') {
        let (scope, var) = (&name[..dot], &name[dot + 1..]);
        let is = |s: &[u8]| scope.eq_ignore_ascii_case(s);
        if is(b"GLOBAL") || is(b"PERSIST") || is(b"PERSIST_ONLY") {
            return (true, var);
        }
        if is(b"SESSION") || is(b"LOCAL") {
            return (false, var);
        }
    }
    (false, name)
}

/// Reads `= value` after `autocommit`; `None` unless the value is a plain literal
/// (1/0, ON/OFF, TRUE/FALSE, quoted or not) ending the assignment.
fn autocommit_value(cur: &mut Cursor<'_>) -> Option<bool> {
    match cur.next() {
        Some(Token::Punct(b'=') | Token::Assign) => {}
        _ => return None,
    }
    let value = match cur.next()? {
        Token::Number(v) | Token::Word(v) | Token::Str(v) => v,
        _ => return None,
    };
    let ends = match cur.peek() {
        None => true,
        Some(t) => t.is_punct(b','),
    };
    let is = |s: &[u8]| value.eq_ignore_ascii_case(s);
    match () {
        _ if !ends => None,
        _ if is(b"1") || is(b"ON") || is(b"TRUE") => Some(true),
        _ if is(b"0") || is(b"OFF") || is(b"FALSE") => Some(false),
        _ => None,
    }
}

/// Skips to just after the next top-level comma; false at the end of the statement.
fn skip_to_next_assignment(cur: &mut Cursor<'_>) -> bool {
    while let Some(token) = cur.next() {
        if token.is_punct(b',') && cur.token_depth() == 0 {
            return true;
        }
    }
    false
}

/// SET STATEMENT assignments FOR <statement>.
fn set_statement(cur: &mut Cursor<'_>, nesting: u8) -> Classification {
    cur.next();
    while let Some(token) = cur.next() {
        if token.is_kw(b"FOR") && cur.token_depth() == 0 {
            if nesting > 0 {
                return unknown("unknown.nested_set_statement");
            }
            let mut c = statement(cur, nesting + 1);
            c.flags |= Flags::SET_STATEMENT;
            return c;
        }
    }
    unknown("unknown.set_statement")
}
