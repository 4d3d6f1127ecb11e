//! proxyd's metrics, registered once on the daemon's registry (ha-core's `Context.metrics`)
//! and kept across reloads.

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone, Debug)]
pub struct ProxyMetrics {
    /// Accepted client connections, by listener.
    pub connections: IntCounterVec,
    /// Open client connections, by listener.
    pub open_connections: IntGaugeVec,
    /// Requests answered, by listener and status class (`2xx`...).
    pub requests: IntCounterVec,
    /// Bad input from clients, by listener and kind (`bad_request`, `header_too_large`,
    /// `header_timeout`, `tls_handshake`, `proxy_header`, `io`).
    pub client_errors: IntCounterVec,
    /// Answers proxyd wrote itself, by listener and kind (`no_server_available`...).
    pub proxy_errors: IntCounterVec,
    /// Failed attempts on a server, by pool, server and kind (`error`, `timeout`, `http_502`...).
    pub upstream_failures: IntCounterVec,
    /// Retries to another server, by pool.
    pub retries: IntCounterVec,
    /// Retries refused by the retry budget, by pool.
    pub retries_over_budget: IntCounterVec,
    /// Health state changes, by pool, server and new state.
    pub health_transitions: IntCounterVec,
    /// Reloads that reached the service, by result (`ok`, `failed`).
    pub reloads: IntCounterVec,
    /// Access-log lines dropped because the writer was behind.
    pub access_log_dropped: IntCounter,
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl ProxyMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let open_connections = IntGaugeVec::new(
            Opts::new(
                "proxyd_open_connections",
                "Open client connections by listener",
            ),
            &["listener"],
        )?;
        registry.register(Box::new(open_connections.clone()))?;
        let access_log_dropped = IntCounter::new(
            "proxyd_access_log_dropped_total",
            "Access-log lines dropped because the writer was behind",
        )?;
        registry.register(Box::new(access_log_dropped.clone()))?;
        Ok(Self {
            access_log_dropped,
            connections: counter(
                registry,
                "proxyd_connections_total",
                "Accepted client connections by listener",
                &["listener"],
            )?,
            open_connections,
            requests: counter(
                registry,
                "proxyd_requests_total",
                "HTTP requests answered by listener and status class",
                &["listener", "class"],
            )?,
            client_errors: counter(
                registry,
                "proxyd_client_errors_total",
                "Bad input from clients by listener and kind",
                &["listener", "kind"],
            )?,
            proxy_errors: counter(
                registry,
                "proxyd_proxy_errors_total",
                "Answers proxyd wrote itself (no server, upstream failed) by listener and kind",
                &["listener", "kind"],
            )?,
            upstream_failures: counter(
                registry,
                "proxyd_upstream_failures_total",
                "Failed attempts on a server by pool, server and kind",
                &["pool", "server", "kind"],
            )?,
            retries: counter(
                registry,
                "proxyd_retries_total",
                "Requests or connections retried on another server, by pool",
                &["pool"],
            )?,
            retries_over_budget: counter(
                registry,
                "proxyd_retries_over_budget_total",
                "Retries refused by the retry budget, by pool",
                &["pool"],
            )?,
            health_transitions: counter(
                registry,
                "proxyd_health_transitions_total",
                "Server health state changes by pool, server and new state",
                &["pool", "server", "state"],
            )?,
            reloads: counter(
                registry,
                "proxyd_reloads_total",
                "Reloads of a valid file by result (ok, failed: the new configuration could not be built)",
                &["result"],
            )?,
        })
    }

    /// A set registered on a private registry, for unit tests.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        Self::register(&Registry::new()).expect("metrics")
    }
}
