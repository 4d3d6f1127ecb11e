//! A server's administrative state, set by an operator at run time (`backend.drain`,
//! `backend.disable`, `backend.enable`), read by the balancer on every pick as one atomic.
//!
//! `Drain` and `Disabled` both take the server out of new picks (a sticky cookie naming it
//! is ignored, so its clients move, the way they move off a server that is down); requests
//! and sessions already on it finish. They differ in what they say: a drained server is on
//! its way out and status shows when its last request ended; a disabled one is in
//! maintenance.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    Ready,
    Drain,
    Disabled,
}

impl AdminState {
    pub fn name(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Disabled => "disabled",
        }
    }

    /// The state [`AdminState::name`] names.
    pub fn from_name(name: &str) -> Option<Self> {
        [AdminState::Ready, AdminState::Drain, AdminState::Disabled]
            .into_iter()
            .find(|s| s.name() == name)
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => AdminState::Drain,
            2 => AdminState::Disabled,
            _ => AdminState::Ready,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            AdminState::Ready => 0,
            AdminState::Drain => 1,
            AdminState::Disabled => 2,
        }
    }
}

/// The state as an atomic.
#[derive(Debug, Default)]
pub struct AtomicAdmin(AtomicU8);

impl AtomicAdmin {
    pub fn get(&self) -> AdminState {
        AdminState::from_u8(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, state: AdminState) {
        self.0.store(state.to_u8(), Ordering::Relaxed);
    }

    /// Whether new requests may be sent (the hot-path check).
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_the_atomic() {
        let a = AtomicAdmin::default();
        assert!(a.is_ready());
        for s in [AdminState::Drain, AdminState::Disabled, AdminState::Ready] {
            a.set(s);
            assert_eq!(a.get(), s);
            assert_eq!(a.is_ready(), s == AdminState::Ready);
        }
    }
}
