//! Chaos at the database layer, on the whole stack (integration_tests::stack) under client
//! traffic:
//! - a read replica is killed and started again: dbrouterd moves reads to the other replica;
//! - the primary is killed: dbrouterd's monitor confirms it down and fails over to the standby,
//!   which takes the writes from then on; started again as a replica, the old primary is
//!   rejoined (`auto_rejoin`) and acknowledges the new writer's commits semi-synchronously.
//!
//! Either way no read fails at all, writes work again, and every write the client saw
//! acknowledged is on the writer afterwards. The scenarios run one after the other (each on its
//! own stack) to keep a small machine's load, and so the timing, close to a real one.

use std::sync::Mutex;

use integration_tests::require_root;
use integration_tests::stack::fault::{chaos, Fault};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn replica_killed_fails_no_read_and_loses_no_acknowledged_write() {
    if !require_root("replica_killed_fails_no_read_and_loses_no_acknowledged_write") {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let report = chaos("cxr", Fault::Replica);
    assert_eq!(report.violations(), Vec::<String>::new());
    assert!(report.failed_reads.is_empty(), "{:?}", report.failed_reads);
    assert_eq!(report.writer, "primary");
    assert!(report.reads > 100 && report.acked_total > 0);
}

#[test]
fn primary_killed_writes_move_to_the_standby_and_no_acknowledged_write_is_lost() {
    if !require_root("primary_killed_writes_move_to_the_standby_and_no_acknowledged_write_is_lost")
    {
        return;
    }
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let report = chaos("cxw", Fault::Primary);
    assert_eq!(report.violations(), Vec::<String>::new());
    assert!(report.failed_reads.is_empty(), "{:?}", report.failed_reads);
    assert_eq!(report.writer, "standby", "the standby was promoted");
    assert!(report.writes_resumed && report.acked_total > 0);
}
