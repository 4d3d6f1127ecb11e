//! The rise/fall health tracker shared by every health check in the stack.
//!
//! A single failed probe should not take a backend out of rotation, nor a single good one put
//! a dead backend back. Like haproxy's `rise`/`fall` and keepalived's `rise`/`fall`, a
//! [`HealthTracker`] turns a stream of check results into an up/down state that changes only
//! after `fall` consecutive failures while up, or `rise` consecutive successes while down.
//!
//! It is pure: proxyd's active checks, dbrouterd's monitor and vrrpd's trackers run the probe
//! (an HTTP request, a SQL query, a script) and feed the outcome to [`HealthTracker::record`],
//! which says whether the state changed; the caller then logs it, updates metrics and drains
//! or restores the backend. The consecutive counts are exposed for status output.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether a checked thing is considered healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Up,
    Down,
}

impl HealthState {
    /// `"up"` or `"down"`, as in status output.
    pub fn name(self) -> &'static str {
        match self {
            HealthState::Up => "up",
            HealthState::Down => "down",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A change of [`HealthState`], returned by [`HealthTracker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// `rise` consecutive successes while down.
    WentUp,
    /// `fall` consecutive failures while up.
    WentDown,
}

impl Transition {
    /// The state after this transition.
    pub fn new_state(self) -> HealthState {
        match self {
            Transition::WentUp => HealthState::Up,
            Transition::WentDown => HealthState::Down,
        }
    }
}

/// A `rise` or `fall` threshold of zero, which would make the state meaningless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("health check `{threshold}` must be at least 1 consecutive result")]
pub struct ZeroThreshold {
    /// `"rise"` or `"fall"`.
    pub threshold: &'static str,
}

/// Tracks consecutive check results and the up/down state they imply.
///
/// Serializes as its state, thresholds and consecutive counts, for status output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthTracker {
    state: HealthState,
    rise: u32,
    fall: u32,
    consecutive_successes: u32,
    consecutive_failures: u32,
}

impl HealthTracker {
    /// A tracker in state `initial` that goes up after `rise` consecutive successes and down
    /// after `fall` consecutive failures.
    ///
    /// The caller chooses `initial`: a backend is usually assumed up at start so traffic flows
    /// at once, a VRRP tracker down until proven healthy.
    pub fn new(rise: u32, fall: u32, initial: HealthState) -> Result<Self, ZeroThreshold> {
        if rise == 0 {
            return Err(ZeroThreshold { threshold: "rise" });
        }
        if fall == 0 {
            return Err(ZeroThreshold { threshold: "fall" });
        }
        Ok(Self {
            state: initial,
            rise,
            fall,
            consecutive_successes: 0,
            consecutive_failures: 0,
        })
    }

    /// Records one check result; returns the transition if this result completed a streak of
    /// `rise` successes while down or `fall` failures while up.
    pub fn record(&mut self, ok: bool) -> Option<Transition> {
        if ok {
            self.consecutive_failures = 0;
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            if self.state == HealthState::Down && self.consecutive_successes >= self.rise {
                self.state = HealthState::Up;
                return Some(Transition::WentUp);
            }
        } else {
            self.consecutive_successes = 0;
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            if self.state == HealthState::Up && self.consecutive_failures >= self.fall {
                self.state = HealthState::Down;
                return Some(Transition::WentDown);
            }
        }
        None
    }

    pub fn state(&self) -> HealthState {
        self.state
    }

    pub fn is_up(&self) -> bool {
        self.state == HealthState::Up
    }

    /// Consecutive successes needed to go up.
    pub fn rise(&self) -> u32 {
        self.rise
    }

    /// Consecutive failures needed to go down.
    pub fn fall(&self) -> u32 {
        self.fall
    }

    /// Successes since the last failure (0 right after a failure).
    pub fn consecutive_successes(&self) -> u32 {
        self.consecutive_successes
    }

    /// Failures since the last success (0 right after a success).
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(rise: u32, fall: u32, initial: HealthState) -> HealthTracker {
        HealthTracker::new(rise, fall, initial).expect("non-zero thresholds")
    }

    fn record_all(tracker: &mut HealthTracker, results: &[bool]) -> Vec<Option<Transition>> {
        results.iter().map(|&ok| tracker.record(ok)).collect()
    }

    #[test]
    fn goes_down_after_fall_consecutive_failures() {
        let mut t = tracker(2, 3, HealthState::Up);
        assert_eq!(
            record_all(&mut t, &[false, false, false]),
            [None, None, Some(Transition::WentDown)]
        );
        assert_eq!(t.state(), HealthState::Down);
    }

    #[test]
    fn comes_up_after_rise_consecutive_successes() {
        let mut t = tracker(2, 3, HealthState::Down);
        assert_eq!(
            record_all(&mut t, &[true, true]),
            [None, Some(Transition::WentUp)]
        );
        assert!(t.is_up());
    }

    #[test]
    fn an_interrupted_streak_starts_over() {
        let mut t = tracker(3, 3, HealthState::Up);
        let results = [false, false, true, false, false];
        assert!(record_all(&mut t, &results).iter().all(Option::is_none));
        assert_eq!(t.record(false), Some(Transition::WentDown));

        let results = [true, true, false, true, true];
        assert!(record_all(&mut t, &results).iter().all(Option::is_none));
        assert_eq!(t.record(true), Some(Transition::WentUp));
    }

    #[test]
    fn a_flapping_check_never_changes_state() {
        let mut t = tracker(2, 2, HealthState::Up);
        let flapping: Vec<bool> = (0..100).map(|i| i % 2 == 0).collect();
        assert!(record_all(&mut t, &flapping).iter().all(Option::is_none));
        assert!(t.is_up());
    }

    #[test]
    fn a_transition_is_reported_once_per_streak() {
        let mut t = tracker(1, 2, HealthState::Up);
        let results = [false, false, false, false];
        let transitions = record_all(&mut t, &results);
        assert_eq!(transitions, [None, Some(Transition::WentDown), None, None]);
        assert_eq!(t.consecutive_failures(), 4);
    }

    #[test]
    fn results_agreeing_with_the_state_cause_no_transition() {
        let mut up = tracker(1, 1, HealthState::Up);
        assert_eq!(up.record(true), None);
        let mut down = tracker(1, 1, HealthState::Down);
        assert_eq!(down.record(false), None);
    }

    #[test]
    fn thresholds_of_one_switch_on_the_first_result() {
        let mut t = tracker(1, 1, HealthState::Down);
        assert_eq!(t.record(true), Some(Transition::WentUp));
        assert_eq!(t.record(false), Some(Transition::WentDown));
        assert_eq!(t.record(true), Some(Transition::WentUp));
    }

    #[test]
    fn consecutive_counts_follow_the_latest_streak() {
        let mut t = tracker(3, 3, HealthState::Down);
        record_all(&mut t, &[true, true]);
        assert_eq!(
            (t.consecutive_successes(), t.consecutive_failures()),
            (2, 0)
        );
        t.record(false);
        assert_eq!(
            (t.consecutive_successes(), t.consecutive_failures()),
            (0, 1)
        );
        assert_eq!((t.rise(), t.fall()), (3, 3));
    }

    #[test]
    fn transitions_name_the_state_they_lead_to() {
        assert_eq!(Transition::WentUp.new_state(), HealthState::Up);
        assert_eq!(Transition::WentDown.new_state(), HealthState::Down);
    }

    #[test]
    fn zero_thresholds_are_rejected_naming_which() {
        let err = HealthTracker::new(0, 3, HealthState::Up).unwrap_err();
        assert_eq!(err.threshold, "rise");
        let err = HealthTracker::new(2, 0, HealthState::Up).unwrap_err();
        assert_eq!(
            err.to_string(),
            "health check `fall` must be at least 1 consecutive result"
        );
    }

    #[test]
    fn serializes_for_status_output() {
        let mut t = tracker(2, 3, HealthState::Up);
        t.record(false);
        let json = serde_json::to_value(&t).expect("serialize");
        assert_eq!(
            json,
            serde_json::json!({
                "state": "up",
                "rise": 2,
                "fall": 3,
                "consecutive_successes": 0,
                "consecutive_failures": 1,
            })
        );
        assert_eq!(HealthState::Down.to_string(), "down");
    }
}
