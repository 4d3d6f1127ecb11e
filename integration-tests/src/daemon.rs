//! One of our daemons, started for a test from a config the test wrote, and killed when the
//! test ends (pass or fail).

use crate::child::{OutputWithin, QUICK};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::{bin, wait_until};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaemonKind {
    Vrrpd,
    Proxyd,
    Dbrouterd,
}

impl DaemonKind {
    pub fn name(self) -> &'static str {
        match self {
            DaemonKind::Vrrpd => "vrrpd",
            DaemonKind::Proxyd => "proxyd",
            DaemonKind::Dbrouterd => "dbrouterd",
        }
    }
}

/// A running daemon. Its stderr goes to `<dir>/<name>.log`, shown when a test fails.
pub struct Daemon {
    pub kind: DaemonKind,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Writes `config_yaml` to `<dir>/<name>.yaml` and starts the daemon on it, returning once
    /// its control socket answers `hello`.
    pub fn start(kind: DaemonKind, dir: &Path, socket: &Path, config_yaml: &str) -> Daemon {
        crate::watchdog::step(format!("starting {}", kind.name()));
        let config = dir.join(format!("{}.yaml", kind.name()));
        std::fs::write(&config, config_yaml).expect("write config");
        let log = dir.join(format!("{}.log", kind.name()));
        let child = Self::spawn(kind, &config, &log);
        let mut daemon = Daemon {
            kind,
            config,
            socket: socket.to_path_buf(),
            log,
            child: Some(child),
        };
        daemon.wait_ready();
        daemon
    }

    fn spawn(kind: DaemonKind, config: &Path, log: &Path) -> Child {
        let log_file = std::fs::File::create(log).expect("create log");
        Command::new(bin(kind.name()))
            .arg("-c")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn daemon")
    }

    fn wait_ready(&mut self) {
        let socket = self.socket.clone();
        let name = self.kind.name();
        let child = self.child.as_mut().expect("child");
        wait_until(
            &format!("{name} to answer on its control socket"),
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{name} exited with {status} before it was ready; log:\n{}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    );
                }
                control_line(&socket, r#"{"cmd":"hello"}"#)
                    .ok()
                    .filter(|a| a.contains("\"ok\":true"))
            },
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends one request line and returns the answer line.
    pub fn request(&self, line: &str) -> String {
        control_line(&self.socket, line).expect("control request")
    }

    /// SIGTERM, then wait (at most 20 s) for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("child");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        wait_until(
            "daemon to exit after SIGTERM",
            Duration::from_secs(20),
            || child.try_wait().ok().flatten(),
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::child::kill_and_reap(&mut child, self.kind.name());
            if std::thread::panicking() {
                eprintln!("--- {} log ---\n{}", self.kind.name(), self.log_text());
            }
        }
    }
}

/// One request/answer exchange on a control socket, with a 5 s timeout.
pub fn control_line(socket: &Path, line: &str) -> std::io::Result<String> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    writer.write_all(line.as_bytes())?;
    writer.write_all(b"\n")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    Ok(answer)
}

/// Runs a workspace binary with arguments, returning its output.
pub fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name))
        .args(args)
        .output_within(QUICK)
        .expect("run binary")
}

/// Runs hactl as `nobody` (uid 65534, group nogroup) from a copy in `dir` that the
/// unprivileged user can execute (the build tree may not be reachable for it).
pub fn hactl_as_nobody(dir: &Path, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let copy = dir.join("hactl");
    if !copy.exists() {
        std::fs::copy(bin("hactl"), &copy).expect("copy hactl");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    Command::new(&copy)
        .args(args)
        .uid(65534)
        .gid(65534)
        .output_within(QUICK)
        .expect("run hactl as nobody")
}
