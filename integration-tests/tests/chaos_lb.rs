//! Chaos at the load balancer layer, on the whole stack (integration_tests::stack) under client
//! traffic: proxyd killed on the master, and the master's link cut. Either way the VIP moves to
//! the other load balancer; no read fails outside the move window, and no acknowledged write is
//! lost. The two scenarios run one after the other (each on its own stack), so VRRP's timers are
//! not starved by a second stack on a small machine.

use std::sync::Mutex;
use std::time::Duration;

use integration_tests::require_root;
use integration_tests::stack::fault::{chaos, Fault};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn proxyd_killed_on_the_master_fails_reads_only_while_the_vip_moves() {
    if !require_root("proxyd_killed_on_the_master_fails_reads_only_while_the_vip_moves") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let report = chaos("cxp", Fault::ProxydOnMaster);
    assert_eq!(report.violations(), Vec::<String>::new());
    let moved = report.vip_move.expect("the VIP moved");
    assert!(
        moved < Duration::from_secs(5),
        "the VIP took {moved:?} to move"
    );
    assert!(report.acked_total > 0, "writes were acknowledged");
}

#[test]
fn link_cut_on_the_master_fails_reads_only_while_the_vip_moves() {
    if !require_root("link_cut_on_the_master_fails_reads_only_while_the_vip_moves") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let report = chaos("cxl", Fault::MasterLink);
    assert_eq!(report.violations(), Vec::<String>::new());
    let moved = report.vip_move.expect("the VIP moved");
    assert!(
        moved < Duration::from_secs(5),
        "the VIP took {moved:?} to move"
    );
    assert!(report.acked_total > 0, "writes were acknowledged");
}
