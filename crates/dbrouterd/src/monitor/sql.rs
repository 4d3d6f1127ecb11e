//! The few SQL round trips the monitor makes over its own backend connections: a text query
//! whose rows come back by column name (`SHOW SLAVE STATUS`, `SELECT @@read_only, ...`), and a
//! statement whose answer is only OK or an error.

use crate::pool::{BackendConn, ConnError};
use crate::protocol::wire::Reader;
use crate::protocol::{Capabilities, Command, ErrPacket};

/// A statement failed: the connection broke, or the server answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("backend {backend}: `{sql}` failed: {err}")]
    Server {
        backend: String,
        sql: String,
        err: ErrPacket,
    },
}

impl SqlError {
    /// The server's error code, when the server answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            SqlError::Server { err, .. } => Some(err.code),
            SqlError::Conn(_) => None,
        }
    }
}

/// A text result set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The value of column `name` in row `row` (`None` for NULL, a missing row or column).
    pub fn get(&self, row: usize, name: &str) -> Option<&str> {
        let col = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))?;
        self.rows.get(row)?.get(col)?.as_deref()
    }

    /// Column `col` of the first row.
    pub fn first(&self, col: usize) -> Option<&str> {
        self.rows.first()?.get(col)?.as_deref()
    }
}

fn protocol(conn: &BackendConn, source: crate::protocol::ProtocolError) -> SqlError {
    SqlError::Conn(ConnError::Protocol {
        backend: conn.node.name.clone(),
        source,
    })
}

/// Runs `sql` and reads its whole result set.
pub async fn query(conn: &mut BackendConn, sql: &str) -> Result<Rows, SqlError> {
    let mut payload = Vec::with_capacity(sql.len() + 1);
    payload.push(Command::Query.byte());
    payload.extend_from_slice(sql.as_bytes());
    conn.send_command(&payload).await?;
    let mut seq = 1u8;
    let first = conn.read_packet(seq).await?;
    seq = seq.wrapping_add(1);
    let p = &first.payload[..];
    if ErrPacket::is_err(p) {
        let err = ErrPacket::parse(p).map_err(|e| protocol(conn, e))?;
        return Err(SqlError::Server {
            backend: conn.node.name.clone(),
            sql: sql.to_string(),
            err,
        });
    }
    if p.first() == Some(&0x00) {
        return Ok(Rows::default());
    }
    let count = Reader::new(p)
        .lenenc_int("result: column count")
        .map_err(|e| protocol(conn, e))?;
    let mut rows = Rows::default();
    for _ in 0..count {
        let def = conn.read_packet(seq).await?;
        seq = seq.wrapping_add(1);
        let mut r = Reader::new(&def.payload);
        // catalog, schema, table, org_table, then the name.
        let mut name = Vec::new();
        for i in 0..5 {
            let v = r
                .lenenc_bytes("column definition")
                .map_err(|e| protocol(conn, e))?;
            if i == 4 {
                name = v.to_vec();
            }
        }
        rows.columns
            .push(String::from_utf8_lossy(&name).into_owned());
    }
    let eof = !conn.caps.contains(Capabilities::DEPRECATE_EOF);
    if eof {
        conn.read_packet(seq).await?;
        seq = seq.wrapping_add(1);
    }
    loop {
        let packet = conn.read_packet(seq).await?;
        seq = seq.wrapping_add(1);
        let p = &packet.payload[..];
        if p.first() == Some(&0xFE) && p.len() < 0xFF_FFFF {
            return Ok(rows);
        }
        if ErrPacket::is_err(p) {
            let err = ErrPacket::parse(p).map_err(|e| protocol(conn, e))?;
            return Err(SqlError::Server {
                backend: conn.node.name.clone(),
                sql: sql.to_string(),
                err,
            });
        }
        let mut r = Reader::new(p);
        let mut row = Vec::with_capacity(rows.columns.len());
        for _ in 0..rows.columns.len() {
            if r.peek() == Some(0xFB) {
                r.u8("NULL").map_err(|e| protocol(conn, e))?;
                row.push(None);
            } else {
                let v = r.lenenc_bytes("row value").map_err(|e| protocol(conn, e))?;
                row.push(Some(String::from_utf8_lossy(v).into_owned()));
            }
        }
        rows.rows.push(row);
    }
}

/// Runs a statement whose answer is OK or an error.
pub async fn execute(conn: &mut BackendConn, sql: &str) -> Result<(), SqlError> {
    let summary = conn.query_discard(sql.as_bytes()).await?;
    match summary.error {
        None => Ok(()),
        Some(err) => Err(SqlError::Server {
            backend: conn.node.name.clone(),
            sql: sql.to_string(),
            err,
        }),
    }
}

/// A value safe to put between single quotes in SQL (GTID lists, host names, user names).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_values_inside_their_quotes() {
        assert_eq!(quote("0-1-10,1-2-3"), "'0-1-10,1-2-3'");
        assert_eq!(quote("a'b\\c"), "'a''b\\\\c'");
    }

    #[test]
    fn rows_are_found_by_column_name() {
        let rows = Rows {
            columns: vec!["Slave_IO_Running".into(), "Seconds_Behind_Master".into()],
            rows: vec![vec![Some("Yes".into()), None]],
        };
        assert_eq!(rows.get(0, "slave_io_running"), Some("Yes"));
        assert_eq!(rows.get(0, "Seconds_Behind_Master"), None);
        assert_eq!(rows.get(1, "Slave_IO_Running"), None);
    }
}
