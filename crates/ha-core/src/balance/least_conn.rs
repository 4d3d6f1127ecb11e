//! Weighted least connections.
//!
//! Picks the eligible backend with the fewest in-flight requests per unit of weight
//! (`in_flight / weight`, compared by cross-multiplication in `u128`: exact, no floats, no
//! overflow). Backends tied at that lowest load share the pick by smooth weighted round
//! robin, as nginx's `least_conn` does: without it an idle pool would send every short
//! request to the first backend, and with it idle backends of weights 2 and 1 still see a
//! 2:1 split.

use std::cmp::Ordering;

use super::{compare_load, Backend, Balancer, PickContext, RoundRobin};

/// Weighted least connections. See the [module docs](self).
#[derive(Debug, Default)]
pub struct LeastConn {
    ties: RoundRobin,
}

impl LeastConn {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<B: Backend> Balancer<B> for LeastConn {
    fn pick(&self, backends: &[B], ctx: &PickContext<'_>) -> Option<usize> {
        let least_loaded = backends
            .iter()
            .enumerate()
            .filter(|&(index, backend)| ctx.is_eligible(index, backend))
            .min_by(|(_, a), (_, b)| compare_load(*a, *b))
            .map(|(_, backend)| backend)?;
        self.ties.pick_where(backends, ctx, |index| {
            compare_load(&backends[index], least_loaded) == Ordering::Equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{weighted, FakeBackend};
    use super::*;

    fn pick(balancer: &LeastConn, backends: &[FakeBackend]) -> Option<usize> {
        balancer.pick(backends, &PickContext::new())
    }

    #[test]
    fn prefers_the_backend_with_fewest_in_flight() {
        let backends = vec![
            FakeBackend::new("a", 1).loaded(7),
            FakeBackend::new("b", 1).loaded(2),
            FakeBackend::new("c", 1).loaded(5),
        ];
        assert_eq!(pick(&LeastConn::new(), &backends), Some(1));
    }

    #[test]
    fn load_is_measured_per_unit_of_weight() {
        // a: 10/5 = 2 per weight, b: 3/1 = 3 per weight, so a is less loaded.
        let backends = vec![
            FakeBackend::new("a", 5).loaded(10),
            FakeBackend::new("b", 1).loaded(3),
        ];
        assert_eq!(pick(&LeastConn::new(), &backends), Some(0));
        // c: 12/5 = 2.4 per weight beats d: 3/1.
        let backends = vec![
            FakeBackend::new("c", 5).loaded(12),
            FakeBackend::new("d", 1).loaded(3),
        ];
        assert_eq!(pick(&LeastConn::new(), &backends), Some(0));
    }

    #[test]
    fn huge_counts_and_weights_do_not_overflow() {
        let backends = vec![
            FakeBackend::new("a", u32::MAX).loaded(u64::MAX),
            FakeBackend::new("b", u32::MAX - 1).loaded(u64::MAX),
        ];
        assert_eq!(pick(&LeastConn::new(), &backends), Some(0));
    }

    #[test]
    fn equally_loaded_backends_share_the_load_round_robin() {
        let backends = weighted(&[1, 1, 1]);
        let balancer = LeastConn::new();
        let picks: Vec<_> = (0..6).map(|_| pick(&balancer, &backends)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2].map(Some));
    }

    #[test]
    fn ties_are_shared_by_weight() {
        let backends = weighted(&[5, 1, 1]);
        let balancer = LeastConn::new();
        let mut counts = [0; 3];
        for _ in 0..7000 {
            counts[pick(&balancer, &backends).expect("a backend")] += 1;
        }
        assert_eq!(counts, [5000, 1000, 1000]);
    }

    #[test]
    fn only_the_least_loaded_take_part_in_the_tie_break() {
        let backends = vec![
            FakeBackend::new("a", 1).loaded(1),
            FakeBackend::new("b", 1),
            FakeBackend::new("c", 1).loaded(4),
            FakeBackend::new("d", 1),
        ];
        let balancer = LeastConn::new();
        let picks: Vec<_> = (0..4).map(|_| pick(&balancer, &backends)).collect();
        assert_eq!(picks, [1, 3, 1, 3].map(Some));
    }

    #[test]
    fn simulated_requests_keep_in_flight_balanced() {
        let mut backends = weighted(&[2, 1]);
        let balancer = LeastConn::new();
        for _ in 0..30 {
            let index = pick(&balancer, &backends).expect("a backend");
            backends[index].in_flight += 1;
        }
        assert_eq!((backends[0].in_flight, backends[1].in_flight), (20, 10));
    }

    #[test]
    fn unavailable_and_excluded_backends_are_skipped_even_when_idle() {
        let backends = vec![
            FakeBackend::new("a", 1).down(),
            FakeBackend::new("b", 1),
            FakeBackend::new("c", 1).loaded(9),
        ];
        let balancer = LeastConn::new();
        assert_eq!(pick(&balancer, &backends), Some(1));
        let retry = PickContext::new().excluding(&[1]);
        assert_eq!(balancer.pick(&backends, &retry), Some(2));
        let nothing_left = PickContext::new().excluding(&[1, 2]);
        assert_eq!(balancer.pick(&backends, &nothing_left), None);
    }

    #[test]
    fn all_unavailable_gives_none() {
        let backends = vec![
            FakeBackend::new("a", 1).down(),
            FakeBackend::new("b", 3).down(),
        ];
        assert_eq!(pick(&LeastConn::new(), &backends), None);
    }
}
