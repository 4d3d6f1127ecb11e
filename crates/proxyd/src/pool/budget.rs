//! The retry budget: retries may be at most a fraction of requests, so a sick pool is not
//! hammered by every request being tried `tries` times (Envoy's and Finagle's retry budget).
//!
//! Counted over a window that is halved every `WINDOW` (an exponential decay cheap enough to
//! run on every request), with a small floor of retries always allowed so that a quiet pool
//! can still retry. Pure: the caller passes `now`.

use std::time::{Duration, Instant};

/// How often the counts decay by half.
const WINDOW: Duration = Duration::from_secs(10);
/// Retries always allowed per window, whatever the request count.
const MIN_RETRIES: f64 = 10.0;

#[derive(Debug, Clone)]
pub struct RetryBudget {
    ratio: f64,
    requests: f64,
    retries: f64,
    decayed_at: Instant,
}

impl RetryBudget {
    pub fn new(ratio: f64, now: Instant) -> Self {
        Self {
            ratio,
            requests: 0.0,
            retries: 0.0,
            decayed_at: now,
        }
    }

    fn decay(&mut self, now: Instant) {
        while now.saturating_duration_since(self.decayed_at) >= WINDOW {
            self.requests /= 2.0;
            self.retries /= 2.0;
            self.decayed_at += WINDOW;
        }
    }

    /// Counts a new request.
    pub fn record_request(&mut self, now: Instant) {
        self.decay(now);
        self.requests += 1.0;
    }

    /// Whether one more retry fits; if so it is counted.
    pub fn try_retry(&mut self, now: Instant) -> bool {
        self.decay(now);
        if self.retries < MIN_RETRIES + self.ratio * self.requests {
            self.retries += 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_capped_at_the_ratio_of_requests_plus_a_floor() {
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(0.2, t0);
        for _ in 0..1000 {
            budget.record_request(t0);
        }
        let allowed = (0..1000).filter(|_| budget.try_retry(t0)).count();
        assert_eq!(allowed, 210);
    }

    #[test]
    fn the_budget_refills_as_time_passes() {
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(0.0, t0);
        assert_eq!((0..100).filter(|_| budget.try_retry(t0)).count(), 10);
        assert!(!budget.try_retry(t0 + Duration::from_secs(1)));
        assert!(budget.try_retry(t0 + Duration::from_secs(25)));
    }
}
