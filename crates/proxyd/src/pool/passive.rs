//! Passive health: nginx's `max_fails` / `fail_timeout`, with a true sliding window.
//!
//! nginx counts failures since the last success or the last time the counter was reset by
//! `fail_timeout` passing, so `max_fails: 3` may trip on three failures spread over nearly
//! twice the window, or never trip on a server that fails every other request. Here a server
//! is marked unavailable when `max_fails` failures fall inside *any* window of `fail_timeout`
//! (the timestamps of the last `max_fails` failures are kept), and stays out for
//! `fail_timeout`. A success does not wipe the window: a server failing half of its requests
//! is still taken out.
//!
//! Pure: the caller passes `now`; no clock, no I/O.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The failure history of one server.
#[derive(Debug, Clone)]
pub struct PassiveHealth {
    max_fails: u32,
    fail_timeout: Duration,
    /// The most recent failures, oldest first, at most `max_fails` of them.
    failures: VecDeque<Instant>,
    /// Unavailable until this instant.
    down_until: Option<Instant>,
}

impl PassiveHealth {
    /// `max_fails: 0` disables passive health (as in nginx).
    pub fn new(max_fails: u32, fail_timeout: Duration) -> Self {
        Self {
            max_fails,
            fail_timeout,
            failures: VecDeque::with_capacity(max_fails.min(64) as usize),
            down_until: None,
        }
    }

    /// Records a failure at `now`; returns true when this failure took the server out.
    pub fn record_failure(&mut self, now: Instant) -> bool {
        if self.max_fails == 0 || self.is_down(now) {
            return false;
        }
        if self.failures.len() as u32 >= self.max_fails {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        let window_start = now.checked_sub(self.fail_timeout);
        let in_window = self
            .failures
            .iter()
            .filter(|&&at| window_start.is_none_or(|start| at > start))
            .count() as u32;
        if in_window >= self.max_fails {
            self.down_until = Some(now + self.fail_timeout);
            self.failures.clear();
            return true;
        }
        false
    }

    /// Whether the server is out of rotation at `now`.
    pub fn is_down(&self, now: Instant) -> bool {
        self.down_until.is_some_and(|until| now < until)
    }

    /// When the server comes back, if it is out at `now`.
    pub fn down_until(&self, now: Instant) -> Option<Instant> {
        self.down_until.filter(|&until| now < until)
    }

    /// Forgets the window end once passed; returns true if the server just came back.
    pub fn expire(&mut self, now: Instant) -> bool {
        match self.down_until {
            Some(until) if now >= until => {
                self.down_until = None;
                true
            }
            _ => false,
        }
    }

    /// Failures currently counted in the window at `now`.
    pub fn recent_failures(&self, now: Instant) -> usize {
        let window_start = now.checked_sub(self.fail_timeout);
        self.failures
            .iter()
            .filter(|&&at| window_start.is_none_or(|start| at > start))
            .count()
    }

    pub fn max_fails(&self) -> u32 {
        self.max_fails
    }

    pub fn fail_timeout(&self) -> Duration {
        self.fail_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn max_fails_within_the_window_take_the_server_out_for_fail_timeout() {
        let t0 = Instant::now();
        let mut p = PassiveHealth::new(3, 10 * S);
        assert!(!p.record_failure(t0));
        assert!(!p.record_failure(t0 + S));
        assert!(p.record_failure(t0 + 2 * S));
        assert!(p.is_down(t0 + 2 * S));
        assert!(p.is_down(t0 + 11 * S));
        assert!(!p.is_down(t0 + 12 * S));
        assert!(p.expire(t0 + 12 * S));
        assert!(!p.expire(t0 + 13 * S));
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_trip() {
        let t0 = Instant::now();
        let mut p = PassiveHealth::new(2, 10 * S);
        for i in 0..10 {
            assert!(!p.record_failure(t0 + i * 11 * S), "failure {i}");
        }
    }

    #[test]
    fn the_window_slides_rather_than_resetting() {
        // nginx resets its counter fail_timeout after the first failure, so failures at
        // t=9 and t=12 would not trip it; they are 3 s apart, inside one sliding window.
        let t0 = Instant::now();
        let mut p = PassiveHealth::new(2, 10 * S);
        assert!(!p.record_failure(t0 + 9 * S));
        assert!(p.record_failure(t0 + 12 * S), "t=9 and t=12 share a window");

        let mut p = PassiveHealth::new(2, 10 * S);
        assert!(!p.record_failure(t0));
        assert!(!p.record_failure(t0 + 11 * S));
        assert!(
            p.record_failure(t0 + 12 * S),
            "t=11 and t=12 share a window"
        );
    }

    #[test]
    fn successes_in_between_do_not_hide_a_failing_server() {
        let t0 = Instant::now();
        let mut p = PassiveHealth::new(3, 10 * S);
        assert!(!p.record_failure(t0));
        assert!(!p.record_failure(t0 + 2 * S));
        assert!(p.record_failure(t0 + 4 * S));
    }

    #[test]
    fn zero_max_fails_disables_it() {
        let t0 = Instant::now();
        let mut p = PassiveHealth::new(0, 10 * S);
        for i in 0..100 {
            assert!(!p.record_failure(t0 + i * Duration::from_millis(1)));
        }
        assert!(!p.is_down(t0));
    }

    #[test]
    fn failures_while_down_are_not_counted_again() {
        let t0 = Instant::now();
        let mut p = PassiveHealth::new(1, 10 * S);
        assert!(p.record_failure(t0));
        assert!(!p.record_failure(t0 + S));
        assert_eq!(p.down_until(t0 + S), Some(t0 + 10 * S));
        assert_eq!(p.recent_failures(t0 + S), 0);
    }
}
