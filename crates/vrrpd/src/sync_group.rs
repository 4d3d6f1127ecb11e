//! Sync groups: instances that must fail over together (an outside VIP and an inside VIP).
//!
//! When a member's own checks put it in Fault, every other member of its groups enters Fault
//! too (reason `sync_group`), so a master steps down on all its instances at once and the
//! backup takes every address; when no member has a fault of its own any more, the partners
//! leave Fault together. The coordinator here is pure: it takes "instance X is (no longer)
//! faulted" and says which partners must enter or leave their sync fault.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::SyncGroup;

#[derive(Debug, Clone, Default)]
pub struct SyncGroups {
    groups: Vec<SyncGroup>,
    faulted: BTreeSet<String>,
    /// The sync fault each instance was last told.
    told: BTreeMap<String, bool>,
}

impl SyncGroups {
    pub fn new(groups: Vec<SyncGroup>) -> Self {
        SyncGroups {
            groups,
            ..SyncGroups::default()
        }
    }

    /// Replaces the groups (reload); faults already known are kept.
    pub fn set_groups(&mut self, groups: Vec<SyncGroup>) -> Vec<(String, bool)> {
        self.groups = groups;
        self.decide()
    }

    /// Records that `instance` has (or no longer has) a fault of its own; returns the
    /// instances whose sync fault must change, with the new value.
    pub fn fault_changed(&mut self, instance: &str, faulted: bool) -> Vec<(String, bool)> {
        if faulted {
            self.faulted.insert(instance.to_string());
        } else {
            self.faulted.remove(instance);
        }
        self.decide()
    }

    fn decide(&mut self) -> Vec<(String, bool)> {
        let mut wanted: BTreeMap<String, bool> = BTreeMap::new();
        for group in &self.groups {
            for member in &group.instances {
                let partner_faulted = group
                    .instances
                    .iter()
                    .any(|other| other != member && self.faulted.contains(other));
                let entry = wanted.entry(member.clone()).or_insert(false);
                *entry |= partner_faulted;
            }
        }
        let mut changes = Vec::new();
        for (member, value) in wanted {
            let before = self.told.get(&member).copied().unwrap_or(false);
            if before != value {
                changes.push((member.clone(), value));
            }
            self.told.insert(member, value);
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> SyncGroups {
        SyncGroups::new(vec![SyncGroup {
            name: "lb".into(),
            instances: vec!["front".into(), "back".into()],
        }])
    }

    #[test]
    fn a_fault_takes_the_partners_along_and_back() {
        let mut g = groups();
        assert_eq!(
            g.fault_changed("front", true),
            vec![("back".to_string(), true)]
        );
        assert_eq!(
            g.fault_changed("front", false),
            vec![("back".to_string(), false)]
        );
    }

    #[test]
    fn partners_stay_in_fault_while_any_member_has_its_own() {
        let mut g = groups();
        g.fault_changed("front", true);
        assert_eq!(
            g.fault_changed("back", true),
            vec![("front".to_string(), true)]
        );
        assert_eq!(
            g.fault_changed("back", false),
            vec![("front".to_string(), false)]
        );
        // front still has its own fault, so back stays in sync fault.
        assert_eq!(
            g.fault_changed("front", false),
            vec![("back".to_string(), false)]
        );
    }

    #[test]
    fn instances_outside_groups_are_never_told() {
        let mut g = groups();
        assert!(g.fault_changed("other", true).is_empty());
    }
}
