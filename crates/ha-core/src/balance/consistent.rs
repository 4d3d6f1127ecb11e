//! Consistent hashing on a ketama-style ring, for session affinity.
//!
//! Every backend of non-zero weight is placed on a ring of 64-bit points: 160 points per unit
//! of weight, at `hash64("<id>-<i>")` for `i` in `0..points`. A request whose
//! [`PickContext::hash`] is `k` goes to the backend owning the first point at or after `k`
//! (wrapping around), skipping points whose backend is unavailable or excluded, so a retry
//! goes to the next backend clockwise.
//!
//! The points depend only on backend ids and weights, never on their order, on availability
//! or on the node computing them, so both load balancer nodes send a key to the same backend,
//! and when one of N backends goes down only its keys (about 1/N of them) move, spread over
//! the others. Availability is checked at pick time; the ring itself is rebuilt only when the
//! set of ids and weights changes, detected by a fingerprint of the slice.
//!
//! The ring is capped at [`MAX_RING_POINTS`]: beyond that the point counts are scaled down in
//! proportion to weight. That only happens when the total weight exceeds 1,638, and then a
//! change of one backend's weight also shifts the others' points a little.
//!
//! Requests without an affinity key are balanced by smooth weighted round robin.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::hash::{fmix64, hash64};
use super::{Backend, Balancer, PickContext, RoundRobin};

/// Ring points per unit of weight, as in ketama (40 MD5 digests of 4 points each).
pub const POINTS_PER_WEIGHT: u64 = 160;

/// Upper bound on the number of points in a ring (4 MiB of points).
pub const MAX_RING_POINTS: u64 = 1 << 18;

/// Consistent hashing balancer. See the [module docs](self).
#[derive(Debug, Default)]
pub struct Consistent {
    /// The ring for the last backend set seen, shared with picks in progress.
    ring: Mutex<Option<Arc<Ring>>>,
    /// Serves requests that carry no affinity key.
    without_key: RoundRobin,
}

struct Ring {
    fingerprint: u64,
    /// Sorted by `hash`.
    points: Vec<Point>,
}

impl fmt::Debug for Ring {
    /// The point count only: a ring holds hundreds of points per backend.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("fingerprint", &format_args!("{:#018x}", self.fingerprint))
            .field("points", &self.points.len())
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
struct Point {
    hash: u64,
    backend: usize,
}

impl Consistent {
    pub fn new() -> Self {
        Self::default()
    }

    /// The ring for `backends`, built now if the ids or weights changed since the last pick.
    fn ring_for<B: Backend>(&self, backends: &[B]) -> Arc<Ring> {
        let fingerprint = fingerprint(backends);
        // A cached ring is either complete or absent, whatever a panicking holder did.
        let mut cached = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some(ring) if ring.fingerprint == fingerprint => Arc::clone(ring),
            _ => {
                let ring = Arc::new(Ring::build(backends, fingerprint));
                *cached = Some(Arc::clone(&ring));
                ring
            }
        }
    }
}

impl<B: Backend> Balancer<B> for Consistent {
    fn pick(&self, backends: &[B], ctx: &PickContext<'_>) -> Option<usize> {
        let Some(key) = ctx.hash else {
            return self.without_key.pick(backends, ctx);
        };
        // Checked first so that an all-down pool costs O(backends), not a walk of the ring.
        let any_eligible = backends
            .iter()
            .enumerate()
            .any(|(index, backend)| ctx.is_eligible(index, backend));
        if !any_eligible {
            return None;
        }

        let ring = self.ring_for(backends);
        let start = ring.points.partition_point(|point| point.hash < key);
        let (before, from_start) = ring.points.split_at(start);
        from_start
            .iter()
            .chain(before)
            .map(|point| point.backend)
            .find(|&index| ctx.is_eligible(index, &backends[index]))
    }
}

impl Ring {
    fn build<B: Backend>(backends: &[B], fingerprint: u64) -> Self {
        let total_weight: u64 = backends.iter().map(|b| u64::from(b.weight())).sum();
        let mut points = Vec::new();
        let mut name = String::new();
        for (index, backend) in backends.iter().enumerate() {
            let count = point_count(backend.weight(), total_weight);
            name.clear();
            name.push_str(backend.id());
            name.push('-');
            let prefix_len = name.len();
            for i in 0..count {
                name.truncate(prefix_len);
                name.push_str(&i.to_string());
                points.push(Point {
                    hash: hash64(name.as_bytes()),
                    backend: index,
                });
            }
        }
        // The backend index breaks (astronomically rare) ties, so equal slices give equal rings.
        points.sort_unstable_by_key(|point| (point.hash, point.backend));
        Ring {
            fingerprint,
            points,
        }
    }
}

/// How many ring points a backend of `weight` gets, out of a pool of `total_weight`.
fn point_count(weight: u32, total_weight: u64) -> u64 {
    let weight = u64::from(weight);
    if weight == 0 {
        0
    } else if total_weight.saturating_mul(POINTS_PER_WEIGHT) <= MAX_RING_POINTS {
        weight * POINTS_PER_WEIGHT
    } else {
        // weight <= total_weight < 2^32 * backends, and MAX_RING_POINTS is 2^18: no overflow
        // for any slice that fits in memory.
        (weight.saturating_mul(MAX_RING_POINTS) / total_weight).max(1)
    }
}

/// Identifies the ids, weights and order of `backends`: the inputs the ring depends on.
fn fingerprint<B: Backend>(backends: &[B]) -> u64 {
    backends
        .iter()
        .fold(fmix64(backends.len() as u64), |fp, backend| {
            let fp = fmix64(fp ^ hash64(backend.id().as_bytes()));
            fmix64(fp ^ u64::from(backend.weight()))
        })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{weighted, FakeBackend};
    use super::*;

    const KEYS: u64 = 10_000;

    fn key_hash(key: u64) -> u64 {
        hash64(format!("client-{key}").as_bytes())
    }

    /// The id of the backend each of the test keys goes to.
    fn assignments(balancer: &Consistent, backends: &[FakeBackend]) -> Vec<String> {
        (0..KEYS)
            .map(|key| {
                let ctx = PickContext::new().with_hash(key_hash(key));
                let index = balancer.pick(backends, &ctx).expect("a backend");
                backends[index].id.clone()
            })
            .collect()
    }

    fn five_backends() -> Vec<FakeBackend> {
        (11..16)
            .map(|host| FakeBackend::new(&format!("10.0.0.{host}:8080"), 1))
            .collect()
    }

    #[test]
    fn the_same_key_maps_to_the_same_backend_on_independently_built_rings() {
        let node_a = assignments(&Consistent::new(), &five_backends());
        let node_b = assignments(&Consistent::new(), &five_backends());
        assert_eq!(node_a, node_b);
    }

    #[test]
    fn one_of_five_going_down_moves_only_its_own_keys_about_a_fifth() {
        let balancer = Consistent::new();
        let mut backends = five_backends();
        let before = assignments(&balancer, &backends);
        backends[2].available = false;
        let after = assignments(&balancer, &backends);

        let moved: Vec<usize> = (0..before.len())
            .filter(|&k| before[k] != after[k])
            .collect();
        assert!(moved.iter().all(|&k| before[k] == backends[2].id));
        let fraction = moved.len() as f64 / KEYS as f64;
        assert!((fraction - 0.2).abs() < 0.04, "moved fraction {fraction}");
        // The orphaned keys are spread over all the survivors, not dumped on one neighbour.
        for survivor in [0, 1, 3, 4] {
            let taken = moved
                .iter()
                .filter(|&&k| after[k] == backends[survivor].id)
                .count();
            assert!(taken > moved.len() / 8, "survivor {survivor} took {taken}");
        }
    }

    #[test]
    fn removing_a_backend_from_the_list_moves_only_its_keys() {
        let balancer = Consistent::new();
        let mut backends = five_backends();
        let before = assignments(&balancer, &backends);
        let removed = backends.remove(1);
        let after = assignments(&balancer, &backends);

        let moved: Vec<usize> = (0..before.len())
            .filter(|&k| before[k] != after[k])
            .collect();
        assert!(moved.iter().all(|&k| before[k] == removed.id));
        let fraction = moved.len() as f64 / KEYS as f64;
        assert!((fraction - 0.2).abs() < 0.04, "moved fraction {fraction}");
    }

    #[test]
    fn adding_a_backend_takes_keys_only_for_itself() {
        let balancer = Consistent::new();
        let mut backends = five_backends();
        let before = assignments(&balancer, &backends);
        backends.push(FakeBackend::new("10.0.0.16:8080", 1));
        let after = assignments(&balancer, &backends);

        let moved: Vec<usize> = (0..before.len())
            .filter(|&k| before[k] != after[k])
            .collect();
        assert!(moved.iter().all(|&k| after[k] == "10.0.0.16:8080"));
        let fraction = moved.len() as f64 / KEYS as f64;
        assert!(
            (fraction - 1.0 / 6.0).abs() < 0.04,
            "moved fraction {fraction}"
        );
    }

    #[test]
    fn keys_are_shared_in_proportion_to_weight() {
        let backends = weighted(&[3, 1]);
        let on_a = assignments(&Consistent::new(), &backends)
            .iter()
            .filter(|id| *id == "a")
            .count();
        let share = on_a as f64 / KEYS as f64;
        assert!((share - 0.75).abs() < 0.05, "share of a {share}");
    }

    #[test]
    fn a_retry_goes_to_another_backend_and_unavailable_ones_are_skipped() {
        let balancer = Consistent::new();
        let mut backends = five_backends();
        for key in 0..100 {
            let ctx = PickContext::new().with_hash(key_hash(key));
            let first = balancer.pick(&backends, &ctx).expect("a backend");
            let tried = [first];
            let retry = balancer.pick(&backends, &ctx.excluding(&tried));
            let second = retry.expect("another backend");
            assert_ne!(second, first);
            // Excluding the first choice is the same as that backend being down.
            backends[first].available = false;
            assert_eq!(balancer.pick(&backends, &ctx), Some(second));
            backends[first].available = true;
        }
    }

    #[test]
    fn all_unavailable_gives_none() {
        let backends: Vec<_> = five_backends().into_iter().map(FakeBackend::down).collect();
        let ctx = PickContext::new().with_hash(12345);
        assert_eq!(Consistent::new().pick(&backends, &ctx), None);
    }

    #[test]
    fn without_a_key_it_balances_round_robin() {
        let backends = weighted(&[1, 1, 1]);
        let balancer = Consistent::new();
        let picks: Vec<_> = (0..6)
            .map(|_| balancer.pick(&backends, &PickContext::new()))
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2].map(Some));
    }

    #[test]
    fn the_ring_is_rebuilt_only_when_ids_or_weights_change() {
        let balancer = Consistent::new();
        let mut backends = five_backends();
        let ctx = PickContext::new().with_hash(1);
        let first = balancer.ring_for(&backends);
        assert_eq!(first.points.len(), 5 * 160);

        backends[0].available = false;
        backends[1].in_flight = 40;
        balancer.pick(&backends, &ctx);
        assert!(Arc::ptr_eq(&first, &balancer.ring_for(&backends)));

        backends[3].weight = 2;
        let reweighted = balancer.ring_for(&backends);
        assert!(!Arc::ptr_eq(&first, &reweighted));
        assert_eq!(reweighted.points.len(), 6 * 160);

        backends[3].id = "10.0.0.99:8080".to_owned();
        assert!(!Arc::ptr_eq(&reweighted, &balancer.ring_for(&backends)));
    }

    #[test]
    fn huge_weights_are_scaled_to_the_point_cap_in_proportion() {
        let backends = vec![
            FakeBackend::new("a", u32::MAX),
            FakeBackend::new("b", u32::MAX / 3),
            FakeBackend::new("c", 1),
        ];
        let ring = Consistent::new().ring_for(&backends);
        let count = |b| ring.points.iter().filter(|p| p.backend == b).count() as u64;
        assert!(ring.points.len() as u64 <= MAX_RING_POINTS);
        assert!(count(0).abs_diff(3 * count(1)) <= 3);
        assert_eq!(count(2), 1, "a tiny weight still gets a point");
    }

    #[test]
    fn zero_weight_backends_have_no_points() {
        let backends = weighted(&[0, 2]);
        let ring = Consistent::new().ring_for(&backends);
        assert!(ring.points.iter().all(|p| p.backend == 1));
        assert_eq!(ring.points.len(), 2 * 160);
    }
}
