//! The inputs that drive the state machine. Each is handed to
//! [`Fsm::handle`](super::Fsm::handle) together with the current monotonic time: the machine
//! never reads a clock.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::packet::Advertisement;

/// What the machine needs of a received advertisement (one that passed packet validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAdvert {
    pub priority: u8,
    /// The sender's primary address, compared numerically on equal priorities.
    pub source: IpAddr,
    /// The sender's advertisement interval; VRRPv3 backups adopt it as Master_Adver_Interval.
    pub max_advert_interval: Duration,
}

impl From<&Advertisement> for PeerAdvert {
    fn from(advert: &Advertisement) -> Self {
        PeerAdvert {
            priority: advert.priority,
            source: advert.source,
            max_advert_interval: advert.max_advert_interval,
        }
    }
}

/// Why an instance cannot serve. Faults are a set: the instance leaves Fault only when every
/// reported fault has been cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultReason {
    /// The instance's interface (or a tracked interface) lost its link.
    LinkDown,
    /// A tracked check configured to put the instance in fault failed.
    TrackedCheckFailed,
    /// Another member of the instance's sync group is in fault.
    SyncGroup,
}

impl FaultReason {
    pub fn label(self) -> &'static str {
        match self {
            FaultReason::LinkDown => "link_down",
            FaultReason::TrackedCheckFailed => "tracked_check_failed",
            FaultReason::SyncGroup => "sync_group",
        }
    }
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultReason::LinkDown => "link down",
            FaultReason::TrackedCheckFailed => "tracked check failed",
            FaultReason::SyncGroup => "sync group member in fault",
        })
    }
}

/// One input to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The daemon starts the instance (RFC 5798 "Startup event").
    Startup,
    /// The daemon stops the instance (RFC 5798 "Shutdown event").
    Shutdown,
    /// A valid advertisement for our VRID arrived.
    AdvertReceived(PeerAdvert),
    /// The time given in the last `ScheduleAdvertTimer` has come.
    AdvertTimerFired,
    /// The time given in the last `ScheduleMasterDownTimer` has come.
    MasterDownTimerFired,
    /// The time given in the last `SchedulePreemptTimer` has come.
    PreemptDelayElapsed,
    /// Tracking moved the effective priority (configured priority plus tracking weights,
    /// clamped by the caller to 1..=255; 0 is treated as 1).
    EffectivePriorityChanged(u8),
    /// A fault appeared.
    Fault(FaultReason),
    /// A fault went away.
    FaultCleared(FaultReason),
    /// Operator maintenance: `true` forces the instance to Backup and keeps it there.
    Maintenance(bool),
}
