//! Line and column of every node of a YAML document, keyed by its [`KeyPath`].
//!
//! serde_yaml gives a location only for the first syntax or type error it meets while reading
//! text; errors found later (on the parsed tree, or by semantic validation) need this map to
//! point the operator at the right line.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::path::{KeyPath, Segment};

/// 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Where each node of the document starts.
#[derive(Debug, Default)]
pub struct Positions {
    map: HashMap<KeyPath, Position>,
}

impl Positions {
    /// Scans `text`; a document that does not scan yields an empty map (the syntax error itself
    /// is reported by serde_yaml with its own location).
    pub fn scan(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Positions::default();
        }
        Positions { map: builder.map }
    }

    /// Position of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &KeyPath) -> Option<Position> {
        let mut p = Some(path.clone());
        while let Some(current) = p {
            if let Some(pos) = self.map.get(&current) {
                return Some(*pos);
            }
            p = current.parent();
        }
        None
    }
}

enum Frame {
    /// In a mapping; `pending_key` is set between a key and its value.
    Mapping {
        pending_key: Option<String>,
        seen_key: bool,
    },
    Sequence {
        next_index: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Per open container: whether it pushed a path segment that its end must pop.
    pushed: Vec<bool>,
    path: Vec<Segment>,
    map: HashMap<KeyPath, Position>,
}

impl Builder {
    fn position(mark: Marker) -> Position {
        Position {
            line: mark.line().max(1),
            column: mark.col() + 1,
        }
    }

    /// Called when a value node starts: records its path and pushes its segment.
    /// Returns false when the node is a mapping key instead of a value.
    fn begin_value(&mut self, mark: Marker, scalar_key: Option<&str>) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Mapping {
                pending_key,
                seen_key,
            }) => match pending_key.take() {
                Some(key) => {
                    self.path.push(Segment::Key(key));
                    true
                }
                None => {
                    // This node is a key: remember it and where it is.
                    let key = scalar_key.unwrap_or("").to_string();
                    if !*seen_key {
                        // A block mapping's start mark can lie after its first key: the mapping
                        // starts where its first key does.
                        *seen_key = true;
                        let here = Self::position(mark);
                        let entry = self.map.entry(KeyPath(self.path.clone())).or_insert(here);
                        if (here.line, here.column) < (entry.line, entry.column) {
                            *entry = here;
                        }
                    }
                    let mut p = self.path.clone();
                    p.push(Segment::Key(key.clone()));
                    self.map.entry(KeyPath(p)).or_insert(Self::position(mark));
                    *pending_key = Some(key);
                    false
                }
            },
            Some(Frame::Sequence { next_index }) => {
                let index = *next_index;
                *next_index += 1;
                self.path.push(Segment::Index(index));
                self.map
                    .entry(KeyPath(self.path.clone()))
                    .or_insert(Self::position(mark));
                true
            }
            None => {
                self.map
                    .entry(KeyPath::root())
                    .or_insert(Self::position(mark));
                false
            }
        }
    }

    fn end_value(&mut self, pushed: bool) {
        if pushed {
            self.path.pop();
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                let pushed = self.begin_value(mark, Some(&value));
                self.end_value(pushed);
            }
            Event::Alias(_) => {
                let pushed = self.begin_value(mark, None);
                self.end_value(pushed);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let pushed = self.begin_value(mark, None);
                // A complex key (mapping as key) is not used by our configs; treat it as a value
                // so the stack stays balanced.
                if !pushed {
                    if let Some(Frame::Mapping { pending_key, .. }) = self.stack.last_mut() {
                        if pending_key.is_none() {
                            *pending_key = Some(String::new());
                        }
                    }
                }
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Mapping {
                        pending_key: None,
                        seen_key: false,
                    },
                    _ => Frame::Sequence { next_index: 0 },
                });
                self.pushed.push(pushed);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                let pushed = self.pushed.pop().unwrap_or(false);
                self.end_value(pushed);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_sequence_items() {
        let text = "control:\n  socket: /x\npools:\n  app:\n    servers:\n      - { address: a }\n      - address: b\n        weight: 2\n";
        let pos = Positions::scan(text);
        let at = |p: &str| pos.find(&KeyPath::parse(p)).map(|p| (p.line, p.column));
        assert_eq!(at("control.socket"), Some((2, 3)));
        assert_eq!(at("pools.app.servers[0].address"), Some((6, 11)));
        assert_eq!(at("pools.app.servers[1].weight"), Some((8, 9)));
        // Unknown leaf: nearest ancestor.
        assert_eq!(at("pools.app.servers[1].nope"), Some((7, 9)));
    }
}
