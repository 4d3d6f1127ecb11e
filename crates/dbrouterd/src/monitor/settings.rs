//! What the monitor takes from the file: its check interval, the rise/fall, lag and failover
//! settings of the pure core ([`Settings`]), and the timeouts and accounts of a topology change
//! ([`Limits`]). Read at start and again after every reload
//! (`Monitor::follow_reload`).

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use super::probe::Prober;
use super::promote::Limits;
use super::state::Settings;
use super::Monitor;
use crate::config::Config;

impl Monitor {
    /// Takes up the settings of a reloaded configuration, if there is one; answers whether the
    /// check interval changed. A new timeout replaces the probers (their connections are
    /// opened again with it).
    pub(super) fn follow_reload(&mut self) -> bool {
        let now = self.config.load_full();
        if Arc::ptr_eq(&now, &self.applied) {
            return false;
        }
        self.state.set_settings(settings_of(&now));
        let limits = limits_of(&now);
        if limits.timeout != self.limits.timeout {
            self.probers = self
                .topology
                .nodes
                .iter()
                .map(|n| Some(Prober::new(n.clone(), self.login.clone(), limits.timeout)))
                .collect();
        }
        self.limits = limits;
        let interval = now.monitor.interval.get();
        let changed = interval != self.interval;
        self.interval = interval;
        info!(interval = ?interval, timeout = ?self.limits.timeout, "monitor settings reloaded");
        self.applied = now;
        changed
    }
}

/// A check every `period`, the first one period from now; a late round delays the next.
pub(super) fn ticker(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// The rise/fall, lag and failover settings the pure core judges with.
pub(super) fn settings_of(config: &Config) -> Settings {
    let (m, f) = (&config.monitor, &config.failover);
    Settings {
        rise: m.rise.max(1),
        fall: m.fall.max(1),
        max_lag: m.max_replication_lag.get(),
        confirm_checks: f.confirm_checks.max(1),
        auto_failover: f.auto,
        fence_old_writer: f.fence_old_writer,
        auto_rejoin: f.auto_rejoin,
    }
}

/// The timeouts and accounts a topology change runs with.
pub(super) fn limits_of(config: &Config) -> Limits {
    let (m, f) = (&config.monitor, &config.failover);
    let replication = match (&f.replication_user, &f.replication_password) {
        (Some(u), Some(p)) => Some((u.clone(), p.0.clone())),
        _ => None,
    };
    Limits {
        timeout: m.timeout.get(),
        switchover_timeout: f.switchover_timeout.get(),
        catchup_timeout: f.catchup_timeout.get(),
        fence_old_writer: f.fence_old_writer,
        replication,
        replication_ssl: f.replication_ssl,
    }
}
