//! Who outranks whom, and the last priority heard from each peer.
//!
//! VRRP backups are silent, so a master only knows a peer's priority from the time that peer
//! was master itself (or fought for it). That memory is what lets a master whose tracked
//! checks fail step down at once, with a priority-0 advertisement, instead of advertising a
//! lower priority and waiting a whole Master_Down_Interval for the backup to preempt.

use std::net::IpAddr;

/// How many peers are remembered; a LAN segment rarely has more VRRP routers per VRID.
const CAPACITY: usize = 16;

/// Whether a router with `priority` at `address` outranks one with `other_priority` at
/// `other_address`: higher priority wins, and on equal priority the higher primary address,
/// compared as an unsigned number (RFC 5798 §6.4.3).
pub fn outranks(priority: u8, address: IpAddr, other_priority: u8, other_address: IpAddr) -> bool {
    (priority, address_number(address)) > (other_priority, address_number(other_address))
}

fn address_number(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The last non-zero priority heard from each peer, most recent last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PeerTable {
    heard: Vec<(IpAddr, u8)>,
}

impl PeerTable {
    /// Remembers what `source` advertised. Priority 0 means the peer is leaving mastership
    /// and its real priority is unknown from now on, so it is forgotten.
    pub fn record(&mut self, source: IpAddr, priority: u8) {
        self.heard.retain(|(address, _)| *address != source);
        if priority == 0 {
            return;
        }
        if self.heard.len() == CAPACITY {
            self.heard.remove(0);
        }
        self.heard.push((source, priority));
    }

    /// The peer that would win an election among the peers we have heard.
    pub fn strongest(&self) -> Option<(IpAddr, u8)> {
        self.heard.iter().copied().reduce(|best, peer| {
            if outranks(peer.1, peer.0, best.1, best.0) {
                peer
            } else {
                best
            }
        })
    }

    pub fn clear(&mut self) {
        self.heard.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, last))
    }

    #[test]
    fn priority_first_then_address_as_a_number() {
        assert!(outranks(200, v4(1), 100, v4(2)));
        assert!(!outranks(100, v4(2), 200, v4(1)));
        assert!(outranks(100, v4(2), 100, v4(1)));
        assert!(!outranks(100, v4(1), 100, v4(1)));
        // 198.18.0.10 > 198.18.0.9 numerically (and lexically by octets, unlike strings).
        assert!(outranks(100, v4(10), 100, v4(9)));
        let low = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x9));
        let high = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10));
        assert!(outranks(100, high, 100, low));
    }

    #[test]
    fn table_keeps_the_latest_priority_and_forgets_leavers() {
        let mut table = PeerTable::default();
        table.record(v4(2), 100);
        table.record(v4(3), 120);
        table.record(v4(2), 130);
        assert_eq!(table.strongest(), Some((v4(2), 130)));
        table.record(v4(2), 0);
        assert_eq!(table.strongest(), Some((v4(3), 120)));
        table.clear();
        assert_eq!(table.strongest(), None);
    }

    #[test]
    fn table_is_bounded() {
        let mut table = PeerTable::default();
        for last in 1..=40 {
            table.record(v4(last), last);
        }
        assert_eq!(table.heard.len(), CAPACITY);
        assert_eq!(table.strongest(), Some((v4(40), 40)));
    }
}
