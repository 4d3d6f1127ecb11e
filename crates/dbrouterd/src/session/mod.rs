//! One client session, from the greeting to COM_QUIT: authentication, then a loop of commands,
//! each routed to a backend connection and its response relayed back unchanged.
//!
//! The session holds at most one backend connection per backend (attached lazily, from the
//! pool for its user and wire format) and gives them back, reset, when it ends. Before its
//! first statement an attached connection replays the session's history (USE, SET ...), so the
//! session's state follows it to every backend it uses.
//!
//! Layout: [`client`] (the client's socket), [`handshake`] and [`auth`] (connection phase),
//! [`state`] (what the session is in), [`command`] (the command phase, one handler per
//! command family), [`routing`] (from a routing decision to an attached backend connection,
//! holding writes while there is no writer), [`forward`] (relaying, and what a broken backend
//! connection means for the client), [`statement`] (prepared statements).

pub mod auth;
pub mod client;
pub mod command;
pub mod forward;
pub mod handshake;
pub mod routing;
pub mod state;
pub mod statement;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::net::TcpStream;
use tracing::{debug, field, info_span, warn, Instrument};

use crate::listener::Shared;
use crate::pool::{wire_caps, Login, PoolError, PoolKey, PooledConn};
use crate::prepared::Prepared;
use crate::protocol::auth::Scramble;
use crate::protocol::response::{ResponseKind, Summary};
use crate::protocol::{Capabilities, ErrPacket};
use crate::router::Router;
use crate::stats::ErrorKind;
use crate::tls::ServerTls;
use crate::users::{BackendSecret, UserEntry};
use client::{ClientConn, ClientError};
use state::{SessionCommand, SessionState};

/// A backend connection the session holds.
pub struct Attached {
    pub pooled: PooledConn,
    /// How many history entries it has run.
    pub replayed: usize,
    /// The GTID this connection is known to have applied (causal reads).
    pub gtid_seen: Option<String>,
}

/// Ends the session: the client is gone or must be disconnected.
#[derive(Debug)]
pub struct Disconnect;

impl From<std::io::Error> for Disconnect {
    fn from(_: std::io::Error) -> Self {
        Disconnect
    }
}

impl From<ClientError> for Disconnect {
    fn from(_: ClientError) -> Self {
        Disconnect
    }
}

pub struct Session {
    pub client: ClientConn,
    pub shared: Arc<Shared>,
    pub router: Arc<Router>,
    pub user: Arc<UserEntry>,
    pub secret: BackendSecret,
    pub charset: u8,
    pub scramble: Scramble,
    pub state: SessionState,
    pub backends: Vec<Option<Attached>>,
    pub stmts: Prepared,
    /// The backend whose open-transaction count this session adds to.
    pub counted_transaction: Option<usize>,
    /// The writer this session's current statement counts as a write in flight on.
    pub writing: Option<usize>,
}

/// How forwarding a command to a backend ended.
pub enum Forwarded {
    /// The backend answered (possibly with an ERR); the answer reached the client.
    Answered(Summary),
    /// The backend connection broke before any byte reached the client; it is detached and
    /// the client has been told nothing yet. `in_transaction`: a transaction was open on it.
    Lost {
        backend: String,
        in_transaction: bool,
    },
}

/// Serves one client connection to its end; `tls`: the listener's, when it has one.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    listener: String,
    tls: Option<Arc<ServerTls>>,
    router: Arc<Router>,
    shared: Arc<Shared>,
) {
    let id = shared.next_connection_id.fetch_add(1, Ordering::Relaxed);
    let span = info_span!("session", id, client = %peer, listener = %listener, user = field::Empty, tls = field::Empty);
    async move {
        shared.stats.sessions.inc();
        shared.stats.sessions_total.inc();
        let client = ClientConn::new(stream, peer, shared.max_packet_size);
        if let Some(mut session) = connect(client, id, tls.as_deref(), &router, &shared).await {
            let span = tracing::Span::current();
            span.record("user", session.user.name.as_str());
            span.record("tls", session.client.is_tls());
            debug!("logged in");
            session.serve().await;
            session.release_all();
            session.count_transaction();
            session.end_write();
            debug!("session ended");
        }
        shared.stats.sessions.dec();
    }
    .instrument(span)
    .await
}

/// The connection phase; `None` when the client did not get in (it was told why).
async fn connect(
    mut client: ClientConn,
    id: u32,
    tls: Option<&ServerTls>,
    router: &Arc<Router>,
    shared: &Arc<Shared>,
) -> Option<Session> {
    let scramble = Scramble::generate(&mut rand::thread_rng());
    let version = shared.server_version();
    let response = match handshake::greet(&mut client, id, &version, &scramble, tls).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            shared.stats.error(ErrorKind::Auth);
            warn!(reason = "the listener requires TLS", "login refused");
            return None;
        }
        Err(ClientError::Closed) => return None,
        Err(e) => {
            shared.stats.error(ErrorKind::Protocol);
            debug!(error = %e, "handshake failed");
            return None;
        }
    };
    let users = shared.users.load();
    let user = match auth::authenticate(
        &mut client,
        &users,
        &shared.client_key,
        &response,
        &scramble,
    )
    .await
    {
        Ok(Some(user)) => user,
        Ok(None) => {
            shared.stats.error(ErrorKind::Auth);
            warn!(user = %String::from_utf8_lossy(&response.username), "login refused: bad user or password");
            return None;
        }
        Err(e) => {
            debug!(error = %e, "authentication failed");
            return None;
        }
    };
    let Some(secret) = user.backend_secret() else {
        // Cannot happen after a successful login; refuse rather than guess.
        let _ = client
            .send_err(&ErrPacket::access_denied(
                user.name.as_bytes(),
                &client.peer.ip().to_string(),
                true,
            ))
            .await;
        return None;
    };
    let mut session = Session {
        client,
        shared: shared.clone(),
        router: router.clone(),
        user,
        secret,
        charset: response.charset,
        scramble,
        state: SessionState::new(None),
        backends: (0..shared.topology.nodes.len()).map(|_| None).collect(),
        stmts: Prepared::default(),
        counted_transaction: None,
        writing: None,
    };
    session.stmts.max_per_connection = router.config.connection_pool.max_prepared_per_connection;
    if let Some(db) = response.database {
        let mut payload = vec![crate::protocol::Command::InitDb.byte()];
        payload.extend_from_slice(&db);
        match session.init_db_at_login(&payload).await {
            Ok(true) => session.state.record(SessionCommand::InitDb(db)),
            Ok(false) | Err(_) => return None,
        }
    }
    session.client.send_ok(session.state.status).await.ok()?;
    Some(session)
}

impl Session {
    /// Checks the login's schema on a backend so that a missing one fails the login, as on
    /// the server. `Ok(false)`: refused (the client was told).
    async fn init_db_at_login(&mut self, payload: &[u8]) -> Result<bool, Disconnect> {
        // Any backend can tell whether the schema exists: the writer, else a reader (the
        // writer may be down or changing). A connection that breaks is replaced by another.
        let mut last = ErrPacket::no_backend(&self.router.name, "any");
        for attempt in 0..3 {
            let writer = match attempt {
                0 => self.router.default_backend().map(|b| b.index),
                _ => Err(last.clone()),
            };
            let attached = match writer {
                Ok(index) => self.attach(index).await.map(|_| index),
                Err(e) => Err(e),
            };
            let backend = match attached {
                Ok(index) => index,
                Err(first) => match self.attach_reader().await {
                    Ok(index) => index,
                    Err(_) => {
                        self.client.send_err(&first).await?;
                        return Ok(false);
                    }
                },
            };
            let Some(attached) = self.backends[backend].as_mut() else {
                return Ok(false);
            };
            let summary = attached
                .pooled
                .conn
                .command_discard(payload, ResponseKind::Single)
                .await;
            match summary {
                Ok(Summary {
                    error: Some(err), ..
                }) => {
                    self.client.send_err(&err).await?;
                    return Ok(false);
                }
                Ok(_) => {
                    if let Some(a) = self.backends[backend].as_mut() {
                        a.replayed = 1;
                    }
                    return Ok(true);
                }
                Err(e) => {
                    let node = self.shared.topology.nodes[backend].clone();
                    debug!(backend = %node.name, error = %e, "schema check lost its connection; trying another backend");
                    node.record_connect(false);
                    self.detach(backend);
                    last = ErrPacket::lost_connection(&e.to_string());
                }
            }
        }
        self.client.send_err(&last).await?;
        Ok(false)
    }

    /// The pool key and login for backend `index`.
    fn login(&self) -> Login {
        Login {
            user: self.user.name.clone(),
            secret: self.secret.clone(),
            caps: wire_caps(self.client.caps),
            charset: self.charset,
            init_sql: self.router.causal().then(|| {
                "SET session_track_system_variables = CONCAT(@@session_track_system_variables, ',last_gtid')".to_string()
            }),
        }
    }

    /// The session's connection to backend `index`, attached from the pool if needed and
    /// brought up to date with the session's history. Errors are ready for the client.
    pub async fn attach(&mut self, index: usize) -> Result<&mut Attached, ErrPacket> {
        if self.backends.get(index).is_none() {
            return Err(ErrPacket::no_backend(&self.router.name, "unknown backend"));
        }
        let broken = self.backends[index]
            .as_ref()
            .is_some_and(|a| !a.pooled.conn.is_healthy());
        if broken && self.state.transaction_on != Some(index) {
            // Closed by the server or broken while idle, outside a transaction: a fresh one
            // (with the session's history replayed) takes its place.
            debug!(backend = %self.shared.topology.nodes[index].name, "replacing a broken backend connection");
            self.detach(index);
        }
        if self.backends[index].is_none() {
            let node = self.shared.topology.nodes[index].clone();
            let key = PoolKey {
                backend: index,
                user: self.user.name.clone(),
                caps: wire_caps(self.client.caps).bits(),
                charset: self.charset,
            };
            let pool = self.router.pools.get(key, &node, self.login());
            let pooled = match pool.checkout().await {
                Ok(p) => p,
                Err(e) => {
                    self.shared.stats.error(ErrorKind::NoBackend);
                    warn!(backend = %node.name, error = %e, "no backend connection");
                    return Err(match e {
                        PoolError::CheckoutTimeout { .. } => {
                            ErrPacket::checkout_timeout(&self.router.name, &node.name)
                        }
                        PoolError::Connect(crate::pool::ConnError::Refused { err, .. }) => err,
                        PoolError::Connect(e) => ErrPacket::lost_connection(&e.to_string()),
                    });
                }
            };
            node.in_use.fetch_add(1, Ordering::Relaxed);
            self.backends[index] = Some(Attached {
                pooled,
                replayed: 0,
                gtid_seen: None,
            });
        }
        self.replay(index).await?;
        self.backends[index]
            .as_mut()
            .ok_or_else(|| ErrPacket::no_backend(&self.router.name, "detached"))
    }

    /// Runs the history entries backend `index` has not run yet.
    async fn replay(&mut self, index: usize) -> Result<(), ErrPacket> {
        let Some(attached) = self.backends[index].as_mut() else {
            return Ok(());
        };
        while attached.replayed < self.state.history.len() {
            let entry = &self.state.history[attached.replayed];
            let conn = &mut attached.pooled.conn;
            let result = match entry {
                SessionCommand::Query(payload) => {
                    conn.command_discard(payload, ResponseKind::Query).await
                }
                SessionCommand::InitDb(db) => {
                    let mut p = vec![crate::protocol::Command::InitDb.byte()];
                    p.extend_from_slice(db);
                    conn.command_discard(&p, ResponseKind::Single).await
                }
                SessionCommand::SetOption(p) => conn.command_discard(p, ResponseKind::Single).await,
            };
            let name = conn.node.name.clone();
            match result {
                Ok(Summary { error: None, .. }) => attached.replayed += 1,
                Ok(Summary {
                    error: Some(err), ..
                }) => {
                    self.detach(index);
                    return Err(ErrPacket::session_replay_failed(&name, &err.to_string()));
                }
                Err(e) => {
                    self.detach(index);
                    return Err(ErrPacket::session_replay_failed(&name, &e.to_string()));
                }
            }
        }
        Ok(())
    }

    /// Lets go of backend `index`: back to the pool (reset) when healthy, else closed.
    pub fn detach(&mut self, index: usize) {
        if let Some(mut attached) = self.backends.get_mut(index).and_then(Option::take) {
            attached.pooled.options_changed |= self
                .state
                .history
                .iter()
                .any(|c| matches!(c, SessionCommand::SetOption(_)));
            attached
                .pooled
                .conn
                .node
                .in_use
                .fetch_sub(1, Ordering::Relaxed);
            attached.pooled.give_back();
            self.stmts.forget_backend(index);
            if self.state.transaction_on == Some(index) {
                self.state.transaction_on = None;
            }
        }
    }

    pub fn release_all(&mut self) {
        for i in 0..self.backends.len() {
            self.detach(i);
        }
    }

    /// The client's negotiated capabilities.
    pub fn caps(&self) -> Capabilities {
        self.client.caps
    }
}
