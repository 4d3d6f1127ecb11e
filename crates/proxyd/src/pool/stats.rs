//! Per-server answer counters for `/metrics`: answers by status class and a latency
//! histogram (time to the answer's head), kept as atomics on the server and read by the
//! metrics collector at scrape time, so the hot path pays a few relaxed additions and no
//! label lookup. They live as long as the server, across reloads that keep it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (Prometheus' `le`).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default)]
pub struct ServerStats {
    /// Answers by class, 1xx to 5xx.
    responses: [AtomicU64; 5],
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// A histogram as read at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`].
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl ServerStats {
    /// Counts an answer from the server with its status and how long it took.
    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Answers of class `n`xx (1..=5).
    pub fn responses(&self, class: usize) -> u64 {
        self.responses
            .get(class.wrapping_sub(1))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub fn latency(&self) -> Histogram {
        let mut total = 0;
        let mut cumulative = Vec::with_capacity(LATENCY_BUCKETS.len());
        for (i, b) in self.buckets.iter().enumerate() {
            total += b.load(Ordering::Relaxed);
            if i < LATENCY_BUCKETS.len() {
                cumulative.push(total);
            }
        }
        Histogram {
            cumulative,
            count: total,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_land_in_their_class_and_bucket() {
        let s = ServerStats::default();
        s.record(200, Duration::from_millis(3));
        s.record(503, Duration::from_secs(20));
        assert_eq!(s.responses(2), 1);
        assert_eq!(s.responses(5), 1);
        assert_eq!(s.responses(9), 0);
        let h = s.latency();
        assert_eq!(h.count, 2);
        assert_eq!(h.cumulative[1], 0); // le 0.0025
        assert_eq!(h.cumulative[2], 1); // le 0.005
        assert_eq!(*h.cumulative.last().expect("bucket"), 1); // 20 s is only in +Inf
        assert!((h.sum_seconds - 20.003).abs() < 1e-6);
    }
}
