//! Property tests: the classifier never panics, never sends a write to a replica, and is not
//! fooled by locking clauses hidden in comments or literals.

use proptest::prelude::*;

use super::*;

/// Statement-like text: keywords, identifiers and every lexically interesting character.
fn sql_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("SELECT ".to_string()),
        Just("INSERT ".to_string()),
        Just("SET ".to_string()),
        Just("FOR ".to_string()),
        Just("UPDATE ".to_string()),
        Just("WITH ".to_string()),
        Just("START TRANSACTION ".to_string()),
        Just("READ ONLY ".to_string()),
        Just("autocommit".to_string()),
        Just("@@session.".to_string()),
        Just("route=replica ".to_string()),
        "[a-z_]{1,6} ".prop_map(|s| s),
        "[ -~]{1,3}".prop_map(|s| s),
        prop_oneof![
            Just("'"),
            Just("\""),
            Just("`"),
            Just("/*"),
            Just("*/"),
            Just("/*!"),
            Just("-- "),
            Just("#"),
            Just("\n"),
            Just("\\"),
            Just(";"),
            Just("("),
            Just(")"),
            Just(","),
            Just("@"),
            Just(":="),
            Just("="),
        ]
        .prop_map(str::to_string),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Random text that cannot spell a route hint (no `r`).
fn no_route_word(body: &str) -> String {
    body.chars().filter(|c| !matches!(c, 'r' | 'R')).collect()
}

/// Random text for a comment body: cannot close the comment early (no `*`) or turn it into
/// an executable comment (no `!`).
fn comment_body(body: &str) -> String {
    no_route_word(body)
        .chars()
        .filter(|c| !matches!(c, '*' | '!'))
        .collect()
}

/// A comment or literal that contains FOR UPDATE (and arbitrary other text), well formed.
fn hiding_place() -> impl Strategy<Value = String> {
    ("[ -~]{0,12}", "[ -~]{0,12}", 0..7usize).prop_map(|(a, b, how)| {
        let (a, b) = (no_route_word(&a), no_route_word(&b));
        match how {
            0 => format!("/*{} FOR UPDATE {}*/", comment_body(&a), comment_body(&b)),
            1 => format!("'{} FOR UPDATE {}'", quote(&a, '\''), quote(&b, '\'')),
            2 => format!("\"{} FOR UPDATE {}\"", quote(&a, '"'), quote(&b, '"')),
            3 => format!(
                "`{} FOR UPDATE {}`",
                a.replace('`', "``"),
                b.replace('`', "``")
            ),
            4 => format!("-- {} FOR UPDATE {}\n", a, b),
            5 => format!("# {} FOR UPDATE {}\n", a, b),
            _ => format!("/*+ {} FOR UPDATE {}*/", comment_body(&a), comment_body(&b)),
        }
    })
}

/// Makes `text` safe inside a `quote`-quoted literal: doubled quotes, no backslashes.
fn quote(text: &str, quote: char) -> String {
    text.replace('\\', "")
        .replace(quote, &format!("{quote}{quote}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let c = classify(&bytes);
        prop_assert!(!c.rule.is_empty());
        let _ = classify_with(&bytes, Dialect { backslash_escapes: false, ansi_quotes: true });
    }

    #[test]
    fn statement_soup_never_panics_nor_sends_writes_to_replicas(sql in sql_soup()) {
        for dialect in [Dialect::default(), Dialect { backslash_escapes: false, ansi_quotes: true }] {
            let c = classify_with(sql.as_bytes(), dialect);
            if c.route == Route::Replica {
                let read = matches!(
                    c.kind,
                    StatementKind::Select | StatementKind::Show | StatementKind::Describe
                        | StatementKind::Explain | StatementKind::Help | StatementKind::BeginReadOnly
                );
                prop_assert!(read || c.flags.contains(Flags::HINTED), "{:?} -> {:?}", sql, c);
                prop_assert!(!c.flags.intersects(Flags::MULTI_STATEMENT | Flags::UNTERMINATED));
            }
        }
    }

    #[test]
    fn hidden_for_update_never_changes_a_plain_select(
        // Prefixed so that no identifier is a keyword.
        columns in proptest::collection::vec("c_[a-z0-9_]{0,6}", 1..4),
        table in "t_[a-z0-9_]{0,8}",
        with_where in any::<bool>(),
        hidden in hiding_place(),
        at in any::<prop::sample::Index>(),
    ) {
        let mut tokens = vec!["SELECT".to_string(), columns.join(", "), "FROM".into(), table];
        if with_where {
            tokens.extend(["WHERE".into(), "id".into(), "=".into(), "1".into()]);
        }
        let plain = tokens.join(" ");
        let before = classify(plain.as_bytes());
        prop_assert_eq!((before.route, before.rule), (Route::Replica, "select"));

        let position = 1 + at.index(tokens.len());
        tokens.insert(position, hidden);
        let sql = tokens.join(" ");
        let after = classify(sql.as_bytes());
        prop_assert_eq!(after.route, Route::Replica, "{:?} -> {:?}", sql, after);
        prop_assert_eq!(after.kind, StatementKind::Select);
    }
}
