//! The loop every polled check shares (daemons over their control socket, scripts): probe at
//! an interval, turn results into up/down with ha-core's rise/fall [`HealthTracker`], and tell
//! the instance only when the state changes.

use std::time::Duration;

use ha_core::health::{HealthState, HealthTracker};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::CheckEvent;

/// One kind of check: a single probe, answering ok and a detail for status.
pub trait Probe {
    async fn probe(&mut self) -> (bool, String);
}

/// Polls `probe` every `interval` until the instance is gone (its receiver dropped).
pub async fn poll(
    check: usize,
    rise: u32,
    fall: u32,
    interval: Duration,
    events: mpsc::Sender<CheckEvent>,
    mut probe: impl Probe,
) {
    let mut tracker = match HealthTracker::new(rise, fall, HealthState::Down) {
        Ok(t) => t,
        Err(e) => {
            let _ = events
                .send(CheckEvent::new(check, false, e.to_string()))
                .await;
            return;
        }
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reported: Option<bool> = None;
    loop {
        ticks.tick().await;
        let (ok, detail) = probe.probe().await;
        tracker.record(ok);
        let up = tracker.is_up();
        if reported != Some(up) {
            reported = Some(up);
            if events
                .send(CheckEvent::new(check, up, detail))
                .await
                .is_err()
            {
                return; // the instance is gone
            }
        }
    }
}
