//! The command phase: read a command, route it, relay the answer; repeat until COM_QUIT.
//!
//! COM_QUERY is classified and routed statement by statement ([`crate::router::decide`]);
//! session state (USE, SET, COM_INIT_DB, COM_SET_OPTION) runs on every backend connection the
//! session holds and is recorded for replay. COM_PING is answered locally; COM_CHANGE_USER and
//! COM_RESET_CONNECTION give every backend connection back (reset) and start a clean state.
//! An unknown or unsupported command gets ERR 1047 and the session goes on; a packet that
//! breaks framing (wrong sequence id, too large) gets its ERR and the connection is closed,
//! as a server does.

use bytes::Bytes;
use tracing::{debug, warn};

use super::client::ClientError;
use super::state::{SessionCommand, SessionState};
use super::{Disconnect, Forwarded, Session};
use crate::classify::{classify, classify_with, Classification, StatementKind};
use crate::config::ReadYourWrites;
use crate::protocol::change_user::ChangeUser;
use crate::protocol::query::ComQuery;
use crate::protocol::response::{ResponseKind, Summary};
use crate::protocol::{Command, ErrPacket};
use crate::router::decide::{is_write, pins};
use crate::router::{decide, Target};
use crate::stats::{ErrorKind, QueryClass};

/// A statement routed to a backend connection the session now holds.
pub struct Routed {
    pub index: usize,
    pub rule: &'static str,
}

impl Session {
    /// Serves commands until the client quits or must be disconnected.
    pub async fn serve(&mut self) {
        loop {
            let packet = match self.client.read_command().await {
                Ok(p) => p,
                Err(ClientError::Closed | ClientError::Io(_)) => return,
                Err(ClientError::Protocol(e)) => {
                    self.shared.stats.error(ErrorKind::Protocol);
                    debug!(error = %e, "bad packet from client; closing");
                    let _ = self
                        .client
                        .send_err(&ErrPacket::from_protocol_error(&e))
                        .await;
                    return;
                }
            };
            let outcome = self.dispatch(packet.payload).await;
            self.count_transaction();
            self.end_write();
            match outcome {
                Ok(true) => {}
                Ok(false) | Err(Disconnect) => return,
            }
        }
    }

    /// Runs one command; `false` ends the session.
    async fn dispatch(&mut self, payload: Bytes) -> Result<bool, Disconnect> {
        let command = match Command::parse(&payload) {
            Ok(c) => c,
            Err(e) => {
                self.shared.stats.error(ErrorKind::Protocol);
                self.client
                    .send_err(&ErrPacket::from_protocol_error(&e))
                    .await?;
                return Ok(true);
            }
        };
        match command {
            Command::Quit => return Ok(false),
            Command::Ping => self.client.send_ok(self.state.status).await?,
            Command::Query => self.query(payload).await?,
            Command::InitDb => {
                let schema = payload[1..].to_vec();
                self.broadcast(
                    &payload,
                    ResponseKind::Single,
                    SessionCommand::InitDb(schema),
                )
                .await?
            }
            Command::SetOption => {
                self.broadcast(
                    &payload,
                    ResponseKind::Single,
                    SessionCommand::SetOption(payload.clone()),
                )
                .await?
            }
            Command::FieldList => {
                let c = classify(b"SHOW COLUMNS FROM t");
                self.statement(&payload, &c, ResponseKind::FieldList)
                    .await?
            }
            Command::Statistics => {
                let c = classify(b"SHOW STATUS");
                self.statement(&payload, &c, ResponseKind::Single).await?
            }
            Command::ChangeUser => return self.change_user(&payload).await,
            Command::ResetConnection => {
                // The server keeps the session's COM_SET_OPTION (multi-statements) through a
                // reset: the next backend connections get it again.
                let option = self
                    .state
                    .history
                    .iter()
                    .rev()
                    .find(|c| matches!(c, SessionCommand::SetOption(_)))
                    .cloned();
                self.reset_session(self.state.schema.clone());
                self.state.history.extend(option);
                self.client.send_ok(self.state.status).await?;
            }
            Command::StmtPrepare => self.stmt_prepare(payload).await?,
            Command::StmtExecute => self.stmt_execute(&payload).await?,
            Command::StmtSendLongData => self.stmt_send_long_data(&payload).await?,
            Command::StmtClose => self.stmt_close(&payload).await,
            Command::StmtReset => self.stmt_reset(&payload).await?,
            Command::StmtFetch => self.stmt_fetch(&payload).await?,
            other => {
                debug!(command = other.name(), "unsupported command");
                self.client
                    .send_err(&ErrPacket::unknown_command(other.byte()))
                    .await?;
            }
        }
        Ok(true)
    }

    async fn query(&mut self, payload: Bytes) -> Result<(), Disconnect> {
        let text = match ComQuery::parse(&payload, self.client.caps) {
            Ok(q) => q.text,
            Err(e) => {
                self.client
                    .send_err(&ErrPacket::from_protocol_error(&e))
                    .await?;
                return Ok(());
            }
        };
        let c = classify_with(text, self.state.dialect());
        if decide(&c, &self.view()).target == Target::All {
            return self
                .broadcast(
                    &payload,
                    ResponseKind::Query,
                    SessionCommand::Query(payload.clone()),
                )
                .await;
        }
        self.statement(&payload, &c, ResponseKind::Query).await
    }

    pub fn view(&self) -> crate::router::SessionView {
        let ryw = &self.router.config.read_your_writes;
        let window = (ryw.mode == ReadYourWrites::WriterWindow)
            .then(|| ryw.window.map(|w| w.get()))
            .flatten();
        self.state.view(window, self.router.causal())
    }

    /// Routes and runs one statement (not session state) and relays its answer. A read
    /// outside a transaction whose backend connection breaks before any byte reached the
    /// client runs again on another reader (or the writer): the client sees no error.
    async fn statement(
        &mut self,
        payload: &[u8],
        c: &Classification,
        kind: ResponseKind,
    ) -> Result<(), Disconnect> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let routed = match self.route(c).await {
                Ok(r) => r,
                Err(err) => {
                    self.client.send_err(&err).await?;
                    return Ok(());
                }
            };
            match self.try_forward(routed.index, payload, kind).await? {
                Some(Forwarded::Answered(summary)) => {
                    self.after(&routed, c, &summary);
                    self.fetch_gtid(routed.index).await;
                    return Ok(());
                }
                Some(Forwarded::Lost {
                    backend,
                    in_transaction,
                }) => {
                    if in_transaction || !self.may_retry(c, attempts) {
                        return self.send_lost(&backend, in_transaction).await;
                    }
                    warn!(backend = %backend, attempt = attempts, "read lost with its backend; running it elsewhere");
                }
                None => return Ok(()),
            }
        }
    }

    /// Causal reads for a client without session tracking (its backend connections do not
    /// report `last_gtid` in OK packets): ask the writer for the GTID of the session's last
    /// write once the write is committed.
    pub async fn fetch_gtid(&mut self, index: usize) {
        if !self.state.gtid_pending || self.state.transaction_on.is_some() {
            return;
        }
        self.state.gtid_pending = false;
        let Some(attached) = self.backends[index].as_mut() else {
            return;
        };
        match attached
            .pooled
            .conn
            .query_scalar(b"SELECT @@last_gtid")
            .await
        {
            Ok(Some(gtid)) if !gtid.is_empty() => {
                self.state.last_gtid = Some(String::from_utf8_lossy(&gtid).into_owned());
            }
            Ok(_) => {}
            Err(e) => {
                debug!(error = %e, "cannot read last_gtid");
                self.detach(index);
            }
        }
    }

    /// Bookkeeping after a statement ran on `routed.index`.
    pub fn after(&mut self, routed: &Routed, c: &Classification, summary: &Summary) {
        let on_writer = self.router.writer().is_ok_and(|w| w.index == routed.index);
        let wrote = on_writer && is_write(c);
        self.state.observe(routed.index, summary, wrote);
        if wrote && summary.error.is_none() && summary.gtid.is_none() && self.router.causal() {
            self.state.gtid_pending = true;
        }
        if summary.error.is_none() {
            if let Some(rule) = pins(c) {
                self.state.pinned = Some(rule);
            }
            if c.kind == StatementKind::UnlockTables
                && self.state.pinned == Some("session.pinned.locked_tables")
            {
                self.state.pinned = None;
            }
        }
        let class = if c.kind.is_transaction_control() {
            QueryClass::Transaction
        } else if wrote {
            QueryClass::Write
        } else if c.route == crate::classify::Route::Replica {
            QueryClass::Read
        } else {
            QueryClass::Other
        };
        self.shared.stats.query(routed.index, class);
    }

    /// Runs a session command on every backend connection the session holds, relaying the
    /// first one's answer (the connection with an open transaction, else the writer), and
    /// records it for replay when it succeeded.
    async fn broadcast(
        &mut self,
        payload: &[u8],
        kind: ResponseKind,
        entry: SessionCommand,
    ) -> Result<(), Disconnect> {
        let mut targets: Vec<usize> = (0..self.backends.len())
            .filter(|&i| self.backends[i].is_some())
            .collect();
        let preferred = self
            .state
            .transaction_on
            .or_else(|| self.router.writer().ok().map(|w| w.index));
        if let Some(p) = preferred.filter(|p| targets.contains(p)) {
            targets.retain(|&i| i != p);
            targets.insert(0, p);
        }
        if targets.is_empty() {
            if let Ok(b) = self.router.default_backend() {
                targets.push(b.index);
            }
        }
        // The first connection that can be attached answers; outside a transaction session
        // state can run anywhere, so a dead writer (or none during a failover) is skipped.
        let mut first = None;
        for &t in &targets {
            match self.attach(t).await.map(|_| ()) {
                Ok(()) => {
                    first = Some(t);
                    break;
                }
                Err(err) if self.state.transaction_on == Some(t) => {
                    self.client.send_err(&err).await?;
                    return Ok(());
                }
                Err(_) => {}
            }
        }
        let first = match first {
            Some(f) => f,
            None => match self.attach_reader().await {
                Ok(i) => i,
                Err(err) => {
                    self.client.send_err(&err).await?;
                    return Ok(());
                }
            },
        };
        targets.retain(|&t| t != first);
        let Some(summary) = self.forward(first, payload, kind).await? else {
            return Ok(());
        };
        self.state.observe(first, &summary, false);
        self.shared.stats.query(first, QueryClass::Session);
        if summary.error.is_some() {
            return Ok(());
        }
        let mut done = vec![first];
        for &i in &targets {
            if self.attach(i).await.is_err() {
                continue;
            }
            let Some(attached) = self.backends[i].as_mut() else {
                continue;
            };
            match attached.pooled.conn.command_discard(payload, kind).await {
                Ok(Summary { error: None, .. }) => done.push(i),
                _ => self.detach(i),
            }
        }
        self.state.record(entry);
        let replayed = self.state.history.len();
        for i in done {
            if let Some(a) = self.backends[i].as_mut() {
                a.replayed = replayed;
            }
        }
        Ok(())
    }

    /// Gives back every backend connection and starts a clean state with `schema`.
    fn reset_session(&mut self, schema: Option<Vec<u8>>) {
        self.release_all();
        self.stmts.clear();
        self.state = SessionState::new(schema);
    }

    /// COM_CHANGE_USER: re-authenticates against the greeting's scramble, then resets.
    async fn change_user(&mut self, payload: &[u8]) -> Result<bool, Disconnect> {
        let request = match ChangeUser::parse(payload, self.client.caps) {
            Ok(r) => r,
            Err(e) => {
                self.client
                    .send_err(&ErrPacket::from_protocol_error(&e))
                    .await?;
                return Ok(false);
            }
        };
        let user = self.shared.users.load().get(&request.username);
        let plugin = request.auth_plugin_name.clone();
        let verified = match &user {
            Some(u) => {
                super::auth::check(
                    &mut self.client,
                    u,
                    &self.shared.client_key,
                    plugin.as_deref(),
                    &request.auth_response,
                    &self.scramble,
                )
                .await?
            }
            None => false,
        };
        let secret = user.as_ref().and_then(|u| u.backend_secret());
        let (Some(user), Some(secret), true) = (user, secret, verified) else {
            self.shared.stats.error(ErrorKind::Auth);
            let host = self.client.peer.ip().to_string();
            self.client
                .send_err(&ErrPacket::access_denied(
                    &request.username,
                    &host,
                    !request.auth_response.is_empty(),
                ))
                .await?;
            return Ok(false);
        };
        tracing::Span::current().record("user", user.name.as_str());
        self.user = user;
        self.secret = secret;
        if let Some(charset) = request.charset {
            self.charset = charset as u8;
        }
        self.reset_session(request.database.clone());
        self.client.send_ok(self.state.status).await?;
        Ok(true)
    }
}
