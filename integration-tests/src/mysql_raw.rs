//! A blocking MySQL client that speaks the protocol packet by packet, for the commands drivers
//! do not expose or do not let a test control: COM_FIELD_LIST, server-side cursors
//! (COM_STMT_EXECUTE with a cursor flag, then COM_STMT_FETCH), COM_STMT_SEND_LONG_DATA,
//! COM_STMT_RESET, COM_STMT_CLOSE, COM_SET_OPTION, COM_RESET_CONNECTION, COM_STATISTICS.
//!
//! It logs in with `mysql_native_password` and knows just enough of the text and binary result
//! formats to hand a test what the server said: [`Reply`] for every answer, values as
//! [`Value`]. Every read has a timeout, so a proxy that never answers fails the test instead of
//! hanging it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

mod decode;
mod reply;

use decode::{
    greeting_scramble, lenenc, native_password, parse_binary_row, parse_column, parse_err,
    parse_ok, parse_text_row, put_lenenc, terminator_status,
};
pub use reply::{Column, Param, Reply, ServerError, Stmt, Value};

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

    /// COM_RESET_CONNECTION.
    pub fn reset_connection(&mut self) -> Result<Reply> {
        self.command(0x1f, &[])?;
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
