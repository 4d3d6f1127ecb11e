//! A server given by host name: proxyd keeps its resolved addresses and refreshes them every
//! `resolve_interval`, follows a change, keeps the last good addresses when the name stops
//! resolving (and counts it), and shows a name that never resolved as down.
//!
//! The name comes from `/etc/hosts`: proxyd runs under `ip netns exec NS`, which bind-mounts
//! `/etc/netns/NS/hosts` over `/etc/hosts` for it, and glibc reads the file on each lookup, so
//! rewriting that file changes what the name resolves to. The backends and the test's client
//! run on threads inside the same namespace; its loopback holds 127.0.0.0/8, so the fixed
//! ports and addresses below collide with nothing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::backend::{get, raw_exchange, Backend};
use integration_tests::daemon::control_line;
use integration_tests::netns::ip;
use integration_tests::vrrp::in_netns;
use integration_tests::{bin, require_root, shared_tempdir, wait_until};

/// A network namespace of this test and its `/etc/netns/NS` directory, removed on drop.
struct HostsNamespace {
    name: String,
    etc: PathBuf,
}

impl HostsNamespace {
    fn new() -> HostsNamespace {
        // Named like the LAN helper's namespaces (`ha-TAG-PID-N`), so a killed run's leftover
        // is removed by the next run.
        let name = format!("ha-rsv-{}-0", std::process::id());
        let etc = PathBuf::from("/etc/netns").join(&name);
        let ns = HostsNamespace { name, etc };
        ip(&["netns", "add", &ns.name]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        std::fs::create_dir_all(&ns.etc).expect("create /etc/netns/NS");
        ns
    }

    /// Replaces the namespace's hosts file (what `app.test` resolves to inside it).
    fn write_hosts(&self, lines: &str) {
        // Written in place, not renamed over: the bind mount holds the file's inode.
        std::fs::write(
            self.etc.join("hosts"),
            format!("127.0.0.1 localhost\n{lines}"),
        )
        .expect("write hosts");
    }
}

impl Drop for HostsNamespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

/// proxyd started with `ip netns exec` (which execs it: the child is proxyd), killed on drop.
struct NamespacedProxyd {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl NamespacedProxyd {
    fn start(ns: &str, dir: &std::path::Path, body: &str) -> NamespacedProxyd {
        let socket = dir.join("proxyd.sock");
        let config = dir.join("proxyd.yaml");
        let log = dir.join("proxyd.log");
        std::fs::write(
            &config,
            format!(
                "workers: 1\ncontrol: {{ socket: {} }}\nmetrics: {{ listen: \"{METRICS}\" }}\n{body}",
                socket.display()
            ),
        )
        .expect("write config");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(integration_tests::bin("proxyd"))
            .arg("-c")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create log"))
            .spawn()
            .expect("spawn proxyd");
        let mut proxyd = NamespacedProxyd { child, socket, log };
        wait_until(
            "proxyd to answer on its control socket",
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = proxyd.child.try_wait() {
                    panic!("proxyd exited with {status}; log:\n{}", proxyd.log_text());
                }
                control_line(&proxyd.socket, r#"{"cmd":"hello"}"#)
                    .ok()
                    .filter(|a| a.contains("\"ok\":true"))
            },
        );
        proxyd
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `(state, why)` of the first server of `pool` in proxyd's status.
    fn server_state(&self, pool: &str) -> (String, String) {
        let answer = control_line(&self.socket, r#"{"cmd":"status"}"#).expect("status");
        let value: serde_json::Value = serde_json::from_str(&answer).expect("status JSON");
        let server = &value["data"]["service"]["pools"][pool]["servers"][0];
        (
            server["state"].as_str().unwrap_or("missing").to_owned(),
            server["why"].as_str().unwrap_or("").to_owned(),
        )
    }
}

impl Drop for NamespacedProxyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- proxyd log ---\n{}", self.log_text());
        }
    }
}

const LISTEN: &str = "127.0.0.1:8080";
const METRICS: &str = "127.0.0.1:9100";

/// The `x-server` of the answer to a GET through proxyd, from inside the namespace.
fn answered_by(ns: &str) -> Option<String> {
    in_netns(ns, || {
        let listen: SocketAddr = LISTEN.parse().ok()?;
        let reply = get(listen, "/", &[]).ok()?;
        (reply.status == 200)
            .then(|| reply.header("x-server").map(str::to_owned))
            .flatten()
    })
}

/// `proxyd_server_resolve_failures_total` of the `app.test` server.
fn resolve_failures(ns: &str) -> u64 {
    in_netns(ns, || {
        let metrics: SocketAddr = METRICS.parse().ok()?;
        let bytes = raw_exchange(
            metrics,
            b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
        )
        .ok()?;
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.starts_with("proxyd_server_resolve_failures_total"))
            .find(|l| l.contains("server=\"app.test:9000\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
    })
    .unwrap_or(0)
}

#[test]
fn host_name_server_follows_address_changes_and_keeps_the_last_good_ones() {
    if !require_root("host_name_server_follows_address_changes_and_keeps_the_last_good_ones") {
        return;
    }
    let _ = bin("proxyd");
    let ns = HostsNamespace::new();
    ns.write_hosts("127.0.0.1 app.test\n");
    let (_a, _b) = in_netns(&ns.name, || {
        let at = |s: &str| s.parse::<SocketAddr>().expect("backend address");
        (
            Backend::http_at("a", at("127.0.0.1:9000")),
            Backend::http_at("b", at("127.0.0.2:9000")),
        )
    });
    let dir = shared_tempdir();
    let proxyd = NamespacedProxyd::start(
        &ns.name,
        dir.path(),
        &format!(
            "listeners:\n\
             \x20 - {{ name: web, protocol: http, listen: \"{LISTEN}\", pool: app }}\n\
             \x20 - {{ name: ghost, protocol: http, listen: \"127.0.0.1:8081\", pool: ghost }}\n\
             pools:\n\
             \x20 app:\n\
             \x20   resolve_interval: 500ms\n\
             \x20   servers:\n\
             \x20     - {{ address: \"app.test:9000\" }}\n\
             \x20 ghost:\n\
             \x20   resolve_interval: 500ms\n\
             \x20   servers:\n\
             \x20     - {{ address: \"never.test:9000\" }}\n"
        ),
    );

    assert_eq!(answered_by(&ns.name).as_deref(), Some("a"));

    ns.write_hosts("127.0.0.2 app.test\n");
    wait_until(
        "requests to reach b after the name moved",
        Duration::from_secs(15),
        || (answered_by(&ns.name).as_deref() == Some("b")).then_some(()),
    );
    assert!(
        proxyd
            .log_text()
            .contains("server name resolves to new addresses"),
        "the change is logged"
    );

    ns.write_hosts("");
    wait_until(
        "a failed re-resolution to be counted",
        Duration::from_secs(15),
        || (resolve_failures(&ns.name) >= 1).then_some(()),
    );
    for _ in 0..5 {
        assert_eq!(
            answered_by(&ns.name).as_deref(),
            Some("b"),
            "the last good address is kept while the name does not resolve"
        );
    }
    assert_eq!(proxyd.server_state("app").0, "up");

    let (state, why) = wait_until(
        "the unresolvable server to show down",
        Duration::from_secs(15),
        || {
            let (state, why) = proxyd.server_state("ghost");
            (state == "down").then_some((state, why))
        },
    );
    assert_eq!(state, "down");
    assert!(why.contains("cannot resolve never.test:9000"), "why: {why}");
}
