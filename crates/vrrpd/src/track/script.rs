//! Tracking with a script: run every `interval` as the configured user, killed after
//! `timeout`; exit status 0 is success. Like keepalived's script security, a script is refused
//! (and counts as failing) when it or any directory above it is writable by anyone but root,
//! since vrrpd runs as root and would run whatever a user put there.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;

use tokio::sync::mpsc;

use super::poll::{poll, Probe};
use super::CheckEvent;
use crate::config::TrackScript;

const S_ISVTX: u32 = 0o1000;
const S_IWGRP: u32 = 0o020;
const S_IWOTH: u32 = 0o002;

/// Whether a file or directory with these attributes lets a non-root user change what runs.
/// A root-owned sticky directory (like /tmp) does not: others cannot replace our entries.
pub fn is_insecure(uid: u32, gid: u32, mode: u32, is_dir: bool) -> bool {
    let writable_by_others = uid != 0 || (mode & S_IWGRP != 0 && gid != 0) || mode & S_IWOTH != 0;
    writable_by_others && !(is_dir && uid == 0 && mode & S_ISVTX != 0)
}

/// Checks the program and every directory above it.
pub fn check_security(program: &Path) -> Result<(), String> {
    let program = program
        .canonicalize()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    for path in program.ancestors() {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if is_insecure(meta.uid(), meta.gid(), meta.mode(), meta.is_dir()) {
            return Err(format!(
                "refused: {} is writable by a user other than root",
                path.display()
            ));
        }
    }
    Ok(())
}

pub async fn run(check: usize, config: TrackScript, events: mpsc::Sender<CheckEvent>) {
    let mut words = config.command.split_whitespace();
    let program = words.next().unwrap_or_default().to_string();
    let args: Vec<String> = words.map(str::to_string).collect();
    if let Err(reason) = check_security(Path::new(&program)) {
        tracing::error!(script = %config.name, %reason, "tracking script refused");
        let _ = events.send(CheckEvent::new(check, false, reason)).await;
        return;
    }
    let user = match &config.user {
        None => None,
        Some(name) => match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Some((user.uid.as_raw(), user.gid.as_raw())),
            _ => {
                let reason = format!("user {name:?} does not exist");
                let _ = events.send(CheckEvent::new(check, false, reason)).await;
                return;
            }
        },
    };
    let probe = ScriptProbe {
        program,
        args,
        user,
        timeout: config.timeout.get(),
    };
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

/// One run of the script, as its user, bounded by the timeout.
struct ScriptProbe {
    program: String,
    args: Vec<String>,
    user: Option<(u32, u32)>,
    timeout: std::time::Duration,
}

impl Probe for ScriptProbe {
    async fn probe(&mut self) -> (bool, String) {
        run_once(&self.program, &self.args, self.user, self.timeout).await
    }
}

async fn run_once(
    program: &str,
    args: &[String],
    user: Option<(u32, u32)>,
    timeout: std::time::Duration,
) -> (bool, String) {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot run {program}: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => (true, "exit status 0".to_string()),
        Ok(Ok(status)) => (false, status.to_string()),
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => {
            let _ = child.kill().await;
            (false, format!("timed out after {timeout:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_controlled_paths_are_secure() {
        assert!(!is_insecure(0, 0, 0o755, false));
        assert!(is_insecure(1000, 0, 0o755, false), "owned by a user");
        assert!(is_insecure(0, 0, 0o757, false), "world writable");
        assert!(
            is_insecure(0, 100, 0o775, true),
            "group writable, group not root"
        );
        assert!(
            !is_insecure(0, 0, 0o775, true),
            "group writable by root's group"
        );
        assert!(!is_insecure(0, 0, 0o1777, true), "/tmp: sticky and root's");
        assert!(is_insecure(0, 0, 0o777, true), "world writable, not sticky");
    }

    #[test]
    fn a_script_in_a_user_writable_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("check.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        assert!(check_security(&script).is_err());
    }
}
