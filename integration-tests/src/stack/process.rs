//! A long-running process of the stack, started inside a host's network namespace with its
//! stderr in a log file, that can be killed (SIGKILL, as in a crash) and started again with the
//! same command line. It is killed when dropped, and by the kernel should the process that started
//! it die first (`PR_SET_PDEATHSIG`), so a killed test or demo leaves no daemon behind.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::Host;
use crate::wait_until;

pub struct Process {
    /// `vrrpd`, `proxyd`, `dbrouterd` or `demo-app`.
    pub name: String,
    pub host: Host,
    pub log: PathBuf,
    argv: Vec<String>,
    child: Option<Child>,
}

impl Process {
    /// Starts `argv` in `host`'s namespace, appending its stderr to `log`.
    pub fn start(name: &str, host: &Host, argv: Vec<String>, log: &Path) -> Process {
        let mut process = Process {
            name: name.to_string(),
            host: host.clone(),
            log: log.to_path_buf(),
            argv,
            child: None,
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        crate::watchdog::step(format!("starting {} on {}", self.name, self.host.name));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.host.ns])
            .args(&self.argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl only sets a flag of the child between fork and exec; it allocates nothing.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(command.spawn().expect("spawn in namespace"));
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it still runs; panics with its log if it exited by itself.
    pub fn check_alive(&mut self) {
        if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
            panic!(
                "{} on {} exited with {status}; log:\n{}",
                self.name,
                self.host.name,
                self.log_text()
            );
        }
    }

    /// SIGKILL, as in a crash, and wait for the exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let what = format!("{} on {}", self.name, self.host.name);
            crate::watchdog::step(format!("killing {what}"));
            crate::child::kill_and_reap(&mut child, &what);
        }
    }

    /// SIGTERM (a graceful stop), waiting at most 10 s before SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            crate::child::kill_and_reap(&mut child, &self.name);
        }
    }

    /// Starts it again with the same command line (after [`Process::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Waits until `ready` holds, failing at once (with the log) if the process exits.
    pub fn wait_ready(&mut self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let label = format!("{} on {}: {what}", self.name, self.host.name);
        wait_until(&label, timeout, || {
            self.check_alive();
            ready().then_some(())
        });
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!(
                "--- last lines of {} on {} ({}) ---",
                self.name,
                self.host.name,
                self.log.display()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
