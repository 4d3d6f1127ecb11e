//! Process lifecycle: signals (SIGHUP reloads, SIGTERM/SIGINT stop), systemd readiness
//! notification, and the shutdown signal handed down to every task.

mod notify;
mod signals;

pub use notify::{notify, Notify};
pub use signals::{Signal, Signals};
pub use tokio_util::sync::CancellationToken as Shutdown;
pub use tokio_util::task::TaskTracker;
