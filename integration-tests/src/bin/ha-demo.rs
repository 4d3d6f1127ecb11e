//! `make demo`'s driver (run by `scripts/demo.sh`): builds the whole stack of
//! [`integration_tests::stack`] in network namespaces, sends reads and writes at the VIP from the
//! client namespace, breaks one component of each layer in turn with the same code the chaos tests
//! use, and prints what the client saw per fault, with `hactl status` of the nodes involved before
//! the fault and after its repair.
//!
//! Usage: `ha-demo DIR` (DIR: a new directory for the stack's files, deleted by the caller).
//! `HA_DEMO_FAULTS` may name a subset, e.g. `proxyd,link,app,replica,primary` (the default).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use integration_tests::stack::fault::{self, Fault};
use integration_tests::stack::traffic::Traffic;
use integration_tests::stack::{vip_addr, Stack};

fn step(text: &str) {
    println!("\n\x1b[1m== {text}\x1b[0m");
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn faults() -> Result<Vec<Fault>, String> {
    let spec = std::env::var("HA_DEMO_FAULTS")
        .unwrap_or_else(|_| "proxyd,link,app,replica,primary".into());
    spec.split(',')
        .map(|name| match name.trim() {
            "proxyd" => Ok(Fault::ProxydOnMaster),
            "link" => Ok(Fault::MasterLink),
            "app" => Ok(Fault::AppServer),
            "replica" => Ok(Fault::Replica),
            "primary" => Ok(Fault::Primary),
            other => Err(format!("unknown fault '{other}' in HA_DEMO_FAULTS")),
        })
        .collect()
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: ha-demo DIR");
        return ExitCode::from(2);
    };
    let faults = match faults() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ha-demo: {e}");
            return ExitCode::from(2);
        }
    };
    match demo(&dir, &faults) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ha-demo: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn demo(dir: &std::path::Path, faults: &[Fault]) -> anyhow::Result<bool> {
    step("starting the stack in network namespaces (198.18.0.0/15)");
    let started = Instant::now();
    let mut stack = Stack::start_in("demo", dir)?;
    println!(
        "  up in {:.1}s: client 198.18.0.200 -> VIP {} -> lb1 .11 / lb2 .12 (vrrpd + proxyd)\n  \
         -> app1 .21 / app2 .22 (demo-app + dbrouterd) -> primary .31, standby .32, replica1 .33, replica2 .34",
        started.elapsed().as_secs_f64(),
        vip_addr()
    );
    println!("  files and logs: {}", dir.display());
    println!("{}", indent(&stack.db.status()));

    step("traffic from the client namespace: 2 loops of GET /read, 1 loop of POST /write?id=N");
    let mut traffic = Traffic::start(&stack.client.ns, vip_addr(), 2);
    traffic.wait_for_reads(50, Duration::from_secs(30));
    let sample = traffic.samples();
    let answered: std::collections::BTreeSet<String> = sample
        .iter()
        .filter_map(|s| s.outcome.as_ref().ok().cloned())
        .collect();
    println!(
        "  answered by: {}",
        answered.into_iter().collect::<Vec<_>>().join(", ")
    );

    let mut reports = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        step(&format!("fault {}/{}: {}", i + 1, faults.len(), f.label()));
        let report = fault::run(&mut stack, &traffic, *f)?;
        for (node, text) in &report.hactl_before {
            println!(
                "  hactl status on {node}, before:\n{}",
                indent(&indent(text))
            );
        }
        for (node, text) in &report.hactl_during {
            println!(
                "  hactl status on {node}, with the fault in place:\n{}",
                indent(&indent(text))
            );
        }
        for (node, text) in &report.hactl_after {
            println!(
                "  hactl status on {node}, after the repair:\n{}",
                indent(&indent(text))
            );
        }
        println!(
            "  target {}: GETs failed {}/{}, POSTs failed {}/{}, acknowledged writes missing on the {}: {}",
            report.target,
            report.failed_reads.len(),
            report.reads,
            report.failed_writes.len(),
            report.writes,
            report.writer,
            report.lost_writes.len()
        );
        let errors = report.error_summary();
        if !errors.is_empty() {
            println!("  errors seen by the client:\n      {errors}");
        }
        for v in report.violations() {
            println!("  VIOLATION: {v}");
        }
        reports.push(report);
    }
    traffic.stop();

    step("what the client saw, per fault");
    print!("{}", fault::table(&reports));
    let ok = reports.iter().all(|r| r.violations().is_empty());
    println!(
        "\nrules (asserted by integration-tests/tests/chaos_*.rs): no GET fails except inside the VIP \
         move window (until the VIP is on the other LB + {}ms);\nno acknowledged write is lost; a write \
         started after the repair is acknowledged. POSTs are never retried by proxyd, so one in flight \
         at a fault may fail: counted, not a violation.\nOutage: from the first failed request to the \
         next one that succeeded. A request sent over the cut link waits for the client's own timeout \
         (connect {}s, answer {}s), which is what the link-cut row's POST outage shows.",
        fault::ARP_GRACE.as_millis(),
        integration_tests::stack::traffic::CONNECT_TIMEOUT.as_secs(),
        integration_tests::stack::traffic::ANSWER_TIMEOUT.as_secs()
    );
    println!(
        "{}",
        if ok {
            "result: all rules held"
        } else {
            "result: RULES BROKEN (see above)"
        }
    );
    Ok(ok)
}
