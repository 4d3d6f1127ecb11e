//! The new process's side of an upgrade (`proxyd --upgrade`): before the daemon starts, take
//! the running process's listening sockets; once it serves, tell the old one to go.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;

use super::{side, Offer, BYE, READY};
use crate::config::Config;

struct Inherited {
    listeners: Vec<(super::Handed, OwnedFd)>,
    runtime: Option<Value>,
    side: OwnedFd,
}

static INHERITED: Mutex<Option<Inherited>> = Mutex::new(None);

/// Asks the running proxyd (at the control socket `config_path` names) for its listening
/// sockets and keeps them for [`take_listener`]; removes the old control socket file so the
/// daemon can bind its own. Runs before the daemon starts.
pub fn take_over(config_path: &Path) -> Result<(), String> {
    let config: Config = ha_core::config::load(config_path).map_err(|e| e.to_string())?;
    // Refuse now, while the old process still owns everything, a file that cannot be built.
    crate::snapshot::Snapshot::build(&config).map_err(|e| e.to_string())?;
    let control = config.control.socket_path("proxyd");
    let answer = control_call(&control, r#"{"cmd":"upgrade.handoff"}"#).map_err(|e| {
        format!(
            "cannot reach the running proxyd at {}: {e}",
            control.display()
        )
    })?;
    let answer: Value =
        serde_json::from_str(&answer).map_err(|e| format!("invalid answer: {e}"))?;
    if answer["ok"] != Value::Bool(true) {
        return Err(format!(
            "the running proxyd refused the upgrade: {}",
            answer["error"]["message"]
                .as_str()
                .unwrap_or("unknown error")
        ));
    }
    let side_path = answer["data"]["socket"]
        .as_str()
        .ok_or("the running proxyd did not name an upgrade socket")?;
    let side = side::connect(Path::new(side_path))
        .map_err(|e| format!("cannot connect to {side_path}: {e}"))?;
    side::set_timeout(&side, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let (payload, fds) = side::recv(&side).map_err(|e| format!("no sockets received: {e}"))?;
    let offer: Offer =
        serde_json::from_slice(&payload).map_err(|e| format!("invalid offer: {e}"))?;
    if offer.listeners.len() != fds.len() {
        return Err(format!(
            "{} listeners offered with {} descriptors",
            offer.listeners.len(),
            fds.len()
        ));
    }
    eprintln!(
        "proxyd: upgrade: took {} listening socket(s) from pid {}",
        fds.len(),
        offer.pid
    );
    let _ = std::fs::remove_file(&control);
    *INHERITED.lock().unwrap_or_else(PoisonError::into_inner) = Some(Inherited {
        listeners: offer.listeners.into_iter().zip(fds).collect(),
        runtime: Some(offer.runtime),
        side,
    });
    Ok(())
}

fn control_call(socket: &Path, line: &str) -> std::io::Result<String> {
    let stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut writer = stream.try_clone()?;
    writer.write_all(line.as_bytes())?;
    writer.write_all(b"\n")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    Ok(answer)
}

/// The old process's runtime changes, once (`None` when not upgrading).
pub fn take_runtime() -> Option<Value> {
    INHERITED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()?
        .runtime
        .take()
}

/// The inherited socket of listener `name` if it listened on `listen` (as configured).
pub fn take_listener(name: &str, listen: &str) -> Option<std::net::TcpListener> {
    let mut guard = INHERITED.lock().unwrap_or_else(PoisonError::into_inner);
    let inherited = guard.as_mut()?;
    let at = inherited
        .listeners
        .iter()
        .position(|(h, _)| h.name == name && h.listen == listen)?;
    let (_, fd) = inherited.listeners.swap_remove(at);
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(true).ok()?;
    Some(listener)
}

/// Once serving: closes the inherited sockets the new file has no use for, tells the old
/// process to go and waits (briefly) for its `bye`. Nothing to do when not upgrading.
pub fn finish() -> Result<(), String> {
    let Some(inherited) = INHERITED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    else {
        return Ok(());
    };
    for (handed, _) in &inherited.listeners {
        tracing::info!(listener = %handed.name, listen = %handed.listen, "upgrade: inherited socket not in the new configuration; closed");
    }
    side::send(&inherited.side, READY, &[])
        .map_err(|e| format!("cannot tell the old process: {e}"))?;
    match side::recv(&inherited.side) {
        Ok((answer, _)) if answer == BYE => {
            tracing::info!("upgrade: the old process stops accepting and drains");
            Ok(())
        }
        Ok(_) => Err("the old process closed the upgrade socket without a bye".into()),
        Err(e) => Err(format!("no bye from the old process: {e}")),
    }
}
