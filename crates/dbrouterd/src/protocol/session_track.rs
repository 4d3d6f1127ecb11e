//! Session state tracking data carried by OK packets (`CLIENT_SESSION_TRACK`).
//!
//! When a statement changes session state the server can say so in its OK packet, so the
//! router learns what to replay on other backend connections without parsing SQL: the new
//! schema, changed system variables (those in `session_track_system_variables`), the GTIDs a
//! commit produced (MySQL's `session_track_gtids`; MariaDB reports its GTID through the tracked
//! `last_gtid` variable instead), the transaction state and characteristics.
//!
//! The session state info is a sequence of entries: `int<1>` type, `string<lenenc>` data.
//! Inside the data: system variables are `string<lenenc>` name and value pairs (one or more);
//! schema, state change ("1"/"0"), transaction characteristics and transaction state are one
//! `string<lenenc>`; GTIDs are an `int<1>` encoding specification (0) and `string<lenenc>`.

use bytes::BufMut;

use super::wire::{put_lenenc_bytes, Reader};
use super::ProtocolError;

/// Entry types (`enum_session_state_type`).
pub mod kind {
    pub const SYSTEM_VARIABLES: u8 = 0;
    pub const SCHEMA: u8 = 1;
    pub const STATE_CHANGE: u8 = 2;
    pub const GTIDS: u8 = 3;
    pub const TRANSACTION_CHARACTERISTICS: u8 = 4;
    pub const TRANSACTION_STATE: u8 = 5;
}

/// One session state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange<'a> {
    SystemVariable {
        name: &'a [u8],
        value: &'a [u8],
    },
    Schema(&'a [u8]),
    /// Whether session state tracking saw any change (`session_track_state_change`).
    StateChanged(bool),
    Gtids(&'a [u8]),
    /// The statements that recreate the transaction's characteristics, for example
    /// `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; START TRANSACTION READ ONLY;`.
    TransactionCharacteristics(&'a [u8]),
    TransactionState(TransactionState),
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// The 8-character transaction state (`session_track_transaction_info=STATE`), for example
/// `T___W___`: an explicit transaction that has written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransactionState {
    /// `T`: started with BEGIN / START TRANSACTION.
    pub explicit: bool,
    /// `I`: started implicitly (autocommit off).
    pub implicit: bool,
    pub read_unsafe: bool,
    pub read_trx: bool,
    pub write_unsafe: bool,
    pub write_trx: bool,
    pub stmt_unsafe: bool,
    pub result_set: bool,
    pub locked_tables: bool,
}

impl TransactionState {
    pub fn parse(text: &[u8]) -> Result<Self, ProtocolError> {
        let Ok(&[t, r_u, r_t, w_u, w_t, s, rs, l]) = <&[u8; 8]>::try_from(text) else {
            return Err(ProtocolError::Malformed {
                what: "transaction state: not 8 characters",
            });
        };
        Ok(Self {
            explicit: t == b'T',
            implicit: t == b'I',
            read_unsafe: r_u == b'r',
            read_trx: r_t == b'R',
            write_unsafe: w_u == b'w',
            write_trx: w_t == b'W',
            stmt_unsafe: s == b's',
            result_set: rs == b'S',
            locked_tables: l == b'L',
        })
    }

    pub fn to_text(&self) -> [u8; 8] {
        let pick = |on: bool, c: u8| if on { c } else { b'_' };
        let trx = if self.explicit {
            b'T'
        } else {
            pick(self.implicit, b'I')
        };
        [
            trx,
            pick(self.read_unsafe, b'r'),
            pick(self.read_trx, b'R'),
            pick(self.write_unsafe, b'w'),
            pick(self.write_trx, b'W'),
            pick(self.stmt_unsafe, b's'),
            pick(self.result_set, b'S'),
            pick(self.locked_tables, b'L'),
        ]
    }

    /// A transaction is open (the backend connection must stay with this session).
    pub fn is_active(&self) -> bool {
        self.explicit || self.implicit || self.locked_tables
    }
}

impl SessionChange<'_> {
    /// Writes the entry (type and length-prefixed data).
    pub fn encode(&self, buf: &mut impl BufMut) {
        let mut data = Vec::new();
        let kind = match *self {
            Self::SystemVariable { name, value } => {
                put_lenenc_bytes(&mut data, name);
                put_lenenc_bytes(&mut data, value);
                kind::SYSTEM_VARIABLES
            }
            Self::Schema(schema) => {
                put_lenenc_bytes(&mut data, schema);
                kind::SCHEMA
            }
            Self::StateChanged(changed) => {
                put_lenenc_bytes(&mut data, if changed { b"1" } else { b"0" });
                kind::STATE_CHANGE
            }
            Self::Gtids(gtids) => {
                data.push(0); // encoding specification: plain text
                put_lenenc_bytes(&mut data, gtids);
                kind::GTIDS
            }
            Self::TransactionCharacteristics(text) => {
                put_lenenc_bytes(&mut data, text);
                kind::TRANSACTION_CHARACTERISTICS
            }
            Self::TransactionState(state) => {
                put_lenenc_bytes(&mut data, &state.to_text());
                kind::TRANSACTION_STATE
            }
            Self::Unknown { kind, data: raw } => {
                data.extend_from_slice(raw);
                kind
            }
        };
        buf.put_u8(kind);
        put_lenenc_bytes(buf, &data);
    }
}

/// Iterates over the entries of a session state info block; stops after the first error.
#[derive(Debug, Clone)]
pub struct SessionChanges<'a> {
    entries: Reader<'a>,
    /// Name/value pairs left in the current system variables entry.
    variables: Reader<'a>,
    failed: bool,
}

impl<'a> SessionChanges<'a> {
    pub fn new(session_state: &'a [u8]) -> Self {
        Self {
            entries: Reader::new(session_state),
            variables: Reader::new(&[]),
            failed: false,
        }
    }

    fn next_change(&mut self) -> Result<Option<SessionChange<'a>>, ProtocolError> {
        const WHAT: &str = "session state info";
        if !self.variables.is_empty() {
            let name = self.variables.lenenc_bytes(WHAT)?;
            let value = self.variables.lenenc_bytes(WHAT)?;
            return Ok(Some(SessionChange::SystemVariable { name, value }));
        }
        if self.entries.is_empty() {
            return Ok(None);
        }
        let kind = self.entries.u8(WHAT)?;
        let mut data = Reader::new(self.entries.lenenc_bytes(WHAT)?);
        let change = match kind {
            kind::SYSTEM_VARIABLES => {
                self.variables = data;
                return self.next_change();
            }
            kind::SCHEMA => SessionChange::Schema(data.lenenc_bytes(WHAT)?),
            kind::STATE_CHANGE => SessionChange::StateChanged(data.lenenc_bytes(WHAT)? == b"1"),
            kind::GTIDS => {
                if data.u8(WHAT)? != 0 {
                    return Err(ProtocolError::Unsupported {
                        what: "session state info: GTID encoding other than 0",
                    });
                }
                SessionChange::Gtids(data.lenenc_bytes(WHAT)?)
            }
            kind::TRANSACTION_CHARACTERISTICS => {
                SessionChange::TransactionCharacteristics(data.lenenc_bytes(WHAT)?)
            }
            kind::TRANSACTION_STATE => {
                SessionChange::TransactionState(TransactionState::parse(data.lenenc_bytes(WHAT)?)?)
            }
            kind => SessionChange::Unknown {
                kind,
                data: data.rest(),
            },
        };
        Ok(Some(change))
    }
}

impl<'a> Iterator for SessionChanges<'a> {
    type Item = Result<SessionChange<'a>, ProtocolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.next_change().transpose();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::constants::SessionStateType;
    use mysql_common::io::ParseBuf;
    use mysql_common::packets::session_state_change::SessionStateChange;
    use mysql_common::packets::SessionStateInfo;
    use mysql_common::proto::MyDeserialize;

    fn collect(bytes: &[u8]) -> Vec<SessionChange<'_>> {
        SessionChanges::new(bytes)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn every_kind_round_trips() {
        let state = TransactionState {
            explicit: true,
            write_trx: true,
            ..Default::default()
        };
        let changes = [
            SessionChange::SystemVariable {
                name: b"autocommit",
                value: b"OFF",
            },
            SessionChange::Schema(b"shop"),
            SessionChange::StateChanged(true),
            SessionChange::Gtids(b"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"),
            SessionChange::TransactionCharacteristics(b"START TRANSACTION READ ONLY;"),
            SessionChange::TransactionState(state),
            SessionChange::Unknown {
                kind: 77,
                data: b"?",
            },
        ];
        let mut buf = Vec::new();
        for c in &changes {
            c.encode(&mut buf);
        }
        assert_eq!(collect(&buf), changes);
        assert_eq!(&state.to_text(), b"T___W___");
        assert!(state.is_active());
    }

    #[test]
    fn one_variables_entry_may_hold_several_pairs() {
        // type 0, data = lenenc(name) lenenc(value) twice.
        let buf = b"\x00\x16\x08sql_mode\x00\x09time_zone\x01Z"; // 0x16 = 22 bytes of data
        let names: Vec<_> = collect(buf)
            .into_iter()
            .map(|c| match c {
                SessionChange::SystemVariable { name, .. } => name,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, [&b"sql_mode"[..], b"time_zone"]);
    }

    #[test]
    fn agrees_with_the_reference_on_gtids_and_schema() {
        let mut buf = Vec::new();
        SessionChange::Schema(b"db2").encode(&mut buf);
        let info = SessionStateInfo::deserialize((), &mut ParseBuf(&buf)).unwrap();
        assert_eq!(info.data_type(), SessionStateType::SESSION_TRACK_SCHEMA);
        match info.decode().unwrap() {
            SessionStateChange::Schema(s) => assert_eq!(s.as_bytes(), b"db2"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_stop_the_iteration() {
        let mut it = SessionChanges::new(b"\x01\x09\x04sh");
        assert!(matches!(
            it.next(),
            Some(Err(ProtocolError::Truncated { .. }))
        ));
        assert!(it.next().is_none());
        assert!(TransactionState::parse(b"T__").is_err());
    }
}
