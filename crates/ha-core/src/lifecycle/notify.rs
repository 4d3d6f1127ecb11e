//! sd_notify, written directly: a datagram to `$NOTIFY_SOCKET` (a path, or `@` for the
//! abstract namespace). Nothing happens when the variable is unset (not run by systemd).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// A state change systemd is told about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notify {
    Ready,
    Reloading,
    Stopping,
    Status(String),
    /// Another process is now the service's main process (after a binary upgrade).
    MainPid(u32),
}

impl Notify {
    fn line(&self) -> String {
        match self {
            Notify::Ready => "READY=1".into(),
            Notify::Reloading => {
                // systemd ≥ 253 wants the monotonic time with RELOADING=1 (Type=notify-reload).
                let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
                    .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
                    .unwrap_or(0);
                format!("RELOADING=1\nMONOTONIC_USEC={now}")
            }
            Notify::Stopping => "STOPPING=1".into(),
            Notify::Status(s) => format!("STATUS={}", s.replace('\n', " ")),
            Notify::MainPid(pid) => format!("MAINPID={pid}"),
        }
    }
}

/// Sends `states` to systemd if `NOTIFY_SOCKET` is set; errors are logged, never fatal.
pub fn notify(states: &[Notify]) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let message: Vec<String> = states.iter().map(Notify::line).collect();
    let message = message.join("\n");
    let result = (|| -> std::io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        let bytes = target.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(&target)?,
        };
        socket.send_to_addr(message.as_bytes(), &addr)?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_notify_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let receiver = UnixDatagram::bind(&path).expect("bind");
        // The environment is process-wide: this is the only test that sets NOTIFY_SOCKET.
        std::env::set_var("NOTIFY_SOCKET", &path);
        notify(&[Notify::Ready, Notify::Status("serving".into())]);
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).expect("datagram");
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }
}
