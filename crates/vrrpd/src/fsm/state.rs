//! The four states of a VRRP instance (RFC 5798 §6.4, plus Fault as keepalived has it).

use std::fmt;

use serde::Serialize;

/// Where an instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not started, or shut down: no timers, no addresses.
    Initialize,
    /// Watching the master; the master-down timer runs (unless in maintenance).
    Backup,
    /// Holding the virtual addresses and advertising.
    Master,
    /// Unable to serve (link down, a tracked check failed): silent, no addresses.
    Fault,
}

impl State {
    /// A short, stable label for metrics and status output.
    pub fn label(self) -> &'static str {
        match self {
            State::Initialize => "init",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
