//! The running process's side of an upgrade (`upgrade.handoff`): offer the listening sockets
//! on a side socket, wait for the new process to say it serves, then drain and exit.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{info, warn};

use super::{side, Handed, Offer, BYE, READY};

/// How long the side socket waits for the new process to connect.
const CONNECT_WINDOW: Duration = Duration::from_secs(10);
/// How long the new process may take from receiving the sockets to serving on them.
const READY_WINDOW: Duration = Duration::from_secs(60);

/// The side socket's path for a control socket.
pub fn side_path(control_socket: &Path) -> PathBuf {
    let mut path = control_socket.as_os_str().to_owned();
    path.push(".upgrade");
    PathBuf::from(path)
}

/// Opens the side socket and serves one handoff on a thread of its own; returns the path.
/// `busy` is held while it runs (one upgrade at a time) and released when it ends.
pub fn start(
    control_socket: &Path,
    listeners: Vec<(Handed, Arc<TcpListener>)>,
    runtime: serde_json::Value,
    busy: Arc<AtomicBool>,
) -> Result<PathBuf, String> {
    if busy.swap(true, Ordering::SeqCst) {
        return Err("an upgrade is already in progress".into());
    }
    let path = side_path(control_socket);
    let socket = side::listen(&path)
        .and_then(|fd| side::set_timeout(&fd, CONNECT_WINDOW).map(|()| fd))
        .map_err(|e| {
            busy.store(false, Ordering::SeqCst);
            format!("cannot open the upgrade socket {}: {e}", path.display())
        })?;
    let for_thread = path.clone();
    std::thread::spawn(move || {
        match serve(&socket, &for_thread, &listeners, runtime) {
            Ok(new_pid) => {
                info!(
                    new_pid,
                    "upgrade: the new process serves; draining and exiting"
                );
                // The same path as SIGTERM: stop accepting, drain, exit.
                let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGTERM);
            }
            Err(why) => {
                warn!(reason = %why, "upgrade aborted; this process keeps serving");
                busy.store(false, Ordering::SeqCst);
            }
        }
        let _ = std::fs::remove_file(&for_thread);
    });
    Ok(path)
}

fn serve(
    socket: &std::os::fd::OwnedFd,
    path: &Path,
    listeners: &[(Handed, Arc<TcpListener>)],
    runtime: serde_json::Value,
) -> Result<i32, String> {
    let (conn, uid, pid) =
        side::accept(socket).map_err(|e| format!("no new process connected: {e}"))?;
    let _ = std::fs::remove_file(path);
    let own = nix::unistd::getuid().as_raw();
    if uid != own && uid != 0 {
        return Err(format!(
            "refused a peer with uid {uid} on the upgrade socket"
        ));
    }
    let offer = Offer {
        pid: std::process::id(),
        listeners: listeners.iter().map(|(h, _)| h.clone()).collect(),
        runtime,
    };
    let payload = serde_json::to_vec(&offer).map_err(|e| e.to_string())?;
    let fds: Vec<_> = listeners.iter().map(|(_, l)| l.as_raw_fd()).collect();
    side::send(&conn, &payload, &fds).map_err(|e| format!("cannot send the sockets: {e}"))?;
    info!(
        new_pid = pid,
        listeners = fds.len(),
        "upgrade: listening sockets handed over"
    );
    side::set_timeout(&conn, READY_WINDOW).map_err(|e| e.to_string())?;
    let (answer, _) =
        side::recv(&conn).map_err(|e| format!("no word from the new process: {e}"))?;
    if answer != READY {
        return Err("the new process stopped before it served".into());
    }
    // Tells systemd (when it runs us) that the new process is the service's main process, so
    // our exit does not end the service.
    ha_core::lifecycle::notify(&[ha_core::lifecycle::Notify::MainPid(pid as u32)]);
    let _ = side::send(&conn, BYE, &[]);
    Ok(pid)
}
