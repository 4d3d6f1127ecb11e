//! SIGUSR2 starts the upgrade from inside (nginx's USR2): the running proxyd starts
//! `<its argv[0]> <its arguments> --upgrade`, which takes over as [`super::takeover`] says.
//! Started by the running process, the new one lives in the same systemd service (cgroup),
//! so `systemctl kill -s USR2 --kill-whom=main proxyd` upgrades a unit in place.

use std::ffi::OsString;
use std::path::PathBuf;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Listens for SIGUSR2 until `stop`.
pub fn on_sigusr2(stop: CancellationToken) {
    let mut usr2 = match signal(SignalKind::user_defined2()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGUSR2; upgrade with proxyd --upgrade");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                got = usr2.recv() => if got.is_none() { return },
            }
            start_new_process();
        }
    });
}

fn start_new_process() {
    let mut args = std::env::args_os();
    let argv0 = args.next().map(PathBuf::from);
    // The installed path, which a package upgrade replaced; /proc/self/exe is the old file.
    let exe = match argv0 {
        Some(p) if p.is_absolute() => p,
        _ => match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "SIGUSR2: cannot tell which binary to start");
                return;
            }
        },
    };
    let rest: Vec<OsString> = args.filter(|a| a != "--upgrade").collect();
    match std::process::Command::new(&exe)
        .args(&rest)
        .arg("--upgrade")
        .spawn()
    {
        Ok(mut child) => {
            info!(binary = %exe.display(), pid = child.id(), "SIGUSR2: started the new process");
            // Reap it if it fails (the handoff then aborts and this process keeps serving).
            std::thread::spawn(move || child.wait());
        }
        Err(e) => {
            warn!(binary = %exe.display(), error = %e, "SIGUSR2: cannot start the new process")
        }
    }
}
