//! The RFC timer formulas, and the deadlines the machine remembers so that it can tell a
//! timer firing it asked for from a stale one.
//!
//! RFC 5798 §6.1 (VRRPv3): `Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256` and
//! `Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time`.
//! RFC 3768 §6.1 (VRRPv2): `Skew_Time = (256 - Priority) / 256` seconds, with the same
//! Master_Down_Interval over the (configured) advertisement interval.

use std::time::{Duration, Instant};

use super::actions::Action;
use crate::packet::Version;

/// Skew_Time for a backup of `priority` watching a master that advertises every
/// `master_adver_interval`.
pub fn skew_time(version: Version, priority: u8, master_adver_interval: Duration) -> Duration {
    let weight = 256 - u32::from(priority);
    let base = match version {
        Version::V3 => master_adver_interval,
        Version::V2 => Duration::from_secs(1),
    };
    base.saturating_mul(weight) / 256
}

/// Master_Down_Interval: how long a backup waits without advertisements before taking over.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_interval: Duration,
) -> Duration {
    master_adver_interval
        .saturating_mul(3)
        .saturating_add(skew_time(version, priority, master_adver_interval))
}

/// What a backup's master-down timer firing would mean; only used to word the transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Takeover {
    /// The master went silent.
    Silence,
    /// The master sent priority 0; the timer was cut to Skew_Time.
    PriorityZero,
}

/// The three deadlines the machine may have asked the shell to wake it at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deadlines {
    pub advert: Option<Instant>,
    pub master_down: Option<Instant>,
    pub preempt: Option<Instant>,
}

impl Deadlines {
    pub fn arm_advert(&mut self, at: Instant) -> Action {
        self.advert = Some(at);
        Action::ScheduleAdvertTimer(at)
    }

    pub fn arm_master_down(&mut self, at: Instant) -> Action {
        self.master_down = Some(at);
        Action::ScheduleMasterDownTimer(at)
    }

    pub fn arm_preempt(&mut self, at: Instant) -> Action {
        self.preempt = Some(at);
        Action::SchedulePreemptTimer(at)
    }

    pub fn cancel_all(&mut self) -> Action {
        *self = Deadlines::default();
        Action::CancelTimers
    }

    /// Takes the deadline out of `slot` if it has come by `now`; a firing that is early or
    /// not asked for returns `None` and leaves the deadline in place.
    pub fn take_due(slot: &mut Option<Instant>, now: Instant) -> Option<Instant> {
        match *slot {
            Some(at) if at <= now => slot.take(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_skew_and_master_down_follow_rfc_5798() {
        let interval = Duration::from_secs(1);
        // (256 - 100) * 1s / 256 = 0.609375s
        assert_eq!(
            skew_time(Version::V3, 100, interval),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V3, 100, interval),
            Duration::from_micros(3_609_375)
        );
        // The skew scales with the learned interval: 100ms at priority 255 -> 100ms / 256.
        assert_eq!(
            skew_time(Version::V3, 255, Duration::from_millis(100)),
            Duration::from_nanos(390_625)
        );
        assert_eq!(
            skew_time(Version::V3, 0, Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn v2_skew_is_in_seconds_whatever_the_interval() {
        // RFC 3768: (256 - 200) / 256 s = 0.21875s, also with a 3s advertisement interval.
        let interval = Duration::from_secs(3);
        assert_eq!(
            skew_time(Version::V2, 200, interval),
            Duration::from_micros(218_750)
        );
        assert_eq!(
            master_down_interval(Version::V2, 200, interval),
            Duration::from_micros(9_218_750)
        );
    }

    #[test]
    fn higher_priority_means_shorter_master_down_interval() {
        let interval = Duration::from_millis(100);
        let mut last = Duration::MAX;
        for priority in 1..=255u8 {
            let mdi = master_down_interval(Version::V3, priority, interval);
            assert!(mdi < last, "priority {priority}");
            last = mdi;
        }
    }

    #[test]
    fn only_due_deadlines_are_taken() {
        let t0 = Instant::now();
        let mut deadlines = Deadlines::default();
        deadlines.arm_master_down(t0 + Duration::from_secs(1));
        assert_eq!(Deadlines::take_due(&mut deadlines.master_down, t0), None);
        assert!(deadlines.master_down.is_some());
        let due = Deadlines::take_due(&mut deadlines.master_down, t0 + Duration::from_secs(1));
        assert_eq!(due, Some(t0 + Duration::from_secs(1)));
        assert_eq!(deadlines.master_down, None);
        assert_eq!(Deadlines::take_due(&mut deadlines.advert, t0), None);
    }
}
