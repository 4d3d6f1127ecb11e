//! The one error type of the protocol layer.
//!
//! Each variant names the packet or field that was wrong so that a log line (or the ERR packet
//! built from it with [`ErrPacket::from_protocol_error`](super::ErrPacket::from_protocol_error))
//! tells an operator what the peer sent, not just that parsing failed.

use thiserror::Error;

/// Why a packet could not be framed or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The payload ended before a field that must be there.
    #[error("truncated {what}")]
    Truncated { what: &'static str },

    /// A length-encoded integer started with a byte that is not a valid prefix (0xFB is the
    /// NULL marker of row data, 0xFF the ERR header).
    #[error("bad length-encoded integer in {what}: prefix byte {prefix:#04x}")]
    BadLenenc { what: &'static str, prefix: u8 },

    /// A packet arrived out of order.
    #[error("packet sequence id {got}, expected {expected}")]
    WrongSequence { expected: u8, got: u8 },

    /// A (reassembled) packet is larger than the configured limit.
    #[error("packet of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },

    /// The first byte of a command packet is not a command we know.
    #[error("unknown command byte {0:#04x}")]
    UnknownCommand(u8),

    /// A field has a value the protocol does not allow.
    #[error("malformed {what}")]
    Malformed { what: &'static str },

    /// A valid but unsupported protocol feature (pre-4.1 handshakes, for instance).
    #[error("unsupported {what}")]
    Unsupported { what: &'static str },
}
