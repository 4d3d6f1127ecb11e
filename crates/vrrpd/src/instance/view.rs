//! What an instance shows of itself: the status an operator reads (`status`) and the
//! readiness the daemon's `health` reports. The instance task writes it after every event;
//! the control channel reads a copy.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::fsm::{FaultReason, State};
use crate::track::assess::CheckStatus;

/// How many transitions the status keeps.
pub const TRANSITIONS_KEPT: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct TransitionRecord {
    pub from: State,
    pub to: State,
    /// Stable label: `master_down`, `priority_dropped`, `link_down`, `operator`, `shutdown`…
    pub reason: &'static str,
    /// The sentence for people: "master down timer expired".
    pub description: String,
    pub priority: u8,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

impl TransitionRecord {
    pub fn now(
        from: State,
        to: State,
        reason: &'static str,
        description: String,
        priority: u8,
    ) -> Self {
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        TransitionRecord {
            from,
            to,
            reason,
            description,
            priority,
            at_unix_ms,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    pub adverts_sent: u64,
    pub adverts_received: u64,
    /// Dropped packets by reason label.
    pub dropped: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: State,
    pub base_priority: u8,
    pub effective_priority: u8,
    /// Our address when master, the master heard when backup.
    pub master_address: Option<IpAddr>,
    pub primary_address: Option<IpAddr>,
    pub virtual_addresses: Vec<String>,
    pub vips_held: bool,
    pub maintenance: bool,
    pub faults: Vec<FaultReason>,
    pub checks: Vec<CheckStatus>,
    pub counters: Counters,
    /// Most recent last.
    pub transitions: VecDeque<TransitionRecord>,
    /// Every check has reported and the state machine has started.
    pub initialized: bool,
    /// The last error of an address or socket operation, if any.
    pub last_error: Option<String>,
}

impl View {
    pub fn new(config: &crate::config::Instance) -> Self {
        View {
            name: config.name.clone(),
            interface: config.interface.clone(),
            vrid: config.vrid,
            version: config.version,
            state: State::Initialize,
            base_priority: config.priority,
            effective_priority: config.priority,
            master_address: None,
            primary_address: None,
            virtual_addresses: config.virtual_addresses.clone(),
            vips_held: false,
            maintenance: false,
            faults: Vec::new(),
            checks: Vec::new(),
            counters: Counters::default(),
            transitions: VecDeque::new(),
            initialized: false,
            last_error: None,
        }
    }

    pub fn record(&mut self, record: TransitionRecord) {
        if self.transitions.len() == TRANSITIONS_KEPT {
            self.transitions.pop_front();
        }
        self.transitions.push_back(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_transitions_are_kept() {
        let config: crate::config::Instance = serde_yaml::from_str(
            "{ name: a, interface: eth0, vrid: 1, virtual_addresses: [198.18.0.100/24] }",
        )
        .expect("instance");
        let mut view = View::new(&config);
        for i in 0..30u8 {
            view.record(TransitionRecord::now(
                State::Backup,
                State::Master,
                "test",
                String::new(),
                i,
            ));
        }
        assert_eq!(view.transitions.len(), TRANSITIONS_KEPT);
        assert_eq!(view.transitions.back().map(|t| t.priority), Some(29));
    }
}
