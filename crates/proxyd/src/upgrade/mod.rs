//! Binary upgrade without a dropped connection, the way nginx and HAProxy do it: the new
//! process takes the listening sockets of the running one instead of binding its own, so the
//! kernel's accept queues never close and no client sees a refused or reset connection.
//!
//! 1. `proxyd --upgrade -c FILE` (or SIGUSR2 to the running proxyd, which starts exactly that,
//!    see [`respawn`]) validates the file, then asks the running process over its control
//!    socket for `upgrade.handoff` (an admin command).
//! 2. The running process opens a side socket ([`side`]) and sends its listener names,
//!    addresses and descriptors there with `SCM_RIGHTS` ([`handoff`]).
//! 3. The new process removes the control socket file, so ha-core binds a fresh one at the
//!    same path (the old process keeps answering on the unlinked one until it exits), starts
//!    serving on the inherited sockets (a listener whose name and address match; others are
//!    bound afresh, unused ones closed) with the old process's runtime changes (drains,
//!    weights, servers added or removed) for the pools its file leaves as they were, and says
//!    `ready` ([`takeover`]).
//! 4. The old process tells systemd the new main PID, answers `bye`, and stops as on
//!    SIGTERM: it stops accepting, lets in-flight requests finish up to `--stop-timeout`,
//!    closes idle keep-alive connections and exits. Old generations never pile up.
//!
//! If the new process fails before `ready`, the old one keeps serving.

pub mod handoff;
pub mod respawn;
pub mod side;
pub mod takeover;

use serde::{Deserialize, Serialize};

/// One listening socket as the side channel describes it (descriptors travel alongside, in
/// the same order).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Handed {
    pub name: String,
    /// The configured `listen` string (matched against the new file).
    pub listen: String,
}

/// The first message on the side channel.
#[derive(Debug, Serialize, Deserialize)]
pub struct Offer {
    pub pid: u32,
    pub listeners: Vec<Handed>,
    /// The old process's runtime changes ([`crate::runtime::RuntimeChanges::export`]).
    #[serde(default)]
    pub runtime: serde_json::Value,
}

/// The new process's answer once it serves.
pub const READY: &[u8] = b"ready";
/// The old process's last word before it drains.
pub const BYE: &[u8] = b"bye";
