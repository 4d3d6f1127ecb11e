//! Chaos at the database layer, on the whole stack (integration_tests::stack) under client
//! traffic: a read replica is killed and started again. dbrouterd moves reads to the other
//! replica: no read fails at all, and no acknowledged write is lost.

use integration_tests::require_root;
use integration_tests::stack::fault::{chaos, Fault};

#[test]
fn replica_killed_fails_no_read_and_loses_no_acknowledged_write() {
    if !require_root("replica_killed_fails_no_read_and_loses_no_acknowledged_write") {
        return;
    }
    let report = chaos("cxr", Fault::Replica);
    assert_eq!(report.violations(), Vec::<String>::new());
    assert!(report.failed_reads.is_empty(), "{:?}", report.failed_reads);
    assert!(report.reads > 100 && report.acked_total > 0);
}
