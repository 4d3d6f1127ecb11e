//! The whole stack of the design on one machine, for the chaos tests and `make demo`: a LAN of
//! network namespaces holding
//!
//! ```text
//!   client 198.18.0.200 ──▶ VIP 198.18.0.100:80
//!   lb1 198.18.0.11, lb2 198.18.0.12     vrrpd (VRID 51, tracks proxyd) + proxyd (:80)
//!   app1 198.18.0.21, app2 198.18.0.22   demo-app (:8000) + dbrouterd sidecar (127.0.0.1:6033)
//!   primary .31:3306  standby .32:3307  replica1 .33:3308  replica2 .34:3309   MariaDB, GTID
//! ```
//!
//! [`Stack::start`] builds it and returns once a read through the VIP has been answered by each
//! application server; dropping it stops everything and deletes the namespaces and files.
//! [`fault`] injects the faults of each layer and judges what the client saw; [`traffic`] is the
//! client. Every node keeps its configuration in `<dir>/<node>/` and its control sockets in
//! `<dir>/<node>/run/`, so `hactl --socket-dir <dir>/<node>/run --config-dir <dir>/<node> status`
//! shows that node.

pub mod config;
pub mod db;
pub mod fault;
pub mod process;
pub mod report;
pub mod traffic;

use crate::child::{OutputWithin, QUICK};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::daemon::control_line;
use crate::netns::{Host, Lan};
use crate::vrrp::in_netns;
use config::{dbrouterd_config, proxyd_config, vrrpd_config};
use db::NsDatabases;
use process::Process;

pub const VIP: &str = "198.18.0.100";
pub const HTTP_PORT: u16 = 80;
pub const APP_PORT: u16 = 8000;
pub const DBROUTER_PORT: u16 = 6033;
/// VRRP advertisement interval of both load balancers.
pub const ADVERT_INTERVAL: &str = "100ms";

/// The VIP and port clients use.
pub fn vip_addr() -> SocketAddr {
    SocketAddr::from(([198, 18, 0, 100], HTTP_PORT))
}

/// A load balancer: vrrpd and proxyd.
pub struct LbNode {
    pub host: Host,
    pub dir: PathBuf,
    pub vrrpd: Process,
    pub proxyd: Process,
}

/// An application server: demo-app and its dbrouterd.
pub struct AppNode {
    pub host: Host,
    pub dir: PathBuf,
    pub dbrouterd: Process,
    pub app: Process,
}

/// A node's directory and control sockets, for `hactl`.
pub fn run_dir(node_dir: &Path) -> PathBuf {
    node_dir.join("run")
}

pub struct Stack {
    pub lbs: Vec<LbNode>,
    pub apps: Vec<AppNode>,
    pub db: NsDatabases,
    pub client: Host,
    pub dir: PathBuf,
    // Dropped last: the namespaces go once every process in them is gone.
    pub lan: Lan,
    _tempdir: Option<tempfile::TempDir>,
}

impl Stack {
    /// Builds the whole stack in a new temporary directory; `tag` (a few letters) names its
    /// namespaces.
    pub fn start(tag: &str) -> Result<Stack> {
        let tempdir = crate::shared_tempdir();
        let dir = tempdir.path().to_path_buf();
        let mut stack = Self::start_in(tag, &dir)?;
        stack._tempdir = Some(tempdir);
        Ok(stack)
    }

    /// Builds the whole stack with its files in `dir` (which the caller deletes).
    pub fn start_in(tag: &str, dir: &Path) -> Result<Stack> {
        let mut lan = Lan::new(tag);
        let lb_hosts = [
            lan.add_host("lb1", "198.18.0.11/24"),
            lan.add_host("lb2", "198.18.0.12/24"),
        ];
        let app_hosts = [
            lan.add_host("app1", "198.18.0.21/24"),
            lan.add_host("app2", "198.18.0.22/24"),
        ];
        let db_hosts = [
            lan.add_host("primary", "198.18.0.31/24"),
            lan.add_host("standby", "198.18.0.32/24"),
            lan.add_host("replica1", "198.18.0.33/24"),
            lan.add_host("replica2", "198.18.0.34/24"),
        ];
        let client = lan.add_host("client", "198.18.0.200/24");

        crate::watchdog::step("stack: starting the MariaDB servers");
        let db = NsDatabases::start(
            &dir.join("db"),
            [&db_hosts[0], &db_hosts[1], &db_hosts[2], &db_hosts[3]],
        )?;

        crate::watchdog::step("stack: starting the application servers");
        let mut apps = Vec::new();
        for host in &app_hosts {
            apps.push(start_app(host, dir, &db)?);
        }
        crate::watchdog::step("stack: starting the load balancers");
        let mut lbs = Vec::new();
        // lb1 first and alone until it is master: between equal priorities, whoever is master stays.
        for (i, host) in lb_hosts.iter().enumerate() {
            let lb = start_lb(host, dir, &app_hosts)?;
            if i == 0 {
                let ns = host.ns.clone();
                let mut lb = lb;
                lb.vrrpd
                    .wait_ready("to become master", Duration::from_secs(20), || {
                        holds_vip_ns(&ns)
                    });
                lbs.push(lb);
            } else {
                lbs.push(lb);
            }
        }
        let stack = Stack {
            lbs,
            apps,
            db,
            client,
            dir: dir.to_path_buf(),
            lan,
            _tempdir: None,
        };
        crate::watchdog::step("stack: waiting for reads from both applications");
        stack.wait_both_apps_answer(Duration::from_secs(30));
        Ok(stack)
    }

    /// Waits until reads through the VIP have been answered by app1 and by app2.
    pub fn wait_both_apps_answer(&self, timeout: Duration) {
        let mut seen = std::collections::BTreeSet::new();
        let ns = self.client.ns.clone();
        crate::wait_until("reads through the VIP from both apps", timeout, || {
            let ns = ns.clone();
            let answer = in_netns(&ns, || traffic::request(vip_addr(), "GET", "/read"));
            if let Ok(a) = answer {
                if a.status == 200 {
                    if let Some(app) = ["app1", "app2"].iter().find(|n| a.body.contains(*n)) {
                        seen.insert(*app);
                    }
                }
            }
            (seen.len() == 2).then_some(())
        });
    }

    /// The index of the load balancer holding the VIP, if exactly one does.
    pub fn vip_holder(&self) -> Option<usize> {
        let holders: Vec<usize> = (0..self.lbs.len())
            .filter(|&i| holds_vip_ns(&self.lbs[i].host.ns))
            .collect();
        match holders[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// `hactl status` of a node, as an operator would run it on that host.
    pub fn hactl_status(&self, node_dir: &Path) -> String {
        let output = Command::new(crate::bin("hactl"))
            .arg("--socket-dir")
            .arg(run_dir(node_dir))
            .arg("--config-dir")
            .arg(node_dir)
            .arg("status")
            .output_within(QUICK);
        match output {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
            .trim_end()
            .to_string(),
            Err(e) => format!("hactl: {e}"),
        }
    }
}

/// Whether the namespace's eth0 has the VIP.
fn holds_vip_ns(ns: &str) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", ns, "ip", "-o", "-4", "addr", "show", "dev", "eth0",
        ])
        .output_within(QUICK)
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("inet {VIP}/")))
        .unwrap_or(false)
}

fn node_dir(dir: &Path, host: &Host) -> Result<PathBuf> {
    let node = dir.join(&host.name);
    std::fs::create_dir_all(run_dir(&node))
        .with_context(|| format!("creating {}", node.display()))?;
    Ok(node)
}

fn control_ok(socket: &Path, cmd: &str) -> bool {
    control_line(socket, &format!("{{\"cmd\":\"{cmd}\"}}"))
        .map(|a| a.contains("\"ok\":true"))
        .unwrap_or(false)
}

fn start_lb(host: &Host, dir: &Path, apps: &[Host]) -> Result<LbNode> {
    let node = node_dir(dir, host)?;
    let run = run_dir(&node);
    let proxyd_yaml = node.join("proxyd.yaml");
    let vrrpd_yaml = node.join("vrrpd.yaml");
    std::fs::write(&proxyd_yaml, proxyd_config(&run, apps))?;
    std::fs::write(&vrrpd_yaml, vrrpd_config(&run))?;
    let mut proxyd = Process::start(
        "proxyd",
        host,
        daemon_argv("proxyd", &proxyd_yaml),
        &node.join("proxyd.log"),
    );
    let socket = run.join("proxyd.sock");
    proxyd.wait_ready("control socket", Duration::from_secs(20), || {
        control_ok(&socket, "hello")
    });
    let mut vrrpd = Process::start(
        "vrrpd",
        host,
        daemon_argv("vrrpd", &vrrpd_yaml),
        &node.join("vrrpd.log"),
    );
    let socket = run.join("vrrpd.sock");
    vrrpd.wait_ready("ready", Duration::from_secs(20), || {
        control_line(&socket, r#"{"cmd":"health"}"#)
            .map(|a| a.contains("\"ready\":true"))
            .unwrap_or(false)
    });
    Ok(LbNode {
        host: host.clone(),
        dir: node,
        vrrpd,
        proxyd,
    })
}

fn start_app(host: &Host, dir: &Path, db: &NsDatabases) -> Result<AppNode> {
    let node = node_dir(dir, host)?;
    let run = run_dir(&node);
    let yaml = node.join("dbrouterd.yaml");
    std::fs::write(&yaml, dbrouterd_config(&run, db))?;
    let mut dbrouterd = Process::start(
        "dbrouterd",
        host,
        daemon_argv("dbrouterd", &yaml),
        &node.join("dbrouterd.log"),
    );
    let socket = run.join("dbrouterd.sock");
    dbrouterd.wait_ready("control socket", Duration::from_secs(20), || {
        control_ok(&socket, "hello")
    });
    let argv = vec![
        crate::bin("demo-app").display().to_string(),
        "--listen".into(),
        format!("0.0.0.0:{APP_PORT}"),
        "--db".into(),
        format!("127.0.0.1:{DBROUTER_PORT}"),
        "--user".into(),
        "app".into(),
        "--password".into(),
        "apppw".into(),
        "--name".into(),
        host.name.clone(),
    ];
    let mut app = Process::start("demo-app", host, argv, &node.join("demo-app.log"));
    let ns = host.ns.clone();
    app.wait_ready("answers /healthz", Duration::from_secs(60), || {
        app_healthy(&ns)
    });
    Ok(AppNode {
        host: host.clone(),
        dir: node,
        dbrouterd,
        app,
    })
}

/// Whether the demo app in namespace `ns` answers `/healthz`.
pub fn app_healthy(ns: &str) -> bool {
    let ns = ns.to_string();
    in_netns(&ns, || {
        traffic::request(
            SocketAddr::from(([127, 0, 0, 1], APP_PORT)),
            "GET",
            "/healthz",
        )
        .map(|a| a.status == 200)
        .unwrap_or(false)
    })
}

fn daemon_argv(name: &str, config: &Path) -> Vec<String> {
    vec![
        crate::bin(name).display().to_string(),
        "-c".into(),
        config.display().to_string(),
    ]
}
