//! The deadlines an instance waits for: the state machine's three timers (advertisement,
//! master down, preempt delay) and the gratuitous ARP burst and refresh. Pure bookkeeping
//! over monotonic `Instant`s; the task sleeps until [`Timers::next`].

use std::time::{Duration, Instant};

/// Which deadline came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Advert,
    MasterDown,
    Preempt,
    Gratuitous,
    Refresh,
}

#[derive(Debug, Clone, Default)]
pub struct Timers {
    pub advert: Option<Instant>,
    pub master_down: Option<Instant>,
    pub preempt: Option<Instant>,
    garp_next: Option<Instant>,
    garp_left: u32,
    garp_interval: Duration,
    refresh: Option<Instant>,
}

impl Timers {
    /// Drops the state machine's timers (`CancelTimers`).
    pub fn cancel_fsm(&mut self) {
        self.advert = None;
        self.master_down = None;
        self.preempt = None;
    }

    /// After sending the first announcement of a burst: `left` more every `interval`.
    pub fn start_burst(&mut self, now: Instant, left: u32, interval: Duration) {
        self.garp_left = left;
        self.garp_interval = interval;
        self.garp_next = (left > 0).then_some(now + interval);
    }

    pub fn set_refresh(&mut self, at: Option<Instant>) {
        self.refresh = at;
    }

    /// No more announcements (on leaving Master).
    pub fn stop_announcing(&mut self) {
        self.garp_next = None;
        self.garp_left = 0;
        self.refresh = None;
    }

    /// The earliest pending deadline.
    pub fn next(&self) -> Option<Instant> {
        [
            self.advert,
            self.master_down,
            self.preempt,
            self.garp_next,
            self.refresh,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Takes every deadline that has come by `now`, in a fixed order.
    pub fn take_due(&mut self, now: Instant) -> Vec<Due> {
        let mut due = Vec::new();
        let mut take = |slot: &mut Option<Instant>, what| {
            if slot.is_some_and(|at| at <= now) {
                *slot = None;
                due.push(what);
            }
        };
        take(&mut self.master_down, Due::MasterDown);
        take(&mut self.preempt, Due::Preempt);
        take(&mut self.advert, Due::Advert);
        take(&mut self.refresh, Due::Refresh);
        if self.garp_next.is_some_and(|at| at <= now) {
            self.garp_left = self.garp_left.saturating_sub(1);
            self.garp_next = (self.garp_left > 0).then_some(now + self.garp_interval);
            due.push(Due::Gratuitous);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_repeats_the_given_number_of_times() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let step = Duration::from_millis(10);
        timers.start_burst(t0, 2, step);
        assert_eq!(timers.next(), Some(t0 + step));
        assert_eq!(timers.take_due(t0), vec![]);
        assert_eq!(timers.take_due(t0 + step), vec![Due::Gratuitous]);
        assert_eq!(timers.take_due(t0 + step * 2), vec![Due::Gratuitous]);
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn due_timers_are_taken_once_and_cancel_clears_them() {
        let t0 = Instant::now();
        let mut timers = Timers {
            advert: Some(t0),
            master_down: Some(t0 + Duration::from_secs(1)),
            ..Timers::default()
        };
        assert_eq!(timers.next(), Some(t0));
        assert_eq!(timers.take_due(t0), vec![Due::Advert]);
        assert_eq!(timers.take_due(t0), vec![]);
        timers.cancel_fsm();
        assert_eq!(timers.next(), None);
    }
}
