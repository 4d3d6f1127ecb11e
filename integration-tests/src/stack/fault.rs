//! The faults of each layer, injected into a running [`Stack`] under [`Traffic`], and the verdict
//! on what the client saw. The chaos tests assert these verdicts and `make demo` prints them as
//! its table, so both tell the same story.
//!
//! The rules ([`Report::violations`]):
//! - no read (`GET /read`, idempotent) fails, except one that overlaps the VIP move window, which
//!   runs from the fault until the other load balancer holds the VIP plus [`ARP_GRACE`] (the
//!   client's ARP entry follows the new master's gratuitous ARP);
//! - every write the client saw acknowledged is on the writer afterwards (checked after each fault);
//! - writes work again: a write started after the repair is acknowledged within
//!   [`RESUME_WITHIN`];
//! - a write may fail while a fault is being handled (proxyd never retries a `POST`): counted,
//!   shown, not a violation.
//!
//! Each fault is followed by its repair (the killed process restarted, the link restored) before
//! the next, and the repair is judged by the same rules.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use super::report::{outage, table, Report};
use super::traffic::{Kind, Sample, Traffic};
use super::{app_healthy, control_line, run_dir, Stack};
use crate::wait_until;
use crate::watchdog::step;

/// After the VIP has moved, how long the client may still fail while its ARP entry follows.
pub const ARP_GRACE: Duration = Duration::from_secs(1);
/// How long the traffic runs with the fault in place, and again after its repair.
pub const OBSERVE: Duration = Duration::from_secs(3);
/// After the fault and its repair, how soon a new write must be acknowledged.
pub const RESUME_WITHIN: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// proxyd on the load balancer holding the VIP is killed (SIGKILL).
    ProxydOnMaster,
    /// The link of the load balancer holding the VIP is cut (its switch port goes down).
    MasterLink,
    /// An application server dies: its demo-app and dbrouterd are killed (SIGKILL).
    AppServer,
    /// A read replica's mariadbd is killed (SIGKILL).
    Replica,
    /// The primary's mariadbd is killed (SIGKILL).
    Primary,
}

impl Fault {
    pub fn label(self) -> &'static str {
        match self {
            Fault::ProxydOnMaster => "proxyd killed on the master LB",
            Fault::MasterLink => "master LB's link cut",
            Fault::AppServer => "app server killed",
            Fault::Replica => "replica killed",
            Fault::Primary => "primary killed",
        }
    }

    /// Whether the VIP moves to the other load balancer.
    pub fn moves_vip(self) -> bool {
        matches!(self, Fault::ProxydOnMaster | Fault::MasterLink)
    }
}

/// Injects `fault`, observes, repairs, observes again, and reports; never panics on what the
/// client saw (the caller judges), only when the stack itself cannot be driven.
pub fn run(stack: &mut Stack, traffic: &Traffic, fault: Fault) -> Result<Report> {
    step("waiting for reads through the VIP before the fault");
    traffic.wait_for_reads(20, Duration::from_secs(20));
    let master = stack
        .vip_holder()
        .context("no single load balancer holds the VIP before the fault")?;
    let other = 1 - master;
    let nodes: Vec<PathBuf> = match fault {
        Fault::ProxydOnMaster | Fault::MasterLink => {
            stack.lbs.iter().map(|l| l.dir.clone()).collect()
        }
        Fault::AppServer => vec![stack.lbs[master].dir.clone(), stack.apps[0].dir.clone()],
        Fault::Replica | Fault::Primary => vec![stack.apps[0].dir.clone()],
    };
    let snapshot = |stack: &Stack| -> Vec<(String, String)> {
        nodes
            .iter()
            .map(|d| {
                let name = d
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (name, stack.hactl_status(d))
            })
            .collect()
    };
    step("hactl status before the fault");
    let hactl_before = snapshot(stack);

    let start = Instant::now();
    step(format!("injecting: {}", fault.label()));
    let target = inject(stack, fault, master)?;
    let vip_move = if fault.moves_vip() {
        let moved = wait_until(
            "the VIP to move to the other load balancer",
            Duration::from_secs(15),
            || (stack.vip_holder() == Some(other)).then(Instant::now),
        );
        Some(moved - start)
    } else {
        None
    };
    std::thread::sleep(OBSERVE);
    step("hactl status during the fault");
    let hactl_during = snapshot(stack);
    step("repairing");
    repair(stack, fault, master)?;
    std::thread::sleep(OBSERVE);
    let end = Instant::now();
    step("waiting for requests in flight to end");
    traffic.wait_settled(end);
    let writes_resumed = traffic.write_acked_after(end, RESUME_WITHIN);

    let window_end = vip_move.map(|d| start + d + ARP_GRACE);
    let samples: Vec<Sample> = traffic
        .samples()
        .into_iter()
        .filter(|s| s.end >= start && s.start <= end)
        .collect();
    let (reads, writes): (Vec<Sample>, Vec<Sample>) =
        samples.into_iter().partition(|s| s.kind == Kind::Read);
    let failed = |v: &[Sample]| -> Vec<Sample> {
        v.iter().filter(|s| s.outcome.is_err()).cloned().collect()
    };
    let failed_reads = failed(&reads);
    let failed_writes = failed(&writes);
    let failed_reads_outside_window = failed_reads
        .iter()
        .filter(|s| !matches!(window_end, Some(w) if s.start <= w))
        .cloned()
        .collect();
    let acked = traffic.acked();
    step("reading the acknowledged writes back from the writer");
    let writer = stack.writer()?;
    let present = stack.db.written_ids(writer)?;
    let lost_writes = acked
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    step("hactl status after the repair");
    let hactl_after = snapshot(stack);
    Ok(Report {
        fault,
        target,
        vip_move,
        reads: reads.len(),
        read_outage: outage(&reads),
        failed_reads,
        failed_reads_outside_window,
        writes: writes.len(),
        write_outage: outage(&writes),
        writes_resumed,
        failed_writes,
        acked_total: acked.len(),
        lost_writes,
        writer: writer.to_string(),
        hactl_before,
        hactl_during,
        hactl_after,
    })
}

/// Breaks the component; returns its name.
fn inject(stack: &mut Stack, fault: Fault, master: usize) -> Result<String> {
    Ok(match fault {
        Fault::ProxydOnMaster => {
            stack.lbs[master].proxyd.kill();
            stack.lbs[master].host.name.clone()
        }
        Fault::MasterLink => {
            stack.lan.set_link(&stack.lbs[master].host, false);
            stack.lbs[master].host.name.clone()
        }
        Fault::AppServer => {
            let app = &mut stack.apps[0];
            app.app.kill();
            app.dbrouterd.kill();
            app.host.name.clone()
        }
        Fault::Replica => {
            stack.db.kill("replica1")?;
            "replica1".to_string()
        }
        Fault::Primary => {
            stack.db.kill("primary")?;
            "primary".to_string()
        }
    })
}

/// Undoes the fault and waits until the component is back in service.
fn repair(stack: &mut Stack, fault: Fault, master: usize) -> Result<()> {
    match fault {
        Fault::ProxydOnMaster => {
            let lb = &mut stack.lbs[master];
            lb.proxyd.restart();
            let run = run_dir(&lb.dir);
            let vrrpd = run.join("vrrpd.sock");
            // vrrpd sees proxyd healthy again (its priority is back); without preemption the
            // VIP stays where it is.
            lb.vrrpd.wait_ready(
                "proxyd tracked healthy again",
                Duration::from_secs(20),
                || {
                    control_line(&vrrpd, r#"{"cmd":"status"}"#)
                        .map(|a| a.contains("\"up\":true") && !a.contains("\"up\":false"))
                        .unwrap_or(false)
                },
            );
        }
        Fault::MasterLink => {
            stack.lan.set_link(&stack.lbs[master].host, true);
            let run = run_dir(&stack.lbs[master].dir);
            let vrrpd = run.join("vrrpd.sock");
            stack.lbs[master].vrrpd.wait_ready(
                "back to backup after the link returns",
                Duration::from_secs(20),
                || {
                    control_line(&vrrpd, r#"{"cmd":"status"}"#)
                        .map(|a| a.contains("\"state\":\"backup\""))
                        .unwrap_or(false)
                },
            );
        }
        Fault::AppServer => {
            let app = &mut stack.apps[0];
            app.dbrouterd.restart();
            let socket = run_dir(&app.dir).join("dbrouterd.sock");
            app.dbrouterd
                .wait_ready("control socket", Duration::from_secs(20), || {
                    control_line(&socket, r#"{"cmd":"hello"}"#)
                        .map(|a| a.contains("\"ok\":true"))
                        .unwrap_or(false)
                });
            app.app.restart();
            let ns = app.host.ns.clone();
            app.app
                .wait_ready("answers /healthz", Duration::from_secs(60), || {
                    app_healthy(&ns)
                });
            stack.wait_both_apps_answer(Duration::from_secs(30));
        }
        Fault::Replica => stack.db.restart("replica1")?,
        // The killed primary is started again, as a replica: its crash recovery drops what its
        // standby never acknowledged, and dbrouterd (failover.auto_rejoin) fences it and makes
        // it a semi-synchronous replica of the new writer.
        Fault::Primary => {
            stack.db.restart_as_replica("primary")?;
            let db = &stack.db;
            wait_until(
                "the old primary to replicate from the new writer (auto_rejoin)",
                Duration::from_secs(60),
                || {
                    let running = db
                        .root_sql(
                            "primary",
                            "SELECT CONCAT(@@read_only + 0, ':', VARIABLE_VALUE) FROM \
                             information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_RUNNING'",
                        )
                        .ok()?;
                    (running == "1:ON").then_some(())
                },
            );
            // It acknowledges the new writer's commits, and the new writer waits for it again.
            wait_until(
                "the new writer's commits to wait for the old primary (semi-sync back)",
                Duration::from_secs(30),
                || {
                    let semi_sync = db
                        .root_sql(
                            "standby",
                            "SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME) FROM \
                             information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN \
                             ('RPL_SEMI_SYNC_MASTER_CLIENTS', 'RPL_SEMI_SYNC_MASTER_STATUS')",
                        )
                        .ok()?;
                    (semi_sync == "1,ON").then_some(())
                },
            );
        }
    }
    Ok(())
}

impl Stack {
    /// The database server taking writes: the one that is not read-only (the primary unless a
    /// failover promoted another).
    pub fn writer(&self) -> Result<&'static str> {
        for node in &self.db.nodes {
            if self.db.pid(node.name).is_none() {
                continue;
            }
            if self.db.root_sql(node.name, "SELECT @@read_only")? == "0" {
                return Ok(node.name);
            }
        }
        anyhow::bail!("no running database server is writable")
    }
}

/// One chaos scenario on its own stack: builds it (namespaces tagged `tag`), starts the client
/// traffic, runs `fault` with its repair, prints the row of the table and returns the report;
/// everything is torn down before it returns (or unwinds).
pub fn chaos(tag: &str, fault: Fault) -> Report {
    let mut stack = Stack::start(tag).expect("the stack starts");
    step("starting the client traffic");
    let mut traffic = Traffic::start(&stack.client.ns, super::vip_addr(), 2);
    let report = run(&mut stack, &traffic, fault).expect("the fault runs");
    step("stopping the client traffic");
    traffic.stop();
    step("tearing the stack down");
    eprintln!("{}", table(std::slice::from_ref(&report)));
    if !report.violations().is_empty() {
        eprintln!(
            "errors seen by the client:\n      {}",
            report.error_summary()
        );
        for (node, text) in &report.hactl_after {
            eprintln!("hactl status on {node} after the repair:\n{text}");
        }
    }
    report
}
