//! What a session is in, as far as routing cares, and the session commands to replay.
//!
//! Transaction state comes from the servers, not from SQL text: after every response the
//! status flags say whether a transaction is open on that connection (`IN_TRANS`, whatever
//! opened it: BEGIN, `autocommit=0` hidden in a prepared statement, a stored procedure) and
//! whether autocommit is on. Session tracking in OK packets reports schema changes and, on
//! MariaDB backends opened for causal reads, the `last_gtid` of each write.
//!
//! The history holds the statements that changed session state (USE, SET NAMES, SET of
//! session and user variables, COM_INIT_DB, COM_SET_OPTION) in order; every backend connection
//! the session attaches replays it before its first statement.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::classify::Dialect;
use crate::protocol::response::Summary;
use crate::protocol::StatusFlags;
use crate::router::SessionView;

/// Replaying more than this many session commands on every new backend connection costs more
/// than it saves: past it the session is pinned to the writer instead.
pub const MAX_HISTORY: usize = 256;

/// A command to replay, as the client sent it.
#[derive(Debug, Clone)]
pub enum SessionCommand {
    /// A COM_QUERY payload (command byte included).
    Query(Bytes),
    /// COM_INIT_DB with this schema.
    InitDb(Vec<u8>),
    /// COM_SET_OPTION payload.
    SetOption(Bytes),
}

#[derive(Debug)]
pub struct SessionState {
    pub history: Vec<SessionCommand>,
    pub schema: Option<Vec<u8>>,
    pub status: StatusFlags,
    pub transaction_on: Option<usize>,
    pub pinned: Option<&'static str>,
    pub last_backend: Option<usize>,
    pub last_write: Option<Instant>,
    pub last_gtid: Option<String>,
    /// A write committed without reporting its GTID (the client has no session tracking).
    pub gtid_pending: bool,
}

impl SessionState {
    pub fn new(schema: Option<Vec<u8>>) -> Self {
        let history = schema
            .iter()
            .map(|s| SessionCommand::InitDb(s.clone()))
            .collect();
        SessionState {
            history,
            schema,
            status: StatusFlags::AUTOCOMMIT,
            transaction_on: None,
            pinned: None,
            last_backend: None,
            last_write: None,
            last_gtid: None,
            gtid_pending: false,
        }
    }

    pub fn dialect(&self) -> Dialect {
        Dialect::from(self.status)
    }

    /// The facts [`crate::router::decide`] needs.
    pub fn view(&self, window: Option<Duration>, causal: bool) -> SessionView {
        SessionView {
            transaction_on: self.transaction_on,
            autocommit_off: !self.status.contains(StatusFlags::AUTOCOMMIT),
            pinned: self.pinned,
            last_backend: self.last_backend,
            recent_write: match (window, self.last_write) {
                (Some(w), Some(at)) => at.elapsed() < w,
                _ => false,
            },
            causal_gtid: causal && self.last_gtid.is_some(),
        }
    }

    /// Records a session command that succeeded; pins the session once the history is long.
    pub fn record(&mut self, command: SessionCommand) {
        if let SessionCommand::InitDb(schema) = &command {
            self.schema = Some(schema.clone());
        }
        if self.history.len() >= MAX_HISTORY {
            self.pinned = Some("session.pinned.history_too_long");
            return;
        }
        self.history.push(command);
    }

    /// Takes in what a backend said at the end of a statement that ran on `backend`.
    pub fn observe(&mut self, backend: usize, summary: &Summary, wrote: bool) {
        self.last_backend = Some(backend);
        if let Some(status) = summary.status {
            self.status = status;
            if status.contains(StatusFlags::IN_TRANS) {
                self.transaction_on = Some(backend);
            } else if self.transaction_on == Some(backend) {
                self.transaction_on = None;
            }
        }
        if let Some(schema) = &summary.schema {
            self.schema = Some(schema.clone());
        }
        if wrote && summary.error.is_none() {
            self.last_write = Some(Instant::now());
        }
        if let Some(gtid) = &summary.gtid {
            self.last_gtid = Some(gtid.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_status_flags_open_and_close_transactions() {
        let mut s = SessionState::new(None);
        let open = Summary {
            status: Some(StatusFlags::IN_TRANS),
            ..Default::default()
        };
        s.observe(0, &open, false);
        assert_eq!(s.transaction_on, Some(0));
        assert!(s.view(None, false).autocommit_off);
        let closed = Summary {
            status: Some(StatusFlags::AUTOCOMMIT),
            ..Default::default()
        };
        s.observe(0, &closed, false);
        assert_eq!(s.transaction_on, None);
        assert!(!s.view(None, false).autocommit_off);
    }

    #[test]
    fn a_long_history_pins_the_session() {
        let mut s = SessionState::new(Some(b"appdb".to_vec()));
        for _ in 0..MAX_HISTORY + 1 {
            s.record(SessionCommand::Query(Bytes::from_static(b"\x03SET @a=1")));
        }
        assert_eq!(s.history.len(), MAX_HISTORY);
        assert!(s.pinned.is_some());
    }
}
