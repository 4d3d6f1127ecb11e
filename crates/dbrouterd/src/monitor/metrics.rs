//! The monitor's metrics: per backend whether it is in read rotation, takes writes, its lag
//! and check results; the topology epoch and the topology changes made.

use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub struct MonitorMetrics {
    readable: IntGaugeVec,
    writer: IntGaugeVec,
    lag: GaugeVec,
    checks: IntCounterVec,
    qps: GaugeVec,
    pub epoch: IntGauge,
    pub changes: IntCounterVec,
    pub last_change_seconds: Gauge,
    /// 1: the writer's commits wait for a semi-synchronous replica; 0: they do not; -1: unknown.
    pub writer_semi_sync: IntGauge,
}

impl MonitorMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = MonitorMetrics {
            readable: IntGaugeVec::new(
                Opts::new(
                    "dbrouterd_backend_readable",
                    "1 while the backend is in read rotation",
                ),
                &["backend"],
            )?,
            writer: IntGaugeVec::new(
                Opts::new(
                    "dbrouterd_backend_writer",
                    "1 while the backend takes writes",
                ),
                &["backend"],
            )?,
            lag: GaugeVec::new(
                Opts::new(
                    "dbrouterd_backend_replication_lag_seconds",
                    "Replication lag seen by the monitor (-1: unknown)",
                ),
                &["backend"],
            )?,
            checks: IntCounterVec::new(
                Opts::new(
                    "dbrouterd_monitor_checks_total",
                    "Monitor checks, by result",
                ),
                &["backend", "result"],
            )?,
            qps: GaugeVec::new(
                Opts::new(
                    "dbrouterd_backend_queries_per_second",
                    "Statements routed to the backend per second, over the last check interval",
                ),
                &["backend"],
            )?,
            epoch: IntGauge::new("dbrouterd_topology_epoch", "Epoch of the current topology")?,
            writer_semi_sync: IntGauge::new(
                "dbrouterd_writer_semi_sync",
                "1 while the writer's commits wait for a semi-synchronous replica, 0 when they do not, -1 unknown",
            )?,
            changes: IntCounterVec::new(
                Opts::new(
                    "dbrouterd_topology_changes_total",
                    "Switchovers, failovers and rejoins of a server left behind, by kind and result",
                ),
                &["kind", "result"],
            )?,
            last_change_seconds: Gauge::new(
                "dbrouterd_topology_change_duration_seconds",
                "How long the last successful topology change held writes",
            )?,
        };
        registry.register(Box::new(m.readable.clone()))?;
        registry.register(Box::new(m.writer.clone()))?;
        registry.register(Box::new(m.lag.clone()))?;
        registry.register(Box::new(m.checks.clone()))?;
        registry.register(Box::new(m.qps.clone()))?;
        registry.register(Box::new(m.epoch.clone()))?;
        registry.register(Box::new(m.changes.clone()))?;
        registry.register(Box::new(m.last_change_seconds.clone()))?;
        registry.register(Box::new(m.writer_semi_sync.clone()))?;
        m.writer_semi_sync.set(-1);
        Ok(m)
    }

    pub fn backend(
        &self,
        name: &str,
        ok: bool,
        readable: bool,
        writer: bool,
        lag_ms: Option<u64>,
        qps: f64,
    ) {
        self.checks
            .with_label_values(&[name, if ok { "ok" } else { "failed" }])
            .inc();
        self.readable
            .with_label_values(&[name])
            .set(i64::from(readable));
        self.writer
            .with_label_values(&[name])
            .set(i64::from(writer));
        self.lag
            .with_label_values(&[name])
            .set(lag_ms.map(|l| l as f64 / 1000.0).unwrap_or(-1.0));
        self.qps.with_label_values(&[name]).set(qps);
    }
}
