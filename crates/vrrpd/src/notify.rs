//! Notification of transitions: the configured script (arguments: instance state priority)
//! and events to other daemons' control sockets (`vrrp.transition`).
//!
//! One task runs every notification one at a time, in the order the transitions happened,
//! each bounded by its timeout: a slow hook delays the next hook, never the VRRP instance, and
//! hooks never run out of order (keepalived's users suffer from that).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use ha_core::control::ControlClient;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// One transition to tell the world about.
#[derive(Debug, Clone)]
pub struct Notification {
    pub instance: String,
    pub state: &'static str,
    pub priority: u8,
    pub reason: &'static str,
    pub script: Option<PathBuf>,
    pub sockets: Vec<PathBuf>,
    pub timeout: Duration,
}

/// The queue in front of the notifier task.
#[derive(Clone)]
pub struct Notifier {
    queue: mpsc::UnboundedSender<Notification>,
}

impl Notifier {
    /// Starts the notifier task.
    pub fn start() -> Self {
        let (queue, mut rx) = mpsc::unbounded_channel::<Notification>();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                deliver(&n).await;
            }
        });
        Notifier { queue }
    }

    pub fn notify(&self, notification: Notification) {
        if notification.script.is_none() && notification.sockets.is_empty() {
            return;
        }
        let _ = self.queue.send(notification);
    }
}

async fn deliver(n: &Notification) {
    if let Some(script) = &n.script {
        run_script(script, n).await;
    }
    for socket in &n.sockets {
        let mut args = Map::new();
        args.insert("instance".into(), json!(n.instance));
        args.insert("state".into(), json!(n.state));
        args.insert("priority".into(), json!(n.priority));
        args.insert("reason".into(), json!(n.reason));
        let answer: Result<Value, _> =
            ControlClient::call_once(socket, "vrrp.transition", args, n.timeout).await;
        if let Err(e) = answer {
            warn!(instance = %n.instance, socket = %socket.display(), error = %e, "transition event not delivered");
        }
    }
}

async fn run_script(script: &PathBuf, n: &Notification) {
    let spawned = tokio::process::Command::new(script)
        .arg(&n.instance)
        .arg(n.state)
        .arg(n.priority.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            warn!(instance = %n.instance, script = %script.display(), error = %e, "notify script cannot run");
            return;
        }
    };
    match tokio::time::timeout(n.timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {
            info!(instance = %n.instance, state = n.state, "notify script ran")
        }
        Ok(Ok(status)) => {
            warn!(instance = %n.instance, script = %script.display(), %status, "notify script failed")
        }
        Ok(Err(e)) => warn!(instance = %n.instance, error = %e, "notify script wait failed"),
        Err(_) => {
            let _ = child.kill().await;
            warn!(instance = %n.instance, script = %script.display(), timeout = ?n.timeout, "notify script killed after its timeout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scripts_run_one_at_a_time_in_order() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("log");
        let script = dir.path().join("notify.sh");
        // The first call sleeps: if calls overlapped, the second would log first.
        let body = format!(
            "#!/bin/sh\n[ \"$2\" = master ] && sleep 0.3\necho \"$1 $2 $3\" >> {}\n",
            log.display()
        );
        std::fs::write(&script, body).expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let notifier = Notifier::start();
        for (state, priority) in [("master", 150), ("backup", 150), ("fault", 50)] {
            notifier.notify(Notification {
                instance: "front".into(),
                state,
                priority,
                reason: "test",
                script: Some(script.clone()),
                sockets: Vec::new(),
                timeout: Duration::from_secs(5),
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().count() == 3 {
                assert_eq!(text, "front master 150\nfront backup 150\nfront fault 50\n");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "notify log: {text:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
