//! Tracking another daemon (proxyd, dbrouterd…) natively over its control socket: `health`
//! every `interval` (milliseconds, not seconds), each call bounded by `timeout`, turned into
//! up/down by ha-core's rise/fall [`HealthTracker`]. One connection is kept open; a dead
//! daemon shows as a refused or missing socket on the very next probe.

use ha_core::control::ControlClient;
use ha_core::health::{HealthState, HealthTracker};
use serde_json::Map;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::CheckEvent;
use crate::config::TrackDaemon;

pub async fn run(check: usize, config: TrackDaemon, events: mpsc::Sender<CheckEvent>) {
    let mut client = ControlClient::new(&config.socket, config.timeout.get());
    let mut tracker = match HealthTracker::new(config.rise, config.fall, HealthState::Down) {
        Ok(t) => t,
        Err(e) => {
            let _ = events
                .send(CheckEvent::new(check, false, e.to_string()))
                .await;
            return;
        }
    };
    let mut ticks = tokio::time::interval(config.interval.get());
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reported: Option<bool> = None;
    loop {
        ticks.tick().await;
        let (ok, detail) = match client.call("health", Map::new()).await {
            Ok(answer) if answer.get("ready").and_then(|r| r.as_bool()) == Some(true) => {
                (true, "ready".to_string())
            }
            Ok(answer) => (
                false,
                answer
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .map(|r| format!("not ready: {r}"))
                    .unwrap_or_else(|| "not ready".to_string()),
            ),
            Err(e) => (false, e.to_string()),
        };
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
