//! The data path's threads: `workers: N` is N single-threaded tokio runtimes, each on a
//! thread of its own, the way nginx runs N worker processes.
//!
//! A daemon accepts on every worker (from a duplicate of each listening descriptor) and
//! [`Workers::serve`] places each accepted connection on the worker that has the fewest
//! (the one that accepted it when it ties), where it is served from start to end: a client
//! connection, its server connections and its timers stay on one thread. Whichever worker
//! the kernel wakes takes most of a burst of new connections (all of a load generator's, or
//! an application pool's at start-up), so serving them where they were accepted left one
//! worker with most of the load and the other idle; HAProxy places connections the same way.
//! One multi-threaded work-stealing runtime, tried before, moved tasks between threads and
//! woke them across threads on every request or statement (futex calls and context switches
//! on the other core). The control channel, the checks and the log writers stay on the
//! daemon's own runtime.
//!
//! A worker that runs out of work yields its core once ([`std::thread::yield_now`]) before
//! it sleeps in `epoll_wait`. Where the proxy shares the cores with its peers (a backend, the
//! clients, other daemons), the peer that the worker's last writes woke runs then, and its
//! answer is often there when the worker polls: the worker goes on without sleeping and
//! being woken (a context switch each way, and the wait for a core to wake on, the tail of
//! the latency). Measured with wrk through proxyd at 2 workers (docs/benchmarks.md): sleeps
//! per request 0.04 → 0.007, p99 3.0–4.5 ms → 1.8–2.9 ms. Where nothing else wants the
//! core, the yield returns at once.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use tokio::net::TcpStream;
use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

thread_local! {
    /// The index of the worker this thread is, on a worker thread.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The index of the worker running the caller (`None` off the workers: the daemon's own
/// runtime, tests). A socket is registered with the reactor of the worker that created or
/// adopted it: a pool of connections shared by the workers hands each worker its own first.
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// `stream` registered with the calling runtime's reactor instead of the one it was registered
/// with: a connection moving to another worker (call it under that worker's context).
pub fn adopt(stream: TcpStream) -> io::Result<TcpStream> {
    TcpStream::from_std(stream.into_std()?)
}

/// Of `items` kept oldest first (a pool's idle connections), the index of the newest one
/// registered with the calling worker (`worker_of`), else of the newest of all; `None` when
/// there are none.
pub fn newest_here<T>(items: &[T], worker_of: impl Fn(&T) -> Option<usize>) -> Option<usize> {
    let here = current();
    items
        .iter()
        .rposition(|item| worker_of(item) == here)
        .or_else(|| items.len().checked_sub(1))
}

/// The first item that `take` gives (each with the worker its socket is registered with) that
/// is registered with the calling worker, or that `adopt` moves to it; items `adopt` cannot
/// move are dropped. `None` once `take` has none left. What a pool shared by the workers
/// hands out: its own first ([`newest_here`]), another's only once moved here.
pub fn take_here<T>(
    mut take: impl FnMut() -> Option<(T, Option<usize>)>,
    mut adopt: impl FnMut(T) -> Option<T>,
) -> Option<T> {
    let here = current();
    loop {
        let (item, worker) = take()?;
        if worker == here {
            return Some(item);
        }
        if let Some(item) = adopt(item) {
            return Some(item);
        }
    }
}

/// The workers' runtimes; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Workers {
    handles: Vec<Handle>,
    /// Connections being served on each worker.
    load: Arc<[AtomicUsize]>,
}

/// A connection counted on the worker that serves it, until dropped.
#[derive(Debug)]
struct Placed {
    load: Arc<[AtomicUsize]>,
    worker: usize,
}

impl Placed {
    fn new(load: &Arc<[AtomicUsize]>, worker: usize) -> Self {
        load[worker].fetch_add(1, Ordering::Relaxed);
        Self {
            load: Arc::clone(load),
            worker,
        }
    }
}

impl Drop for Placed {
    fn drop(&mut self) {
        self.load[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
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
                    CURRENT.with(|c| c.set(Some(index)));
                    let runtime = match Builder::new_current_thread()
                        .enable_all()
                        .on_thread_park(std::thread::yield_now)
                        .build()
                    {
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
        let load = handles.iter().map(|_| AtomicUsize::new(0)).collect();
        Ok(Self { handles, load })
    }

    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Connections being served on each worker now.
    pub fn load(&self) -> Vec<usize> {
        self.load
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// The worker with the fewest connections; `accepted_on` when it has no more than any.
    fn least_loaded(&self, accepted_on: usize) -> usize {
        let load = |i: usize| self.load[i].load(Ordering::Relaxed);
        let mut best = accepted_on.min(self.handles.len() - 1);
        for i in 0..self.handles.len() {
            if load(i) < load(best) {
                best = i;
            }
        }
        best
    }

    /// Serves `stream`, accepted on worker `accepted_on`, with `serve` on the worker that has
    /// the fewest connections (see the [module docs](self)), tracked by `tracker`.
    pub fn serve<S, F>(
        &self,
        accepted_on: usize,
        stream: TcpStream,
        tracker: &TaskTracker,
        serve: S,
    ) where
        S: FnOnce(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let target = self.least_loaded(accepted_on);
        let stream = if target == accepted_on {
            stream
        } else {
            // Moved as a plain descriptor: the accepting worker's reactor lets go of it and
            // the target's takes it (registered from here, under the target's context).
            let moved = {
                let _target = self.handles[target].enter();
                adopt(stream)
            };
            match moved {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot move a connection to another worker");
                    return;
                }
            }
        };
        let placed = Placed::new(&self.load, target);
        let work = serve(stream);
        self.handles[target].spawn(tracker.track_future(Holding::new(work, placed)));
    }
}

pin_project_lite::pin_project! {
    /// A future that holds `guard` (a counted connection, a permit) until it ends or is
    /// dropped. `async move { work.await; drop(guard) }` would do the same but keeps `work`
    /// twice in its state, once as captured and once as awaited: for a connection's task,
    /// kilobytes per idle connection.
    pub struct Holding<F, G> {
        #[pin]
        work: F,
        _guard: G,
    }
}

impl<F, G> Holding<F, G> {
    pub fn new(work: F, guard: G) -> Self {
        Self {
            work,
            _guard: guard,
        }
    }
}

impl<F: Future, G> Future for Holding<F, G> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.project().work.poll(cx)
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

    #[test]
    fn each_worker_knows_its_index_and_other_threads_have_none() {
        let stop = CancellationToken::new();
        let workers = Workers::start("index", 2, &stop).expect("workers");
        for (i, handle) in workers.handles().iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            handle.spawn(async move {
                let _ = tx.send(current());
            });
            assert_eq!(rx.recv().expect("answer"), Some(i));
        }
        assert_eq!(current(), None);
        stop.cancel();
    }

    #[test]
    fn the_newest_item_of_this_worker_goes_first_else_the_newest_of_all() {
        // Off the workers, "this worker" is None.
        let items = [Some(0), None, Some(1), None, Some(1)];
        assert_eq!(newest_here(&items, |w| *w), Some(3));
        assert_eq!(newest_here(&[Some(0), Some(1)], |w| *w), Some(1));
        assert_eq!(newest_here::<Option<usize>>(&[], |w| *w), None);
    }

    #[test]
    fn connections_accepted_on_one_worker_are_spread_over_all_and_counted_while_served() {
        let stop = CancellationToken::new();
        let workers = Workers::start("spread", 2, &stop).expect("workers");
        let tracker = TaskTracker::new();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let (served_on, on_thread) = mpsc::channel();
        let (end_tx, end_rx) = tokio::sync::watch::channel(false);
        let mut clients = Vec::new();
        for _ in 0..6 {
            clients.push(std::net::TcpStream::connect(address).expect("connect"));
            let (accepted, _) = listener.accept().expect("accept");
            accepted.set_nonblocking(true).expect("nonblocking");
            let served_on = served_on.clone();
            let mut end = end_rx.clone();
            let workers2 = workers.clone();
            let tracker2 = tracker.clone();
            // Every connection accepted on worker 0, as when the kernel wakes only that one.
            workers.handles()[0].spawn(async move {
                let stream = TcpStream::from_std(accepted).expect("register");
                workers2.serve(0, stream, &tracker2, move |_stream| async move {
                    let _ = served_on.send(std::thread::current().name().map(str::to_owned));
                    let _ = end.wait_for(|ended| *ended).await;
                });
            });
            on_thread.recv().expect("served").expect("named");
        }
        assert_eq!(workers.load(), [3, 3]);
        end_tx.send(true).expect("end");
        tracker.close();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while workers.load() != [0, 0] {
            assert!(
                std::time::Instant::now() < deadline,
                "load {:?}",
                workers.load()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        stop.cancel();
    }
}
