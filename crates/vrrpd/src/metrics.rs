//! vrrpd's metrics, registered once in the daemon's registry and labelled by instance:
//! state, base and effective priority, transitions (with reason), advertisements sent and
//! received, packets dropped by reason, and each tracked check.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::fsm::State;
use crate::packet::DropReason;

#[derive(Clone)]
pub struct VrrpMetrics {
    pub state: IntGaugeVec,
    pub priority: IntGaugeVec,
    pub transitions: IntCounterVec,
    pub adverts_sent: IntCounterVec,
    pub adverts_received: IntCounterVec,
    pub dropped: IntCounterVec,
    pub check_up: IntGaugeVec,
}

/// The value of `vrrp_state`: 0 init, 1 backup, 2 master, 3 fault.
pub fn state_number(state: State) -> i64 {
    match state {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

impl VrrpMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        Ok(VrrpMetrics {
            state: gauge(
                "vrrp_state",
                "Instance state: 0 init, 1 backup, 2 master, 3 fault",
                &["instance"],
            )?,
            priority: gauge(
                "vrrp_priority",
                "Configured (base) and effective priority",
                &["instance", "kind"],
            )?,
            transitions: counter(
                "vrrp_transitions_total",
                "State transitions by new state and reason",
                &["instance", "to", "reason"],
            )?,
            adverts_sent: counter(
                "vrrp_adverts_sent_total",
                "Advertisements sent",
                &["instance"],
            )?,
            adverts_received: counter(
                "vrrp_adverts_received_total",
                "Valid advertisements received",
                &["instance"],
            )?,
            dropped: counter(
                "vrrp_packets_dropped_total",
                "Received packets dropped, by reason",
                &["instance", "reason"],
            )?,
            check_up: gauge(
                "vrrp_check_up",
                "Tracked check state: 1 up, 0 down",
                &["instance", "check"],
            )?,
        })
    }

    /// Creates every drop-reason series at zero so dashboards see them before the first drop.
    pub fn init_instance(&self, instance: &str) {
        for reason in DropReason::LABELS {
            self.dropped.with_label_values(&[instance, reason]);
        }
        self.adverts_sent.with_label_values(&[instance]);
        self.adverts_received.with_label_values(&[instance]);
    }

    /// Drops the series of an instance removed by a reload.
    pub fn forget_instance(&self, instance: &str) {
        let _ = self.state.remove_label_values(&[instance]);
        for kind in ["base", "effective"] {
            let _ = self.priority.remove_label_values(&[instance, kind]);
        }
        let _ = self.adverts_sent.remove_label_values(&[instance]);
        let _ = self.adverts_received.remove_label_values(&[instance]);
        for reason in DropReason::LABELS {
            let _ = self.dropped.remove_label_values(&[instance, reason]);
        }
    }
}
