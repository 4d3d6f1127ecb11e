//! Key paths into a configuration document, as operators read them: `pools.app.servers[1].address`.
//!
//! Paths name where an error is, both for serde's structural errors (converted from
//! `serde_path_to_error`) and for the semantic checks each daemon runs after parsing.

use std::fmt;

/// One step of a path: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root to one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPath(pub Vec<Segment>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// Parses the display form back (`a.b[2].c`). Keys containing `.` or `[` cannot round-trip,
    /// which configuration keys and names never need.
    pub fn parse(text: &str) -> Self {
        let mut segments = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let (key, mut rest) = match part.find('[') {
                Some(at) => (&part[..at], &part[at..]),
                None => (part, ""),
            };
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_string()));
            }
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(end) = stripped.find(']') else { break };
                match stripped[..end].parse() {
                    Ok(index) => segments.push(Segment::Index(index)),
                    Err(_) => segments.push(Segment::Key(stripped[..end].to_string())),
                }
                rest = &stripped[end + 1..];
            }
        }
        KeyPath(segments)
    }

    pub fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let segments = path
            .iter()
            .filter_map(|s| match s {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } => Some(Segment::Key(key.clone())),
                S::Enum { variant } => Some(Segment::Key(variant.clone())),
                S::Unknown => None,
            })
            .collect();
        KeyPath(segments)
    }

    pub fn child(&self, key: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_string()));
        p
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `self` is `other` or one of its ancestors.
    pub fn contains(&self, other: &KeyPath) -> bool {
        other.0.len() >= self.0.len() && other.0[..self.0.len()] == self.0[..]
    }

    pub fn parent(&self) -> Option<KeyPath> {
        if self.0.is_empty() {
            None
        } else {
            Some(KeyPath(self.0[..self.0.len() - 1].to_vec()))
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let text = "pools.app.servers[1].address";
        let path = KeyPath::parse(text);
        assert_eq!(path.to_string(), text);
        assert_eq!(path.0.len(), 5);
        assert_eq!(path.0[3], Segment::Index(1));
    }

    #[test]
    fn ancestry() {
        let a = KeyPath::parse("pools.app");
        let b = KeyPath::parse("pools.app.servers[0]");
        assert!(a.contains(&b));
        assert!(!b.contains(&a));
        assert_eq!(
            b.parent().map(|p| p.to_string()).as_deref(),
            Some("pools.app.servers")
        );
    }
}
