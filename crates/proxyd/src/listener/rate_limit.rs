//! Per-client-address request rate limit of a listener (`rate_limit: { rate, burst }`): a
//! token bucket per client IP, `rate` requests a second on average with bursts up to
//! `burst`. A request over the limit is answered 429 by [`crate::http::proxy`].
//!
//! The buckets sit in 16 mutex-guarded shards keyed by the address, so clients rarely
//! contend; a shard that grows past [`MAX_PER_SHARD`] forgets its full (idle) buckets. Only
//! listeners with `rate_limit` have a limiter; the others pay nothing.
//!
//! A reload keeps a listener's limiter, buckets and all, when its `rate` and `burst` did not
//! change ([`RateLimiter::carry_over`]), so reloading does not hand every client a fresh burst;
//! changed settings start with full buckets.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

const SHARDS: usize = 16;
/// Clients remembered per shard before idle ones are forgotten.
const MAX_PER_SHARD: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    hasher: std::collections::hash_map::RandomState,
    shards: [Mutex<HashMap<IpAddr, Bucket>>; SHARDS],
}

impl RateLimiter {
    /// `rate` requests per second (> 0), bursts of `burst` (at least 1).
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst.max(1)),
            hasher: Default::default(),
            shards: Default::default(),
        }
    }

    /// The limiter for `rate`/`burst` after a reload: `previous` itself (its buckets kept)
    /// when it was built with the same settings, else a new one.
    pub fn carry_over(previous: Option<&Arc<RateLimiter>>, rate: f64, burst: u32) -> Arc<Self> {
        let fresh = Self::new(rate, burst);
        match previous {
            Some(old) if old.rate == fresh.rate && old.burst == fresh.burst => Arc::clone(old),
            _ => Arc::new(fresh),
        }
    }

    /// Whether a request from `client` at `now` is within the limit (and counts it).
    pub fn allow(&self, client: IpAddr, now: Instant) -> bool {
        let shard = &self.shards[(self.hasher.hash_one(client) as usize) % SHARDS];
        let mut buckets = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_PER_SHARD && !buckets.contains_key(&client) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| refill(b, rate, burst, now) < burst);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = refill(bucket, self.rate, self.burst, now);
        bucket.at = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            true
        } else {
            bucket.tokens = tokens;
            false
        }
    }
}

fn refill(bucket: &Bucket, rate: f64, burst: f64, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_client_gets_its_burst_then_the_rate_and_others_are_not_affected() {
        let limit = RateLimiter::new(10.0, 3);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        assert_eq!((0..5).filter(|_| limit.allow(a, t0)).count(), 3);
        assert!(limit.allow(b, t0));
        assert!(!limit.allow(a, t0 + Duration::from_millis(50)));
        assert!(limit.allow(a, t0 + Duration::from_millis(160)));
        // A long pause refills to the burst, no more.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| limit.allow(a, later)).count(), 3);
    }

    #[test]
    fn unchanged_settings_keep_the_buckets_across_a_reload_and_changed_ones_start_full() {
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let limit = Arc::new(RateLimiter::new(0.001, 2));
        assert_eq!((0..3).filter(|_| limit.allow(a, t0)).count(), 2);

        let same = RateLimiter::carry_over(Some(&limit), 0.001, 2);
        assert!(Arc::ptr_eq(&same, &limit));
        assert!(!same.allow(a, t0), "the exhausted bucket was kept");

        for (rate, burst) in [(0.001, 3), (0.002, 2)] {
            let changed = RateLimiter::carry_over(Some(&same), rate, burst);
            assert!(!Arc::ptr_eq(&changed, &same));
            assert!(
                changed.allow(a, t0),
                "{rate}/{burst} starts with a full bucket"
            );
        }
        assert!(RateLimiter::carry_over(None, 0.001, 2).allow(a, t0));
    }
}
