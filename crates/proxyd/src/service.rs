//! proxyd as a daemon: builds the data path from the configuration, binds the listeners,
//! starts the accept loops on the worker threads ([`ha_core::workers`]) and the active health
//! checks, answers `health`, `status` and its own commands ([`crate::control`]), rebuilds on reload, hands its listening sockets to a new
//! binary ([`crate::upgrade`]), and on stop stops accepting, closes idle connections and
//! waits for the rest up to the deadline.
//!
//! Reload builds a complete new [`Snapshot`] first (a file that cannot be built, e.g. a
//! missing certificate, is refused whole and the running one stays), binds any new listen
//! addresses, then swaps the snapshot in one store: new connections use the new
//! configuration, open ones finish on the old. A listener whose address did not change keeps
//! its socket (a new backlog is applied to it, a new `max_connections` restarts its accept
//! loop on it), so a reload needs no `SO_REUSEPORT`. Servers that did not change are carried
//! over by (pool, address) with their health state, counters and idle connections, and
//! operators' runtime changes ([`crate::runtime`]) are kept for pools the file left alone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use arc_swap::ArcSwap;
use ha_core::control::{Access, BoxFuture, Caller, CommandError};
use ha_core::daemon::{BoxError, Common, Context, Service};
use ha_core::workers::Workers;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::access_log::AccessLogger;
use crate::config::{Config, Listener};
use crate::listener::{self, AcceptLoop};
use crate::metrics::ProxyMetrics;
use crate::runtime::RuntimeChanges;
use crate::snapshot::Snapshot;

/// A listener's accept loop as it runs.
struct Running {
    config: Listener,
    socket: Arc<TcpListener>,
    bound: SocketAddr,
    stop: CancellationToken,
}

impl Running {
    /// Whether `new` can keep this accept loop as it runs.
    fn unchanged(&self, new: &Listener) -> bool {
        self.same_socket(new)
            && self.config.backlog == new.backlog
            && self.config.max_connections == new.max_connections
    }

    /// Whether `new` can keep this socket (same address and socket options).
    fn same_socket(&self, new: &Listener) -> bool {
        self.config.listen == new.listen && self.config.reuse_port == new.reuse_port
    }
}

/// The file as last applied and what operators changed since.
pub(crate) struct State {
    pub file: Config,
    pub runtime: RuntimeChanges,
}

pub struct Proxyd {
    state: Mutex<State>,
    /// The access log's settings and logger in use.
    access_log: Mutex<Option<(crate::config::AccessLog, Option<AccessLogger>)>>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    metrics: ProxyMetrics,
    listeners: Mutex<BTreeMap<String, Running>>,
    health_stop: Mutex<CancellationToken>,
    shutdown: CancellationToken,
    /// Cancelled when stopping: open connections finish what they do and close.
    drain: CancellationToken,
    tasks: TaskTracker,
    /// The control socket, next to which an upgrade's side socket is opened.
    control_socket: PathBuf,
    /// Held while an upgrade handoff runs.
    upgrading: Arc<AtomicBool>,
    /// The threads that accept and serve connections (`workers`).
    workers: Workers,
}

impl Proxyd {
    fn lock_listeners(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn start_loop(&self, config: &Listener, socket: Arc<TcpListener>) -> Running {
        let bound = socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        info!(listener = %config.name, listen = %bound, protocol = ?config.protocol, "listening");
        let stop = self.shutdown.child_token();
        let accept = AcceptLoop {
            name: config.name.clone(),
            socket: Arc::clone(&socket),
            max_connections: config.max_connections,
            snapshot: Arc::clone(&self.snapshot),
            metrics: self.metrics.clone(),
            stop: stop.clone(),
            tasks: self.tasks.clone(),
            drain: self.drain.clone(),
        };
        // Tracked like the connections (in `spawn`): a graceful stop waits until the loop
        // has seen the stop, so a connection it accepted just before is spawned (and tracked)
        // rather than closed unanswered by an exit that found no connection task to wait for.
        accept.spawn(&self.workers);
        Running {
            config: config.clone(),
            socket,
            bound,
            stop,
        }
    }

    fn start_health_checks(&self, snapshot: &Snapshot) {
        let stop = self.shutdown.child_token();
        for pool in snapshot.pools.values() {
            crate::health::active::spawn(pool, &self.metrics, &stop);
        }
        let old = std::mem::replace(
            &mut *self
                .health_stop
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            stop,
        );
        old.cancel();
    }

    /// The access logger for `c`: the running one when `c` did not change, else a new one
    /// (the old writer ends once the last connection using it is gone).
    fn access_logger(&self, c: &crate::config::AccessLog) -> Result<Option<AccessLogger>, String> {
        let mut current = self
            .access_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((config, logger)) = current.as_ref() {
            if config == c {
                return Ok(logger.clone());
            }
        }
        let logger = crate::access_log::start(c, self.metrics.access_log_dropped.clone())
            .map_err(|e| format!("access_log: cannot open {}: {e}", c.path.display()))?;
        *current = Some((c.clone(), logger.clone()));
        Ok(logger)
    }

    /// Applies a new file (already validated), keeping the runtime changes of the pools it
    /// leaves as they were.
    fn reload_now(&self, config: Config) -> Result<Value, String> {
        let mut state = self.lock_state();
        let mut runtime = state.runtime.clone();
        let dropped = runtime.rebase(&config);
        let mut changes = self.apply(&runtime.overlay(&config), &runtime)?;
        if !dropped.is_empty() {
            warn!(pools = ?dropped, "the new file changes these pools; their runtime changes are dropped");
            changes["runtime_changes_dropped"] = json!(dropped);
        }
        *state = State {
            file: config,
            runtime,
        };
        Ok(changes)
    }

    /// The listening sockets with their names and configured addresses (for an upgrade).
    pub(crate) fn listening_sockets(&self) -> Vec<(crate::upgrade::Handed, Arc<TcpListener>)> {
        self.lock_listeners()
            .values()
            .map(|r| {
                let handed = crate::upgrade::Handed {
                    name: r.config.name.clone(),
                    listen: r.config.listen.clone(),
                };
                (handed, Arc::clone(&r.socket))
            })
            .collect()
    }

    /// Starts an upgrade handoff (`upgrade.handoff`); answers the side socket's path.
    pub(crate) fn start_handoff(&self) -> Result<PathBuf, String> {
        let runtime = self.lock_state().runtime.export();
        crate::upgrade::handoff::start(
            &self.control_socket,
            self.listening_sockets(),
            runtime,
            Arc::clone(&self.upgrading),
        )
    }

    pub(crate) fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Rebuilds the data path from the file and the runtime changes in `state`.
    pub(crate) fn rebuild(&self, state: &State) -> Result<Value, String> {
        self.apply(&state.runtime.overlay(&state.file), &state.runtime)
    }

    fn apply(&self, config: &Config, runtime: &RuntimeChanges) -> Result<Value, String> {
        let mut snapshot =
            Snapshot::build_from(config, Some(&self.snapshot.load())).map_err(|e| e.to_string())?;
        runtime.apply(&snapshot);
        snapshot.access_log = self.access_logger(&config.access_log)?;
        let mut listeners = self.lock_listeners();
        // Bind every new socket before changing anything, so a failure leaves all as it was.
        let mut fresh = Vec::new();
        for l in &config.listeners {
            match listeners.get(&l.name) {
                Some(running) if running.unchanged(l) => {}
                Some(running) if running.same_socket(l) => {
                    listener::set_backlog(&running.socket, l).map_err(|e| e.to_string())?;
                    fresh.push((l.clone(), Arc::clone(&running.socket)));
                }
                _ => {
                    let socket = match crate::upgrade::takeover::take_listener(&l.name, &l.listen) {
                        Some(inherited) => TcpListener::from_std(inherited)
                            .map_err(|e| format!("listener {}: inherited socket: {e}", l.name))?,
                        None => listener::bind(l).map_err(|e| e.to_string())?,
                    };
                    fresh.push((l.clone(), Arc::new(socket)));
                }
            }
        }
        self.snapshot.store(Arc::new(snapshot));
        let wanted: Vec<&str> = config.listeners.iter().map(|l| l.name.as_str()).collect();
        let mut stopped = Vec::new();
        listeners.retain(|name, running| {
            let replaced = fresh.iter().any(|(l, _)| &l.name == name);
            if replaced || !wanted.contains(&name.as_str()) {
                running.stop.cancel();
                stopped.push(name.clone());
                false
            } else {
                true
            }
        });
        let mut started = Vec::new();
        for (l, socket) in fresh {
            started.push(l.name.clone());
            let running = self.start_loop(&l, socket);
            listeners.insert(l.name.clone(), running);
        }
        drop(listeners);
        self.start_health_checks(&self.snapshot.load());
        Ok(json!({
            "listeners": config.listeners.len(),
            "pools": config.pools.len(),
            "listeners_started": started,
            "listeners_stopped": stopped,
        }))
    }
}

impl Service for Proxyd {
    const NAME: &'static str = "proxyd";
    const SERVES_ON_WORKERS: bool = true;
    type Config = Config;

    fn common(c: &Config) -> Common<'_> {
        Common {
            control: &c.control,
            metrics: &c.metrics,
            log: &c.log,
            workers: c.workers,
        }
    }

    fn start(config: Config, ctx: Context) -> BoxFuture<'static, Result<Arc<Self>, BoxError>> {
        Box::pin(async move {
            let metrics = ProxyMetrics::register(ctx.metrics.registry())?;
            let snapshot = Snapshot::build(&config)?;
            let snapshot = Arc::new(ArcSwap::from_pointee(snapshot));
            let collector = crate::server_metrics::ServerCollector::new(Arc::clone(&snapshot))?;
            ctx.metrics.registry().register(Box::new(collector))?;
            let shutdown = ctx.shutdown.child_token();
            let workers = Workers::start(Self::NAME, config.workers.resolve(), &shutdown)?;
            let proxyd = Arc::new(Proxyd {
                access_log: Mutex::new(None),
                state: Mutex::new(State {
                    file: config.clone(),
                    runtime: RuntimeChanges::default(),
                }),
                snapshot,
                metrics,
                listeners: Mutex::new(BTreeMap::new()),
                health_stop: Mutex::new(CancellationToken::new()),
                shutdown,
                drain: CancellationToken::new(),
                tasks: TaskTracker::new(),
                control_socket: config.control.socket_path(Self::NAME),
                upgrading: Arc::new(AtomicBool::new(false)),
                workers,
            });
            // Upgrading: the old process's runtime changes, for the pools the file left alone.
            let runtime = match crate::upgrade::takeover::take_runtime() {
                Some(exported) => {
                    let (runtime, dropped) = RuntimeChanges::import(&exported, &config);
                    if !dropped.is_empty() {
                        warn!(pools = ?dropped, "upgrade: the file changes these pools; the old process's runtime changes to them are dropped");
                    }
                    runtime
                }
                None => RuntimeChanges::default(),
            };
            proxyd.apply(&runtime.overlay(&config), &runtime)?;
            proxyd.lock_state().runtime = runtime;
            crate::upgrade::respawn::on_sigusr2(proxyd.shutdown.clone());
            // Upgrading: serving now, so the old process may go.
            match tokio::task::spawn_blocking(crate::upgrade::takeover::finish).await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => {
                    warn!(reason = %why, "upgrade: the old process may still be running")
                }
                Err(e) => warn!(error = %e, "upgrade: finishing the takeover failed"),
            }
            Ok(proxyd)
        })
    }

    fn reload(&self, config: Config) -> BoxFuture<'_, Result<Value, String>> {
        let result = self.reload_now(config);
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        self.metrics.reloads.with_label_values(&[outcome]).inc();
        Box::pin(async move { result })
    }

    fn health(&self) -> Value {
        let listeners = self.lock_listeners();
        let expected = self.snapshot.load().listeners.len();
        let ready = listeners.len() == expected;
        json!({
            "ready": ready,
            "reason": if ready { format!("{expected} listener(s) bound") } else { format!("{} of {expected} listener(s) bound", listeners.len()) },
        })
    }

    fn status(&self) -> Value {
        let bound: Vec<(String, String)> = self
            .lock_listeners()
            .iter()
            .map(|(name, r)| (name.clone(), r.bound.to_string()))
            .collect();
        let state = self.lock_state();
        crate::status::status(&self.snapshot.load(), &bound, &state.runtime)
    }

    fn commands(&self) -> Vec<(&'static str, Access)> {
        crate::control::COMMANDS.to_vec()
    }

    fn call<'a>(
        &'a self,
        cmd: &'a str,
        args: &'a Map<String, Value>,
        _caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        let result = crate::control::call(self, cmd, args);
        Box::pin(async move { result })
    }

    fn stop(&self, deadline: Instant) -> BoxFuture<'_, ()> {
        self.drain.cancel();
        for running in self.lock_listeners().values() {
            running.stop.cancel();
        }
        self.health_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cancel();
        self.tasks.close();
        Box::pin(async move {
            let wait = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(wait, self.tasks.wait()).await.is_err() {
                info!("stop timeout reached with connections still open; closing them");
            }
        })
    }
}
