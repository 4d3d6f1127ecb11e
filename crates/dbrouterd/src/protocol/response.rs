//! Finding the end of a server's response in the raw byte stream, so that the session can
//! relay it to the client byte for byte, without reassembling or re-encoding anything.
//!
//! The backend connection was opened with the client's wire-format capabilities, and the
//! command went out with the client's sequence ids, so every chunk the server sends is exactly
//! what the client expects. [`ResponseScanner`] only needs to know where the response ends and
//! what its final OK/EOF/ERR said (status flags for transaction tracking, session tracking data
//! for schema and GTIDs). It looks at each chunk's header and first byte; only packets that may
//! end the response (OK, EOF, ERR, all small) must be whole in the buffer before it decides.
//! Row data, including rows of more than 16 MiB, streams through in pieces.
//!
//! A response, per command:
//! - [`ResponseKind::Query`] (COM_QUERY, COM_STMT_EXECUTE): OK | ERR | LOCAL INFILE request |
//!   column count, column definitions, EOF (unless `DEPRECATE_EOF`), rows, and EOF or an OK
//!   with a 0xFE header; repeated while `MORE_RESULTS_EXISTS` is set.
//! - [`ResponseKind::Cursor`] (COM_STMT_EXECUTE asking for a cursor): as `Query`, except
//!   that a result set for which the server opened the cursor stops after its column
//!   definitions, at the EOF (without `DEPRECATE_EOF`) or OK with a 0xFE header that carries
//!   `CURSOR_EXISTS`: its rows come later, with COM_STMT_FETCH.
//! - [`ResponseKind::FieldList`] (COM_FIELD_LIST): column definitions up to EOF, or ERR.
//! - [`ResponseKind::Fetch`] (COM_STMT_FETCH): rows up to EOF, or ERR.
//! - [`ResponseKind::Single`] (PING, RESET_CONNECTION, STATISTICS, SET_OPTION ...): one packet.

use super::packet::{HEADER_LEN, MAX_CHUNK_LEN};
use super::session_track::SessionChange;
use super::{Capabilities, ErrPacket, OkPacket, ProtocolError, StatusFlags};

/// The shape of the response to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    Query,
    Cursor,
    FieldList,
    Fetch,
    Single,
}

/// What a finished response said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Status flags of the last OK or EOF (unchanged from before when the response was an ERR).
    pub status: Option<StatusFlags>,
    /// The ERR that ended the response, if one did.
    pub error: Option<ErrPacket>,
    /// A schema change reported by session tracking.
    pub schema: Option<Vec<u8>>,
    /// MariaDB's `last_gtid` (tracked system variable) or MySQL's GTID set, if reported.
    pub gtid: Option<String>,
    /// Session tracking said that some session state changed.
    pub state_changed: bool,
    pub result_sets: u32,
}

/// What [`ResponseScanner::scan`] found in the bytes it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// `consumed` bytes belong to the response (relay them); more follow.
    More { consumed: usize },
    /// The response ends after `consumed` bytes.
    Done { consumed: usize },
    /// After `consumed` bytes the server asks the client for a LOCAL INFILE file: relay the
    /// client's packets (up to an empty one) to the server, then scan again. The client's first
    /// data packet carries sequence id `next_seq`.
    LocalInfile { consumed: usize, next_seq: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The first packet of a (next) result.
    Start,
    /// Column definitions still to come.
    Columns(u64),
    /// The EOF after column definitions (without `DEPRECATE_EOF`).
    ColumnsEof,
    /// Rows, up to the EOF/OK that ends them.
    Rows,
    Done,
}

/// Incremental end-of-response detector for one command.
#[derive(Debug, Clone)]
pub struct ResponseScanner {
    kind: ResponseKind,
    caps: Capabilities,
    state: State,
    /// Bytes of the current chunk still to pass through unexamined.
    skip: usize,
    /// The chunk being skipped is a full 16 MiB one: the next chunk continues the same packet.
    continued: bool,
    last_seq: u8,
    summary: Summary,
}

impl ResponseScanner {
    pub fn new(kind: ResponseKind, caps: Capabilities) -> Self {
        let state = match kind {
            ResponseKind::FieldList => State::Columns(u64::MAX),
            ResponseKind::Fetch => State::Rows,
            ResponseKind::Query | ResponseKind::Cursor | ResponseKind::Single => State::Start,
        };
        Self {
            kind,
            caps,
            state,
            skip: 0,
            continued: false,
            last_seq: 0,
            summary: Summary::default(),
        }
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn into_summary(self) -> Summary {
        self.summary
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Examines `buf` (bytes read from the server, not yet relayed) and says how many of them
    /// belong to the response so far, and whether it ended.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Progress, ProtocolError> {
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                self.skip -= n;
                pos += n;
                if self.skip > 0 {
                    return Ok(Progress::More { consumed: pos });
                }
            }
            if self.state == State::Done {
                return Ok(Progress::Done { consumed: pos });
            }
            let Some(header) = buf.get(pos..pos + HEADER_LEN) else {
                return Ok(Progress::More { consumed: pos });
            };
            let len =
                usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
            self.last_seq = header[3];
            let body_start = pos + HEADER_LEN;
            if self.continued {
                // The rest of a packet over 16 MiB: never a terminator.
                self.continued = len == MAX_CHUNK_LEN;
                self.skip = len;
                pos = body_start;
                continue;
            }
            let first = buf.get(body_start).copied();
            if len > 0 && first.is_none() {
                return Ok(Progress::More { consumed: pos });
            }
            if self.needs_whole(len, first) {
                let Some(payload) = buf.get(body_start..body_start + len) else {
                    return Ok(Progress::More { consumed: pos });
                };
                pos = body_start + len;
                if let Some(next_seq) = self.examine(payload)? {
                    return Ok(Progress::LocalInfile {
                        consumed: pos,
                        next_seq,
                    });
                }
            } else {
                // A row or column definition: pass it through, possibly in pieces.
                self.pass(len)?;
                self.continued = len == MAX_CHUNK_LEN;
                self.skip = len;
                pos = body_start;
            }
        }
    }

    /// Whether the packet must be examined whole (it may end the response or decide what
    /// follows) rather than streamed.
    fn needs_whole(&self, len: usize, first: Option<u8>) -> bool {
        match self.state {
            State::Start | State::ColumnsEof | State::Done => true,
            State::Columns(_) => {
                self.kind == ResponseKind::FieldList && is_terminator(self.caps, len, first)
            }
            State::Rows => is_terminator(self.caps, len, first),
        }
    }

    /// A streamed packet (column definition or row).
    fn pass(&mut self, _len: usize) -> Result<(), ProtocolError> {
        if let State::Columns(left) = self.state {
            if self.kind != ResponseKind::FieldList {
                let left = left.saturating_sub(1);
                self.state = if left > 0 {
                    State::Columns(left)
                } else if self.caps.contains(Capabilities::DEPRECATE_EOF) {
                    State::Rows
                } else {
                    State::ColumnsEof
                };
            }
        }
        Ok(())
    }

    /// A whole packet that may end the response; returns the next sequence id when the server
    /// asked for a LOCAL INFILE.
    fn examine(&mut self, payload: &[u8]) -> Result<Option<u8>, ProtocolError> {
        let first = payload.first().copied();
        if first == Some(0xFF) {
            if ErrPacket::is_progress_report(payload) {
                return Ok(None);
            }
            self.summary.error = Some(ErrPacket::parse(payload)?);
            self.state = State::Done;
            return Ok(None);
        }
        match self.state {
            State::Start if self.kind == ResponseKind::Single => {
                if first == Some(0x00) && OkPacket::is_ok(payload) {
                    self.ok(payload)?;
                } else if first == Some(0xFE) && payload.len() < 9 {
                    self.eof(payload);
                }
                self.state = State::Done;
            }
            State::Start => match first {
                Some(0x00) => {
                    self.ok(payload)?;
                    self.after_result();
                }
                Some(0xFB) => return Ok(Some(self.last_seq.wrapping_add(1))),
                _ => {
                    let columns = match super::ok::ResponseStart::parse(payload)? {
                        super::ok::ResponseStart::ResultSet { columns } => columns,
                        _ => {
                            return Err(ProtocolError::Malformed {
                                what: "response: first packet",
                            })
                        }
                    };
                    self.state = State::Columns(columns);
                }
            },
            State::ColumnsEof => {
                if first == Some(0xFE) && payload.len() < 9 {
                    self.state = State::Rows;
                    if self.kind == ResponseKind::Cursor {
                        self.eof(payload);
                        if self.cursor_opened() {
                            self.after_result();
                        }
                    }
                } else {
                    return Err(ProtocolError::Malformed {
                        what: "response: EOF after column definitions",
                    });
                }
            }
            State::Columns(_) | State::Rows => {
                // A terminator: EOF, or OK with a 0xFE header under DEPRECATE_EOF.
                if self.caps.contains(Capabilities::DEPRECATE_EOF) && payload.len() >= 7 {
                    self.ok(payload)?;
                } else {
                    self.eof(payload);
                }
                if matches!(self.kind, ResponseKind::Query | ResponseKind::Cursor) {
                    self.after_result();
                } else {
                    self.state = State::Done;
                }
            }
            State::Done => {}
        }
        Ok(None)
    }

    /// The last EOF/OK said that the server opened a cursor for the result set.
    fn cursor_opened(&self) -> bool {
        self.summary
            .status
            .is_some_and(|s| s.contains(StatusFlags::CURSOR_EXISTS))
    }

    fn after_result(&mut self) {
        self.summary.result_sets += 1;
        let more = self
            .summary
            .status
            .is_some_and(|s| s.contains(StatusFlags::MORE_RESULTS_EXISTS));
        self.state = if more { State::Start } else { State::Done };
    }

    fn eof(&mut self, payload: &[u8]) {
        if let Ok(eof) = super::EofPacket::parse(payload) {
            self.summary.status = Some(eof.status);
        }
    }

    fn ok(&mut self, payload: &[u8]) -> Result<(), ProtocolError> {
        let ok = OkPacket::parse(payload, self.caps)?;
        self.summary.status = Some(ok.status);
        for change in ok.session_changes() {
            match change {
                Ok(SessionChange::Schema(s)) => self.summary.schema = Some(s.to_vec()),
                Ok(SessionChange::Gtids(g)) => {
                    self.summary.gtid = Some(String::from_utf8_lossy(g).into_owned())
                }
                Ok(SessionChange::SystemVariable { name, value }) if name == b"last_gtid" => {
                    if !value.is_empty() {
                        self.summary.gtid = Some(String::from_utf8_lossy(value).into_owned());
                    }
                }
                Ok(SessionChange::StateChanged(changed)) => self.summary.state_changed |= changed,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }
}

/// Whether a packet in the rows (or field list) position ends it: ERR, EOF (0xFE, under 9
/// bytes) or, with `DEPRECATE_EOF`, an OK with a 0xFE header (shorter than a full chunk; a row
/// can start with 0xFE only as an 8-byte length prefix, which makes it at least 16 MiB long).
fn is_terminator(caps: Capabilities, len: usize, first: Option<u8>) -> bool {
    match first {
        Some(0xFF) => true,
        Some(0xFE) if caps.contains(Capabilities::DEPRECATE_EOF) => len < MAX_CHUNK_LEN,
        Some(0xFE) => len < 9,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
