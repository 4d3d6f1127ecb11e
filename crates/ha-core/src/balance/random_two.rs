//! Power of two random choices, weighted.
//!
//! Draws two distinct eligible backends at random, each with probability proportional to its
//! weight, and picks the one with the lower `in_flight / weight`; on a tie the first drawn
//! wins. Unlike least connections it needs no shared state and never herds every balancer
//! onto the same momentarily idle backend, yet it almost never sends a request to the most
//! loaded one (it can only be chosen against a backend that is at least as loaded).
//!
//! With every backend idle the first draw always wins, so the split follows the weights.

use rand::Rng;

use super::{compare_load, Backend, Balancer, PickContext};

/// Power of two weighted random choices. See the [module docs](self).
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomTwo;

impl RandomTwo {
    pub fn new() -> Self {
        Self
    }

    /// [`Balancer::pick`] with the random source given, so tests can be deterministic.
    pub fn pick_with_rng<B: Backend, R: Rng + ?Sized>(
        &self,
        backends: &[B],
        ctx: &PickContext<'_>,
        rng: &mut R,
    ) -> Option<usize> {
        let total_weight: u64 = backends
            .iter()
            .enumerate()
            .filter(|&(index, backend)| ctx.is_eligible(index, backend))
            .map(|(_, backend)| u64::from(backend.weight()))
            .sum();
        if total_weight == 0 {
            return None;
        }

        let first = draw_weighted(backends, ctx, None, rng.gen_range(0..total_weight))?;
        let rest_weight = total_weight - u64::from(backends[first].weight());
        if rest_weight == 0 {
            return Some(first);
        }
        let second = draw_weighted(backends, ctx, Some(first), rng.gen_range(0..rest_weight))?;

        if compare_load(&backends[second], &backends[first]).is_lt() {
            Some(second)
        } else {
            Some(first)
        }
    }
}

/// The eligible backend (other than `skip`) whose slice of the cumulative weight contains
/// `ticket`, a number below the total eligible weight.
fn draw_weighted<B: Backend>(
    backends: &[B],
    ctx: &PickContext<'_>,
    skip: Option<usize>,
    mut ticket: u64,
) -> Option<usize> {
    for (index, backend) in backends.iter().enumerate() {
        if Some(index) == skip || !ctx.is_eligible(index, backend) {
            continue;
        }
        let weight = u64::from(backend.weight());
        if ticket < weight {
            return Some(index);
        }
        ticket -= weight;
    }
    None
}

impl<B: Backend> Balancer<B> for RandomTwo {
    fn pick(&self, backends: &[B], ctx: &PickContext<'_>) -> Option<usize> {
        self.pick_with_rng(backends, ctx, &mut rand::thread_rng())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{weighted, FakeBackend};
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn count_picks(backends: &[FakeBackend], ctx: &PickContext<'_>, picks: usize) -> Vec<usize> {
        let balancer = RandomTwo::new();
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0; backends.len()];
        for _ in 0..picks {
            let index = balancer
                .pick_with_rng(backends, ctx, &mut rng)
                .expect("a backend");
            counts[index] += 1;
        }
        counts
    }

    /// Asserts `count / total` is within `tolerance` of `expected`.
    fn assert_share(count: usize, total: usize, expected: f64, tolerance: f64) {
        let share = count as f64 / total as f64;
        assert!(
            (share - expected).abs() < tolerance,
            "share {share:.4}, expected {expected:.4} ± {tolerance}"
        );
    }

    #[test]
    fn idle_backends_are_picked_in_proportion_to_weight() {
        let backends = weighted(&[5, 1, 1]);
        let counts = count_picks(&backends, &PickContext::new(), 70_000);
        // Binomial standard deviation at n = 70,000 is under 0.2 %; allow about 5 sigma.
        assert_share(counts[0], 70_000, 5.0 / 7.0, 0.01);
        assert_share(counts[1], 70_000, 1.0 / 7.0, 0.01);
        assert_share(counts[2], 70_000, 1.0 / 7.0, 0.01);
    }

    #[test]
    fn the_less_loaded_of_two_always_wins() {
        let backends = vec![
            FakeBackend::new("a", 1).loaded(10),
            FakeBackend::new("b", 1),
        ];
        let counts = count_picks(&backends, &PickContext::new(), 1000);
        assert_eq!(counts, vec![0, 1000]);
    }

    #[test]
    fn the_most_loaded_backend_is_never_picked_while_others_are_lighter() {
        let backends = vec![
            FakeBackend::new("a", 1),
            FakeBackend::new("b", 1).loaded(50),
            FakeBackend::new("c", 1).loaded(1),
        ];
        let counts = count_picks(&backends, &PickContext::new(), 3000);
        assert_eq!(counts[1], 0);
        // a wins every draw it is part of (2 of the 3 pairs), c wins the pair {b, c}.
        assert_share(counts[0], 3000, 2.0 / 3.0, 0.04);
    }

    #[test]
    fn load_is_compared_per_unit_of_weight() {
        // a: 8/4 = 2 per weight, b: 3/1 = 3 per weight.
        let backends = vec![
            FakeBackend::new("a", 4).loaded(8),
            FakeBackend::new("b", 1).loaded(3),
        ];
        let counts = count_picks(&backends, &PickContext::new(), 500);
        assert_eq!(counts, vec![500, 0]);
    }

    #[test]
    fn unavailable_backends_are_skipped() {
        let backends = vec![
            FakeBackend::new("a", 1).down(),
            FakeBackend::new("b", 1).loaded(3),
            FakeBackend::new("c", 1).loaded(3),
        ];
        let counts = count_picks(&backends, &PickContext::new(), 2000);
        assert_eq!(counts[0], 0);
        assert_share(counts[1], 2000, 0.5, 0.05);
    }

    #[test]
    fn excluded_backends_are_skipped_and_a_single_candidate_is_returned() {
        let backends = weighted(&[1, 1, 1]);
        let ctx = PickContext::new().excluding(&[0, 2]);
        assert_eq!(count_picks(&backends, &ctx, 100), vec![0, 100, 0]);
    }

    #[test]
    fn all_unavailable_or_excluded_gives_none() {
        let backends = vec![FakeBackend::new("a", 1).down(), FakeBackend::new("b", 1)];
        let ctx = PickContext::new().excluding(&[1]);
        assert_eq!(RandomTwo::new().pick(&backends, &ctx), None);
    }
}
