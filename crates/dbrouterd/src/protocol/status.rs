//! Server status flags (`SERVER_STATUS_*`), carried in the handshake, OK and EOF packets.
//!
//! The router reads them after every command: `IN_TRANS` says whether the backend connection
//! may go back to the pool, `AUTOCOMMIT` mirrors the session's autocommit mode,
//! `MORE_RESULTS_EXISTS` says another result set follows, `SESSION_STATE_CHANGED` that the OK
//! packet carries session tracking data, and `NO_BACKSLASH_ESCAPES` tells the classifier how
//! string literals are escaped.

use super::flag_set;

flag_set! {
    /// `SERVER_STATUS_*` flags (16 bits).
    pub struct StatusFlags(u16) {
        /// A transaction is active (explicit, or implicit with autocommit off).
        const IN_TRANS = 1;
        const AUTOCOMMIT = 1 << 1;
        const MORE_RESULTS_EXISTS = 1 << 3;
        const NO_GOOD_INDEX_USED = 1 << 4;
        const NO_INDEX_USED = 1 << 5;
        const CURSOR_EXISTS = 1 << 6;
        const LAST_ROW_SENT = 1 << 7;
        const DB_DROPPED = 1 << 8;
        const NO_BACKSLASH_ESCAPES = 1 << 9;
        const METADATA_CHANGED = 1 << 10;
        const QUERY_WAS_SLOW = 1 << 11;
        const PS_OUT_PARAMS = 1 << 12;
        /// The active transaction is READ ONLY.
        const IN_TRANS_READONLY = 1 << 13;
        /// The OK packet carries session state changes (needs `CLIENT_SESSION_TRACK`).
        const SESSION_STATE_CHANGED = 1 << 14;
        /// MariaDB: `sql_mode` contains ANSI_QUOTES.
        const ANSI_QUOTES = 1 << 15;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::constants::StatusFlags as Reference;

    #[test]
    fn bit_values_match_the_reference_codec() {
        let pairs = [
            (StatusFlags::IN_TRANS, Reference::SERVER_STATUS_IN_TRANS),
            (StatusFlags::AUTOCOMMIT, Reference::SERVER_STATUS_AUTOCOMMIT),
            (
                StatusFlags::MORE_RESULTS_EXISTS,
                Reference::SERVER_MORE_RESULTS_EXISTS,
            ),
            (
                StatusFlags::NO_BACKSLASH_ESCAPES,
                Reference::SERVER_STATUS_NO_BACKSLASH_ESCAPES,
            ),
            (
                StatusFlags::IN_TRANS_READONLY,
                Reference::SERVER_STATUS_IN_TRANS_READONLY,
            ),
            (
                StatusFlags::SESSION_STATE_CHANGED,
                Reference::SERVER_SESSION_STATE_CHANGED,
            ),
            (
                StatusFlags::ANSI_QUOTES,
                Reference::SERVER_STATUS_ANSI_QUOTES,
            ),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours.bits(), theirs.bits(), "{ours:?}");
        }
    }
}
