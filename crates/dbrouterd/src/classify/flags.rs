//! Facts about a classified statement beyond its route and kind, for the router (what to
//! track, when to pin a session to the primary) and for `route.explain`.

use crate::protocol::flag_set;

flag_set! {
    /// Extra facts about a statement. `Debug` lists the names of those set.
    pub struct Flags(u32) {
        /// The text holds more than one statement; only the first was classified.
        const MULTI_STATEMENT = 1;
        /// A `route=` hint decided or confirmed the route.
        const HINTED = 1 << 1;
        /// A `route=replica` hint was ignored because the statement writes or changes state.
        const HINT_REFUSED = 1 << 2;
        /// `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`.
        const LOCKING_READ = 1 << 3;
        /// `SELECT ... INTO OUTFILE | DUMPFILE | @var`.
        const SELECT_INTO = 1 << 4;
        /// User-level lock functions: the lock lives on that backend connection, so the
        /// session must stay on it until RELEASE_LOCK.
        const USER_LOCK = 1 << 5;
        /// Reads LAST_INSERT_ID() / @@identity, which only the connection that inserted knows.
        const LAST_INSERT_ID = 1 << 6;
        /// Uses a sequence (NEXTVAL, NEXT VALUE FOR, LASTVAL, SETVAL).
        const SEQUENCE = 1 << 7;
        /// The result depends on the backend connection itself: FOUND_ROWS(), ROW_COUNT(),
        /// CONNECTION_ID(), SHOW WARNINGS ... (run it where the previous statement ran).
        const CONNECTION_BOUND = 1 << 8;
        /// Assigns a user variable (`SET @x`, `:=`, `INTO @x`).
        const USER_VARIABLE_WRITE = 1 << 9;
        /// Mentions a user variable (`@x`): replicas need the session's user variables.
        const USER_VARIABLE_READ = 1 << 10;
        /// Creates or drops a temporary table (which exists on that connection only).
        const TEMPORARY_TABLE = 1 << 11;
        /// Changes session state the router must replay on every backend connection it uses.
        const SESSION_STATE = 1 << 12;
        /// Contains `/*! ... */` executable comments (treated as code).
        const EXECUTABLE_COMMENT = 1 << 13;
        /// A literal, identifier or comment is not closed: the statement is malformed.
        const UNTERMINATED = 1 << 14;
        /// `COMMIT/ROLLBACK AND CHAIN`: a new transaction starts at once.
        const TX_CHAIN = 1 << 15;
        /// `COMMIT/ROLLBACK RELEASE`: the server closes the connection afterwards.
        const RELEASE_CONNECTION = 1 << 16;
        /// MariaDB `SET STATEMENT var=... FOR <statement>`: classified by the inner statement.
        const SET_STATEMENT = 1 << 17;
        /// Sets a global (or persisted) variable.
        const GLOBAL_VARIABLE = 1 << 18;
    }
}
