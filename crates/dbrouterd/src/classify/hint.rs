//! Route hints: an application overrides the classifier with `route=primary` or
//! `route=replica` inside a block comment anywhere in the statement, for example
//! `SELECT /* route=primary */ balance FROM accounts` right after a write it must see.
//!
//! Only block comments count (`-- ` and `#` comments are often stripped by drivers and ORMs,
//! and a hint should not silently vanish). Case and spaces around `=` do not matter; the
//! first hint wins. Whether a replica hint is obeyed is decided in [`super`]: it never sends
//! a write or a session-changing statement to a replica.

use super::Route;

/// The route named by the first `route=...` in a comment body.
pub(crate) fn find(comment: &[u8]) -> Option<Route> {
    const KEY: &[u8] = b"route";
    let mut from = 0;
    while let Some(offset) = find_ignore_case(&comment[from..], KEY) {
        let start = from + offset;
        from = start + KEY.len();
        let preceded_by_word = start
            .checked_sub(1)
            .and_then(|i| comment.get(i))
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_');
        if preceded_by_word {
            continue;
        }
        let rest = skip_spaces(&comment[from..]);
        let Some(value) = rest.strip_prefix(b"=") else {
            continue;
        };
        let value = skip_spaces(value);
        let end = value
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .unwrap_or(value.len());
        let word = &value[..end];
        if word.eq_ignore_ascii_case(b"primary") {
            return Some(Route::Primary);
        }
        if word.eq_ignore_ascii_case(b"replica") {
            return Some(Route::Replica);
        }
    }
    None
}

fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_hints_in_any_case_and_spacing() {
        assert_eq!(find(b" route=primary "), Some(Route::Primary));
        assert_eq!(find(b"ROUTE = Replica"), Some(Route::Replica));
        assert_eq!(find(b"app=shop, route=replica, id=7"), Some(Route::Replica));
        assert_eq!(find(b"+ NO_INDEX(t) route=primary"), Some(Route::Primary));
    }

    #[test]
    fn ignores_lookalikes() {
        assert_eq!(find(b"reroute=primary"), None);
        assert_eq!(find(b"route=primaryish"), None);
        assert_eq!(find(b"route primary"), None);
        assert_eq!(find(b"route=writer"), None);
        assert_eq!(find(b""), None);
        assert_eq!(find(b"route="), None);
    }

    #[test]
    fn the_first_valid_hint_wins() {
        assert_eq!(
            find(b"route=nowhere route=replica route=primary"),
            Some(Route::Replica)
        );
    }
}
