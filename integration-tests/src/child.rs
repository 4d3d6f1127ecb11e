//! Running a helper command (ip, hactl, the mariadb client, the topology script) with a deadline,
//! so a command that never ends fails the test with its name instead of hanging it.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// For a command that answers at once (ip, openssl, hactl, one SQL statement): generous.
pub const QUICK: Duration = Duration::from_secs(120);
/// For starting or stopping MariaDB servers.
pub const SLOW: Duration = Duration::from_secs(600);

pub trait OutputWithin {
    /// As [`Command::output`], but the command is killed after `limit` and an error of kind
    /// `TimedOut` names it. Its output is collected until it exits; a process it left running
    /// with the same pipes does not hold the caller past the deadline.
    fn output_within(&mut self, limit: Duration) -> std::io::Result<Output>;

    /// As [`OutputWithin::output_within`], with `input` written to the command's stdin.
    fn output_within_fed(&mut self, input: &[u8], limit: Duration) -> std::io::Result<Output>;
}

impl OutputWithin for Command {
    fn output_within(&mut self, limit: Duration) -> std::io::Result<Output> {
        run(self, None, limit)
    }

    fn output_within_fed(&mut self, input: &[u8], limit: Duration) -> std::io::Result<Output> {
        run(self, Some(input.to_vec()), limit)
    }
}

fn run(command: &mut Command, input: Option<Vec<u8>>, limit: Duration) -> std::io::Result<Output> {
    let deadline = Instant::now() + limit;
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(input), Some(mut pipe)) = (input, child.stdin.take()) {
        // From a thread: a command that reads nothing must not block the caller.
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&input);
        });
    }
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                let _ = tx.send(bytes);
            });
        }
        rx
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{} did not finish within {limit:?}; killed",
                    describe(command)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // What is left in the pipes after the exit, unless a leftover process keeps them open.
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        rx.recv_timeout(left).unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// SIGKILL and reap, waiting at most 30 s: a process that does not go (stuck in the kernel) is
/// reported and left behind rather than holding the test forever.
pub fn kill_and_reap(child: &mut Child, what: &str) {
    let _ = child.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    eprintln!(
        "{what} (pid {pid}) did not exit within 30 s of SIGKILL; left behind: {stat} {wchan}"
    );
}

fn describe(command: &Command) -> String {
    let mut text = format!("`{}", command.get_program().to_string_lossy());
    for arg in command.get_args() {
        let arg = arg.to_string_lossy();
        let short: String = arg.chars().take(80).collect();
        text.push(' ');
        text.push_str(&short);
        if short.len() < arg.len() {
            text.push('…');
        }
    }
    text.push('`');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_ends_gives_its_output_and_status() {
        let out = Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .output_within(Duration::from_secs(20))
            .expect("sh runs");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn a_command_that_does_not_end_is_killed_and_named() {
        let started = Instant::now();
        let err = Command::new("sleep")
            .arg("600")
            .output_within(Duration::from_millis(300))
            .expect_err("sleep is cut short");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("`sleep 600`"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn a_process_left_holding_the_pipe_does_not_hold_the_caller() {
        let started = Instant::now();
        let out = Command::new("sh")
            .args(["-c", "sleep 30 & echo started"])
            .output_within(Duration::from_secs(2))
            .expect("sh exits at once");
        assert!(out.status.success());
        assert!(started.elapsed() < Duration::from_secs(25));
    }
}
