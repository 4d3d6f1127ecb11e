//! Per-pool and per-server metrics, read from the running snapshot when `/metrics` is
//! scraped: the hot path keeps plain atomics on each server ([`crate::pool::stats`]) and
//! never looks a label up. Reading at scrape time also means a removed server's series
//! disappear with it, and a server kept across a reload keeps counting.
//!
//! | metric | labels |
//! |---|---|
//! | `proxyd_server_requests_total` | pool, server |
//! | `proxyd_server_responses_total` | pool, server, class (`2xx`…) |
//! | `proxyd_server_response_seconds` (histogram, time to the answer's head) | pool, server |
//! | `proxyd_server_failures_total` | pool, server |
//! | `proxyd_server_active` (requests or sessions in flight) | pool, server |
//! | `proxyd_server_up` (1 when health checks and passive health let it serve) | pool, server |
//! | `proxyd_server_admin` (1 for its admin state: ready, drain, disabled) | pool, server, state |
//! | `proxyd_server_weight` | pool, server |
//! | `proxyd_pool_queue_length` | pool |

use std::sync::Arc;

use arc_swap::ArcSwap;
use ha_core::balance::Backend;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

use crate::pool::admin::AdminState;
use crate::pool::stats::LATENCY_BUCKETS;
use crate::pool::Server;
use crate::snapshot::Snapshot;

const FAMILIES: &[(&str, &str, &[&str])] = &[
    (
        "proxyd_server_requests_total",
        "Requests and TCP sessions sent to a server",
        &["pool", "server"],
    ),
    (
        "proxyd_server_responses_total",
        "Answers from a server by status class",
        &["pool", "server", "class"],
    ),
    (
        "proxyd_server_response_seconds",
        "Time from sending a request to a server to its answer's head",
        &["pool", "server"],
    ),
    (
        "proxyd_server_failures_total",
        "Failed attempts on a server (connect error, reset, timeout, failing status)",
        &["pool", "server"],
    ),
    (
        "proxyd_server_active",
        "Requests or TCP sessions in flight on a server",
        &["pool", "server"],
    ),
    (
        "proxyd_server_up",
        "1 when health checks and passive health let the server serve",
        &["pool", "server"],
    ),
    (
        "proxyd_server_admin",
        "1 for the server's admin state (ready, drain, disabled)",
        &["pool", "server", "state"],
    ),
    (
        "proxyd_server_weight",
        "The server's weight (as configured or set at run time)",
        &["pool", "server"],
    ),
    (
        "proxyd_server_resolve_failures_total",
        "Failed resolutions of a server's host name (the last good addresses are kept)",
        &["pool", "server"],
    ),
    (
        "proxyd_pool_queue_length",
        "Requests waiting in a pool's queue for a server under max_conns",
        &["pool"],
    ),
];

/// Registered once on the daemon's registry; reads whatever snapshot runs.
pub struct ServerCollector {
    snapshot: Arc<ArcSwap<Snapshot>>,
    descs: Vec<Desc>,
}

impl ServerCollector {
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>) -> Result<Self, prometheus::Error> {
        let descs = FAMILIES
            .iter()
            .map(|(name, help, labels)| {
                Desc::new(
                    (*name).to_owned(),
                    (*help).to_owned(),
                    labels.iter().map(|l| (*l).to_owned()).collect(),
                    Default::default(),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { snapshot, descs })
    }
}

/// Label pairs sorted by name, as the prometheus crate writes its own.
fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    let mut pairs = pairs.to_vec();
    pairs.sort_unstable_by_key(|(name, _)| *name);
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect()
}

fn counter(pairs: &[(&str, &str)], value: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value as f64);
    let mut m = Metric::from_label(labels(pairs));
    m.set_counter(c);
    m
}

fn gauge(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_gauge(g);
    m.set_label(labels(pairs));
    m
}

fn histogram(pairs: &[(&str, &str)], server: &Server) -> Metric {
    let read = server.stats().latency();
    let mut h = Histogram::default();
    h.set_sample_count(read.count);
    h.set_sample_sum(read.sum_seconds);
    h.set_bucket(
        LATENCY_BUCKETS
            .iter()
            .zip(read.cumulative)
            .map(|(le, count)| {
                let mut b = Bucket::default();
                b.set_upper_bound(*le);
                b.set_cumulative_count(count);
                b
            })
            .collect(),
    );
    let mut m = Metric::from_label(labels(pairs));
    m.set_histogram(h);
    m
}

impl Collector for ServerCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snapshot = self.snapshot.load();
        let mut families: Vec<Vec<Metric>> = vec![Vec::new(); FAMILIES.len()];
        for (name, pool) in &snapshot.pools {
            for s in pool.servers() {
                let id = [("pool", name.as_str()), ("server", s.address())];
                families[0].push(counter(&id, s.requests()));
                for class in 1..=5 {
                    let label = format!("{class}xx");
                    let with_class = [id[0], id[1], ("class", label.as_str())];
                    families[1].push(counter(&with_class, s.stats().responses(class)));
                }
                families[2].push(histogram(&id, s));
                families[3].push(counter(&id, s.failures()));
                families[4].push(gauge(&id, s.in_flight() as f64));
                families[5].push(gauge(&id, f64::from(u8::from(s.is_healthy()))));
                for state in [AdminState::Ready, AdminState::Drain, AdminState::Disabled] {
                    let with_state = [id[0], id[1], ("state", state.name())];
                    families[6].push(gauge(&with_state, f64::from(u8::from(s.admin() == state))));
                }
                families[7].push(gauge(&id, f64::from(s.configured_weight())));
                families[8].push(counter(&id, s.resolve_failures()));
            }
            families[9].push(gauge(&[("pool", name.as_str())], pool.queue.len() as f64));
        }
        FAMILIES
            .iter()
            .zip(families)
            .filter(|(_, metrics)| !metrics.is_empty())
            .map(|((name, help, _), metrics)| {
                let mut family = MetricFamily::default();
                family.set_name((*name).to_owned());
                family.set_help((*help).to_owned());
                family.set_field_type(match *name {
                    "proxyd_server_response_seconds" => MetricType::HISTOGRAM,
                    n if n.ends_with("_total") => MetricType::COUNTER,
                    _ => MetricType::GAUGE,
                });
                family.set_metric(metrics);
                family
            })
            .collect()
    }
}
