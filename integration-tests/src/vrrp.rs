//! Scenario helpers for the VRRP tests: vrrpd and keepalived started inside a LAN host's
//! namespace (killed when the test ends, pass or fail), their status, which hosts hold a
//! virtual address, a tiny TCP service answering its host's name and a client reaching it,
//! a stand-in daemon answering `health` on a control socket, and crafted VRRP packets sent
//! from a raw socket in a namespace.
//!
//! Everything that must run inside a namespace runs on a thread that entered it with
//! `setns(2)`, so the tests need no tools beyond `ip` and the binaries under test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::control_line;
use crate::netns::{Host, Lan};
use crate::{bin, wait_until};

/// Runs `f` on a thread inside network namespace `ns` and returns its result.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter_netns(&ns);
        f()
    })
    .join()
    .expect("thread in namespace")
}

fn enter_netns(ns: &str) {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).expect("open namespace");
    // SAFETY: setns on a descriptor we hold open, for this thread only.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

/// The YAML of a vrrpd with one instance on `eth0`; `extra` is appended to the instance
/// (indented by 4 spaces, e.g. `"    version: 2\n"`).
pub fn vrrpd_config(socket: &Path, priority: u8, interval: &str, vip: &str, extra: &str) -> String {
    format!(
        "control: {{ socket: {} }}\nlog: {{ level: debug }}\ninstances:\n  - name: front\n    interface: eth0\n    vrid: 51\n    priority: {priority}\n    advert_interval: {interval}\n    virtual_addresses: [{vip}]\n{extra}",
        socket.display()
    )
}

/// vrrpd running in a host's namespace.
pub struct VrrpNode {
    pub host: Host,
    pub socket: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl VrrpNode {
    /// Writes `yaml` to `<dir>/<host>.yaml`, starts vrrpd in the host's namespace and waits
    /// until its instances are initialized. The config must use `socket` as control socket.
    pub fn start(lan: &Lan, host: &Host, dir: &Path, socket: &Path, yaml: &str) -> VrrpNode {
        let config = dir.join(format!("{}.yaml", host.name));
        std::fs::write(&config, yaml).expect("write config");
        let log = dir.join(format!("{}.log", host.name));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .arg(bin("vrrpd"))
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn vrrpd");
        let _ = lan;
        let mut node = VrrpNode {
            host: host.clone(),
            socket: socket.to_path_buf(),
            log,
            child: Some(child),
        };
        node.wait_ready();
        node
    }

    fn wait_ready(&mut self) {
        let name = self.host.name.clone();
        wait_until(
            &format!("vrrpd on {name} ready"),
            Duration::from_secs(30),
            || {
                if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                    panic!(
                        "vrrpd on {name} exited with {status}; log:\n{}",
                        self.log_text()
                    );
                }
                let answer = control_line(&self.socket, r#"{"cmd":"health"}"#).ok()?;
                answer.contains("\"ready\":true").then_some(())
            },
        );
    }

    pub fn request(&self, line: &str) -> Value {
        let answer = control_line(&self.socket, line).expect("control request");
        serde_json::from_str(&answer).expect("json answer")
    }

    /// The status of instance `front`.
    pub fn instance(&self) -> Value {
        let status = self.request(r#"{"cmd":"status"}"#);
        status["data"]["service"]["instances"][0].clone()
    }

    pub fn state(&self) -> String {
        self.instance()["state"].as_str().unwrap_or("").to_string()
    }

    /// Packets dropped for `reason`, as counted in status.
    pub fn dropped(&self, reason: &str) -> u64 {
        self.instance()["counters"]["dropped"][reason]
            .as_u64()
            .unwrap_or(0)
    }

    pub fn transitions(&self) -> Vec<Value> {
        self.instance()["transitions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// SIGTERM, then wait for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            wait_until(
                "vrrpd to exit after SIGTERM",
                Duration::from_secs(20),
                || child.try_wait().ok().flatten(),
            );
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for VrrpNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::child::kill_and_reap(&mut child, "vrrpd");
        }
        if std::thread::panicking() {
            eprintln!("--- vrrpd on {} ---\n{}", self.host.name, self.log_text());
        }
    }
}

/// keepalived (Debian's) running in a host's namespace, VRRP only, in the foreground.
pub struct Keepalived {
    pub host: Host,
    log: PathBuf,
    vrrp_pid: PathBuf,
    child: Option<Child>,
}

impl Keepalived {
    /// Starts keepalived with one instance on eth0, VRID 51.
    pub fn start(
        host: &Host,
        dir: &Path,
        version: u8,
        priority: u8,
        interval: &str,
        vip: &str,
    ) -> Keepalived {
        let conf = dir.join(format!("keepalived-{}.conf", host.name));
        let text = format!(
            "global_defs {{\n  router_id {name}\n  script_user root\n  enable_script_security\n}}\n\
             vrrp_instance front {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {priority}\n  advert_int {interval}\n  version {version}\n  virtual_ipaddress {{\n    {vip}\n  }}\n}}\n",
            name = host.name
        );
        std::fs::write(&conf, text).expect("write keepalived.conf");
        let log = dir.join(format!("keepalived-{}.log", host.name));
        let pid = dir.join(format!("keepalived-{}.pid", host.name));
        let vrrp_pid = dir.join(format!("keepalived-{}.vrrp.pid", host.name));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &host.ns,
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-P",
                "-f",
            ])
            .arg(&conf)
            .arg("-p")
            .arg(&pid)
            .arg("-r")
            .arg(&vrrp_pid)
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn keepalived");
        Keepalived {
            host: host.clone(),
            log,
            vrrp_pid,
            child: Some(child),
        }
    }

    /// SIGTERM (keepalived sends priority 0 and removes its addresses), then wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let exited = poll(Duration::from_secs(15), || child.try_wait().ok().flatten());
            if exited.is_none() {
                crate::child::kill_and_reap(&mut child, "keepalived");
            }
        }
        self.kill_vrrp_child();
    }

    fn kill_vrrp_child(&self) {
        let pid = std::fs::read_to_string(&self.vrrp_pid).ok();
        if let Some(pid) = pid.and_then(|p| p.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- keepalived on {} ---\n{}",
                self.host.name,
                self.log_text()
            );
        }
        self.stop();
    }
}

/// The names of the hosts that have `vip` (an address without prefix) on eth0.
pub fn holders(lan: &Lan, hosts: &[&Host], vip: &str) -> Vec<String> {
    hosts
        .iter()
        .filter(|h| {
            lan.addresses(h)
                .iter()
                .any(|a| a.split('/').next() == Some(vip))
        })
        .map(|h| h.name.clone())
        .collect()
}

/// Waits until exactly `expected` holds `vip`.
pub fn wait_for_holder(lan: &Lan, hosts: &[&Host], vip: &str, expected: &str, timeout: Duration) {
    wait_until(&format!("{vip} held by {expected} alone"), timeout, || {
        (holders(lan, hosts, vip) == [expected.to_string()]).then_some(())
    });
}

/// A TCP service answering its host's name to every connection, inside the host's namespace.
pub struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    pub fn start(host: &Host, port: u16) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let (ns, name, flag) = (host.ns.clone(), host.name.clone(), stop.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            enter_netns(&ns);
            let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind responder");
            listener.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.write_all(name.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ready_rx.recv().expect("responder listening");
        Responder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// From `client`'s namespace: connects to `ip:port` and returns what the service answered
/// (the name of the host that holds the address), or `None` when unreachable within 300 ms.
pub fn fetch(client: &Host, ip: &str, port: u16) -> Option<String> {
    let target = format!("{ip}:{port}");
    in_netns(&client.ns, move || {
        let addr = target.parse().ok()?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    })
}

/// A stand-in for a tracked daemon: answers `health` with ready on a control socket until
/// killed (then the socket is gone and open connections are closed, as when a process dies).
pub struct HealthStandIn {
    pub socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HealthStandIn {
    pub fn start(socket: &Path) -> HealthStandIn {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("bind stand-in socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut connections: Vec<JoinHandle<()>> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let flag = flag.clone();
                        connections.push(std::thread::spawn(move || serve_health(stream, &flag)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            for c in connections {
                let _ = c.join();
            }
        });
        HealthStandIn {
            socket: socket.to_path_buf(),
            stop,
            thread: Some(thread),
        }
    }

    /// The daemon "dies": the socket disappears and connections close.
    pub fn kill(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_health(stream: std::os::unix::net::UnixStream, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {
                let answer = b"{\"ok\":true,\"data\":{\"ready\":true}}\n";
                if writer.write_all(answer).is_err() {
                    return;
                }
                line.clear();
            }
            Err(_) => continue,
        }
    }
}

impl Drop for HealthStandIn {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A VRRPv3 advertisement for IPv4 (checksum over the pseudo-header, keepalived's default).
pub fn vrrp_v3(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    vrid: u8,
    priority: u8,
    vips: &[Ipv4Addr],
) -> Vec<u8> {
    let mut message = vec![0x31, vrid, priority, vips.len() as u8, 0x00, 10, 0, 0];
    for vip in vips {
        message.extend_from_slice(&vip.octets());
    }
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&source.octets());
    pseudo.extend_from_slice(&destination.octets());
    pseudo.extend_from_slice(&[0, 112]);
    pseudo.extend_from_slice(&(message.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&message);
    let sum = checksum(&pseudo);
    message[6..8].copy_from_slice(&sum.to_be_bytes());
    message
}

/// An IPv4 datagram around `payload`, protocol 112, with the given TTL.
pub fn ipv4_datagram(source: Ipv4Addr, destination: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut d = vec![0x45, 0xc0];
    d.extend_from_slice(&(total as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 0, ttl, 112, 0, 0]);
    d.extend_from_slice(&source.octets());
    d.extend_from_slice(&destination.octets());
    let sum = checksum(&d);
    d[10..12].copy_from_slice(&sum.to_be_bytes());
    d.extend_from_slice(payload);
    d
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends a whole IPv4 datagram (header included) out of `eth0` of `host`.
pub fn send_raw(host: &Host, datagram: Vec<u8>) {
    in_netns(&host.ns, move || {
        // SAFETY: plain socket(2); checked below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let device = b"eth0";
        // SAFETY: setsockopt with a buffer and its length.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                device.as_ptr().cast(),
                device.len() as libc::socklen_t,
            );
        }
        let destination = [datagram[16], datagram[17], datagram[18], datagram[19]];
        // SAFETY: sockaddr_in is plain old data.
        let mut to: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        to.sin_family = libc::AF_INET as libc::sa_family_t;
        to.sin_addr.s_addr = u32::from_ne_bytes(destination);
        // SAFETY: sendto with buffers we own and matching lengths.
        let rc = unsafe {
            libc::sendto(
                fd,
                datagram.as_ptr().cast(),
                datagram.len(),
                0,
                (&to as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        let error = std::io::Error::last_os_error();
        // SAFETY: closing the descriptor we opened.
        unsafe { libc::close(fd) };
        assert!(rc >= 0, "send raw datagram: {error}");
    });
}

/// Like `wait_until`, but gives up with `None` instead of failing the test.
fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
