//! Balancing algorithms: which backend gets the next request or connection.
//!
//! Pure logic, no I/O. proxyd (HTTP servers) and dbrouterd (database backends) implement
//! [`Backend`] for their own types and hand a slice of them to a [`Balancer`] on every pick;
//! the balancer returns an index into that slice. The slice may change between calls (a
//! reload adds or removes backends); every algorithm copes with that.
//!
//! A backend is *eligible* for a pick when its weight is non-zero, it reports itself
//! available, and its index is not in [`PickContext::exclude`] (the backends a retry has
//! already tried). No algorithm ever returns an ineligible index, and all of them return
//! `None` only when no backend is eligible.
//!
//! The algorithms, one file each:
//! - [`RoundRobin`]: nginx's smooth weighted round robin.
//! - [`LeastConn`]: fewest in-flight requests per unit of weight, ties shared round robin.
//! - [`RandomTwo`]: power of two weighted random choices, the less loaded one wins.
//! - [`Consistent`]: ketama-style consistent hash ring, for session affinity.
//!
//! [`Algorithm`] names them for configuration and [`Algorithm::build`] makes an
//! [`AnyBalancer`], an enum-dispatched balancer that needs no boxing on the hot path.
//! [`hash::hash64`] is the stable key hash both load balancer nodes must share.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod consistent;
pub mod hash;
pub mod least_conn;
pub mod random_two;
pub mod round_robin;

pub use consistent::Consistent;
pub use least_conn::LeastConn;
pub use random_two::RandomTwo;
pub use round_robin::RoundRobin;

/// What a balancer needs to know of a backend.
///
/// Implemented by proxyd's servers and dbrouterd's backends.
pub trait Backend {
    /// Effective weight; a backend of weight 0 is never picked.
    fn weight(&self) -> u32;
    /// Healthy, not drained or disabled, and under its connection limit.
    fn is_available(&self) -> bool;
    /// Requests or connections currently active on this backend.
    fn in_flight(&self) -> u64 {
        0
    }
    /// Stable identity (e.g. `"10.0.0.11:8080"`), used to place the backend on a hash ring.
    fn id(&self) -> &str;
}

impl<T: Backend + ?Sized> Backend for &T {
    fn weight(&self) -> u32 {
        (**self).weight()
    }
    fn is_available(&self) -> bool {
        (**self).is_available()
    }
    fn in_flight(&self) -> u64 {
        (**self).in_flight()
    }
    fn id(&self) -> &str {
        (**self).id()
    }
}

impl<T: Backend + ?Sized> Backend for Arc<T> {
    fn weight(&self) -> u32 {
        (**self).weight()
    }
    fn is_available(&self) -> bool {
        (**self).is_available()
    }
    fn in_flight(&self) -> u64 {
        (**self).in_flight()
    }
    fn id(&self) -> &str {
        (**self).id()
    }
}

/// Per-pick inputs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickContext<'a> {
    /// Hash of the request's affinity key (see [`hash::hash64`]); only [`Consistent`] uses it.
    pub hash: Option<u64>,
    /// Indexes already tried for this request, so a retry goes to another backend.
    pub exclude: &'a [usize],
}

impl<'a> PickContext<'a> {
    /// A context with no affinity key and nothing excluded.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same context with the affinity key hash set.
    pub fn with_hash(self, hash: u64) -> Self {
        Self {
            hash: Some(hash),
            ..self
        }
    }

    /// The same context with these backend indexes excluded.
    pub fn excluding(self, exclude: &'a [usize]) -> Self {
        Self { exclude, ..self }
    }

    /// Whether `backend`, found at `index`, may be picked in this context.
    pub fn is_eligible<B: Backend>(&self, index: usize, backend: &B) -> bool {
        backend.weight() > 0 && backend.is_available() && !self.exclude.contains(&index)
    }
}

/// Picks a backend for one request or connection.
pub trait Balancer<B: Backend>: Send + Sync {
    /// The index of the chosen backend in `backends`, or `None` when none is eligible.
    fn pick(&self, backends: &[B], ctx: &PickContext<'_>) -> Option<usize>;
}

/// Orders two backends by load per unit of weight (`in_flight / weight`), less loaded first.
///
/// Compared by cross-multiplication in `u128`, so no floats and no overflow. Both weights
/// must be non-zero, which holds for eligible backends.
pub(crate) fn compare_load<B: Backend>(a: &B, b: &B) -> Ordering {
    let a_load = u128::from(a.in_flight()) * u128::from(b.weight());
    let b_load = u128::from(b.in_flight()) * u128::from(a.weight());
    a_load.cmp(&b_load)
}

/// The balancing algorithms, as named in configuration files (`round_robin`, `least_conn`,
/// `random_two`, `consistent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Smooth weighted round robin ([`RoundRobin`]).
    #[default]
    RoundRobin,
    /// Weighted least connections ([`LeastConn`]).
    LeastConn,
    /// Power of two weighted random choices ([`RandomTwo`]).
    RandomTwo,
    /// Consistent hashing on the request's affinity key ([`Consistent`]).
    Consistent,
}

impl Algorithm {
    /// Every algorithm, in declaration order.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::RoundRobin,
        Algorithm::LeastConn,
        Algorithm::RandomTwo,
        Algorithm::Consistent,
    ];

    /// The name used in configuration files.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::LeastConn => "least_conn",
            Algorithm::RandomTwo => "random_two",
            Algorithm::Consistent => "consistent",
        }
    }

    /// A fresh balancer running this algorithm.
    pub fn build(self) -> AnyBalancer {
        match self {
            Algorithm::RoundRobin => AnyBalancer::RoundRobin(RoundRobin::new()),
            Algorithm::LeastConn => AnyBalancer::LeastConn(LeastConn::new()),
            Algorithm::RandomTwo => AnyBalancer::RandomTwo(RandomTwo::new()),
            Algorithm::Consistent => AnyBalancer::Consistent(Consistent::new()),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A balancing algorithm name that is not one of [`Algorithm::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown balancing algorithm {name:?} (expected round_robin, least_conn, random_two or consistent)")]
pub struct UnknownAlgorithm {
    /// The name as given.
    pub name: String,
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
            .ok_or_else(|| UnknownAlgorithm {
                name: name.to_owned(),
            })
    }
}

/// A balancer of any [`Algorithm`], dispatched by `match` rather than through a `Box<dyn>`.
#[derive(Debug)]
pub enum AnyBalancer {
    RoundRobin(RoundRobin),
    LeastConn(LeastConn),
    RandomTwo(RandomTwo),
    Consistent(Consistent),
}

impl AnyBalancer {
    /// The algorithm this balancer runs.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            AnyBalancer::RoundRobin(_) => Algorithm::RoundRobin,
            AnyBalancer::LeastConn(_) => Algorithm::LeastConn,
            AnyBalancer::RandomTwo(_) => Algorithm::RandomTwo,
            AnyBalancer::Consistent(_) => Algorithm::Consistent,
        }
    }
}

impl<B: Backend> Balancer<B> for AnyBalancer {
    fn pick(&self, backends: &[B], ctx: &PickContext<'_>) -> Option<usize> {
        match self {
            AnyBalancer::RoundRobin(balancer) => balancer.pick(backends, ctx),
            AnyBalancer::LeastConn(balancer) => balancer.pick(backends, ctx),
            AnyBalancer::RandomTwo(balancer) => balancer.pick(backends, ctx),
            AnyBalancer::Consistent(balancer) => balancer.pick(backends, ctx),
        }
    }
}

/// A plain backend for the unit tests of every algorithm.
#[cfg(test)]
pub(crate) mod testing {
    use super::Backend;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct FakeBackend {
        pub id: String,
        pub weight: u32,
        pub available: bool,
        pub in_flight: u64,
    }

    impl FakeBackend {
        pub fn new(id: &str, weight: u32) -> Self {
            Self {
                id: id.to_owned(),
                weight,
                available: true,
                in_flight: 0,
            }
        }

        pub fn down(self) -> Self {
            Self {
                available: false,
                ..self
            }
        }

        pub fn loaded(self, in_flight: u64) -> Self {
            Self { in_flight, ..self }
        }
    }

    impl Backend for FakeBackend {
        fn weight(&self) -> u32 {
            self.weight
        }
        fn is_available(&self) -> bool {
            self.available
        }
        fn in_flight(&self) -> u64 {
            self.in_flight
        }
        fn id(&self) -> &str {
            &self.id
        }
    }

    /// Backends `a`, `b`, `c`, ... with the given weights, all available and idle.
    pub fn weighted(weights: &[u32]) -> Vec<FakeBackend> {
        weights
            .iter()
            .zip('a'..='z')
            .map(|(&weight, name)| FakeBackend::new(&name.to_string(), weight))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{weighted, FakeBackend};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn algorithm_names_round_trip_through_from_str_and_serde() {
        for algorithm in Algorithm::ALL {
            assert_eq!(algorithm.name().parse::<Algorithm>(), Ok(algorithm));
            let json = serde_json::to_string(&algorithm).expect("serialize");
            assert_eq!(json, format!("\"{}\"", algorithm.name()));
            assert_eq!(algorithm.build().algorithm(), algorithm);
        }
        let err = "weighted".parse::<Algorithm>().unwrap_err();
        assert_eq!(err.name, "weighted");
    }

    #[test]
    fn every_algorithm_returns_none_when_all_are_unavailable_or_there_are_none() {
        let all_down: Vec<_> = weighted(&[1, 2, 3])
            .into_iter()
            .map(FakeBackend::down)
            .collect();
        let none: &[FakeBackend] = &[];
        for algorithm in Algorithm::ALL {
            let balancer = algorithm.build();
            for ctx in [PickContext::new(), PickContext::new().with_hash(42)] {
                assert_eq!(balancer.pick(&all_down, &ctx), None, "{algorithm}");
                assert_eq!(balancer.pick(none, &ctx), None, "{algorithm}");
            }
        }
    }

    #[test]
    fn every_algorithm_skips_unavailable_excluded_and_zero_weight_backends() {
        let mut backends = weighted(&[3, 0, 2, 4]);
        backends[2].available = false;
        let ctx = PickContext::new().excluding(&[3]);
        for algorithm in Algorithm::ALL {
            let balancer = algorithm.build();
            for key in 0..200u64 {
                let ctx = ctx.with_hash(hash::hash64(&key.to_le_bytes()));
                assert_eq!(balancer.pick(&backends, &ctx), Some(0), "{algorithm}");
            }
        }
    }

    #[test]
    fn backends_behind_references_and_arcs_are_balanced_like_the_originals() {
        let owned = weighted(&[1, 1]);
        let by_ref: Vec<&FakeBackend> = owned.iter().collect();
        let by_arc: Vec<Arc<FakeBackend>> = owned.iter().cloned().map(Arc::new).collect();
        let balancer = RoundRobin::new();
        assert_eq!(balancer.pick(&by_ref, &PickContext::new()), Some(0));
        assert_eq!(balancer.pick(&by_arc, &PickContext::new()), Some(1));
    }

    fn arbitrary_backends() -> impl Strategy<Value = Vec<FakeBackend>> {
        prop::collection::vec((0u32..6, any::<bool>(), 0u64..20), 0..8).prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (weight, available, in_flight))| FakeBackend {
                    id: format!("10.0.0.{i}:8080"),
                    weight,
                    available,
                    in_flight,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn pick_returns_an_eligible_index_or_none_only_when_none_is_eligible(
            backends in arbitrary_backends(),
            exclude in prop::collection::vec(0usize..10, 0..4),
            hash in any::<Option<u64>>(),
            algorithm in prop::sample::select(Algorithm::ALL.to_vec()),
        ) {
            let ctx = PickContext { hash, exclude: &exclude };
            let any_eligible = backends.iter().enumerate().any(|(i, b)| ctx.is_eligible(i, b));
            let balancer = algorithm.build();
            for _ in 0..4 {
                match balancer.pick(&backends, &ctx) {
                    Some(index) => {
                        prop_assert!(index < backends.len());
                        prop_assert!(backends[index].available);
                        prop_assert!(backends[index].weight > 0);
                        prop_assert!(!exclude.contains(&index));
                    }
                    None => prop_assert!(!any_eligible),
                }
            }
        }
    }
}
