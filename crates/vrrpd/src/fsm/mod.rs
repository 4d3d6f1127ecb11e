//! The VRRP state machine (RFC 5798 §6, RFC 3768 §6), pure and clock-free.
//!
//! An instance's shell owns one [`Fsm`]. It feeds it [`Input`]s — startup and shutdown,
//! validated advertisements (see [`crate::packet`]), timer firings, tracking and operator
//! changes — each with the current `Instant`, and carries out the [`Action`]s it returns:
//! send an advertisement, add or remove the virtual addresses, send gratuitous ARPs, arm a
//! timer, report a [`State`] transition with its [`TransitionReason`].
//!
//! Layout: `machine.rs` holds the rules; `config.rs` the parameters; `events.rs` the inputs;
//! `actions.rs` the outputs; `timers.rs` the RFC timer formulas; `peers.rs` the election
//! order and the memory of peers' priorities; `state.rs` the states. The tests drive single
//! machines rule by rule (`rules_tests.rs`) and whole elections on a simulated LAN with a
//! virtual clock (`lan.rs`, `election_tests.rs`).

mod actions;
mod config;
mod events;
mod machine;
mod peers;
mod state;
mod timers;

#[cfg(test)]
mod election_tests;
#[cfg(test)]
mod lan;
#[cfg(test)]
mod rules_tests;

pub use actions::{Action, GratuitousReason, TransitionReason};
pub use config::{Config, ConfigError, MAX_PREEMPT_DELAY};
pub use events::{FaultReason, Input, PeerAdvert};
pub use machine::Fsm;
pub use peers::outranks;
pub use state::State;
pub use timers::{master_down_interval, skew_time};
