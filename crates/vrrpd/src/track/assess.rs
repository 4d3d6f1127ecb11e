//! The effective priority and faults of an instance, from its configured priority and the
//! state of its tracked checks. Pure: the instance re-assesses after every check change.
//!
//! Effective priority = base + the weights of the failing checks, clamped to 1..=254; the
//! address owner (255) stays 255 while nothing weighted fails. A failing check of weight 0
//! puts the instance in Fault instead (link down for interfaces, tracked check otherwise).
//! A check that has not reported yet counts as failing: nothing is trusted before proven.

use serde::Serialize;

use crate::fsm::FaultReason;

/// What kind of thing a check watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Daemon,
    Script,
    Interface,
    /// The instance's own interface, always tracked.
    OwnInterface,
}

/// One check as the instance sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckStatus {
    pub name: String,
    pub kind: CheckKind,
    pub weight: i32,
    /// `None` until the first result.
    pub up: Option<bool>,
    /// The last result's explanation ("ready", "connection refused", "exit status 1").
    pub detail: String,
}

impl CheckStatus {
    pub fn new(name: &str, kind: CheckKind, weight: i32) -> Self {
        CheckStatus {
            name: name.to_string(),
            kind,
            weight,
            up: None,
            detail: "no result yet".to_string(),
        }
    }

    fn failing(&self) -> bool {
        self.up != Some(true)
    }
}

/// The outcome of an assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub priority: u8,
    pub faults: Vec<FaultReason>,
}

pub fn assess(base: u8, checks: &[CheckStatus]) -> Assessment {
    let mut faults = Vec::new();
    let mut sum = i64::from(base);
    let mut weighted_failure = false;
    for check in checks.iter().filter(|c| c.failing()) {
        if check.weight == 0 {
            let fault = match check.kind {
                CheckKind::Interface | CheckKind::OwnInterface => FaultReason::LinkDown,
                CheckKind::Daemon | CheckKind::Script => FaultReason::TrackedCheckFailed,
            };
            if !faults.contains(&fault) {
                faults.push(fault);
            }
        } else {
            weighted_failure = true;
            sum += i64::from(check.weight);
        }
    }
    let priority = if base == 255 && !weighted_failure {
        255
    } else {
        sum.clamp(1, 254) as u8
    };
    Assessment { priority, faults }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: CheckKind, weight: i32, up: Option<bool>) -> CheckStatus {
        CheckStatus {
            up,
            ..CheckStatus::new("c", kind, weight)
        }
    }

    #[test]
    fn failing_weights_are_added_and_clamped() {
        let checks = [
            check(CheckKind::Daemon, -100, Some(false)),
            check(CheckKind::Script, -50, Some(true)),
        ];
        assert_eq!(assess(150, &checks).priority, 50);
        let checks = [check(CheckKind::Daemon, -200, Some(false))];
        assert_eq!(assess(150, &checks).priority, 1);
        let checks = [check(CheckKind::Script, 200, Some(false))];
        assert_eq!(assess(150, &checks).priority, 254);
    }

    #[test]
    fn the_owner_stays_255_until_a_weighted_check_fails() {
        let healthy = [check(CheckKind::Daemon, -10, Some(true))];
        assert_eq!(assess(255, &healthy).priority, 255);
        let failing = [check(CheckKind::Daemon, -10, Some(false))];
        assert_eq!(assess(255, &failing).priority, 245);
    }

    #[test]
    fn weight_zero_means_fault_of_the_right_kind() {
        let checks = [
            check(CheckKind::OwnInterface, 0, Some(false)),
            check(CheckKind::Interface, 0, Some(false)),
            check(CheckKind::Daemon, 0, Some(true)),
        ];
        let a = assess(100, &checks);
        assert_eq!(a.faults, vec![FaultReason::LinkDown]);
        assert_eq!(a.priority, 100);
        let checks = [check(CheckKind::Script, 0, Some(false))];
        assert_eq!(
            assess(100, &checks).faults,
            vec![FaultReason::TrackedCheckFailed]
        );
    }

    #[test]
    fn a_check_without_result_counts_as_failing() {
        let checks = [check(CheckKind::Daemon, -60, None)];
        assert_eq!(assess(100, &checks).priority, 40);
        assert!(assess(100, &[]).faults.is_empty());
    }
}
