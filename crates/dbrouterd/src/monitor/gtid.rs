//! MariaDB GTID positions (`domain-server-sequence` lists, one entry per domain) and the
//! questions the failover and the rejoin ask of them: has a server applied everything in
//! another position ([`GtidPos`])? Is a server's last transaction in the writer's binary log
//! ([`BinlogState`])?

use std::collections::BTreeMap;

/// One `domain-server-sequence` entry.
fn parse_gtid(entry: &str) -> Result<(u32, u32, u64), String> {
    let mut parts = entry.split('-');
    let (Some(domain), Some(server), Some(seq), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed GTID {entry:?}"));
    };
    let domain: u32 = domain
        .parse()
        .map_err(|_| format!("malformed GTID domain in {entry:?}"))?;
    let server: u32 = server
        .parse()
        .map_err(|_| format!("malformed GTID server id in {entry:?}"))?;
    let seq: u64 = seq
        .parse()
        .map_err(|_| format!("malformed GTID sequence in {entry:?}"))?;
    Ok((domain, server, seq))
}

/// The entries of a GTID list, blanks skipped.
fn entries(text: &str) -> impl Iterator<Item = Result<(u32, u32, u64), String>> + '_ {
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(parse_gtid)
}

/// A GTID position: the last sequence number per replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(BTreeMap<u32, u64>);

impl GtidPos {
    /// Parses `0-1-100,1-2-7`; malformed entries are an error, an empty text the empty position.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for entry in entries(text) {
            let (domain, _, seq) = entry?;
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

/// A server's `@@gtid_binlog_state`: the last sequence number binlogged per domain and
/// originating server. Sequence numbers of one server in one domain only grow, so a GTID is in
/// this binary log when its server's entry in its domain is at or past it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinlogState(BTreeMap<(u32, u32), u64>);

impl BinlogState {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for entry in entries(text) {
            let (domain, server, seq) = entry?;
            let slot = map.entry((domain, server)).or_insert(0);
            *slot = (*slot).max(seq);
        }
        Ok(BinlogState(map))
    }

    /// The GTIDs of `position` (a `gtid_current_pos`, one per domain) this binary log does not
    /// hold: transactions only the other server has, which replication from here can never
    /// reconcile. Empty when it can replicate from here.
    pub fn missing(&self, position: &str) -> Result<Vec<String>, String> {
        let mut missing = Vec::new();
        for entry in entries(position) {
            let (domain, server, seq) = entry?;
            if self.0.get(&(domain, server)).is_none_or(|&have| have < seq) {
                missing.push(format!("{domain}-{server}-{seq}"));
            }
        }
        Ok(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binlog_holds_a_gtid_when_its_server_reached_it_in_its_domain() {
        // The new writer (server 2) received the old writer's transactions up to 104, then
        // wrote its own from 105.
        let state = BinlogState::parse("0-1-104,0-2-106").expect("parse");
        assert_eq!(state.missing("0-1-104"), Ok(vec![]), "all it sent");
        assert_eq!(state.missing("0-1-90"), Ok(vec![]), "an older position");
        assert_eq!(
            state.missing("0-2-105"),
            Ok(vec![]),
            "part of the new writer's"
        );
        assert_eq!(state.missing(""), Ok(vec![]));
        // 0-1-105 was committed on the old writer and never sent: same sequence number as
        // the new writer's 0-2-105, a different transaction.
        assert_eq!(state.missing("0-1-105"), Ok(vec!["0-1-105".to_string()]));
        assert_eq!(
            state.missing("0-1-104,1-3-2"),
            Ok(vec!["1-3-2".to_string()]),
            "a domain the writer never had"
        );
        assert!(state.missing("0-1").is_err());
        assert!(BinlogState::parse("0-x-1").is_err());
    }

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
