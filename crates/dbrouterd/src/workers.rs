//! The session threads: `workers` single-threaded runtimes, each accepting on every listener
//! and running the sessions it accepted, so a session's client socket, its backend sockets
//! and its task stay on one thread. On the daemon's work-stealing runtime a statement's
//! wake-ups crossed threads (about 0.6 futex calls per proxied statement, each a context
//! switch on the other core); here they do not. The daemon's own runtime keeps the control
//! socket, the monitor and the metrics.

use std::sync::OnceLock;

use tokio::runtime::Handle;

static WORKERS: OnceLock<Vec<Handle>> = OnceLock::new();

/// Starts `count` session threads (once; later calls return the same ones).
pub fn start(count: usize) -> std::io::Result<&'static [Handle]> {
    if let Some(handles) = WORKERS.get() {
        return Ok(handles);
    }
    let mut handles = Vec::with_capacity(count.max(1));
    for i in 0..count.max(1) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        handles.push(runtime.handle().clone());
        std::thread::Builder::new()
            .name(format!("dbrouterd-w{i}"))
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    }
    Ok(WORKERS.get_or_init(|| handles))
}
