//! The SQL statement classifier: decides where a statement may run (primary or replica) and
//! what kind of statement it is, from its text alone, without a full SQL parse.
//!
//! [`classify`] takes the raw bytes of a COM_QUERY or COM_STMT_PREPARE (any character set;
//! keywords are ASCII) and returns a [`Classification`]: the [`Route`], the
//! [`StatementKind`] the router acts on (transaction control and session state need tracking
//! and replay, not just routing), the name of the rule that decided (shown by
//! `route.explain`), and [`Flags`] with the facts behind it.
//!
//! The principle is that a wrong "primary" costs a little load while a wrong "replica" loses
//! reads-your-writes, locks or session state; so anything not recognised as a plain read goes
//! to the primary. Reads go to a replica unless they lock, write a file or variable, use
//! user-level locks, sequences or connection-bound functions (`LAST_INSERT_ID()`,
//! `FOUND_ROWS()` ...). Multi-statement text goes to the primary. A `/* route=... */` hint
//! overrides, except that a replica hint never moves a write or a session-changing statement.
//! Known limit: a stored function called from a SELECT is assumed not to write (as the server
//! itself cannot tell without running it); such calls need a `route=primary` hint.
//!
//! Design note on speed (no timed tests; measure with the benchmarks): the input is lexed once,
//! left to right ([`lexer`]), through a cursor that records facts as tokens pass ([`cursor`]);
//! rules look at the first few keywords, upper-cased into a fixed 20-byte buffer, and decide in
//! constant work per token. Tokens are slices of the input and rule names are `&'static str`,
//! so classification allocates nothing. Only MariaDB's `SET STATEMENT ... FOR` recurses, once.

mod cursor;
mod flags;
mod hint;
mod lexer;
mod read;
mod rules;
mod session;
mod transaction;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use crate::protocol::StatusFlags;
use cursor::Cursor;

pub use flags::Flags;

/// Where a statement may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Primary,
    Replica,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Primary => "primary",
            Route::Replica => "replica",
        }
    }
}

/// What a statement is, as far as routing and session tracking care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementKind {
    // Reads.
    /// SELECT, `WITH ... SELECT`, TABLE, VALUES, parenthesised selects.
    Select,
    Show,
    /// DESCRIBE/DESC/EXPLAIN of a table.
    Describe,
    /// EXPLAIN (or MariaDB ANALYZE) of a statement.
    Explain,
    Help,
    // Writes.
    Insert,
    Update,
    Delete,
    Replace,
    /// LOAD DATA / LOAD XML.
    LoadData,
    Call,
    Do,
    /// CREATE, ALTER, DROP, TRUNCATE, RENAME, GRANT, REVOKE.
    Ddl,
    /// Pins the session to the primary: the table exists on that connection only.
    CreateTemporaryTable,
    DropTemporaryTable,
    /// KILL, FLUSH, OPTIMIZE, SET PASSWORD, replication control and the like.
    Admin,
    // Transaction control.
    /// BEGIN, START TRANSACTION.
    Begin,
    /// START TRANSACTION READ ONLY: may run on a replica.
    BeginReadOnly,
    /// START TRANSACTION READ WRITE.
    BeginReadWrite,
    Commit,
    /// ROLLBACK of the whole transaction (ROLLBACK TO SAVEPOINT is [`Self::RollbackToSavepoint`]).
    Rollback,
    Savepoint,
    RollbackToSavepoint,
    ReleaseSavepoint,
    XaStart,
    XaEnd,
    XaPrepare,
    XaCommit,
    XaRollback,
    XaRecover,
    /// SET autocommit; `None` when the value is not a literal the classifier can read.
    SetAutocommit(Option<bool>),
    LockTables,
    UnlockTables,
    // Session state to track and replay.
    /// USE db.
    UseDb,
    /// SET NAMES / SET CHARACTER SET.
    SetNames,
    SetSessionVariable,
    SetUserVariable,
    /// SET [SESSION] TRANSACTION ...: characteristics of the next transaction(s).
    SetTransaction,
    SetGlobalVariable,
    /// SQL-level PREPARE / EXECUTE / DEALLOCATE PREPARE.
    Prepare,
    Execute,
    Deallocate,
    // Neither.
    /// Only whitespace and comments.
    Empty,
    Unknown,
}

impl StatementKind {
    pub fn is_transaction_control(self) -> bool {
        use StatementKind::*;
        matches!(
            self,
            Begin
                | BeginReadOnly
                | BeginReadWrite
                | Commit
                | Rollback
                | Savepoint
                | RollbackToSavepoint
                | ReleaseSavepoint
                | XaStart
                | XaEnd
                | XaPrepare
                | XaCommit
                | XaRollback
                | XaRecover
                | SetAutocommit(_)
                | LockTables
                | UnlockTables
        )
    }

    /// Statements whose effect on the session the router must remember (and replay on other
    /// backend connections, or pin the session to the primary).
    pub fn is_session_state(self) -> bool {
        use StatementKind::*;
        matches!(
            self,
            UseDb
                | SetNames
                | SetSessionVariable
                | SetUserVariable
                | SetTransaction
                | SetAutocommit(_)
                | Prepare
                | Execute
                | Deallocate
                | CreateTemporaryTable
                | DropTemporaryTable
        )
    }

    /// Whether a `route=replica` hint may move this statement to a replica: reads, and
    /// statements the classifier could not judge (the application knows better); never
    /// writes, transaction control or session state.
    pub fn accepts_replica_hint(self) -> bool {
        use StatementKind::*;
        matches!(
            self,
            Select | Show | Describe | Explain | Help | Call | Do | Unknown
        )
    }
}

/// How string literals are lexed; follow the session's server status flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// False under `sql_mode=NO_BACKSLASH_ESCAPES`.
    pub backslash_escapes: bool,
    /// True under `sql_mode=ANSI_QUOTES` (`".."` quotes identifiers).
    pub ansi_quotes: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Self {
            backslash_escapes: true,
            ansi_quotes: false,
        }
    }
}

impl From<StatusFlags> for Dialect {
    /// From the status flags of the session's last OK packet.
    fn from(status: StatusFlags) -> Self {
        Self {
            backslash_escapes: !status.contains(StatusFlags::NO_BACKSLASH_ESCAPES),
            ansi_quotes: status.contains(StatusFlags::ANSI_QUOTES),
        }
    }
}

/// The classifier's verdict on one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub route: Route,
    pub kind: StatementKind,
    /// The rule that decided the route, for example `select.locking_read` or `hint.replica`.
    pub rule: &'static str,
    pub flags: Flags,
}

/// Classifies `sql` with the default dialect (backslash escapes, `"` for strings).
pub fn classify(sql: &[u8]) -> Classification {
    classify_with(sql, Dialect::default())
}

/// Classifies `sql` lexed under `dialect`.
pub fn classify_with(sql: &[u8], dialect: Dialect) -> Classification {
    let mut cur = Cursor::new(sql, dialect);
    let mut c = rules::statement(&mut cur, 0);
    let multi = cur.has_more_statements();
    c.flags |= cur.flags();

    if cur.unterminated() {
        c.route = Route::Primary;
        c.rule = "lex.unterminated";
    } else if multi {
        c.flags |= Flags::MULTI_STATEMENT;
        if c.route == Route::Replica {
            c.route = Route::Primary;
            c.rule = "multi_statement";
        }
    }

    match cur.hint() {
        None => {}
        Some(Route::Primary) => {
            c.flags |= Flags::HINTED;
            if c.route != Route::Primary {
                c.route = Route::Primary;
                c.rule = "hint.primary";
            }
        }
        Some(Route::Replica) if c.route == Route::Replica => c.flags |= Flags::HINTED,
        Some(Route::Replica) => {
            let allowed = c.kind.accepts_replica_hint()
                && !c
                    .flags
                    .intersects(Flags::MULTI_STATEMENT | Flags::UNTERMINATED);
            if allowed {
                c.route = Route::Replica;
                c.rule = "hint.replica";
                c.flags |= Flags::HINTED;
            } else {
                c.flags |= Flags::HINT_REFUSED;
            }
        }
    }
    c
}
