//! Tracking another daemon (proxyd, dbrouterd…) natively over its control socket: `health`
//! every `interval` (milliseconds, not seconds), each call bounded by `timeout`, turned into
//! up/down by ha-core's rise/fall [`HealthTracker`]. One connection is kept open; a dead
//! daemon shows as a refused or missing socket on the very next probe.

use ha_core::control::ControlClient;
use serde_json::Map;
use tokio::sync::mpsc;

use super::poll::{poll, Probe};
use super::CheckEvent;
use crate::config::TrackDaemon;

pub async fn run(check: usize, config: TrackDaemon, events: mpsc::Sender<CheckEvent>) {
    let client = ControlClient::new(&config.socket, config.timeout.get());
    let probe = HealthProbe { client };
    poll(
        check,
        config.rise,
        config.fall,
        config.interval.get(),
        events,
        probe,
    )
    .await;
}

/// `health` over the daemon's control socket, on one kept-open connection.
struct HealthProbe {
    client: ControlClient,
}

impl Probe for HealthProbe {
    async fn probe(&mut self) -> (bool, String) {
        match self.client.call("health", Map::new()).await {
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
        }
    }
}
