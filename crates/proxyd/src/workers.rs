//! The data path's threads: `workers: N` is N single-threaded tokio runtimes, each on a
//! thread of its own, the way nginx runs N worker processes.
//!
//! Every worker accepts from every listener's socket (a duplicate of the one listening
//! descriptor, so the upgrade handoff still passes a single socket per listener) and serves
//! the connections it accepted from start to end: a client connection, its upstream
//! connections and its timers stay on one thread. One multi-threaded work-stealing runtime
//! moved tasks between threads and woke them across threads on every request, which made two
//! workers slower than one. The control channel, health checks and the access log writer stay
//! on the daemon's own runtime.

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
    /// Starts `count` worker threads; they end (dropping what still runs on them) when `stop`
    /// is cancelled.
    pub fn start(count: usize, stop: &CancellationToken) -> io::Result<Self> {
        let mut handles = Vec::with_capacity(count);
        for index in 0..count.max(1) {
            let (sender, receiver) = mpsc::channel();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("proxyd-worker-{index}"))
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
