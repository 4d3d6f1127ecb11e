//! A single-pass SQL tokenizer that knows just enough MySQL/MariaDB lexical rules to never
//! mistake text inside a comment or a literal for code.
//!
//! It skips whitespace and comments (`/* */`, `#` to end of line, `-- ` to end of line: the
//! dashes must be followed by whitespace or a control character, otherwise `1--1` is
//! arithmetic), reads string literals (`'..'`, `".."` unless ANSI_QUOTES) with backslash escapes
//! (unless NO_BACKSLASH_ESCAPES) and doubled quotes, and quoted identifiers (`` `..` ``, and
//! `".."` under ANSI_QUOTES) with doubled quotes only. Executable comments, `/*!` and MariaDB's
//! `/*M!`, optionally followed by a version number, are code: their opening and closing marks
//! are dropped and their contents tokenized, whatever the version (routing such a statement to
//! the primary when its hidden part would not run is the safe mistake). Ordinary block comments
//! (optimizer hints `/*+ */` included) are searched for a route hint.
//!
//! Tokens borrow from the input; nothing allocates.

use super::hint;
use super::{Dialect, Route};

/// One lexical token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// A keyword or unquoted identifier (may contain bytes >= 0x80).
    Word(&'a [u8]),
    /// A quoted identifier's contents.
    QuotedIdent(&'a [u8]),
    /// A string literal's contents, escapes left as they are.
    Str(&'a [u8]),
    Number(&'a [u8]),
    /// `@name` or `@'name'`: the name.
    UserVar(&'a [u8]),
    /// `@@[scope.]name`: the text after `@@`.
    SysVar(&'a [u8]),
    /// `:=`
    Assign,
    /// Any other single byte: `(`, `)`, `,`, `;`, `=`, `.` ...
    Punct(u8),
}

impl Token<'_> {
    /// Whether this is the keyword `kw` (given in upper case), in any case.
    pub(crate) fn is_kw(&self, kw: &[u8]) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    pub(crate) fn is_punct(&self, c: u8) -> bool {
        *self == Token::Punct(c)
    }
}

pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    dialect: Dialect,
    in_executable_comment: bool,
    /// The first route hint found in a block comment.
    pub(crate) hint: Option<Route>,
    /// A literal, quoted identifier or comment ran to the end of the input.
    pub(crate) unterminated: bool,
    pub(crate) saw_executable_comment: bool,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C)
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a [u8], dialect: Dialect) -> Self {
        Self {
            src,
            pos: 0,
            dialect,
            in_executable_comment: false,
            hint: None,
            unterminated: false,
            saw_executable_comment: false,
        }
    }

    fn at(&self, offset: usize) -> Option<u8> {
        self.src.get(self.pos + offset).copied()
    }

    /// Advances while `pred` holds; returns the bytes passed over.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.at(0).is_some_and(&pred) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    fn skip_line(&mut self) {
        self.take_while(|b| b != b'\n');
    }

    /// Reads a quoted run starting at the opening `quote`; returns its contents, or `None`
    /// (and marks the input unterminated) if the closing quote never comes.
    fn quoted(&mut self, quote: u8, backslash_escapes: bool) -> Option<&'a [u8]> {
        let start = self.pos + 1;
        let mut i = start;
        while let Some(&b) = self.src.get(i) {
            let escaped = b == b'\\' && backslash_escapes;
            let doubled = b == quote && self.src.get(i + 1) == Some(&quote);
            if escaped || doubled {
                i += 2;
            } else if b == quote {
                self.pos = i + 1;
                return Some(&self.src[start..i]);
            } else {
                i += 1;
            }
        }
        self.unterminated = true;
        self.pos = self.src.len();
        None
    }

    /// Handles `/*` at the current position: an executable comment's opening, or a whole
    /// ordinary comment. Returns false if the comment never ends.
    fn block_comment(&mut self) -> bool {
        let executable = match (self.at(2), self.at(3)) {
            (Some(b'!'), _) => Some(3),
            (Some(b'M'), Some(b'!')) => Some(4),
            _ => None,
        };
        if let Some(mark) = executable {
            self.pos += mark;
            self.take_while(|b| b.is_ascii_digit());
            self.in_executable_comment = true;
            self.saw_executable_comment = true;
            return true;
        }
        let body_start = self.pos + 2;
        let Some(len) = self.src[body_start..].windows(2).position(|w| w == b"*/") else {
            self.unterminated = true;
            self.pos = self.src.len();
            return false;
        };
        if self.hint.is_none() {
            self.hint = hint::find(&self.src[body_start..body_start + len]);
        }
        self.pos = body_start + len + 2;
        true
    }

    /// `@name`, `@'name'`, `@@scope.name`.
    fn variable(&mut self) -> Option<Token<'a>> {
        if self.at(1) == Some(b'@') {
            self.pos += 2;
            let name = self.take_while(|b| is_word_byte(b) || b == b'.');
            return Some(Token::SysVar(name));
        }
        self.pos += 1;
        match self.at(0) {
            Some(q @ (b'\'' | b'"' | b'`')) => {
                let escapes = q != b'`' && self.dialect.backslash_escapes;
                self.quoted(q, escapes).map(Token::UserVar)
            }
            _ => Some(Token::UserVar(
                self.take_while(|b| is_word_byte(b) || b == b'.'),
            )),
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            self.take_while(is_space);
            let c = self.at(0)?;
            let next = self.at(1);
            match c {
                b'#' => self.skip_line(),
                b'-' if next == Some(b'-') && !matches!(self.at(2), Some(b) if b > b' ') => {
                    self.skip_line()
                }
                b'/' if next == Some(b'*') => {
                    if !self.block_comment() {
                        return None;
                    }
                }
                b'*' if next == Some(b'/') && self.in_executable_comment => {
                    self.pos += 2;
                    self.in_executable_comment = false;
                }
                b'\'' => {
                    return self
                        .quoted(c, self.dialect.backslash_escapes)
                        .map(Token::Str)
                }
                b'"' if self.dialect.ansi_quotes => {
                    return self.quoted(c, false).map(Token::QuotedIdent)
                }
                b'"' => {
                    return self
                        .quoted(c, self.dialect.backslash_escapes)
                        .map(Token::Str)
                }
                b'`' => return self.quoted(c, false).map(Token::QuotedIdent),
                b'@' => return self.variable(),
                b':' if next == Some(b'=') => {
                    self.pos += 2;
                    return Some(Token::Assign);
                }
                b'0'..=b'9' => {
                    return Some(Token::Number(
                        self.take_while(|b| is_word_byte(b) || b == b'.'),
                    ))
                }
                _ if is_word_byte(c) => return Some(Token::Word(self.take_while(is_word_byte))),
                _ => {
                    self.pos += 1;
                    return Some(Token::Punct(c));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Token::*;

    fn lex(sql: &str) -> Vec<Token<'_>> {
        Lexer::new(sql.as_bytes(), Dialect::default()).collect()
    }

    #[test]
    fn words_literals_and_punctuation() {
        assert_eq!(
            lex("SELECT a,`b``c`, 'it''s', \"x\\\"y\" FROM t1;"),
            vec![
                Word(b"SELECT"),
                Word(b"a"),
                Punct(b','),
                QuotedIdent(b"b``c"),
                Punct(b','),
                Str(b"it''s"),
                Punct(b','),
                Str(b"x\\\"y"),
                Word(b"FROM"),
                Word(b"t1"),
                Punct(b';'),
            ]
        );
    }

    #[test]
    fn comments_are_skipped_but_executable_comments_are_code() {
        assert_eq!(
            lex("/* FOR UPDATE */ 1 # FOR UPDATE\n-- FOR UPDATE"),
            vec![Number(b"1")]
        );
        assert_eq!(
            lex("1--1"),
            vec![Number(b"1"), Punct(b'-'), Punct(b'-'), Number(b"1")]
        );
        assert_eq!(
            lex("/*!40101 SET NAMES utf8 */"),
            vec![Word(b"SET"), Word(b"NAMES"), Word(b"utf8")]
        );
        assert_eq!(
            lex("SELECT /*M!100400 1 */ 2"),
            vec![Word(b"SELECT"), Number(b"1"), Number(b"2")]
        );
        // Outside an executable comment `*/` is just two operators.
        assert_eq!(
            lex("2 */ 3"),
            vec![Number(b"2"), Punct(b'*'), Punct(b'/'), Number(b"3")]
        );
    }

    #[test]
    fn variables_and_assignment() {
        assert_eq!(
            lex("SET @a := @@session.autocommit, @'q r'=1"),
            vec![
                Word(b"SET"),
                UserVar(b"a"),
                Assign,
                SysVar(b"session.autocommit"),
                Punct(b','),
                UserVar(b"q r"),
                Punct(b'='),
                Number(b"1"),
            ]
        );
    }

    #[test]
    fn dialect_changes_escapes_and_double_quotes() {
        let sql = br#"SELECT 'a\' FOR UPDATE -- '"#;
        let default: Vec<_> = Lexer::new(sql, Dialect::default()).collect();
        assert_eq!(default, vec![Word(b"SELECT"), Str(br"a\' FOR UPDATE -- ")]);
        let no_escapes = Dialect {
            backslash_escapes: false,
            ..Dialect::default()
        };
        let tokens: Vec<_> = Lexer::new(sql, no_escapes).collect();
        assert_eq!(tokens[..3], [Word(b"SELECT"), Str(br"a\"), Word(b"FOR")]);
        let ansi = Dialect {
            ansi_quotes: true,
            ..Dialect::default()
        };
        let tokens: Vec<_> = Lexer::new(br#""t" x"#, ansi).collect();
        assert_eq!(tokens, vec![QuotedIdent(b"t"), Word(b"x")]);
    }

    #[test]
    fn unterminated_input_is_flagged() {
        for sql in ["SELECT 'abc", "SELECT /* x", "SELECT `a", "SELECT 'a\\'"] {
            let mut lexer = Lexer::new(sql.as_bytes(), Dialect::default());
            while lexer.next().is_some() {}
            assert!(lexer.unterminated, "{sql}");
        }
    }

    #[test]
    fn hints_come_from_block_comments_only() {
        let mut lexer = Lexer::new(b"SELECT 1 -- route=primary", Dialect::default());
        while lexer.next().is_some() {}
        assert_eq!(lexer.hint, None);
        let mut lexer = Lexer::new(b"SELECT /* route=primary */ 1", Dialect::default());
        while lexer.next().is_some() {}
        assert_eq!(lexer.hint, Some(Route::Primary));
    }
}
