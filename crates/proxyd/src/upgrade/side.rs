//! The side channel of a binary upgrade: a `SOCK_SEQPACKET` Unix socket next to the control
//! socket, on which the running process hands its listening sockets to the new one.
//!
//! The control channel speaks JSON lines through ha-core and cannot carry file
//! descriptors, so `upgrade.handoff` opens this socket and answers its path. Sequenced
//! packets keep each message whole: the listener list and its descriptors (`SCM_RIGHTS`)
//! arrive in one `recvmsg`, and `ready`/`bye` are single packets.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, UnixAddr,
};
use nix::sys::time::TimeVal;

/// Most listeners one handoff carries.
pub const MAX_FDS: usize = 64;
/// Largest message on the side channel.
const MAX_MESSAGE: usize = 64 * 1024;

fn io(e: nix::Error) -> std::io::Error {
    std::io::Error::from(e)
}

fn seqpacket() -> std::io::Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io)
}

/// Binds and listens on `path` (replacing a leftover file), mode 0600.
pub fn listen(path: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let fd = seqpacket()?;
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(path).map_err(io)?).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    socket::listen(&fd, Backlog::new(1).map_err(io)?).map_err(io)?;
    Ok(fd)
}

/// Makes blocking receives (and `accept`, on Linux) give up after `timeout`.
pub fn set_timeout(fd: &OwnedFd, timeout: Duration) -> std::io::Result<()> {
    let tv = TimeVal::new(timeout.as_secs() as _, timeout.subsec_micros() as _);
    socket::setsockopt(fd, sockopt::ReceiveTimeout, &tv).map_err(io)
}

/// Accepts one connection (bounded by the socket's receive timeout); returns it with the
/// peer's uid and pid.
pub fn accept(listener: &OwnedFd) -> std::io::Result<(OwnedFd, u32, i32)> {
    let raw = socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC).map_err(io)?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let conn = unsafe { OwnedFd::from_raw_fd(raw) };
    let cred = socket::getsockopt(&conn, sockopt::PeerCredentials).map_err(io)?;
    Ok((conn, cred.uid(), cred.pid()))
}

pub fn connect(path: &Path) -> std::io::Result<OwnedFd> {
    let fd = seqpacket()?;
    socket::connect(fd.as_raw_fd(), &UnixAddr::new(path).map_err(io)?).map_err(io)?;
    Ok(fd)
}

/// Sends one packet carrying `fds`.
pub fn send(conn: &impl AsFd, payload: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let iov = [IoSlice::new(payload)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    socket::sendmsg::<()>(
        conn.as_fd().as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::empty(),
        None,
    )
    .map_err(io)?;
    Ok(())
}

/// Receives one packet and the descriptors it carries (close-on-exec). An empty payload
/// means the peer closed the connection.
pub fn recv(conn: &impl AsFd) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (len, raw_fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = socket::recvmsg::<()>(
            conn.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io)?;
        let mut raw_fds = Vec::new();
        for c in msg.cmsgs().map_err(io)? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                raw_fds.extend(fds);
            }
        }
        (msg.bytes, raw_fds)
    };
    // SAFETY: SCM_RIGHTS installed these descriptors in this process for us alone.
    let fds = raw_fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    buf.truncate(len);
    Ok((buf, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_descriptors_cross_the_side_channel() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("side");
        let listener = listen(&path).expect("listen");
        set_timeout(&listener, Duration::from_secs(5)).expect("timeout");
        let client = connect(&path).expect("connect");
        let (server, uid, _) = accept(&listener).expect("accept");
        assert_eq!(uid, nix::unistd::getuid().as_raw());
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
        let addr = tcp.local_addr().expect("addr");
        send(&server, b"hello", &[tcp.as_raw_fd()]).expect("send");
        let (payload, fds) = recv(&client).expect("recv");
        assert_eq!(payload, b"hello");
        assert_eq!(fds.len(), 1);
        let inherited = std::net::TcpListener::from(fds.into_iter().next().expect("fd"));
        assert_eq!(inherited.local_addr().expect("addr"), addr);
        drop(server);
        let (payload, fds) = recv(&client).expect("recv after close");
        assert!(payload.is_empty() && fds.is_empty());
    }
}
