//! The command phase: what the first byte of a client packet asks for.
//!
//! After authentication every packet a client starts (sequence id 0) is a command; its first
//! payload byte says which. The session dispatches on [`Command`]; a byte we do not know is an
//! [`ProtocolError::UnknownCommand`] that it answers with
//! [`ErrPacket::unknown_command`](super::ErrPacket::unknown_command) (1047, 08S01), as a
//! server would. Small fixed-shape commands are parsed here; COM_QUERY lives in
//! [`query`](super::query), the prepared statement commands in [`prepared`](super::prepared),
//! COM_CHANGE_USER in [`change_user`](super::change_user).

use super::wire::Reader;
use super::ProtocolError;

/// `COM_*` command bytes (MySQL 8 and MariaDB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Command {
    Sleep = 0x00,
    Quit = 0x01,
    InitDb = 0x02,
    Query = 0x03,
    FieldList = 0x04,
    CreateDb = 0x05,
    DropDb = 0x06,
    Refresh = 0x07,
    Shutdown = 0x08,
    Statistics = 0x09,
    ProcessInfo = 0x0A,
    Connect = 0x0B,
    ProcessKill = 0x0C,
    Debug = 0x0D,
    Ping = 0x0E,
    Time = 0x0F,
    DelayedInsert = 0x10,
    ChangeUser = 0x11,
    BinlogDump = 0x12,
    TableDump = 0x13,
    ConnectOut = 0x14,
    RegisterSlave = 0x15,
    StmtPrepare = 0x16,
    StmtExecute = 0x17,
    StmtSendLongData = 0x18,
    StmtClose = 0x19,
    StmtReset = 0x1A,
    SetOption = 0x1B,
    StmtFetch = 0x1C,
    Daemon = 0x1D,
    BinlogDumpGtid = 0x1E,
    ResetConnection = 0x1F,
    /// MySQL 8.0.17+ clone plugin.
    Clone = 0x20,
    /// MariaDB: execute a prepared statement with an array of parameter sets.
    StmtBulkExecute = 0xFA,
}

impl Command {
    const ALL: [Command; 34] = [
        Self::Sleep,
        Self::Quit,
        Self::InitDb,
        Self::Query,
        Self::FieldList,
        Self::CreateDb,
        Self::DropDb,
        Self::Refresh,
        Self::Shutdown,
        Self::Statistics,
        Self::ProcessInfo,
        Self::Connect,
        Self::ProcessKill,
        Self::Debug,
        Self::Ping,
        Self::Time,
        Self::DelayedInsert,
        Self::ChangeUser,
        Self::BinlogDump,
        Self::TableDump,
        Self::ConnectOut,
        Self::RegisterSlave,
        Self::StmtPrepare,
        Self::StmtExecute,
        Self::StmtSendLongData,
        Self::StmtClose,
        Self::StmtReset,
        Self::SetOption,
        Self::StmtFetch,
        Self::Daemon,
        Self::BinlogDumpGtid,
        Self::ResetConnection,
        Self::Clone,
        Self::StmtBulkExecute,
    ];

    /// The command a byte stands for.
    pub fn from_byte(byte: u8) -> Result<Self, ProtocolError> {
        match byte {
            0x00..=0x20 => Ok(Self::ALL[usize::from(byte)]),
            0xFA => Ok(Self::StmtBulkExecute),
            other => Err(ProtocolError::UnknownCommand(other)),
        }
    }

    /// The command of a client packet (its first payload byte).
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let byte = *payload.first().ok_or(ProtocolError::Truncated {
            what: "command byte",
        })?;
        Self::from_byte(byte)
    }

    pub fn byte(self) -> u8 {
        self as u8
    }

    /// The server answers nothing to these (the session must not wait for a reply).
    pub fn expects_response(self) -> bool {
        !matches!(self, Self::Quit | Self::StmtClose | Self::StmtSendLongData)
    }

    /// Commands whose bytes 1..5 are a prepared statement id (see
    /// [`prepared::rewrite_stmt_id`](super::prepared::rewrite_stmt_id)).
    pub fn carries_statement_id(self) -> bool {
        matches!(
            self,
            Self::StmtExecute
                | Self::StmtSendLongData
                | Self::StmtClose
                | Self::StmtReset
                | Self::StmtFetch
                | Self::StmtBulkExecute
        )
    }

    /// The protocol's name, for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sleep => "COM_SLEEP",
            Self::Quit => "COM_QUIT",
            Self::InitDb => "COM_INIT_DB",
            Self::Query => "COM_QUERY",
            Self::FieldList => "COM_FIELD_LIST",
            Self::CreateDb => "COM_CREATE_DB",
            Self::DropDb => "COM_DROP_DB",
            Self::Refresh => "COM_REFRESH",
            Self::Shutdown => "COM_SHUTDOWN",
            Self::Statistics => "COM_STATISTICS",
            Self::ProcessInfo => "COM_PROCESS_INFO",
            Self::Connect => "COM_CONNECT",
            Self::ProcessKill => "COM_PROCESS_KILL",
            Self::Debug => "COM_DEBUG",
            Self::Ping => "COM_PING",
            Self::Time => "COM_TIME",
            Self::DelayedInsert => "COM_DELAYED_INSERT",
            Self::ChangeUser => "COM_CHANGE_USER",
            Self::BinlogDump => "COM_BINLOG_DUMP",
            Self::TableDump => "COM_TABLE_DUMP",
            Self::ConnectOut => "COM_CONNECT_OUT",
            Self::RegisterSlave => "COM_REGISTER_SLAVE",
            Self::StmtPrepare => "COM_STMT_PREPARE",
            Self::StmtExecute => "COM_STMT_EXECUTE",
            Self::StmtSendLongData => "COM_STMT_SEND_LONG_DATA",
            Self::StmtClose => "COM_STMT_CLOSE",
            Self::StmtReset => "COM_STMT_RESET",
            Self::SetOption => "COM_SET_OPTION",
            Self::StmtFetch => "COM_STMT_FETCH",
            Self::Daemon => "COM_DAEMON",
            Self::BinlogDumpGtid => "COM_BINLOG_DUMP_GTID",
            Self::ResetConnection => "COM_RESET_CONNECTION",
            Self::Clone => "COM_CLONE",
            Self::StmtBulkExecute => "COM_STMT_BULK_EXECUTE",
        }
    }
}

/// COM_INIT_DB: the schema name after the command byte.
pub fn init_db_schema(payload: &[u8]) -> Result<&[u8], ProtocolError> {
    expect(payload, Command::InitDb)?;
    Ok(&payload[1..])
}

/// COM_SET_OPTION's argument: turn multi-statement support on or off for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOption {
    MultiStatementsOn,
    MultiStatementsOff,
}

impl SetOption {
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        expect(payload, Command::SetOption)?;
        match Reader::new(&payload[1..]).u16("COM_SET_OPTION: option")? {
            0 => Ok(Self::MultiStatementsOn),
            1 => Ok(Self::MultiStatementsOff),
            _ => Err(ProtocolError::Malformed {
                what: "COM_SET_OPTION: option",
            }),
        }
    }

    /// The COM_SET_OPTION packet payload.
    pub fn encode(self) -> [u8; 3] {
        let option: u16 = match self {
            Self::MultiStatementsOn => 0,
            Self::MultiStatementsOff => 1,
        };
        let [lo, hi] = option.to_le_bytes();
        [Command::SetOption as u8, lo, hi]
    }
}

/// Checks that `payload` is a `command` packet.
pub(crate) fn expect(payload: &[u8], command: Command) -> Result<(), ProtocolError> {
    match payload.first() {
        Some(&b) if b == command as u8 => Ok(()),
        Some(_) => Err(ProtocolError::Malformed {
            what: "command packet: unexpected command byte",
        }),
        None => Err(ProtocolError::Truncated {
            what: "command byte",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_byte_round_trips() {
        for byte in 0..=u8::MAX {
            match Command::from_byte(byte) {
                Ok(cmd) => {
                    assert_eq!(cmd.byte(), byte);
                    assert!(cmd.name().starts_with("COM_"));
                }
                Err(e) => assert_eq!(e, ProtocolError::UnknownCommand(byte)),
            }
        }
        assert_eq!(Command::from_byte(0x03), Ok(Command::Query));
        assert_eq!(Command::from_byte(0x1F), Ok(Command::ResetConnection));
        assert_eq!(Command::Query.name(), "COM_QUERY");
        assert_eq!(Command::StmtBulkExecute.name(), "COM_STMT_BULK_EXECUTE");
    }

    #[test]
    fn unknown_and_empty_commands_are_errors() {
        assert_eq!(
            Command::parse(&[0x42]),
            Err(ProtocolError::UnknownCommand(0x42))
        );
        assert!(matches!(
            Command::parse(&[]),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn response_and_statement_id_properties() {
        assert!(!Command::StmtClose.expects_response());
        assert!(!Command::Quit.expects_response());
        assert!(Command::StmtReset.expects_response());
        assert!(Command::StmtExecute.carries_statement_id());
        assert!(!Command::StmtPrepare.carries_statement_id());
    }

    #[test]
    fn small_command_arguments() {
        assert_eq!(init_db_schema(b"\x02shop").unwrap(), b"shop");
        assert!(init_db_schema(b"\x03shop").is_err());
        assert_eq!(
            SetOption::parse(&[0x1B, 1, 0]),
            Ok(SetOption::MultiStatementsOff)
        );
        assert!(SetOption::parse(&[0x1B, 1]).is_err());
        for option in [SetOption::MultiStatementsOn, SetOption::MultiStatementsOff] {
            assert_eq!(SetOption::parse(&option.encode()), Ok(option));
        }
        assert!(SetOption::parse(&[0x1B, 7, 0]).is_err());
    }
}
