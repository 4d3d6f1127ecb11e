//! Smooth weighted round robin, as nginx does it.
//!
//! Each backend carries a `current` weight. On every pick each eligible backend's `current`
//! grows by its weight, the one with the largest `current` is chosen, and the sum of the
//! eligible weights is taken off the chosen one. Over one cycle (sum of weights picks) every
//! backend is chosen exactly `weight` times, and the picks are interleaved rather than
//! bunched: weights `{a: 5, b: 1, c: 1}` give `a a b a c a a`, not `a a a a a b c`.
//!
//! The `current` weights live behind a mutex. When the backend slice changes length (a
//! reload) they are reset; a weight change alone needs no reset, the sequence adapts.
//! [`LeastConn`](super::LeastConn) and [`Consistent`](super::Consistent) reuse this to share
//! ties and to serve requests that carry no affinity key.

use std::sync::{Mutex, PoisonError};

use super::{Backend, Balancer, PickContext};

/// Smooth weighted round robin. See the [module docs](self).
#[derive(Debug, Default)]
pub struct RoundRobin {
    /// `current` weight per backend index, as in nginx's `ngx_http_upstream_rr_peer_t`.
    current: Mutex<Vec<i64>>,
}

impl RoundRobin {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs one smooth weighted round robin step among the eligible backends that also
    /// satisfy `also`. Backends left out keep their `current` weight untouched.
    pub(crate) fn pick_where<B: Backend>(
        &self,
        backends: &[B],
        ctx: &PickContext<'_>,
        also: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        // The state is a set of counters, valid whatever a panicking holder left behind.
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.len() != backends.len() {
            current.clear();
            current.resize(backends.len(), 0);
        }

        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for (index, backend) in backends.iter().enumerate() {
            if !ctx.is_eligible(index, backend) || !also(index) {
                continue;
            }
            let weight = i64::from(backend.weight());
            current[index] += weight;
            total += weight;
            // Strictly greater: on a tie the first backend wins, which is what gives nginx's
            // documented sequence.
            let beats_best = match best {
                None => true,
                Some(best) => current[index] > current[best],
            };
            if beats_best {
                best = Some(index);
            }
        }

        let chosen = best?;
        current[chosen] -= total;
        Some(chosen)
    }
}

impl<B: Backend> Balancer<B> for RoundRobin {
    fn pick(&self, backends: &[B], ctx: &PickContext<'_>) -> Option<usize> {
        self.pick_where(backends, ctx, |_| true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::weighted;
    use super::*;

    fn names(backends: &[super::super::testing::FakeBackend], picks: &[usize]) -> String {
        picks
            .iter()
            .map(|&i| backends[i].id.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn pick_n<B: Backend>(rr: &RoundRobin, backends: &[B], n: usize) -> Vec<usize> {
        (0..n)
            .map(|_| rr.pick(backends, &PickContext::new()).expect("a backend"))
            .collect()
    }

    #[test]
    fn weights_5_1_1_give_the_sequence_nginx_documents() {
        let backends = weighted(&[5, 1, 1]);
        let rr = RoundRobin::new();
        let first_cycle = pick_n(&rr, &backends, 7);
        assert_eq!(names(&backends, &first_cycle), "a a b a c a a");
        let second_cycle = pick_n(&rr, &backends, 7);
        assert_eq!(
            first_cycle, second_cycle,
            "the sequence repeats every cycle"
        );
    }

    #[test]
    fn distribution_matches_weights_exactly_over_whole_cycles() {
        let backends = weighted(&[5, 1, 1]);
        let rr = RoundRobin::new();
        let mut counts = [0; 3];
        for index in pick_n(&rr, &backends, 7000) {
            counts[index] += 1;
        }
        assert_eq!(counts, [5000, 1000, 1000]);
    }

    #[test]
    fn every_window_of_one_cycle_holds_each_backend_weight_times() {
        let backends = weighted(&[3, 2, 1]);
        let rr = RoundRobin::new();
        let picks = pick_n(&rr, &backends, 60);
        for cycle in picks.chunks(6) {
            let count = |i| cycle.iter().filter(|&&p| p == i).count();
            assert_eq!((count(0), count(1), count(2)), (3, 2, 1));
        }
    }

    #[test]
    fn equal_weights_alternate() {
        let backends = weighted(&[1, 1, 1]);
        let rr = RoundRobin::new();
        assert_eq!(pick_n(&rr, &backends, 6), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn unavailable_backends_are_skipped_and_the_rest_keep_their_ratio() {
        let mut backends = weighted(&[2, 5, 1]);
        backends[1].available = false;
        let rr = RoundRobin::new();
        let picks = pick_n(&rr, &backends, 30);
        assert!(!picks.contains(&1));
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 20);
        assert_eq!(picks.iter().filter(|&&p| p == 2).count(), 10);
    }

    #[test]
    fn excluded_backends_are_skipped() {
        let backends = weighted(&[1, 1, 1]);
        let rr = RoundRobin::new();
        for _ in 0..10 {
            let pick = rr.pick(&backends, &PickContext::new().excluding(&[0, 2]));
            assert_eq!(pick, Some(1));
        }
        let all_excluded = PickContext::new().excluding(&[0, 1, 2]);
        assert_eq!(rr.pick(&backends, &all_excluded), None);
    }

    #[test]
    fn all_unavailable_gives_none() {
        let mut backends = weighted(&[1, 2]);
        for backend in &mut backends {
            backend.available = false;
        }
        assert_eq!(RoundRobin::new().pick(&backends, &PickContext::new()), None);
    }

    #[test]
    fn a_backend_returning_to_service_rejoins_the_rotation() {
        let mut backends = weighted(&[1, 1]);
        let rr = RoundRobin::new();
        backends[1].available = false;
        assert_eq!(pick_n(&rr, &backends, 3), vec![0, 0, 0]);
        backends[1].available = true;
        let picks = pick_n(&rr, &backends, 10);
        assert_eq!(picks.iter().filter(|&&p| p == 1).count(), 5);
    }

    #[test]
    fn state_resets_when_the_backend_list_changes_length() {
        let rr = RoundRobin::new();
        let three = weighted(&[5, 1, 1]);
        pick_n(&rr, &three, 3);
        let two = weighted(&[1, 1]);
        assert_eq!(pick_n(&rr, &two, 4), vec![0, 1, 0, 1]);
        let four = weighted(&[1, 1, 1, 1]);
        assert_eq!(pick_n(&rr, &four, 4), vec![0, 1, 2, 3]);
    }

    #[test]
    fn concurrent_picks_still_split_by_weight() {
        let backends = weighted(&[3, 1]);
        let rr = RoundRobin::new();
        let counts: Vec<Vec<usize>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| pick_n(&rr, &backends, 1000)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("worker"))
                .collect()
        });
        let firsts = counts.iter().flatten().filter(|&&p| p == 0).count();
        assert_eq!(firsts, 3000);
    }
}
