//! Binary-protocol prepared statements: COM_STMT_PREPARE and its OK, and the commands that
//! name a statement by id (EXECUTE, SEND_LONG_DATA, CLOSE, RESET, FETCH, MariaDB's
//! BULK_EXECUTE).
//!
//! A statement id belongs to one backend connection, but a client keeps using the id it was
//! given while the router may run the statement on another connection (after a failover, or on
//! a replica). So the router hands out its own ids, prepares on each backend as needed, and
//! rewrites the id in bytes 1..5 of every later command with [`rewrite_stmt_id`] before
//! forwarding: the rest of the packet (parameters, long data) passes through untouched.

use bytes::BufMut;

use super::command::{expect, Command};
use super::wire::Reader;
use super::ProtocolError;

/// MariaDB: "the statement prepared just before on this connection", used when a client sends
/// PREPARE and EXECUTE back to back without waiting for the id.
pub const LAST_PREPARED_STMT_ID: u32 = u32::MAX;

/// COM_STMT_EXECUTE flags: cursor types and MySQL 8's parameter count flag.
pub mod cursor {
    pub const NO_CURSOR: u8 = 0x00;
    pub const READ_ONLY: u8 = 0x01;
    pub const FOR_UPDATE: u8 = 0x02;
    pub const SCROLLABLE: u8 = 0x04;
    pub const PARAMETER_COUNT_AVAILABLE: u8 = 0x08;
}

/// COM_STMT_PREPARE: the statement text after the 0x16 byte.
pub fn prepare_text(payload: &[u8]) -> Result<&[u8], ProtocolError> {
    expect(payload, Command::StmtPrepare)?;
    Ok(&payload[1..])
}

/// COM_STMT_PREPARE_OK: the server's answer to a successful prepare. Column and parameter
/// definitions follow it in their own packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StmtPrepareOk {
    pub statement_id: u32,
    pub num_columns: u16,
    pub num_params: u16,
    pub warnings: u16,
}

impl StmtPrepareOk {
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("COM_STMT_PREPARE_OK: status")? != 0x00 {
            return Err(ProtocolError::Malformed {
                what: "COM_STMT_PREPARE_OK: status is not 0x00",
            });
        }
        let statement_id = r.u32("COM_STMT_PREPARE_OK: statement id")?;
        let num_columns = r.u16("COM_STMT_PREPARE_OK: column count")?;
        let num_params = r.u16("COM_STMT_PREPARE_OK: parameter count")?;
        r.u8("COM_STMT_PREPARE_OK: filler")?;
        // The warning count is absent in some old servers' 9-byte variant.
        let warnings = if r.is_empty() {
            0
        } else {
            r.u16("COM_STMT_PREPARE_OK: warning count")?
        };
        Ok(Self {
            statement_id,
            num_columns,
            num_params,
            warnings,
        })
    }

    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(0x00);
        buf.put_u32_le(self.statement_id);
        buf.put_u16_le(self.num_columns);
        buf.put_u16_le(self.num_params);
        buf.put_u8(0x00);
        buf.put_u16_le(self.warnings);
    }
}

/// The fixed head of COM_STMT_EXECUTE; the parameters after it need the prepare's parameter
/// count and are forwarded as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StmtExecuteHeader {
    pub statement_id: u32,
    /// See [`cursor`].
    pub flags: u8,
    /// Always 1.
    pub iteration_count: u32,
}

impl StmtExecuteHeader {
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        expect(payload, Command::StmtExecute)?;
        let mut r = Reader::new(&payload[1..]);
        Ok(Self {
            statement_id: r.u32("COM_STMT_EXECUTE: statement id")?,
            flags: r.u8("COM_STMT_EXECUTE: flags")?,
            iteration_count: r.u32("COM_STMT_EXECUTE: iteration count")?,
        })
    }

    /// Whether the client asks for a server-side cursor (then COM_STMT_FETCH follows and the
    /// statement must stay on the same backend connection).
    pub fn opens_cursor(&self) -> bool {
        self.flags & (cursor::READ_ONLY | cursor::FOR_UPDATE | cursor::SCROLLABLE) != 0
    }
}

/// The statement id of any command that [carries one](Command::carries_statement_id).
pub fn statement_id(payload: &[u8]) -> Result<u32, ProtocolError> {
    let command = Command::parse(payload)?;
    if !command.carries_statement_id() {
        return Err(ProtocolError::Malformed {
            what: "statement id: command does not name a prepared statement",
        });
    }
    Reader::new(&payload[1..]).u32("prepared statement command: statement id")
}

/// Replaces the statement id of a command that carries one, in place, and returns the id it
/// had. Fails (changing nothing) on any other or a too short payload.
pub fn rewrite_stmt_id(payload: &mut [u8], new_id: u32) -> Result<u32, ProtocolError> {
    let old = statement_id(payload)?;
    if let Some(field) = payload.get_mut(1..5) {
        field.copy_from_slice(&new_id.to_le_bytes());
    }
    Ok(old)
}

/// COM_STMT_CLOSE for `statement_id` (the router sends it when a client closes its id, and to
/// clean up statements it prepared on connections going back to the pool).
pub fn encode_stmt_close(statement_id: u32, buf: &mut impl BufMut) {
    buf.put_u8(Command::StmtClose as u8);
    buf.put_u32_le(statement_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_ok_round_trips_and_accepts_the_short_form() {
        let ok = StmtPrepareOk {
            statement_id: 7,
            num_columns: 3,
            num_params: 2,
            warnings: 1,
        };
        let mut buf = Vec::new();
        ok.encode(&mut buf);
        assert_eq!(buf.len(), 12);
        assert_eq!(StmtPrepareOk::parse(&buf).unwrap(), ok);
        let short = StmtPrepareOk::parse(&buf[..10]).unwrap();
        assert_eq!(short.warnings, 0);
        assert!(StmtPrepareOk::parse(&buf[..9]).is_err());
        assert!(StmtPrepareOk::parse(b"\xff\x01\x00").is_err());
    }

    #[test]
    fn execute_header_and_id_rewrite() {
        let mut exec = vec![0x17, 1, 0, 0, 0, cursor::READ_ONLY, 1, 0, 0, 0, 0xAA, 0xBB];
        let head = StmtExecuteHeader::parse(&exec).unwrap();
        assert_eq!(head.statement_id, 1);
        assert!(head.opens_cursor());
        assert_eq!(rewrite_stmt_id(&mut exec, 0x0102_0304), Ok(1));
        assert_eq!(&exec[1..5], &[4, 3, 2, 1]);
        assert_eq!(&exec[5..], &[cursor::READ_ONLY, 1, 0, 0, 0, 0xAA, 0xBB]);
        assert_eq!(statement_id(&exec), Ok(0x0102_0304));
    }

    #[test]
    fn rewrite_refuses_short_or_unrelated_packets_without_touching_them() {
        let mut short = vec![0x19, 1, 2];
        assert!(rewrite_stmt_id(&mut short, 9).is_err());
        assert_eq!(short, vec![0x19, 1, 2]);
        let mut query = b"\x03SELECT 1".to_vec();
        assert!(rewrite_stmt_id(&mut query, 9).is_err());
        assert_eq!(query, b"\x03SELECT 1");
        let mut close = Vec::new();
        encode_stmt_close(5, &mut close);
        assert_eq!(rewrite_stmt_id(&mut close, 6), Ok(5));
        assert_eq!(prepare_text(b"\x16SELECT ?").unwrap(), b"SELECT ?");
    }
}
