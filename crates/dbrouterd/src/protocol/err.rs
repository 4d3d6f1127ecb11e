//! ERR packets: parsing the ones backends send and building the ones dbrouterd sends itself.
//!
//! Layout: `0xFF`, error code `int<2>`, then (4.1 protocol) the SQLSTATE marker `#` and a
//! 5-character SQLSTATE, then the message `string<EOF>`. Errors a server sends before the
//! handshake may lack the SQLSTATE part.
//!
//! Errors that dbrouterd itself raises reach the client as real MySQL errors: the server's own
//! code and SQLSTATE where one fits (1045 access denied, 1040 too many connections, 1153 packet
//! too large ...), otherwise one of the proxy's codes in [`codes`] (9001..), which sit outside
//! the ranges MySQL and MariaDB use.

use std::fmt;

use bytes::BufMut;

use super::wire::Reader;
use super::{Capabilities, ProtocolError};

/// Error codes: the server's that the proxy reuses, and its own from 9001.
pub mod codes {
    pub const TOO_MANY_CONNECTIONS: u16 = 1040;
    pub const BAD_HANDSHAKE: u16 = 1043;
    pub const ACCESS_DENIED: u16 = 1045;
    pub const UNKNOWN_COMMAND: u16 = 1047;
    pub const UNKNOWN_DATABASE: u16 = 1049;
    pub const SERVER_SHUTDOWN: u16 = 1053;
    pub const NET_PACKET_TOO_LARGE: u16 = 1153;
    pub const NET_PACKETS_OUT_OF_ORDER: u16 = 1156;
    pub const NET_READ_ERROR: u16 = 1158;
    pub const NET_READ_INTERRUPTED: u16 = 1159;
    /// The client library's CR_SERVER_LOST, which drivers already treat as "reconnect".
    pub const LOST_CONNECTION: u16 = 2013;
    /// ER_SECURE_TRANSPORT_REQUIRED: MySQL's answer to a plain-text client under
    /// `require_secure_transport`.
    pub const SECURE_TRANSPORT_REQUIRED: u16 = 3159;

    /// No healthy backend can take the statement's route.
    pub const NO_BACKEND: u16 = 9001;
    /// The pool is configured to refuse writes (`writes: refuse`).
    pub const WRITES_REFUSED: u16 = 9002;
    /// No pooled connection became free within `checkout_timeout`.
    pub const CHECKOUT_TIMEOUT: u16 = 9003;
    /// The backend connection died inside a transaction; the transaction is gone.
    pub const TRANSACTION_LOST: u16 = 9004;
    /// Replaying the session state on a new backend connection failed.
    pub const SESSION_REPLAY_FAILED: u16 = 9005;
}

/// An ERR packet.
#[derive(Clone, PartialEq, Eq)]
pub struct ErrPacket {
    pub code: u16,
    /// Five ASCII characters; `HY000` ("general error") when the server sent none.
    pub sql_state: [u8; 5],
    pub message: String,
}

impl fmt::Debug for ErrPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrPacket({self})")
    }
}

impl fmt::Display for ErrPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = String::from_utf8_lossy(&self.sql_state);
        write!(f, "ERROR {} ({}): {}", self.code, state, self.message)
    }
}

impl ErrPacket {
    pub fn new(code: u16, sql_state: &[u8; 5], message: impl Into<String>) -> Self {
        Self {
            code,
            sql_state: *sql_state,
            message: message.into(),
        }
    }

    /// Whether a payload is an ERR packet.
    pub fn is_err(payload: &[u8]) -> bool {
        payload.first() == Some(&0xFF)
    }

    /// MariaDB's progress report (an ERR header with code 0xFFFF, sent to clients with
    /// `MARIADB_CLIENT_PROGRESS` during long ALTERs): not an error, forward it and keep reading.
    pub fn is_progress_report(payload: &[u8]) -> bool {
        payload.len() >= 3 && payload[0] == 0xFF && payload[1] == 0xFF && payload[2] == 0xFF
    }

    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("ERR packet: header")? != 0xFF {
            return Err(ProtocolError::Malformed {
                what: "ERR packet: header is not 0xFF",
            });
        }
        let code = r.u16("ERR packet: error code")?;
        let mut sql_state = *b"HY000";
        if r.peek() == Some(b'#') && r.remaining() >= 6 {
            r.u8("ERR packet: SQLSTATE marker")?;
            sql_state = r.array("ERR packet: SQLSTATE")?;
        }
        Ok(Self {
            code,
            sql_state,
            message: String::from_utf8_lossy(r.rest()).into_owned(),
        })
    }

    /// Writes the payload; `caps` decide whether the SQLSTATE is included (4.1 clients).
    pub fn encode(&self, caps: Capabilities, buf: &mut impl BufMut) {
        buf.put_u8(0xFF);
        buf.put_u16_le(self.code);
        if caps.contains(Capabilities::PROTOCOL_41) {
            buf.put_u8(b'#');
            buf.put_slice(&self.sql_state);
        }
        buf.put_slice(self.message.as_bytes());
    }

    /// 1045 (28000), worded as the server words it.
    pub fn access_denied(user: &[u8], host: &str, using_password: bool) -> Self {
        let user = String::from_utf8_lossy(user);
        let using = if using_password { "YES" } else { "NO" };
        Self::new(
            codes::ACCESS_DENIED,
            b"28000",
            format!("Access denied for user '{user}'@'{host}' (using password: {using})"),
        )
    }

    /// 1047 (08S01) for a command byte the proxy does not know or does not relay.
    pub fn unknown_command(command: u8) -> Self {
        Self::new(
            codes::UNKNOWN_COMMAND,
            b"08S01",
            format!("Unknown command {command:#04x}"),
        )
    }

    /// 1043 (08S01): the connection phase went wrong.
    pub fn bad_handshake() -> Self {
        Self::new(codes::BAD_HANDSHAKE, b"08S01", "Bad handshake")
    }

    /// 3159 (HY000): the listener takes TLS clients only.
    pub fn secure_transport_required() -> Self {
        Self::new(
            codes::SECURE_TRANSPORT_REQUIRED,
            b"HY000",
            "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
        )
    }

    /// 1040 (08004).
    pub fn too_many_connections() -> Self {
        Self::new(
            codes::TOO_MANY_CONNECTIONS,
            b"08004",
            "Too many connections",
        )
    }

    /// 1049 (42000).
    pub fn unknown_database(name: &[u8]) -> Self {
        let name = String::from_utf8_lossy(name);
        Self::new(
            codes::UNKNOWN_DATABASE,
            b"42000",
            format!("Unknown database '{name}'"),
        )
    }

    /// 1053 (08S01): dbrouterd is draining connections before it stops.
    pub fn shutting_down() -> Self {
        Self::new(
            codes::SERVER_SHUTDOWN,
            b"08S01",
            "Server shutdown in progress",
        )
    }

    /// 1158 (08S01).
    pub fn net_read_error() -> Self {
        Self::new(
            codes::NET_READ_ERROR,
            b"08S01",
            "Got an error reading communication packets",
        )
    }

    /// 1159 (08S01).
    pub fn net_read_interrupted() -> Self {
        Self::new(
            codes::NET_READ_INTERRUPTED,
            b"08S01",
            "Got timeout reading communication packets",
        )
    }

    /// 1153 (08S01).
    pub fn packet_too_large(limit: usize) -> Self {
        Self::new(
            codes::NET_PACKET_TOO_LARGE,
            b"08S01",
            format!("Got a packet bigger than 'max_allowed_packet' bytes ({limit})"),
        )
    }

    /// 1156 (08S01).
    pub fn packets_out_of_order() -> Self {
        Self::new(
            codes::NET_PACKETS_OUT_OF_ORDER,
            b"08S01",
            "Got packets out of order",
        )
    }

    /// 2013 (HY000): the backend connection broke mid-statement.
    pub fn lost_connection(backend: &str) -> Self {
        Self::new(
            codes::LOST_CONNECTION,
            b"HY000",
            format!("Lost connection to backend '{backend}' during query"),
        )
    }

    /// 9001 (HY000).
    pub fn no_backend(pool: &str, route: &str) -> Self {
        Self::new(
            codes::NO_BACKEND,
            b"HY000",
            format!("dbrouterd: no healthy {route} backend in pool '{pool}'"),
        )
    }

    /// 9002 (25006, read-only transaction).
    pub fn writes_refused(pool: &str) -> Self {
        Self::new(
            codes::WRITES_REFUSED,
            b"25006",
            format!("dbrouterd: pool '{pool}' is read-only; the statement needs a writer"),
        )
    }

    /// 9003 (HY000).
    pub fn checkout_timeout(pool: &str, backend: &str) -> Self {
        Self::new(
            codes::CHECKOUT_TIMEOUT,
            b"HY000",
            format!(
                "dbrouterd: timed out waiting for a connection to '{backend}' in pool '{pool}'"
            ),
        )
    }

    /// 9004 (08S01): the client must treat its transaction as failed (and, if COMMIT was in
    /// flight, as of unknown outcome).
    pub fn transaction_lost(backend: &str) -> Self {
        Self::new(
            codes::TRANSACTION_LOST,
            b"08S01",
            format!("dbrouterd: connection to '{backend}' lost inside a transaction"),
        )
    }

    /// 9005 (HY000).
    pub fn session_replay_failed(backend: &str, detail: &str) -> Self {
        Self::new(
            codes::SESSION_REPLAY_FAILED,
            b"HY000",
            format!("dbrouterd: could not restore the session on '{backend}': {detail}"),
        )
    }

    /// The error to send a client whose packets could not be framed or decoded.
    pub fn from_protocol_error(error: &ProtocolError) -> Self {
        match error {
            ProtocolError::TooLarge { limit, .. } => Self::packet_too_large(*limit),
            ProtocolError::WrongSequence { .. } => Self::packets_out_of_order(),
            ProtocolError::UnknownCommand(byte) => Self::unknown_command(*byte),
            other => Self::new(
                codes::NET_READ_ERROR,
                b"08S01",
                format!("Got an error reading communication packets: {other}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::constants::CapabilityFlags;
    use mysql_common::io::ParseBuf;
    use mysql_common::packets::ErrPacket as RefErr;
    use mysql_common::proto::MyDeserialize;

    #[test]
    fn access_denied_reads_like_the_server_and_the_reference_agrees() {
        let err = ErrPacket::access_denied(b"report", "10.0.0.7", true);
        let mut buf = Vec::new();
        err.encode(Capabilities::PROTOCOL_41, &mut buf);
        assert_eq!(&buf[..9], b"\xff\x15\x04#28000");
        assert_eq!(ErrPacket::parse(&buf).unwrap(), err);
        assert_eq!(
            err.to_string(),
            "ERROR 1045 (28000): Access denied for user 'report'@'10.0.0.7' (using password: YES)"
        );

        let theirs =
            RefErr::deserialize(CapabilityFlags::CLIENT_PROTOCOL_41, &mut ParseBuf(&buf)).unwrap();
        let theirs = theirs.server_error();
        assert_eq!(theirs.error_code(), 1045);
        assert_eq!(
            theirs.sql_state_ref().map(|s| s.as_bytes()),
            Some(*b"28000")
        );
    }

    #[test]
    fn parses_errors_without_sqlstate() {
        let err = ErrPacket::parse(b"\xff\x10\x04Too many connections").unwrap();
        assert_eq!(err.code, 1040);
        assert_eq!(&err.sql_state, b"HY000");
        assert_eq!(err.message, "Too many connections");
        assert!(ErrPacket::parse(b"\xff\x10").is_err());
        assert!(ErrPacket::parse(b"\x00\x10\x04").is_err());
    }

    #[test]
    fn proxy_errors_carry_their_codes_and_states() {
        let cases = [
            (ErrPacket::unknown_command(0x1D), 1047, b"08S01"),
            (ErrPacket::net_read_error(), 1158, b"08S01"),
            (ErrPacket::net_read_interrupted(), 1159, b"08S01"),
            (ErrPacket::too_many_connections(), 1040, b"08004"),
            (ErrPacket::lost_connection("db1"), 2013, b"HY000"),
            (ErrPacket::no_backend("business", "replica"), 9001, b"HY000"),
            (ErrPacket::writes_refused("reports"), 9002, b"25006"),
            (
                ErrPacket::checkout_timeout("business", "db3"),
                9003,
                b"HY000",
            ),
            (ErrPacket::transaction_lost("db1"), 9004, b"08S01"),
            (ErrPacket::session_replay_failed("db3", "x"), 9005, b"HY000"),
            (ErrPacket::shutting_down(), 1053, b"08S01"),
            (ErrPacket::bad_handshake(), 1043, b"08S01"),
        ];
        for (err, code, state) in cases {
            assert_eq!((err.code, &err.sql_state), (code, state), "{err}");
        }
    }

    #[test]
    fn protocol_errors_map_to_network_errors() {
        let too_large = ProtocolError::TooLarge { size: 10, limit: 5 };
        assert_eq!(ErrPacket::from_protocol_error(&too_large).code, 1153);
        let order = ProtocolError::WrongSequence {
            expected: 1,
            got: 2,
        };
        assert_eq!(ErrPacket::from_protocol_error(&order).code, 1156);
        assert_eq!(
            ErrPacket::from_protocol_error(&ProtocolError::UnknownCommand(0x99)).code,
            1047
        );
        assert!(ErrPacket::is_progress_report(b"\xff\xff\xff\x01\x01"));
        assert!(!ErrPacket::is_progress_report(b"\xff\x15\x04"));
    }
}
