//! The data path's threads: `workers: N` is N single-threaded tokio runtimes, each on a
//! thread of its own, the way nginx runs N worker processes.
//!
//! A daemon accepts on every worker (from a duplicate of each listening descriptor) and serves
//! a connection on the worker that accepted it from start to end, so a client connection, its
//! server connections and its timers stay on one thread. One multi-threaded work-stealing
//! runtime moved tasks between threads and woke them across threads on every request or
//! statement (futex calls and context switches on the other core). The control channel, the
//! checks and the log writers stay on the daemon's own runtime.

use std::io;
use std::sync::mpsc;

use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;

/// The workers' runtimes; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Workers {
    handles: Vec<Handle>,
}

impl Workers {
    /// Starts `count` (at least one) worker threads named `<name>-worker-<i>`; they end
    /// (dropping what still runs on them) when `stop` is cancelled.
    pub fn start(name: &str, count: usize, stop: &CancellationToken) -> io::Result<Self> {
        let mut handles = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            let (sender, receiver) = mpsc::channel();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("{name}-worker-{index}"))
                .spawn(move || {
                    let runtime = match Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = sender.send(Err(e));
                            return;
                        }
                    };
                    let _ = sender.send(Ok(runtime.handle().clone()));
                    runtime.block_on(stop.cancelled());
                })?;
            let handle = receiver.recv().map_err(|_| {
                io::Error::other("worker thread ended before its runtime started")
            })??;
            handles.push(handle);
        }
        Ok(Self { handles })
    }

    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_runs_its_tasks_on_its_own_thread_until_stopped() {
        let stop = CancellationToken::new();
        let workers = Workers::start("test", 2, &stop).expect("workers");
        let names: Vec<String> = workers
            .handles()
            .iter()
            .map(|h| {
                let (tx, rx) = mpsc::channel();
                h.spawn(async move {
                    let _ = tx.send(std::thread::current().name().map(str::to_owned));
                });
                rx.recv().expect("ran").expect("named")
            })
            .collect();
        assert_eq!(names, ["test-worker-0", "test-worker-1"]);
        stop.cancel();
    }
}
