//! The routing decision for one statement, as a pure function of the classifier's verdict and
//! what the session is in: an open transaction, autocommit off, a pin, a recent write.
//!
//! Rules, first match wins (each has the name `route.explain` shows):
//! 1. `session.state`: USE, SET NAMES, SET of session or user variables run on every backend
//!    connection the session holds (the one with an open transaction first) and are replayed
//!    on those it attaches later.
//! 2. `transaction.open`: a transaction is open on a backend connection (the server said so in
//!    its status flags, whatever the SQL text was): the statement goes to that connection.
//! 3. `transaction.autocommit_off`: with autocommit off every statement opens or continues a
//!    transaction: the writer.
//! 4. `session.pinned.*`: temporary tables, user-level locks, LOCK TABLES, SQL-level PREPARE and
//!    multi-statement state changes live on one connection: the writer, from then on.
//! 5. `hint.*`: a `/* route=... */` hint the classifier accepted.
//! 6. `session.connection_bound`: FOUND_ROWS(), ROW_COUNT(), SHOW WARNINGS ... run where the
//!    previous statement ran.
//! 7. Statements the classifier sends to the primary: the writer, under the classifier's rule.
//! 8. `read_your_writes.window`: a read within the configured window after the session's last
//!    write goes to the writer.
//! 9. `read_your_writes.causal`: a read after a write with a known GTID goes to a replica that
//!    must first have applied that GTID (the router waits, then falls back to the writer).
//! 10. Other reads: a replica chosen by the pool's algorithm, under the classifier's rule.

use crate::classify::{Classification, Flags, Route, StatementKind};

/// Where a statement goes, before a backend is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The pool's current writer.
    Writer,
    /// A reader chosen by the balancer.
    Reader,
    /// A reader, after it has applied the session's last write.
    CausalReader,
    /// The backend connection at this backend index (open transaction, connection-bound).
    Same(usize),
    /// Every backend connection the session holds (session state).
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub target: Target,
    pub rule: &'static str,
}

/// What the decision needs to know about the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionView {
    /// Backend index holding an open transaction.
    pub transaction_on: Option<usize>,
    pub autocommit_off: bool,
    /// Why the session is pinned to the writer, if it is.
    pub pinned: Option<&'static str>,
    /// Backend index of the previous statement.
    pub last_backend: Option<usize>,
    /// Within the writer_window after a write.
    pub recent_write: bool,
    /// Causal reads are on and the last write's GTID is known.
    pub causal_gtid: bool,
}

pub fn decide(c: &Classification, s: &SessionView) -> Decision {
    let d = |target, rule| Decision { target, rule };
    if is_replayable(c) {
        return d(Target::All, "session.state");
    }
    if let Some(backend) = s.transaction_on {
        return d(Target::Same(backend), "transaction.open");
    }
    if s.autocommit_off {
        return d(Target::Writer, "transaction.autocommit_off");
    }
    if let Some(rule) = s.pinned {
        return d(Target::Writer, rule);
    }
    if let Some(rule) = pins(c) {
        return d(Target::Writer, rule);
    }
    if c.flags.contains(Flags::HINTED) {
        let target = match c.route {
            Route::Primary => Target::Writer,
            Route::Replica => Target::Reader,
        };
        return d(target, c.rule);
    }
    if c.flags.contains(Flags::CONNECTION_BOUND) {
        if let Some(b) = s.last_backend {
            return d(Target::Same(b), "session.connection_bound");
        }
    }
    if c.route == Route::Primary {
        return d(Target::Writer, c.rule);
    }
    if s.recent_write {
        return d(Target::Writer, "read_your_writes.window");
    }
    if s.causal_gtid {
        return d(Target::CausalReader, "read_your_writes.causal");
    }
    d(Target::Reader, c.rule)
}

/// Session state that is replayed on every backend connection rather than pinning.
pub fn is_replayable(c: &Classification) -> bool {
    use StatementKind::*;
    matches!(
        c.kind,
        UseDb | SetNames | SetSessionVariable | SetUserVariable | SetTransaction | SetAutocommit(_)
    ) && !c
        .flags
        .intersects(Flags::MULTI_STATEMENT | Flags::GLOBAL_VARIABLE | Flags::UNTERMINATED)
}

/// Statements that tie the session to the writer from now on; the rule names why.
pub fn pins(c: &Classification) -> Option<&'static str> {
    use StatementKind::*;
    match c.kind {
        CreateTemporaryTable | DropTemporaryTable => Some("session.pinned.temporary_table"),
        LockTables => Some("session.pinned.locked_tables"),
        Prepare | Execute | Deallocate => Some("session.pinned.sql_prepare"),
        _ if c.flags.contains(Flags::TEMPORARY_TABLE) => Some("session.pinned.temporary_table"),
        _ if c.flags.contains(Flags::USER_LOCK) => Some("session.pinned.user_lock"),
        _ if c.flags.contains(Flags::MULTI_STATEMENT) && c.flags.contains(Flags::SESSION_STATE) => {
            Some("session.pinned.multi_statement_state")
        }
        _ => None,
    }
}

/// Whether a statement that ran on the writer counts as a write for read-your-writes.
pub fn is_write(c: &Classification) -> bool {
    use StatementKind::*;
    !matches!(
        c.kind,
        Select
            | Show
            | Describe
            | Explain
            | Help
            | Empty
            | UseDb
            | SetNames
            | SetSessionVariable
            | SetUserVariable
            | SetTransaction
            | Begin
            | BeginReadOnly
            | BeginReadWrite
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    fn route(sql: &str, s: SessionView) -> Decision {
        decide(&classify(sql.as_bytes()), &s)
    }

    #[test]
    fn plain_reads_go_to_a_reader_and_writes_to_the_writer() {
        let s = SessionView::default();
        assert_eq!(route("SELECT 1", s).target, Target::Reader);
        assert_eq!(route("INSERT INTO t VALUES (1)", s).target, Target::Writer);
        assert_eq!(
            route("SELECT * FROM t FOR UPDATE", s).target,
            Target::Writer
        );
        assert_eq!(
            route("START TRANSACTION READ ONLY", s).target,
            Target::Reader
        );
        assert_eq!(route("BEGIN", s).target, Target::Writer);
    }

    #[test]
    fn an_open_transaction_keeps_everything_on_its_connection() {
        let s = SessionView {
            transaction_on: Some(2),
            ..Default::default()
        };
        let d = route("SELECT 1", s);
        assert_eq!((d.target, d.rule), (Target::Same(2), "transaction.open"));
        assert_eq!(route("COMMIT", s).target, Target::Same(2));
        assert_eq!(route("SET @a = 1", s).target, Target::All);
    }

    #[test]
    fn autocommit_off_sends_reads_to_the_writer() {
        let s = SessionView {
            autocommit_off: true,
            ..Default::default()
        };
        assert_eq!(route("SELECT 1", s).rule, "transaction.autocommit_off");
        assert_eq!(route("SET autocommit = 1", s).target, Target::All);
    }

    #[test]
    fn session_state_is_broadcast_and_temporary_tables_pin() {
        let s = SessionView::default();
        assert_eq!(route("SET NAMES utf8mb4", s).target, Target::All);
        assert_eq!(route("SET @a = 1", s).target, Target::All);
        assert_eq!(route("USE appdb", s).target, Target::All);
        let d = route("CREATE TEMPORARY TABLE t (a INT)", s);
        assert_eq!(d.rule, "session.pinned.temporary_table");
        let pinned = SessionView {
            pinned: Some("session.pinned.temporary_table"),
            ..Default::default()
        };
        assert_eq!(route("SELECT 1", pinned).target, Target::Writer);
        assert_eq!(route("SELECT GET_LOCK('a', 1)", s).target, Target::Writer);
    }

    #[test]
    fn hints_and_read_your_writes() {
        let recent = SessionView {
            recent_write: true,
            ..Default::default()
        };
        assert_eq!(route("SELECT 1", recent).rule, "read_your_writes.window");
        assert_eq!(
            route("SELECT /* route=replica */ 1", recent).target,
            Target::Reader
        );
        assert_eq!(
            route("SELECT /* route=primary */ 1", SessionView::default()).target,
            Target::Writer
        );
        let causal = SessionView {
            causal_gtid: true,
            ..Default::default()
        };
        assert_eq!(route("SELECT 1", causal).target, Target::CausalReader);
    }
}
