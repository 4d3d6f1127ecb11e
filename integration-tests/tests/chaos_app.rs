//! Chaos at the application layer, on the whole stack (integration_tests::stack) under client
//! traffic: one application server dies (its demo-app and dbrouterd are killed) and comes back.
//! proxyd retries reads on the other server and its health checks take the dead one out and back:
//! no read fails at all, and no acknowledged write is lost.

use integration_tests::require_root;
use integration_tests::stack::fault::{chaos, Fault};

#[test]
fn app_server_killed_fails_no_read_and_loses_no_acknowledged_write() {
    if !require_root("app_server_killed_fails_no_read_and_loses_no_acknowledged_write") {
        return;
    }
    let report = chaos("cxa", Fault::AppServer);
    assert_eq!(report.violations(), Vec::<String>::new());
    assert!(report.failed_reads.is_empty(), "{:?}", report.failed_reads);
    assert!(report.reads > 100 && report.acked_total > 0);
}
