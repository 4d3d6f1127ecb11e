//! One connection to a backend server: the client side of the handshake (mysql_native_password,
//! caching_sha2_password with its full authentication, auth switch), sending commands, and
//! relaying or swallowing the server's responses.
//!
//! With `backend_tls` the connection switches to TLS right after the server's greeting (an
//! SSLRequest, the TLS handshake, then the login inside TLS); see [`crate::tls::backend`].
//!
//! caching_sha2_password full authentication (the server's `perform_full_authentication`,
//! when its cache does not hold the user): over TLS dbrouterd sends the password as it is; over
//! plain TCP it asks for the server's RSA public key and sends the password encrypted with it
//! (RSA-OAEP with SHA-1, XORed with the scramble first), as MySQL's own clients do. Either way
//! it needs the user's cleartext `password`; a user configured with only a hash cannot log in
//! to such a backend.
//!
//! A connection is opened with the wire-format capabilities of the client it will serve
//! (`DEPRECATE_EOF`, `MULTI_STATEMENTS`, `SESSION_TRACK` ...) and with the client's character
//! set, so that the bytes the server sends can go to the client unchanged: [`BackendConn::relay`]
//! only scans them for the end of the response ([`ResponseScanner`]).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stream::{BackendStream, Movable};
use crate::protocol::auth::{
    scramble_caching_sha2, scramble_native, scramble_native_from_sha1, CACHING_SHA2_PASSWORD,
    NATIVE_PASSWORD,
};
use crate::protocol::caching_sha2::{self, cleartext_response, MoreData, REQUEST_PUBLIC_KEY};
use crate::protocol::handshake_response::SslRequest;
use crate::protocol::packet::{decode_packet, encode_packet, DEFAULT_MAX_PACKET_SIZE};
use crate::protocol::response::{Progress, ResponseKind, ResponseScanner, Summary};
use crate::protocol::wire::Reader;
use crate::protocol::{
    Capabilities, ErrPacket, HandshakeResponse41, HandshakeV10, Packet, ProtocolError,
};
use crate::topology::BackendNode;
use crate::users::BackendSecret;

/// What a read from the server is given: the buffer's size, and the least room left in it
/// before a read ([`ha_core::io::make_room`]).
const READ_SIZE: usize = 16 * 1024;
const READ_ROOM: usize = 4 * 1024;

/// Why a backend connection could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("cannot connect to backend {backend} ({address}): {source}")]
    Connect {
        backend: String,
        address: String,
        source: io::Error,
    },
    #[error("backend {backend}: connection failed: {source}")]
    Io { backend: String, source: io::Error },
    #[error("backend {backend} closed the connection")]
    Closed { backend: String },
    #[error("backend {backend} did not answer within {timeout:?}")]
    Timeout { backend: String, timeout: Duration },
    #[error("backend {backend} refused the login of {user}: {err}")]
    Refused {
        backend: String,
        user: String,
        err: ErrPacket,
    },
    #[error("backend {backend} sent a malformed packet: {source}")]
    Protocol {
        backend: String,
        source: ProtocolError,
    },
    #[error("backend {backend}: TLS: {reason}")]
    Tls { backend: String, reason: String },
    #[error("backend {backend} asks for {what}, which dbrouterd cannot answer for user {user}")]
    Unsupported {
        backend: String,
        user: String,
        what: String,
    },
}

/// How to log in.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub secret: BackendSecret,
    /// The client's capabilities that change the wire format (see [`super::wire_caps`]).
    pub caps: Capabilities,
    pub charset: u8,
    /// Run after login and after every reset, e.g. to track `last_gtid`.
    pub init_sql: Option<String>,
}

/// Where relayed response bytes go.
pub trait ResponseSink {
    /// Writes bytes of the response as they are.
    fn forward(&mut self, bytes: &[u8])
        -> impl std::future::Future<Output = io::Result<()>> + Send;
    /// For LOCAL INFILE: the client's next packet, framed, as it arrived (`None`: the client
    /// has nothing to send, answer with an empty packet).
    fn next_infile_packet(
        &mut self,
        seq: u8,
    ) -> impl std::future::Future<Output = io::Result<Option<Vec<u8>>>> + Send;
}

/// Swallows a response (replayed session state, internal queries).
pub struct Discard;

impl ResponseSink for Discard {
    async fn forward(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }
    async fn next_infile_packet(&mut self, _seq: u8) -> io::Result<Option<Vec<u8>>> {
        Ok(None)
    }
}

pub struct BackendConn {
    stream: BackendStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    pub caps: Capabilities,
    pub node: Arc<BackendNode>,
    pub server_version: String,
    pub connection_id: u32,
    broken: bool,
}

impl Drop for BackendConn {
    fn drop(&mut self) {
        self.node
            .open_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl BackendConn {
    /// Connects and logs in, within `timeout`.
    pub async fn connect(
        node: Arc<BackendNode>,
        login: &Login,
        timeout: Duration,
    ) -> Result<Self, ConnError> {
        let backend = node.name.clone();
        match tokio::time::timeout(timeout, Self::connect_inner(node, login)).await {
            Ok(r) => r,
            Err(_) => Err(ConnError::Timeout { backend, timeout }),
        }
    }

    async fn connect_inner(node: Arc<BackendNode>, login: &Login) -> Result<Self, ConnError> {
        let stream =
            TcpStream::connect(&node.address)
                .await
                .map_err(|source| ConnError::Connect {
                    backend: node.name.clone(),
                    address: node.address.clone(),
                    source,
                })?;
        let _ = stream.set_nodelay(true);
        node.open_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut conn = BackendConn {
            stream: BackendStream::Plain(stream),
            rbuf: BytesMut::with_capacity(READ_SIZE),
            wbuf: BytesMut::with_capacity(4 * 1024),
            caps: Capabilities::empty(),
            node,
            server_version: String::new(),
            connection_id: 0,
            broken: false,
        };
        conn.login(login).await?;
        if let Some(sql) = &login.init_sql {
            conn.query_discard(sql.as_bytes()).await?;
        }
        Ok(conn)
    }

    async fn login(&mut self, login: &Login) -> Result<(), ConnError> {
        let greeting = self.read_packet_any().await?;
        if ErrPacket::is_err(&greeting.payload) {
            return Err(self.refused(login, &greeting.payload));
        }
        let hs = HandshakeV10::parse(&greeting.payload).map_err(|e| self.protocol(e))?;
        self.server_version = hs.server_version.clone();
        self.connection_id = hs.connection_id;
        let mut seq = greeting.sequence_id.wrapping_add(1);
        let plugin = hs.auth_plugin_name.as_deref().unwrap_or(NATIVE_PASSWORD);
        // The plugin in use and its scramble change with an AuthSwitchRequest.
        let mut scramble = hs.auth_plugin_data.clone();
        let (mut plugin, auth) = match self.auth_response(login, plugin, &hs.auth_plugin_data) {
            Ok(r) => (plugin.to_string(), r),
            // Offer native and let the server switch us if it insists.
            Err(_) => (
                NATIVE_PASSWORD.to_string(),
                self.auth_response(login, NATIVE_PASSWORD, &hs.auth_plugin_data)?,
            ),
        };
        let wanted = login.caps
            | Capabilities::PROTOCOL_41
            | Capabilities::SECURE_CONNECTION
            | Capabilities::PLUGIN_AUTH
            | Capabilities::PLUGIN_AUTH_LENENC_CLIENT_DATA
            | Capabilities::TRANSACTIONS
            | Capabilities::LONG_PASSWORD;
        let mut response =
            HandshakeResponse41::for_server(&hs, wanted, login.user.as_bytes(), auth, None, vec![]);
        response.charset = login.charset;
        response.auth_plugin_name = Some(plugin.clone());
        // Keep MySQL's framing: no MariaDB extended capabilities (progress reports, bulk).
        response.capabilities.insert(Capabilities::LONG_PASSWORD);
        if self.start_tls(&hs, &response, seq).await? {
            response.capabilities.insert(Capabilities::SSL);
            seq = seq.wrapping_add(1);
        }
        self.caps = response.capabilities;
        let mut payload = Vec::with_capacity(128);
        response.encode(&mut payload);
        self.write_packet(&payload, seq).await?;
        seq = seq.wrapping_add(1);
        loop {
            let packet = self.read_packet(seq).await?;
            seq = seq.wrapping_add(1);
            let p = &packet.payload[..];
            match p.first() {
                Some(0x00) => return Ok(()),
                Some(0xFF) => return Err(self.refused(login, p)),
                Some(0xFE) => {
                    // AuthSwitchRequest: plugin name NUL, then its data.
                    let mut r = Reader::new(&p[1..]);
                    let name = String::from_utf8_lossy(
                        r.nul_bytes("auth switch: plugin")
                            .map_err(|e| self.protocol(e))?,
                    )
                    .into_owned();
                    let data = r.rest();
                    let data = data.strip_suffix(&[0]).unwrap_or(data).to_vec();
                    let auth = self.auth_response(login, &name, &data)?;
                    self.write_packet(&auth, seq).await?;
                    seq = seq.wrapping_add(1);
                    plugin = name;
                    scramble = data;
                }
                Some(0x01) if plugin == CACHING_SHA2_PASSWORD => match MoreData::parse(p) {
                    // Fast auth succeeded: the OK follows.
                    Some(MoreData::FastAuthSuccess) => {}
                    Some(MoreData::PerformFullAuth) => {
                        seq = self.full_auth_rsa(login, &scramble, seq).await?;
                    }
                    _ => {
                        return Err(self.protocol(ProtocolError::Malformed {
                            what: "caching_sha2_password: unexpected AuthMoreData",
                        }))
                    }
                },
                _ => {
                    return Err(self.protocol(ProtocolError::Malformed {
                        what: "login: unexpected packet",
                    }))
                }
            }
        }
    }

    /// Switches to TLS when `backend_tls` asks for it and the server offers it: sends the
    /// SSLRequest (the fixed part of `response`, with sequence id `seq`) and runs the handshake.
    /// Whether the connection is now TLS; an error when TLS is required and not possible.
    async fn start_tls(
        &mut self,
        hs: &HandshakeV10,
        response: &HandshakeResponse41,
        seq: u8,
    ) -> Result<bool, ConnError> {
        let Some(tls) = self.node.tls.clone() else {
            return Ok(false);
        };
        let node = self.node.clone();
        let tls_error = |reason: String| ConnError::Tls {
            backend: node.name.clone(),
            reason,
        };
        if !hs.capabilities.contains(Capabilities::SSL) {
            if tls.required() {
                return Err(tls_error(format!(
                    "the server does not offer TLS and backend_tls.mode is {}",
                    tls.mode.as_str()
                )));
            }
            return Ok(false);
        }
        let Some(name) = node.tls_name.clone() else {
            return Err(tls_error(format!(
                "no name to check its certificate against in {:?}: set tls_name",
                node.address
            )));
        };
        let mut request = Vec::with_capacity(32);
        SslRequest {
            capabilities: response.capabilities | Capabilities::SSL,
            max_packet_size: response.max_packet_size,
            charset: response.charset,
            mariadb_capabilities: response.mariadb_capabilities,
        }
        .encode(&mut request);
        self.write_packet(&request, seq).await?;
        if !self.rbuf.is_empty() {
            return Err(self.protocol(ProtocolError::Malformed {
                what: "data from the server before its TLS handshake",
            }));
        }
        let BackendStream::Plain(tcp) =
            std::mem::replace(&mut self.stream, BackendStream::Detached)
        else {
            return Err(tls_error("the connection is already TLS".into()));
        };
        match tls.connector.connect(name, Movable(Some(tcp))).await {
            Ok(stream) => {
                self.stream = BackendStream::Tls(Box::new(stream));
                Ok(true)
            }
            Err(e) => {
                self.broken = true;
                Err(tls_error(format!("handshake failed: {e}")))
            }
        }
    }

    /// caching_sha2_password full authentication: over TLS the password as it is, over plain
    /// TCP asks for the server's public key (sequence id `seq`) and sends the encrypted
    /// password; returns the next sequence id (the server's OK or ERR comes with it).
    async fn full_auth_rsa(
        &mut self,
        login: &Login,
        scramble: &[u8],
        mut seq: u8,
    ) -> Result<u8, ConnError> {
        let BackendSecret::Password(password) = &login.secret else {
            return Err(ConnError::Unsupported {
                backend: self.node.name.clone(),
                user: login.user.clone(),
                what: "caching_sha2_password full authentication, which needs the cleartext \
                       password (the user is configured with only a hash)"
                    .into(),
            });
        };
        if self.stream.is_tls() {
            self.write_packet(&cleartext_response(password), seq)
                .await?;
            return Ok(seq.wrapping_add(1));
        }
        self.write_packet(&[REQUEST_PUBLIC_KEY], seq).await?;
        seq = seq.wrapping_add(1);
        let key = self.read_packet(seq).await?;
        seq = seq.wrapping_add(1);
        if ErrPacket::is_err(&key.payload) {
            return Err(self.refused(login, &key.payload));
        }
        let pem = match MoreData::parse(&key.payload) {
            Some(MoreData::Other(pem)) => pem,
            _ => {
                return Err(self.protocol(ProtocolError::Malformed {
                    what: "caching_sha2_password: expected the server's public key",
                }))
            }
        };
        let encrypted = caching_sha2::encrypt_password(pem, password, scramble).map_err(|e| {
            ConnError::Unsupported {
                backend: self.node.name.clone(),
                user: login.user.clone(),
                what: format!("caching_sha2_password full authentication: {e}"),
            }
        })?;
        self.write_packet(&encrypted, seq).await?;
        Ok(seq.wrapping_add(1))
    }

    fn auth_response(
        &self,
        login: &Login,
        plugin: &str,
        scramble: &[u8],
    ) -> Result<Vec<u8>, ConnError> {
        let unsupported = |what: String| ConnError::Unsupported {
            backend: self.node.name.clone(),
            user: login.user.clone(),
            what,
        };
        match (plugin, &login.secret) {
            (NATIVE_PASSWORD, BackendSecret::Password(pw)) => Ok(scramble_native(scramble, pw)
                .map(|r| r.to_vec())
                .unwrap_or_default()),
            (NATIVE_PASSWORD, BackendSecret::Sha1(sha1)) => {
                Ok(scramble_native_from_sha1(scramble, sha1).to_vec())
            }
            (CACHING_SHA2_PASSWORD, BackendSecret::Password(pw)) => {
                Ok(scramble_caching_sha2(scramble, pw)
                    .map(|r| r.to_vec())
                    .unwrap_or_default())
            }
            (other, _) => Err(unsupported(format!("auth plugin {other}"))),
        }
    }

    fn refused(&self, login: &Login, payload: &[u8]) -> ConnError {
        match ErrPacket::parse(payload) {
            Ok(err) => ConnError::Refused {
                backend: self.node.name.clone(),
                user: login.user.clone(),
                err,
            },
            Err(e) => self.protocol(e),
        }
    }

    fn protocol(&self, source: ProtocolError) -> ConnError {
        ConnError::Protocol {
            backend: self.node.name.clone(),
            source,
        }
    }

    fn io(&mut self, source: io::Error) -> ConnError {
        self.broken = true;
        ConnError::Io {
            backend: self.node.name.clone(),
            source,
        }
    }

    /// Whether the connection may be handed out: not known broken, nothing unread, and the
    /// server has not closed it (a readable idle socket means EOF or an unsolicited error).
    pub fn is_healthy(&self) -> bool {
        if self.broken || !self.rbuf.is_empty() {
            return false;
        }
        self.stream.idle_and_open()
    }

    /// Registers the socket with the calling runtime's reactor (the worker about to use it)
    /// instead of the one that opened it.
    pub fn adopt(&mut self) -> io::Result<()> {
        let adopted = self.stream.adopt();
        if adopted.is_err() {
            self.broken = true;
        }
        adopted
    }

    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    async fn fill(&mut self) -> Result<(), ConnError> {
        ha_core::io::make_room(&mut self.rbuf, READ_ROOM, READ_SIZE);
        match self.stream.read_buf(&mut self.rbuf).await {
            Ok(0) => {
                self.broken = true;
                Err(ConnError::Closed {
                    backend: self.node.name.clone(),
                })
            }
            Ok(_) => Ok(()),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Reads one whole packet whose sequence id must be `seq`.
    pub async fn read_packet(&mut self, seq: u8) -> Result<Packet, ConnError> {
        loop {
            match decode_packet(&mut self.rbuf, seq, DEFAULT_MAX_PACKET_SIZE) {
                Ok(Some((packet, _))) => return Ok(packet),
                Ok(None) => self.fill().await?,
                Err(e) => {
                    self.broken = true;
                    return Err(self.protocol(e));
                }
            }
        }
    }

    /// Reads one packet whatever its sequence id (the greeting).
    async fn read_packet_any(&mut self) -> Result<Packet, ConnError> {
        while self.rbuf.len() < 4 {
            self.fill().await?;
        }
        let seq = self.rbuf[3];
        self.read_packet(seq).await
    }

    async fn write_packet(&mut self, payload: &[u8], seq: u8) -> Result<(), ConnError> {
        self.wbuf.clear();
        encode_packet(payload, seq, &mut self.wbuf);
        let result = write_out(&mut self.stream, &self.wbuf).await;
        result.map_err(|e| self.io(e))
    }

    /// Sends a command (sequence id 0), split into chunks when over 16 MiB.
    pub async fn send_command(&mut self, payload: &[u8]) -> Result<(), ConnError> {
        self.write_packet(payload, 0).await
    }

    /// Relays the response to the command just sent into `sink`, returning what it said.
    pub async fn relay<S: ResponseSink>(
        &mut self,
        kind: ResponseKind,
        sink: &mut S,
    ) -> Result<Summary, RelayError> {
        let mut scanner = ResponseScanner::new(kind, self.caps);
        loop {
            if !self.rbuf.is_empty() {
                let progress = scanner.scan(&self.rbuf).map_err(|e| {
                    self.broken = true;
                    RelayError::Backend(self.protocol(e))
                })?;
                let (consumed, done, infile) = match progress {
                    Progress::More { consumed } => (consumed, false, None),
                    Progress::Done { consumed } => (consumed, true, None),
                    Progress::LocalInfile { consumed, next_seq } => {
                        (consumed, false, Some(next_seq))
                    }
                };
                if consumed > 0 {
                    if let Err(e) = sink.forward(&self.rbuf[..consumed]).await {
                        // The rest of the response must still be read off the backend.
                        self.broken = true;
                        return Err(RelayError::Client(e));
                    }
                    self.rbuf.advance(consumed);
                }
                if done {
                    return Ok(scanner.into_summary());
                }
                if let Some(seq) = infile {
                    self.relay_infile(sink, seq).await?;
                    continue;
                }
            }
            self.fill().await.map_err(RelayError::Backend)?;
        }
    }

    async fn relay_infile<S: ResponseSink>(
        &mut self,
        sink: &mut S,
        mut seq: u8,
    ) -> Result<(), RelayError> {
        loop {
            let packet = sink
                .next_infile_packet(seq)
                .await
                .map_err(RelayError::Client)?;
            let (bytes, last) = match packet {
                Some(bytes) => {
                    let last = bytes.len() <= 4;
                    (bytes, last)
                }
                None => (vec![0, 0, 0, seq], true),
            };
            if let Err(e) = write_out(&mut self.stream, &bytes).await {
                return Err(RelayError::Backend(self.io(e)));
            }
            seq = seq_after(&bytes, seq);
            if last {
                return Ok(());
            }
        }
    }

    /// Runs a statement whose result nobody sees; an ERR is returned as an error.
    pub async fn query_discard(&mut self, sql: &[u8]) -> Result<Summary, ConnError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(crate::protocol::Command::Query.byte());
        payload.extend_from_slice(sql);
        self.command_discard(&payload, ResponseKind::Query).await
    }

    /// Sends a command and swallows its response.
    pub async fn command_discard(
        &mut self,
        payload: &[u8],
        kind: ResponseKind,
    ) -> Result<Summary, ConnError> {
        self.send_command(payload).await?;
        match self.relay(kind, &mut Discard).await {
            Ok(summary) => Ok(summary),
            Err(RelayError::Backend(e)) => Err(e),
            Err(RelayError::Client(source)) => Err(self.io(source)),
        }
    }

    /// The first column of the first row of a text query's result (`None` for NULL).
    pub async fn query_scalar(&mut self, sql: &[u8]) -> Result<Option<Vec<u8>>, ConnError> {
        let mut payload = vec![crate::protocol::Command::Query.byte()];
        payload.extend_from_slice(sql);
        self.send_command(&payload).await?;
        let mut seq = 1u8;
        let first = self.read_packet(seq).await?;
        seq = seq.wrapping_add(1);
        if ErrPacket::is_err(&first.payload) {
            let err = ErrPacket::parse(&first.payload).map_err(|e| self.protocol(e))?;
            return Err(ConnError::Refused {
                backend: self.node.name.clone(),
                user: String::new(),
                err,
            });
        }
        let columns = Reader::new(&first.payload)
            .lenenc_int("result: column count")
            .map_err(|e| self.protocol(e))?;
        for _ in 0..columns {
            self.read_packet(seq).await?;
            seq = seq.wrapping_add(1);
        }
        if !self.caps.contains(Capabilities::DEPRECATE_EOF) {
            self.read_packet(seq).await?;
            seq = seq.wrapping_add(1);
        }
        let mut value = None;
        loop {
            let row = self.read_packet(seq).await?;
            seq = seq.wrapping_add(1);
            let p = &row.payload[..];
            if p.first() == Some(&0xFE) && p.len() < 0xFF_FFFF || p.first() == Some(&0xFF) {
                return Ok(value.flatten());
            }
            if value.is_none() {
                value = Some(if p.first() == Some(&0xFB) {
                    None
                } else {
                    let v = Reader::new(p)
                        .lenenc_bytes("row: first column")
                        .map_err(|e| self.protocol(e))?;
                    Some(v.to_vec())
                });
            }
        }
    }

    /// COM_RESET_CONNECTION, then the login's init statement: the connection is as new.
    pub async fn reset(&mut self, init_sql: Option<&str>) -> Result<(), ConnError> {
        let summary = self
            .command_discard(
                &[crate::protocol::Command::ResetConnection.byte()],
                ResponseKind::Single,
            )
            .await?;
        if let Some(err) = summary.error {
            return Err(ConnError::Refused {
                backend: self.node.name.clone(),
                user: String::new(),
                err,
            });
        }
        if let Some(sql) = init_sql {
            self.query_discard(sql.as_bytes()).await?;
        }
        Ok(())
    }

    /// Reads the packets of a COM_STMT_PREPARE response as they are (the session rewrites
    /// the statement id before relaying them).
    pub async fn read_prepare_response(&mut self) -> Result<Vec<Packet>, ConnError> {
        let mut seq = 1u8;
        let first = self.read_packet(seq).await?;
        seq = seq.wrapping_add(1);
        if ErrPacket::is_err(&first.payload) {
            return Ok(vec![first]);
        }
        let ok = crate::protocol::prepared::StmtPrepareOk::parse(&first.payload)
            .map_err(|e| self.protocol(e))?;
        let eof = !self.caps.contains(Capabilities::DEPRECATE_EOF);
        let mut packets = vec![first];
        for count in [ok.num_params, ok.num_columns] {
            if count == 0 {
                continue;
            }
            for _ in 0..usize::from(count) + usize::from(eof) {
                packets.push(self.read_packet(seq).await?);
                seq = seq.wrapping_add(1);
            }
        }
        Ok(packets)
    }
}

/// Writes `bytes` whole and flushes them: TLS holds written bytes in its own buffer until
/// flushed (on plain TCP the flush does nothing).
async fn write_out(stream: &mut BackendStream, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// A relay failed on one side or the other.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Backend(ConnError),
    #[error("client connection failed: {0}")]
    Client(io::Error),
}

/// The sequence id after the framed packet `bytes`: one per chunk (a LOCAL INFILE packet of
/// 16 MiB or more comes in several).
fn seq_after(bytes: &[u8], mut seq: u8) -> u8 {
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + 4) {
        let len =
            usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
        seq = seq.wrapping_add(1);
        pos += 4 + len;
    }
    seq
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_packet_takes_a_sequence_id_per_chunk() {
        for size in [0, 10, 0xFF_FFFF, 0xFF_FFFF + 5] {
            let mut framed = Vec::new();
            let next = encode_packet(&vec![b'x'; size], 250, &mut framed);
            assert_eq!(seq_after(&framed, 250), next, "{size} bytes");
        }
    }
}
