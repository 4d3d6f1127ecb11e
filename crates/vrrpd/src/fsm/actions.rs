//! The outputs of the state machine: what the I/O shell must do, in order.
//!
//! Timer semantics: each `Schedule*Timer` replaces the pending timer of that kind;
//! `CancelTimers` drops all three. The shell delivers the matching input once the instant
//! has come; firings the machine no longer expects are ignored, so races are harmless.

use std::fmt;
use std::time::Instant;

use serde::Serialize;

use super::events::FaultReason;
use super::state::State;

/// Why gratuitous ARPs / unsolicited neighbour advertisements are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GratuitousReason {
    /// We just became master.
    BecameMaster,
    /// We are master and heard another master we outrank: a partition healed and switches may
    /// still point the virtual MAC/addresses at the other side.
    SplitBrainRepair,
}

/// Why a state changed; carried by [`Action::Transition`] for logs, notify scripts and
/// metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionReason {
    /// Initialize -> Backup at startup.
    Startup,
    /// Initialize -> Master at startup, as the address owner (priority 255).
    OwnerStartup,
    /// Backup -> Master: no advertisement for Master_Down_Interval.
    MasterDownTimerExpired,
    /// Backup -> Master: the master announced it was leaving, and Skew_Time passed.
    PriorityZeroHeard,
    /// Backup -> Master: we outrank the current master and preemption is on.
    Preempt,
    /// Master -> Backup: an advertisement outranked us.
    HigherPriorityHeard,
    /// Master -> Backup: tracking lowered our priority below a known peer's.
    PriorityDropped,
    /// Backup/Master -> Fault.
    Fault(FaultReason),
    /// Fault -> Backup, or Fault -> Master for the address owner.
    FaultCleared,
    /// Master -> Backup because an operator set maintenance.
    Operator,
    /// Any -> Initialize.
    Shutdown,
}

impl TransitionReason {
    /// A short, stable label for metrics and notify scripts.
    pub fn label(self) -> &'static str {
        match self {
            TransitionReason::Startup => "startup",
            TransitionReason::OwnerStartup => "owner_startup",
            TransitionReason::MasterDownTimerExpired => "master_down",
            TransitionReason::PriorityZeroHeard => "priority_zero_heard",
            TransitionReason::Preempt => "preempt",
            TransitionReason::HigherPriorityHeard => "higher_priority_heard",
            TransitionReason::PriorityDropped => "priority_dropped",
            TransitionReason::Fault(fault) => fault.label(),
            TransitionReason::FaultCleared => "fault_cleared",
            TransitionReason::Operator => "operator",
            TransitionReason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::Startup => f.write_str("startup"),
            TransitionReason::OwnerStartup => f.write_str("startup as address owner"),
            TransitionReason::MasterDownTimerExpired => f.write_str("master down timer expired"),
            TransitionReason::PriorityZeroHeard => f.write_str("master left (priority 0 heard)"),
            TransitionReason::Preempt => f.write_str("preempting a lower-priority master"),
            TransitionReason::HigherPriorityHeard => f.write_str("higher-priority master heard"),
            TransitionReason::PriorityDropped => f.write_str("priority dropped below a peer's"),
            TransitionReason::Fault(fault) => write!(f, "fault: {fault}"),
            TransitionReason::FaultCleared => f.write_str("fault cleared"),
            TransitionReason::Operator => f.write_str("operator maintenance"),
            TransitionReason::Shutdown => f.write_str("shutdown"),
        }
    }
}

/// One thing the shell must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (our effective priority).
    SendAdvert { priority: u8 },
    /// Send an advertisement with priority 0: "I am leaving, take over after Skew_Time".
    SendPriorityZero,
    /// Configure the virtual addresses on the interface.
    AddVips,
    /// Remove the virtual addresses from the interface.
    RemoveVips,
    /// Send the configured burst of gratuitous ARPs / unsolicited NAs for every VIP.
    SendGratuitous { reason: GratuitousReason },
    /// (Re)arm the advertisement timer; deliver `Input::AdvertTimerFired` then.
    ScheduleAdvertTimer(Instant),
    /// (Re)arm the master-down timer; deliver `Input::MasterDownTimerFired` then.
    ScheduleMasterDownTimer(Instant),
    /// (Re)arm the preempt-delay timer; deliver `Input::PreemptDelayElapsed` then.
    SchedulePreemptTimer(Instant),
    /// Cancel every pending timer.
    CancelTimers,
    /// The state changed; always the first action of the batch that changes it.
    Transition {
        from: State,
        to: State,
        reason: TransitionReason,
    },
}
