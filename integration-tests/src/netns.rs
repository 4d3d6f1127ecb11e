//! A LAN of network namespaces joined by a bridge, for everything that crosses hosts.
//!
//! Each [`Lan`] has a "switch" namespace holding a bridge and one namespace per host whose
//! `eth0` is a veth plugged into that bridge. Namespaces are isolated, so every test can use
//! the same addresses (198.18.0.0/15, never anything else) without colliding with another
//! test running in parallel. Dropping the `Lan` deletes its namespaces, which removes the
//! links too; namespaces left by a test process that was killed are removed by the next
//! `Lan::new`.

use crate::child::{OutputWithin, QUICK};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_LAN: AtomicU32 = AtomicU32::new(0);

/// One host of a LAN.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    /// Its network namespace.
    pub ns: String,
    /// `198.18.0.1/24`.
    pub cidr: String,
    /// The bridge port in the switch namespace (set down to cut the host's link).
    port: String,
}

impl Host {
    /// The address without prefix.
    pub fn ip(&self) -> &str {
        self.cidr.split('/').next().unwrap_or(&self.cidr)
    }
}

pub struct Lan {
    prefix: String,
    switch: String,
    hosts: Vec<Host>,
}

/// Runs `ip` with `args`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) -> Output {
    let out = Command::new("ip")
        .args(args)
        .output_within(QUICK)
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Lan {
    /// A new LAN; `tag` (a few letters) names its namespaces for whoever lists them.
    pub fn new(tag: &str) -> Lan {
        crate::watchdog::step(format!("creating the namespace LAN {tag}"));
        remove_orphans();
        let pid = std::process::id();
        let n = NEXT_LAN.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("ha-{tag}-{pid}-{n}");
        let switch = format!("{prefix}-sw");
        let lan = Lan {
            prefix,
            switch,
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &lan.switch]);
        lan.exec_ok(
            &lan.switch,
            &[
                "ip",
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            ],
        );
        lan.exec_ok(&lan.switch, &["ip", "link", "set", "br0", "up"]);
        lan
    }

    /// Adds a host with `eth0` at `cidr` (e.g. `198.18.0.1/24`), and `lo` up.
    pub fn add_host(&mut self, name: &str, cidr: &str) -> Host {
        let ns = format!("{}-{name}", self.prefix);
        let port = format!("p{}", self.hosts.len());
        ip(&["netns", "add", &ns]);
        ip(&[
            "link",
            "add",
            "eth0",
            "netns",
            &ns,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.switch,
        ]);
        self.exec_ok(&self.switch, &["ip", "link", "set", &port, "master", "br0"]);
        self.exec_ok(&self.switch, &["ip", "link", "set", &port, "up"]);
        self.exec_ok(&ns, &["ip", "link", "set", "lo", "up"]);
        self.exec_ok(&ns, &["ip", "addr", "add", cidr, "dev", "eth0"]);
        self.exec_ok(&ns, &["ip", "link", "set", "eth0", "up"]);
        let host = Host {
            name: name.to_string(),
            ns,
            cidr: cidr.to_string(),
            port,
        };
        self.hosts.push(host.clone());
        host
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Runs a command inside a namespace and returns its output.
    pub fn exec(&self, ns: &str, cmd: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .output_within(QUICK)
            .expect("ip netns exec")
    }

    fn exec_ok(&self, ns: &str, cmd: &[&str]) -> Output {
        let out = self.exec(ns, cmd);
        assert!(
            out.status.success(),
            "in {ns}: {} failed: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts a long-running command inside a host's namespace (`ip netns exec` execs it, so
    /// the child is the command itself and killing it kills the command).
    pub fn spawn(&self, host: &Host, cmd: &[&str], stderr: Stdio) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .args(cmd)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn in namespace")
    }

    /// Cuts (or restores) a host's link by setting its bridge port down (or up): the host's own
    /// `eth0` stays up, as when a cable or switch port fails.
    pub fn set_link(&self, host: &Host, up: bool) {
        let state = if up { "up" } else { "down" };
        self.exec_ok(&self.switch, &["ip", "link", "set", &host.port, state]);
    }

    /// IPv4 addresses on a host's `eth0`, as `a.b.c.d/len`.
    pub fn addresses(&self, host: &Host) -> Vec<String> {
        let out = self.exec_ok(&host.ns, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .skip_while(|w| *w != "inet")
                    .nth(1)
                    .map(str::to_string)
            })
            .collect()
    }

    /// Whether `host` reaches `target` with one ping (1 s at most).
    pub fn ping(&self, host: &Host, target: &str) -> bool {
        self.exec(&host.ns, &["ping", "-c", "1", "-W", "1", target])
            .status
            .success()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &host.ns])
                .output_within(QUICK);
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch])
            .output_within(QUICK);
    }
}

/// Deletes namespaces of LANs whose test process is gone (killed before its `Drop` ran).
fn remove_orphans() {
    let Ok(out) = Command::new("ip")
        .args(["netns", "list"])
        .output_within(QUICK)
    else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let mut parts = name.split('-');
        if parts.next() != Some("ha") {
            continue;
        }
        let pid = parts.nth(1).and_then(|p| p.parse::<i32>().ok());
        if let Some(pid) = pid {
            let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
            if !alive {
                let _ = Command::new("ip")
                    .args(["netns", "del", name])
                    .output_within(QUICK);
            }
        }
    }
}
