//! The token stream of one statement, with the facts the rules need collected on the way.
//!
//! The rules pull tokens from a [`Cursor`] as far as they need to recognise a statement's
//! shape (`START TRANSACTION READ ONLY`, `SET @@session.autocommit = 0`); the cursor meanwhile
//! notes, for every token it passes, whatever could make a read unsafe for a replica (a locking
//! clause, `INTO`, a lock or sequence function, `LAST_INSERT_ID()` ...), tracks parenthesis
//! depth, and stops at the `;` that ends the statement. So the whole input is lexed once,
//! whichever rule decides, and a rule that needs those facts just drains the statement first.

use super::lexer::{Lexer, Token};
use super::{Dialect, Flags};

/// A keyword upper-cased into a small fixed buffer, so rules can `match` on byte literals
/// without allocating. Words longer than any keyword we look for become empty.
#[derive(Clone, Copy)]
pub(crate) struct Keyword {
    buf: [u8; 20],
    len: usize,
}

impl Keyword {
    pub(crate) fn of(token: Option<Token<'_>>) -> Self {
        let mut kw = Self {
            buf: [0; 20],
            len: 0,
        };
        if let Some(Token::Word(word)) = token {
            if word.len() <= kw.buf.len() {
                kw.buf[..word.len()].copy_from_slice(word);
                kw.buf[..word.len()].make_ascii_uppercase();
                kw.len = word.len();
            }
        }
        kw
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What the cursor noticed in the statement, whatever its kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    /// `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`.
    pub(crate) locking_read: bool,
    /// `INTO` (OUTFILE, DUMPFILE or variables, in a SELECT).
    pub(crate) into: bool,
    /// GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS, IS_USED_LOCK, IS_FREE_LOCK.
    pub(crate) user_lock: bool,
    /// LAST_INSERT_ID(), @@identity, @@last_insert_id.
    pub(crate) last_insert_id: bool,
    /// NEXTVAL/LASTVAL/SETVAL(), NEXT/PREVIOUS VALUE FOR.
    pub(crate) sequence: bool,
    /// FOUND_ROWS(), ROW_COUNT(), CONNECTION_ID(), @@warning_count, @@error_count.
    pub(crate) connection_bound: bool,
    /// `:=`
    pub(crate) assigns_user_var: bool,
    /// `READ ONLY` / `READ WRITE` (for START TRANSACTION).
    pub(crate) read_only: bool,
    pub(crate) read_write: bool,
}

pub(crate) struct Cursor<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(Token<'a>, u32)>,
    /// The last three tokens pulled from the lexer, most recent first.
    window: [Option<Token<'a>>; 3],
    depth: u32,
    last_depth: u32,
    ended: bool,
    seen: Seen,
    reads_user_var: bool,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(sql: &'a [u8], dialect: Dialect) -> Self {
        Self {
            lexer: Lexer::new(sql, dialect),
            peeked: None,
            window: [None; 3],
            depth: 0,
            last_depth: 0,
            ended: false,
            seen: Seen::default(),
            reads_user_var: false,
        }
    }

    /// The next token of the statement, or `None` at its end.
    pub(crate) fn next(&mut self) -> Option<Token<'a>> {
        let (token, depth) = match self.peeked.take() {
            Some(pair) => pair,
            None => self.pull()?,
        };
        self.last_depth = depth;
        Some(token)
    }

    pub(crate) fn peek(&mut self) -> Option<Token<'a>> {
        if self.peeked.is_none() {
            self.peeked = self.pull();
        }
        self.peeked.map(|(token, _)| token)
    }

    pub(crate) fn peek_keyword(&mut self) -> Keyword {
        Keyword::of(self.peek())
    }

    pub(crate) fn next_keyword(&mut self) -> Keyword {
        Keyword::of(self.next())
    }

    /// Consumes the next token if it is the keyword `kw`.
    pub(crate) fn eat_kw(&mut self, kw: &[u8]) -> bool {
        let found = self.peek().is_some_and(|t| t.is_kw(kw));
        if found {
            self.next();
        }
        found
    }

    /// Parenthesis depth of the token last returned by `next` (0 = top level).
    pub(crate) fn token_depth(&self) -> u32 {
        self.last_depth
    }

    /// Consumes the rest of the statement.
    pub(crate) fn skip_statement(&mut self) {
        while self.next().is_some() {}
    }

    /// After the statement: whether another one follows (multi-statement text). Extra `;`s
    /// and trailing comments do not count.
    pub(crate) fn has_more_statements(&mut self) -> bool {
        self.skip_statement();
        loop {
            match self.lexer.next() {
                None => return false,
                Some(Token::Punct(b';')) => continue,
                Some(_) => return true,
            }
        }
    }

    pub(crate) fn seen(&self) -> Seen {
        self.seen
    }

    /// Facts for every statement kind: lexer findings and user variable use.
    pub(crate) fn flags(&self) -> Flags {
        let mut flags = Flags::empty();
        flags.set(Flags::UNTERMINATED, self.lexer.unterminated);
        flags.set(Flags::EXECUTABLE_COMMENT, self.lexer.saw_executable_comment);
        flags.set(Flags::USER_VARIABLE_READ, self.reads_user_var);
        flags
    }

    pub(crate) fn hint(&self) -> Option<super::Route> {
        self.lexer.hint
    }

    pub(crate) fn unterminated(&self) -> bool {
        self.lexer.unterminated
    }

    fn pull(&mut self) -> Option<(Token<'a>, u32)> {
        if self.ended {
            return None;
        }
        let Some(token) = self.lexer.next() else {
            self.ended = true;
            return None;
        };
        let depth = match token {
            Token::Punct(b';') => {
                self.ended = true;
                return None;
            }
            Token::Punct(b'(') => {
                self.depth = self.depth.saturating_add(1);
                self.depth - 1
            }
            Token::Punct(b')') => {
                self.depth = self.depth.saturating_sub(1);
                self.depth
            }
            _ => self.depth,
        };
        self.notice(token);
        self.window = [Some(token), self.window[0], self.window[1]];
        Some((token, depth))
    }

    /// Records what `token`, seen after the tokens in `window`, tells about the statement.
    fn notice(&mut self, token: Token<'a>) {
        let [prev, prev2, _] = self.window;
        let prev_is = |kw: &[u8]| prev.is_some_and(|t| t.is_kw(kw));
        let seen = &mut self.seen;
        match token {
            Token::Word(_) => {
                let kw = Keyword::of(Some(token));
                match kw.as_bytes() {
                    b"UPDATE" | b"SHARE" if prev_is(b"FOR") => seen.locking_read = true,
                    b"SHARE" if prev_is(b"IN") => seen.locking_read = true,
                    b"INTO" => seen.into = true,
                    b"FOR"
                        if prev_is(b"VALUE")
                            && prev2.is_some_and(|t| t.is_kw(b"NEXT") || t.is_kw(b"PREVIOUS")) =>
                    {
                        seen.sequence = true
                    }
                    b"ONLY" if prev_is(b"READ") => seen.read_only = true,
                    b"WRITE" if prev_is(b"READ") => seen.read_write = true,
                    _ => {}
                }
            }
            Token::Punct(b'(') => match Keyword::of(prev).as_bytes() {
                b"GET_LOCK" | b"RELEASE_LOCK" | b"RELEASE_ALL_LOCKS" | b"IS_USED_LOCK"
                | b"IS_FREE_LOCK" => seen.user_lock = true,
                b"LAST_INSERT_ID" => seen.last_insert_id = true,
                b"NEXTVAL" | b"LASTVAL" | b"SETVAL" => seen.sequence = true,
                b"FOUND_ROWS" | b"ROW_COUNT" | b"CONNECTION_ID" => seen.connection_bound = true,
                _ => {}
            },
            Token::SysVar(name) => {
                let var = name.rsplit(|&b| b == b'.').next().unwrap_or(name);
                let is = |n: &[u8]| var.eq_ignore_ascii_case(n);
                if is(b"IDENTITY") || is(b"LAST_INSERT_ID") {
                    seen.last_insert_id = true;
                } else if is(b"WARNING_COUNT") || is(b"ERROR_COUNT") {
                    seen.connection_bound = true;
                }
            }
            Token::UserVar(_) => self.reads_user_var = true,
            Token::Assign => seen.assigns_user_var = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(sql: &str) -> Seen {
        let mut cur = Cursor::new(sql.as_bytes(), Dialect::default());
        cur.skip_statement();
        cur.seen()
    }

    #[test]
    fn notices_locking_and_functions() {
        assert!(seen("select 1 for update").locking_read);
        assert!(seen("select 1 lock in share mode").locking_read);
        assert!(seen("select get_lock ('a', 1)").user_lock);
        assert!(!seen("select get_lock").user_lock);
        assert!(seen("select next value for s").sequence);
        assert!(seen("select @@IDENTITY").last_insert_id);
        assert!(seen("select @@session.last_insert_id").last_insert_id);
        assert!(seen("select found_rows()").connection_bound);
        assert!(seen("select @x := 1").assigns_user_var);
        assert_eq!(seen("select 'for update', `into`"), Seen::default());
    }

    #[test]
    fn stops_at_the_statement_end_and_tracks_depth() {
        let mut cur = Cursor::new(b"(a) b; c", Dialect::default());
        assert!(cur.next().is_some_and(|t| t.is_punct(b'(')));
        assert_eq!(cur.token_depth(), 0);
        assert!(cur.next().is_some_and(|t| t.is_kw(b"A")));
        assert_eq!(cur.token_depth(), 1);
        cur.next();
        assert_eq!(cur.token_depth(), 0);
        assert!(cur.peek().is_some_and(|t| t.is_kw(b"B")));
        assert!(cur.eat_kw(b"B"));
        assert_eq!(cur.next(), None);
        assert!(cur.has_more_statements());
        let mut cur = Cursor::new(b"a;;  -- done", Dialect::default());
        assert!(!cur.has_more_statements());
    }
}
