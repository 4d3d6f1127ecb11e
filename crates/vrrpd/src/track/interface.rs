//! Tracking a link: up with carrier, read over netlink every 50 ms. The instance's own
//! interface is always tracked this way (link down puts it in Fault, as keepalived does).

use std::time::Duration;

use tokio::sync::mpsc;

use super::CheckEvent;
use crate::addresses::netlink::Netlink;

const POLL: Duration = Duration::from_millis(50);

pub async fn run(check: usize, interface: String, events: mpsc::Sender<CheckEvent>) {
    let mut reported: Option<bool> = None;
    let mut netlink = None;
    let mut ticks = tokio::time::interval(POLL);
    loop {
        ticks.tick().await;
        if netlink.is_none() {
            netlink = Netlink::open().ok();
        }
        let state = match (netlink.as_mut(), Netlink::index(&interface)) {
            (Some(n), Ok(index)) => n.link(index).map_err(|e| e.to_string()),
            (None, _) => Err("netlink socket unavailable".to_string()),
            (_, Err(e)) => Err(e.to_string()),
        };
        let (up, detail) = match state {
            Ok(link) if link.up => (true, "link up".to_string()),
            Ok(_) => (false, "link down".to_string()),
            Err(e) => {
                netlink = None;
                (false, e)
            }
        };
        if reported != Some(up) {
            reported = Some(up);
            if events
                .send(CheckEvent::new(check, up, detail))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
