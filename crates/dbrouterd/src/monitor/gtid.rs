//! MariaDB GTID positions (`domain-server-sequence` lists, one entry per domain) and the one
//! question the failover asks of them: has a server applied everything in another position?

use std::collections::BTreeMap;

/// A GTID position: the last sequence number per replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(BTreeMap<u32, u64>);

impl GtidPos {
    /// Parses `0-1-100,1-2-7`; malformed entries are an error, an empty text the empty position.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.split('-');
            let (Some(domain), Some(_server), Some(seq), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("malformed GTID {entry:?}"));
            };
            let domain: u32 = domain
                .parse()
                .map_err(|_| format!("malformed GTID domain in {entry:?}"))?;
            let seq: u64 = seq
                .parse()
                .map_err(|_| format!("malformed GTID sequence in {entry:?}"))?;
            let slot = map.entry(domain).or_insert(0);
            *slot = (*slot).max(seq);
        }
        Ok(GtidPos(map))
    }

    /// Every domain of `other` is at or behind this position.
    pub fn covers(&self, other: &GtidPos) -> bool {
        other
            .0
            .iter()
            .all(|(d, seq)| self.0.get(d).is_some_and(|mine| mine >= seq))
    }

    /// How many transactions this position is behind `other`, summed over domains.
    pub fn behind(&self, other: &GtidPos) -> u64 {
        other
            .0
            .iter()
            .map(|(d, seq)| seq.saturating_sub(self.0.get(d).copied().unwrap_or(0)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_covers_what_it_has_applied_in_every_domain() {
        let applied = GtidPos::parse("0-1-100,1-2-7").expect("parse");
        assert!(applied.covers(&GtidPos::parse("0-1-100").expect("parse")));
        assert!(applied.covers(&GtidPos::parse("0-2-99, 1-2-7").expect("parse")));
        assert!(!applied.covers(&GtidPos::parse("0-1-101").expect("parse")));
        assert!(!applied.covers(&GtidPos::parse("2-1-1").expect("parse")));
        assert!(applied.covers(&GtidPos::parse("").expect("parse")));
        assert_eq!(
            applied.behind(&GtidPos::parse("0-1-103,1-2-9").expect("parse")),
            5
        );
    }

    #[test]
    fn malformed_positions_are_refused() {
        assert!(GtidPos::parse("0-1").is_err());
        assert!(GtidPos::parse("a-1-2").is_err());
        assert!(GtidPos::parse("0-1-2-3").is_err());
    }
}
