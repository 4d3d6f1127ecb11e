//! Collecting every structural error of a document, not only the first.
//!
//! serde stops at the first error. We record it with its key path, remove the node it is about
//! (the bad value, or the unknown key) from the tree and deserialize again, until the tree
//! deserializes or nothing is left to remove. A "missing field" that our own removal caused is
//! not reported again: it is at an ancestor of an error already reported.

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::path::{KeyPath, Segment};

/// Result of [`deserialize_all`].
pub struct Outcome<T> {
    /// The parsed config, from the tree left after removing bad nodes (if any parse succeeded).
    pub value: Option<T>,
    /// Structural errors, with paths into the original document.
    pub errors: Vec<(KeyPath, String)>,
    /// Sequence items removed, to map paths into the pruned tree back to the document.
    pub removed: Removed,
}

/// Sequence items removed from the tree: (sequence path in the document, original index).
#[derive(Default)]
pub struct Removed(Vec<(KeyPath, usize)>);

impl Removed {
    /// Maps a path into the pruned tree to the same node's path in the original document.
    pub fn to_original(&self, path: &KeyPath) -> KeyPath {
        let mut out = KeyPath::root();
        for segment in &path.0 {
            match segment {
                Segment::Index(i) => {
                    let mut removed: Vec<usize> = self
                        .0
                        .iter()
                        .filter(|(p, _)| *p == out)
                        .map(|(_, i)| *i)
                        .collect();
                    removed.sort_unstable();
                    let mut index = *i;
                    for r in removed {
                        if r <= index {
                            index += 1;
                        }
                    }
                    out.0.push(Segment::Index(index));
                }
                key => out.0.push(key.clone()),
            }
        }
        out
    }
}

const MAX_ROUNDS: usize = 200;

pub fn deserialize_all<T: DeserializeOwned>(mut tree: Value) -> Outcome<T> {
    let mut errors: Vec<(KeyPath, String)> = Vec::new();
    let mut removed = Removed::default();
    for _ in 0..MAX_ROUNDS {
        let error = match serde_path_to_error::deserialize::<_, T>(tree.clone()) {
            Ok(value) => {
                return Outcome {
                    value: Some(value),
                    errors,
                    removed,
                }
            }
            Err(e) => e,
        };
        let at = KeyPath::from_serde(error.path());
        let message = error.inner().to_string();
        // An unknown key is reported by serde at its parent: point at (and remove) the key itself.
        let target = match unknown_field_name(&message) {
            Some(name) if at.0.last() != Some(&Segment::Key(name.to_string())) => at.child(name),
            _ => at,
        };
        let original = removed.to_original(&target);
        // A field we removed ourselves now shows as missing: already reported.
        let caused_by_us = missing_field_name(&message)
            .map(|name| original.child(name))
            .is_some_and(|missing| errors.iter().any(|(p, _)| missing.contains(p)));
        if !caused_by_us {
            errors.push((original.clone(), message));
        }
        if target.is_root() || !remove(&mut tree, &target) {
            break;
        }
        if let Some(Segment::Index(_)) = target.0.last() {
            if let (Some(parent), Some(Segment::Index(i))) = (original.parent(), original.0.last())
            {
                removed.0.push((parent, *i));
            }
        }
    }
    Outcome {
        value: None,
        errors,
        removed,
    }
}

/// `unknown field `foo`, expected ...` → `foo`.
fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.find('`').map(|end| &rest[..end])
}

/// `missing field `foo`` → `foo`.
fn missing_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.find('`').map(|end| &rest[..end])
}

/// Removes the node at `path`; false when there is no such node.
fn remove(tree: &mut Value, path: &KeyPath) -> bool {
    let Some((last, parents)) = path.0.split_last() else {
        return false;
    };
    let mut node = tree;
    for segment in parents {
        let next = match (segment, node) {
            (Segment::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str()),
            (Segment::Index(i), Value::Sequence(s)) => s.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    match (last, node) {
        (Segment::Key(k), Value::Mapping(m)) => m.remove(k.as_str()).is_some(),
        (Segment::Index(i), Value::Sequence(s)) if *i < s.len() => {
            s.remove(*i);
            true
        }
        _ => false,
    }
}
