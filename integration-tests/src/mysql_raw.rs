//! A blocking MySQL client that speaks the protocol packet by packet, for the commands drivers
//! do not expose or do not let a test control: COM_FIELD_LIST, server-side cursors
//! (COM_STMT_EXECUTE with a cursor flag, then COM_STMT_FETCH), COM_STMT_SEND_LONG_DATA,
//! COM_STMT_RESET, COM_STMT_CLOSE, COM_SET_OPTION, COM_STATISTICS.
//!
//! It logs in with `mysql_native_password` and knows just enough of the text and binary result
//! formats to hand a test what the server said: [`Reply`] for every answer, values as
//! [`Value`]. Every read has a timeout, so a proxy that never answers fails the test instead of
//! hanging it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Capability flags the client may ask for.
pub mod caps {
    pub const LONG_PASSWORD: u32 = 1;
    pub const CONNECT_WITH_DB: u32 = 8;
    pub const LOCAL_FILES: u32 = 0x80;
    pub const PROTOCOL_41: u32 = 0x200;
    pub const TRANSACTIONS: u32 = 0x2000;
    pub const SECURE_CONNECTION: u32 = 0x8000;
    pub const MULTI_STATEMENTS: u32 = 0x1_0000;
    pub const MULTI_RESULTS: u32 = 0x2_0000;
    pub const PS_MULTI_RESULTS: u32 = 0x4_0000;
    pub const PLUGIN_AUTH: u32 = 0x8_0000;
    pub const DEPRECATE_EOF: u32 = 0x100_0000;
}

/// Server status flags the tests look at.
pub mod status {
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    pub const CURSOR_EXISTS: u16 = 0x0040;
    pub const LAST_ROW_SENT: u16 = 0x0080;
}

/// Column types the binary row decoder knows.
pub mod types {
    pub const TINY: u8 = 0x01;
    pub const SHORT: u8 = 0x02;
    pub const LONG: u8 = 0x03;
    pub const LONGLONG: u8 = 0x08;
    pub const INT24: u8 = 0x09;
    pub const YEAR: u8 = 0x0d;
    pub const BLOB: u8 = 0xfc;
    pub const VAR_STRING: u8 = 0xfd;
}

const MAX_CHUNK: usize = 0xFF_FFFF;

/// How to log in.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    /// Capabilities besides the ones every login has (PROTOCOL_41, SECURE_CONNECTION,
    /// PLUGIN_AUTH, LONG_PASSWORD, TRANSACTIONS, MULTI_RESULTS, PS_MULTI_RESULTS).
    pub extra_caps: u32,
}

impl LoginOptions {
    pub fn new(user: &str, password: &str, database: Option<&str>) -> Self {
        LoginOptions {
            user: user.into(),
            password: password.into(),
            database: database.map(Into::into),
            extra_caps: 0,
        }
    }

    pub fn with_caps(mut self, caps: u32) -> Self {
        self.extra_caps |= caps;
        self
    }
}

/// A value of a result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as an integer: binary integers, or text that parses as one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            Value::Null => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub column_type: u8,
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub code: u16,
    pub message: String,
}

/// One answer from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok {
        affected_rows: u64,
        status: u16,
    },
    Err(ServerError),
    /// A result set; `status` is the one its terminator carried.
    Rows {
        columns: Vec<Column>,
        rows: Vec<Vec<Value>>,
        status: u16,
    },
}

impl Reply {
    /// The rows of a result set; panics (naming the reply) on anything else.
    pub fn rows(&self) -> &[Vec<Value>] {
        match self {
            Reply::Rows { rows, .. } => rows,
            other => panic!("expected a result set, got {other:?}"),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Reply::Ok { status, .. } | Reply::Rows { status, .. } => *status,
            Reply::Err(_) => 0,
        }
    }

    pub fn err_code(&self) -> Option<u16> {
        match self {
            Reply::Err(e) => Some(e.code),
            _ => None,
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Ok { .. })
    }
}

/// A statement prepared with [`RawConn::prepare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stmt {
    pub id: u32,
    pub params: u16,
    pub columns: u16,
}

/// A parameter of COM_STMT_EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Int(i64),
    Bytes(Vec<u8>),
    /// A BLOB whose value went before with COM_STMT_SEND_LONG_DATA.
    LongData,
}

/// A logged-in connection.
pub struct RawConn {
    stream: TcpStream,
    caps: u32,
    /// The columns of each statement's last EXECUTE, to decode what FETCH returns.
    cursor_columns: std::collections::HashMap<u32, Vec<Column>>,
}

impl RawConn {
    /// Connects to `addr` and logs in.
    pub fn connect(addr: SocketAddr, login: &LoginOptions) -> Result<RawConn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        let mut caps = caps::LONG_PASSWORD
            | caps::PROTOCOL_41
            | caps::TRANSACTIONS
            | caps::SECURE_CONNECTION
            | caps::MULTI_RESULTS
            | caps::PS_MULTI_RESULTS
            | caps::PLUGIN_AUTH
            | login.extra_caps;
        if login.database.is_some() {
            caps |= caps::CONNECT_WITH_DB;
        }
        let mut conn = RawConn {
            stream,
            caps,
            cursor_columns: Default::default(),
        };
        let (_, greeting) = conn.read_packet()?;
        let scramble = greeting_scramble(&greeting).context("greeting")?;
        let mut p = Vec::new();
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(16u32 << 20).to_le_bytes());
        p.push(45); // utf8mb4_general_ci
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(login.user.as_bytes());
        p.push(0);
        let auth = native_password(&scramble, &login.password);
        p.push(auth.len() as u8);
        p.extend_from_slice(&auth);
        if let Some(db) = &login.database {
            p.extend_from_slice(db.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(b"mysql_native_password\0");
        conn.write_packet(1, &p)?;
        let (seq, answer) = conn.read_packet()?;
        let answer = if answer.first() == Some(&0xFE) {
            // Auth switch: plugin name, NUL, new scramble.
            let rest = &answer[1..];
            let nul = rest.iter().position(|b| *b == 0).context("auth switch")?;
            let plugin = &rest[..nul];
            if plugin != b"mysql_native_password" {
                bail!(
                    "auth switch to {} is not supported",
                    String::from_utf8_lossy(plugin)
                );
            }
            let seed: Vec<u8> = rest[nul + 1..].iter().copied().take(20).collect();
            conn.write_packet(
                seq.wrapping_add(1),
                &native_password(&seed, &login.password),
            )?;
            conn.read_packet()?.1
        } else {
            answer
        };
        if answer.first() != Some(&0) {
            bail!("login refused: {:?}", parse_err(&answer));
        }
        Ok(conn)
    }

    /// Whether this connection asked for `CLIENT_DEPRECATE_EOF`.
    pub fn deprecate_eof(&self) -> bool {
        self.caps & caps::DEPRECATE_EOF != 0
    }

    /// Reads one packet (reassembling one over 16 MiB): (sequence id of its last chunk,
    /// payload).
    pub fn read_packet(&mut self) -> Result<(u8, Vec<u8>)> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 4];
            self.stream
                .read_exact(&mut header)
                .context("reading a packet header")?;
            let len =
                usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
            let start = payload.len();
            payload.resize(start + len, 0);
            self.stream
                .read_exact(&mut payload[start..])
                .context("reading a packet body")?;
            if len < MAX_CHUNK {
                return Ok((header[3], payload));
            }
        }
    }

    /// Writes `payload` as one packet (in chunks from 16 MiB on); returns the sequence id
    /// that follows it.
    pub fn write_packet(&mut self, seq: u8, payload: &[u8]) -> Result<u8> {
        let mut bytes = Vec::with_capacity(payload.len() + 8);
        let mut seq = seq;
        let mut chunks = payload.chunks(MAX_CHUNK).peekable();
        if payload.is_empty() {
            bytes.extend_from_slice(&[0, 0, 0, seq]);
            seq = seq.wrapping_add(1);
        }
        while let Some(chunk) = chunks.next() {
            let len = chunk.len();
            bytes.extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8, seq]);
            bytes.extend_from_slice(chunk);
            seq = seq.wrapping_add(1);
            if len == MAX_CHUNK && chunks.peek().is_none() {
                bytes.extend_from_slice(&[0, 0, 0, seq]);
                seq = seq.wrapping_add(1);
            }
        }
        self.stream.write_all(&bytes)?;
        Ok(seq)
    }

    fn command(&mut self, command: u8, body: &[u8]) -> Result<()> {
        let mut p = Vec::with_capacity(body.len() + 1);
        p.push(command);
        p.extend_from_slice(body);
        self.write_packet(0, &p).map(|_| ())
    }

    /// COM_QUERY; every result of a multi-statement text, in order.
    pub fn query_all(&mut self, sql: &str) -> Result<Vec<Reply>> {
        self.command(0x03, sql.as_bytes())?;
        let mut replies = Vec::new();
        loop {
            let reply = self.read_result(false, None)?;
            let more = reply.status() & status::MORE_RESULTS_EXISTS != 0;
            replies.push(reply);
            if !more {
                return Ok(replies);
            }
        }
    }

    /// COM_QUERY of a `LOAD DATA LOCAL INFILE`: when the server asks for the file, sends
    /// `file` in packets of `chunk` bytes (or, with `None`, refuses: an empty packet, as a
    /// client does that cannot read the file), then reads the answer.
    pub fn load_local(&mut self, sql: &str, file: Option<&[u8]>, chunk: usize) -> Result<Reply> {
        self.command(0x03, sql.as_bytes())?;
        let (seq, p) = self.read_packet()?;
        match p.first() {
            Some(0xFB) => {}
            Some(0xFF) => return Ok(Reply::Err(parse_err(&p))),
            _ => bail!("`{sql}`: expected a LOCAL INFILE request, got {p:?}"),
        }
        let mut seq = seq.wrapping_add(1);
        for piece in file.unwrap_or_default().chunks(chunk.max(1)) {
            seq = self.write_packet(seq, piece)?;
        }
        self.write_packet(seq, &[])?;
        self.read_result(false, None)
    }

    /// COM_QUERY with one statement.
    pub fn query(&mut self, sql: &str) -> Result<Reply> {
        let mut replies = self.query_all(sql)?;
        if replies.len() != 1 {
            bail!("`{sql}`: {} results, expected one", replies.len());
        }
        Ok(replies.remove(0))
    }

    /// The first column of the first row of `sql`'s result, as an integer.
    pub fn query_i64(&mut self, sql: &str) -> Result<i64> {
        match self.query(sql)? {
            Reply::Rows { rows, .. } => rows
                .first()
                .and_then(|r| r.first())
                .and_then(Value::as_i64)
                .with_context(|| format!("`{sql}`: no integer in {rows:?}")),
            other => bail!("`{sql}`: {other:?}"),
        }
    }

    /// COM_FIELD_LIST: the column definitions of `table` (names), or the server's error.
    pub fn field_list(
        &mut self,
        table: &str,
        wildcard: &str,
    ) -> Result<Result<Vec<Column>, ServerError>> {
        let mut body = table.as_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(wildcard.as_bytes());
        self.command(0x04, &body)?;
        let mut columns = Vec::new();
        loop {
            let (_, p) = self.read_packet()?;
            if p.first() == Some(&0xFF) {
                return Ok(Err(parse_err(&p)));
            }
            if p.first() == Some(&0xFE) && p.len() < MAX_CHUNK {
                return Ok(Ok(columns));
            }
            columns.push(parse_column(&p)?);
        }
    }

    /// COM_STATISTICS: the server's status line.
    pub fn statistics(&mut self) -> Result<String> {
        self.command(0x09, &[])?;
        let (_, p) = self.read_packet()?;
        Ok(String::from_utf8_lossy(&p).into_owned())
    }

    /// COM_PING.
    pub fn ping(&mut self) -> Result<Reply> {
        self.command(0x0e, &[])?;
        self.read_result(false, None)
    }

    /// COM_INIT_DB.
    pub fn init_db(&mut self, db: &str) -> Result<Reply> {
        self.command(0x02, db.as_bytes())?;
        self.read_result(false, None)
    }

    /// COM_SET_OPTION: multi-statements on or off. The server answers with an EOF (an OK
    /// with a 0xFE header under DEPRECATE_EOF) or an ERR.
    pub fn set_multi_statements(&mut self, on: bool) -> Result<Reply> {
        self.command(0x1b, &u16::from(!on).to_le_bytes())?;
        let (_, p) = self.read_packet()?;
        match p.first() {
            Some(0xFF) => Ok(Reply::Err(parse_err(&p))),
            Some(0xFE) | Some(0x00) => Ok(Reply::Ok {
                affected_rows: 0,
                status: terminator_status(&p, self.deprecate_eof()),
            }),
            _ => bail!("COM_SET_OPTION answered with {p:?}"),
        }
    }

    /// COM_STMT_PREPARE.
    pub fn prepare(&mut self, sql: &str) -> Result<Result<Stmt, ServerError>> {
        self.command(0x16, sql.as_bytes())?;
        let (_, p) = self.read_packet()?;
        if p.first() == Some(&0xFF) {
            return Ok(Err(parse_err(&p)));
        }
        if p.len() < 12 || p[0] != 0 {
            bail!("COM_STMT_PREPARE answered with {p:?}");
        }
        let stmt = Stmt {
            id: u32::from_le_bytes([p[1], p[2], p[3], p[4]]),
            columns: u16::from_le_bytes([p[5], p[6]]),
            params: u16::from_le_bytes([p[7], p[8]]),
        };
        let eof = usize::from(!self.deprecate_eof());
        for count in [stmt.params, stmt.columns] {
            if count > 0 {
                for _ in 0..usize::from(count) + eof {
                    self.read_packet()?;
                }
            }
        }
        Ok(Ok(stmt))
    }

    /// Prepares `sql`, failing on a server error.
    pub fn prepare_ok(&mut self, sql: &str) -> Result<Stmt> {
        self.prepare(sql)?
            .map_err(|e| anyhow::anyhow!("prepare `{sql}`: {e:?}"))
    }

    /// COM_STMT_EXECUTE. With `cursor`, asks for a read-only cursor: a result set then has
    /// its columns and no rows (status CURSOR_EXISTS); fetch them with [`RawConn::fetch`].
    pub fn execute(&mut self, stmt: Stmt, params: &[Param], cursor: bool) -> Result<Reply> {
        let mut body = stmt.id.to_le_bytes().to_vec();
        body.push(u8::from(cursor));
        body.extend_from_slice(&1u32.to_le_bytes());
        if !params.is_empty() {
            body.extend(std::iter::repeat_n(0u8, params.len().div_ceil(8)));
            body.push(1); // new params bound: types follow
            for p in params {
                let t = match p {
                    Param::Int(_) => types::LONGLONG,
                    Param::Bytes(_) | Param::LongData => types::BLOB,
                };
                body.extend_from_slice(&[t, 0]);
            }
            for p in params {
                match p {
                    Param::Int(i) => body.extend_from_slice(&i.to_le_bytes()),
                    Param::Bytes(b) => {
                        put_lenenc(&mut body, b.len() as u64);
                        body.extend_from_slice(b);
                    }
                    Param::LongData => {}
                }
            }
        }
        self.command(0x17, &body)?;
        let reply = self.read_result(true, Some(cursor))?;
        if let Reply::Rows { columns, .. } = &reply {
            self.cursor_columns.insert(stmt.id, columns.clone());
        }
        Ok(reply)
    }

    /// COM_STMT_FETCH of up to `rows` rows from the statement's open cursor.
    pub fn fetch(&mut self, stmt: Stmt, rows: u32) -> Result<Reply> {
        let mut body = stmt.id.to_le_bytes().to_vec();
        body.extend_from_slice(&rows.to_le_bytes());
        self.command(0x1c, &body)?;
        let columns = self
            .cursor_columns
            .get(&stmt.id)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        loop {
            let (_, p) = self.read_packet()?;
            match p.first() {
                Some(0xFF) => return Ok(Reply::Err(parse_err(&p))),
                Some(0xFE) if p.len() < MAX_CHUNK => {
                    return Ok(Reply::Rows {
                        columns,
                        rows: out,
                        status: terminator_status(&p, self.deprecate_eof()),
                    })
                }
                _ => out.push(parse_binary_row(&p, &columns)?),
            }
        }
    }

    /// COM_STMT_SEND_LONG_DATA (no answer).
    pub fn send_long_data(&mut self, stmt: Stmt, param: u16, chunk: &[u8]) -> Result<()> {
        let mut body = stmt.id.to_le_bytes().to_vec();
        body.extend_from_slice(&param.to_le_bytes());
        body.extend_from_slice(chunk);
        self.command(0x18, &body)
    }

    /// COM_STMT_RESET.
    pub fn reset(&mut self, stmt: Stmt) -> Result<Reply> {
        self.command(0x1a, &stmt.id.to_le_bytes())?;
        self.read_result(false, None)
    }

    /// COM_STMT_CLOSE (no answer).
    pub fn close(&mut self, stmt: Stmt) -> Result<()> {
        self.cursor_columns.remove(&stmt.id);
        self.command(0x19, &stmt.id.to_le_bytes())
    }

    /// COM_QUIT.
    pub fn quit(mut self) -> Result<()> {
        self.command(0x01, &[])
    }

    /// One result: OK, ERR or a result set (text or binary rows). `cursor`: the EXECUTE
    /// asked for one, so a result set may stop after its column definitions.
    fn read_result(&mut self, binary: bool, cursor: Option<bool>) -> Result<Reply> {
        let (_, p) = self.read_packet()?;
        match p.first() {
            Some(0x00) => return Ok(parse_ok(&p)),
            Some(0xFF) => return Ok(Reply::Err(parse_err(&p))),
            Some(0xFB) => bail!("LOCAL INFILE request; this client sends no files"),
            _ => {}
        }
        let (count, _) = lenenc(&p).context("column count")?;
        let mut columns = Vec::new();
        for _ in 0..count {
            columns.push(parse_column(&self.read_packet()?.1)?);
        }
        if !self.deprecate_eof() || cursor == Some(true) {
            // The EOF after the column definitions: with a cursor opened, the end of the answer.
            let (_, eof) = self.read_packet()?;
            if eof.first() != Some(&0xFE) {
                bail!("expected an EOF after the column definitions, got {eof:?}");
            }
            let status = terminator_status(&eof, self.deprecate_eof());
            if cursor == Some(true) && status & status::CURSOR_EXISTS != 0 {
                return Ok(Reply::Rows {
                    columns,
                    rows: Vec::new(),
                    status,
                });
            }
        }
        let mut rows = Vec::new();
        loop {
            let (_, p) = self.read_packet()?;
            match p.first() {
                Some(0xFF) => return Ok(Reply::Err(parse_err(&p))),
                Some(0xFE) if p.len() < MAX_CHUNK && (self.deprecate_eof() || p.len() < 9) => {
                    return Ok(Reply::Rows {
                        columns,
                        rows,
                        status: terminator_status(&p, self.deprecate_eof()),
                    })
                }
                _ if binary => rows.push(parse_binary_row(&p, &columns)?),
                _ => rows.push(parse_text_row(&p, columns.len())?),
            }
        }
    }
}

/// The 20-byte scramble of a HandshakeV10.
fn greeting_scramble(g: &[u8]) -> Result<Vec<u8>> {
    let version_end = g.iter().skip(1).position(|b| *b == 0).context("version")? + 2;
    let part1 = g
        .get(version_end + 4..version_end + 12)
        .context("scramble 1")?;
    let part2_start = version_end + 12 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
    let part2 = g.get(part2_start..part2_start + 12).context("scramble 2")?;
    Ok(part1.iter().chain(part2).copied().collect())
}

/// mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
fn native_password(scramble: &[u8], password: &str) -> Vec<u8> {
    use sha1::{Digest, Sha1};
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(stage2);
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// A length-encoded integer and the bytes it took.
fn lenenc(b: &[u8]) -> Option<(u64, usize)> {
    match *b.first()? {
        x @ 0..=0xfa => Some((u64::from(x), 1)),
        0xfc => Some((u64::from(u16::from_le_bytes([*b.get(1)?, *b.get(2)?])), 3)),
        0xfd => Some((
            u64::from(*b.get(1)?) | u64::from(*b.get(2)?) << 8 | u64::from(*b.get(3)?) << 16,
            4,
        )),
        0xfe => Some((u64::from_le_bytes(b.get(1..9)?.try_into().ok()?), 9)),
        _ => None,
    }
}

fn put_lenenc(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfa => out.push(n as u8),
        0xfb..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&n.to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// A length-encoded string at `pos`; returns it and the position after it.
fn lenenc_str(b: &[u8], pos: usize) -> Result<(&[u8], usize)> {
    let (len, n) = lenenc(b.get(pos..).unwrap_or_default()).context("string length")?;
    let start = pos + n;
    let end = start + usize::try_from(len)?;
    Ok((b.get(start..end).context("string")?, end))
}

fn parse_ok(p: &[u8]) -> Reply {
    let (affected_rows, n) = lenenc(&p[1..]).unwrap_or((0, 1));
    let (_, m) = lenenc(p.get(1 + n..).unwrap_or_default()).unwrap_or((0, 1));
    let at = 1 + n + m;
    let status = p
        .get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .unwrap_or(0);
    Reply::Ok {
        affected_rows,
        status,
    }
}

fn parse_err(p: &[u8]) -> ServerError {
    let code = p
        .get(1..3)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .unwrap_or(0);
    let text = p.get(3..).unwrap_or_default();
    let text = text
        .strip_prefix(b"#")
        .map(|t| t.get(5..).unwrap_or_default())
        .unwrap_or(text);
    ServerError {
        code,
        message: String::from_utf8_lossy(text).into_owned(),
    }
}

/// The status of an EOF packet or (under DEPRECATE_EOF) an OK packet with a 0xFE header.
fn terminator_status(p: &[u8], deprecate_eof: bool) -> u16 {
    if deprecate_eof && p.len() >= 7 {
        match parse_ok(p) {
            Reply::Ok { status, .. } => status,
            _ => 0,
        }
    } else {
        p.get(3..5)
            .map(|s| u16::from_le_bytes([s[0], s[1]]))
            .unwrap_or(0)
    }
}

/// A column definition (Protocol::ColumnDefinition41): its name and type.
fn parse_column(p: &[u8]) -> Result<Column> {
    let mut pos = 0;
    let mut name = Vec::new();
    for field in 0..6 {
        let (s, next) = lenenc_str(p, pos)?;
        if field == 4 {
            name = s.to_vec();
        }
        pos = next;
    }
    // Fixed fields: length 0x0c, charset 2, column length 4, type 1.
    let column_type = *p.get(pos + 1 + 2 + 4).context("column type")?;
    Ok(Column {
        name: String::from_utf8_lossy(&name).into_owned(),
        column_type,
    })
}

fn parse_text_row(p: &[u8], columns: usize) -> Result<Vec<Value>> {
    let mut pos = 0;
    let mut row = Vec::with_capacity(columns);
    for _ in 0..columns {
        if p.get(pos) == Some(&0xFB) {
            row.push(Value::Null);
            pos += 1;
            continue;
        }
        let (s, next) = lenenc_str(p, pos)?;
        row.push(Value::Bytes(s.to_vec()));
        pos = next;
    }
    Ok(row)
}

/// A binary protocol row: 0x00, NULL bitmap (offset 2), values.
fn parse_binary_row(p: &[u8], columns: &[Column]) -> Result<Vec<Value>> {
    let bitmap_len = (columns.len() + 7 + 2) / 8;
    let bitmap = p.get(1..1 + bitmap_len).context("NULL bitmap")?;
    let mut pos = 1 + bitmap_len;
    let mut row = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let bit = i + 2;
        if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
            row.push(Value::Null);
            continue;
        }
        let fixed = match c.column_type {
            types::TINY => Some(1),
            types::SHORT | types::YEAR => Some(2),
            types::LONG | types::INT24 => Some(4),
            types::LONGLONG => Some(8),
            _ => None,
        };
        match fixed {
            Some(n) => {
                let b = p.get(pos..pos + n).context("integer value")?;
                let mut le = [0u8; 8];
                le[..n].copy_from_slice(b);
                row.push(Value::Int(i64::from_le_bytes(le)));
                pos += n;
            }
            None => {
                let (s, next) = lenenc_str(p, pos)?;
                row.push(Value::Bytes(s.to_vec()));
                pos = next;
            }
        }
    }
    Ok(row)
}
