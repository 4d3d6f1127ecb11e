//! dbrouterd as a daemon: starts the monitor and the data path (topology, routers with their
//! connection pools, listeners), answers `health`, `status`, `route.explain`,
//! `backend.drain`, `backend.enable`, `db.switchover`, `db.failover` and `db.rejoin`, applies
//! reloads, and
//! stops by closing the listeners and letting sessions finish until the deadline.
//!
//! Reload (`service::reload`) applies a new file whole or refuses it whole: users, pools, listeners,
//! monitor and failover settings live; backends and the monitor's login need a restart.
//! What runs (routers, listeners) is one [`Running`] behind an atomically swapped pointer.

mod reload;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use ha_core::control::{Access, BoxFuture, Caller, CommandError, ErrorKind};
use ha_core::daemon::{BoxError, Common, Context, Service};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::client_key::ClientKey;
use crate::config::Config;
use crate::listener::{bind, load_tls, serve, Live, Serving, SessionThreads, Shared};
use crate::monitor::promote::Kind;
use crate::monitor::{metrics::MonitorMetrics, topology_status, Monitor, MonitorHandle, Requested};
use crate::pool::Pools;
use crate::router::Router;
use crate::stats::Stats;
use crate::tls::backend::BackendTls;
use crate::topology::Topology;
use crate::users::Users;

pub struct Dbrouterd {
    /// The file in force (the monitor reads its settings from here).
    config: Arc<ArcSwap<Config>>,
    shared: Arc<Shared>,
    running: ArcSwap<Running>,
    threads: SessionThreads,
    accepting: CancellationToken,
    sessions: TaskTracker,
    monitor: MonitorHandle,
    /// The monitor's password as it logs in with (a reload must not change it).
    monitor_password: String,
    shutdown: CancellationToken,
}

/// The routers and listeners in force, and how many reloads built them.
pub struct Running {
    /// 0 at start, one more with every applied reload.
    pub generation: u64,
    pub routers: HashMap<String, Arc<Router>>,
    pub listeners: Vec<Live>,
}

impl Service for Dbrouterd {
    const NAME: &'static str = "dbrouterd";
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
            let backend_tls = BackendTls::load(&config.backend_tls)?;
            let topology = Topology::from_config(&config, backend_tls);
            let stats = Stats::register(ctx.metrics.registry(), &topology)?;
            let client_key = ClientKey::load(config.rsa_private_key.as_deref())?;
            let shared = Arc::new(Shared::new(
                Users::from_config(&config.users),
                client_key,
                stats,
                topology,
            ));
            let shutdown = ctx.shutdown.clone();
            let routers = build_routers(&config, &shared, &HashMap::new(), &shutdown);
            // A monitor that cannot log in would leave the writer unchecked and failover off:
            // refuse to start instead of running half-blind.
            let monitor_password = monitor_password(&config).await?;
            let metrics = MonitorMetrics::register(ctx.metrics.registry())?;
            let config = Arc::new(ArcSwap::from_pointee(config));
            let monitor = Monitor::new(
                config.clone(),
                monitor_password.clone(),
                shared.clone(),
                metrics,
            )
            .spawn(ctx.shutdown.clone())
            .await;
            let accepting = ctx.shutdown.child_token();
            let sessions = TaskTracker::new();
            let threads = SessionThreads {
                stop: accepting.clone(),
                sessions: sessions.clone(),
                workers: ha_core::workers::Workers::start(
                    "dbrouterd",
                    config.load().workers.resolve(),
                    &ctx.shutdown,
                )
                .map_err(|e| format!("cannot start the session threads: {e}"))?,
            };
            let mut listeners = Vec::new();
            for l in &config.load().listeners {
                let router = routers
                    .get(&l.pool)
                    .cloned()
                    .ok_or_else(|| format!("listener {} names no pool {}", l.name, l.pool))?;
                let tls = load_tls(&l.name, l.tls.as_ref())?;
                let socket = bind(&l.name, &l.listen, &threads).await?;
                let serving = Serving {
                    name: l.name.clone(),
                    router,
                    tls,
                };
                listeners.push(serve(socket, &l.listen, serving, &shared, &threads));
            }
            Ok(Arc::new(Dbrouterd {
                config,
                shared,
                running: ArcSwap::from_pointee(Running {
                    generation: 0,
                    routers,
                    listeners,
                }),
                threads,
                accepting,
                sessions,
                monitor,
                monitor_password,
                shutdown,
            }))
        })
    }

    fn reload(&self, config: Config) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(self.reload_file(config))
    }

    fn health(&self) -> Value {
        let ready = !self.accepting.is_cancelled();
        let running = self.running.load();
        json!({
            "ready": ready,
            "reason": if ready { "listeners bound" } else { "stopping" },
            "listeners": running.listeners.iter().map(|l| l.bound.address.to_string()).collect::<Vec<_>>(),
        })
    }

    fn status(&self) -> Value {
        let stats = self.shared.stats.snapshot();
        let running = self.running.load();
        let topology = &self.shared.topology;
        let mut backends = topology.status();
        for b in &mut backends {
            let name = b["name"].as_str().unwrap_or_default().to_string();
            b["queries"] = stats["backends"][&name]["queries"].clone();
        }
        let summary = format!(
            "{} sessions; epoch {}; writer {}; {}",
            stats["sessions"],
            topology.epoch(),
            topology
                .writer()
                .map(|w| {
                    // Whether its commits wait for a replica, when the monitor read it.
                    let replication = match w.observed().semi_sync {
                        Some(s) if s.active => format!(
                            " (semi-sync, {} replica{})",
                            s.clients,
                            if s.clients == 1 { "" } else { "s" }
                        ),
                        Some(_) => " (asynchronous)".to_string(),
                        None => String::new(),
                    };
                    format!("{}{replication}", w.name)
                })
                .unwrap_or_else(|| "none (writes held)".to_string()),
            topology
                .nodes
                .iter()
                .map(|n| {
                    let o = n.observed();
                    let lag = o
                        .lag_ms
                        .map(|l| format!(", lag {l} ms"))
                        .unwrap_or_default();
                    format!(
                        "{} {}{}{} ({} conns)",
                        n.name,
                        o.state,
                        if n.is_drained() { ", drained" } else { "" },
                        lag,
                        n.open_connections.load(Ordering::Relaxed)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        json!({
            "summary": summary,
            "topology": topology_status(topology),
            "listeners": running.listeners.iter().map(|l| &l.bound).map(|l| json!({"name": l.name, "address": l.address.to_string(), "pool": l.pool})).collect::<Vec<_>>(),
            "config_generation": running.generation,
            "pools": running.routers.iter().map(|(name, r)| (name.clone(), r.status())).collect::<Map<String, Value>>(),
            "sessions": stats["sessions"],
            "sessions_total": stats["sessions_total"],
            "backends": backends,
            "errors": stats["errors"],
        })
    }

    fn commands(&self) -> Vec<(&'static str, Access)> {
        vec![
            ("route.explain", Access::Read),
            ("backend.drain", Access::Admin),
            ("backend.enable", Access::Admin),
            ("db.switchover", Access::Admin),
            ("db.failover", Access::Admin),
            ("db.rejoin", Access::Admin),
        ]
    }

    fn call<'a>(
        &'a self,
        cmd: &'a str,
        args: &'a Map<String, Value>,
        _caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        Box::pin(async move {
            match cmd {
                "route.explain" => self.explain(args),
                "backend.drain" => self.drain(args, true),
                "backend.enable" => self.drain(args, false),
                "db.switchover" => self.change(Kind::Switchover, args).await,
                "db.failover" => self.change(Kind::Failover, args).await,
                "db.rejoin" => self.rejoin(args).await,
                other => Err(CommandError::new(
                    ErrorKind::UnknownCommand,
                    format!("unknown command {other}"),
                )),
            }
        })
    }

    fn stop(&self, deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.accepting.cancel();
            self.sessions.close();
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, self.sessions.wait())
                .await
                .is_err()
            {
                info!(
                    sessions = self.sessions.len(),
                    "stop deadline reached with sessions open"
                );
            }
        })
    }
}

impl Dbrouterd {
    /// `backend.drain backend=NAME` / `backend.enable backend=NAME`: out of or back into the
    /// read rotation (the monitor's verdict still applies).
    fn drain(&self, args: &Map<String, Value>, drained: bool) -> Result<Value, CommandError> {
        let name = args
            .get("backend")
            .and_then(Value::as_str)
            .ok_or_else(|| CommandError::invalid_argument("needs backend=NAME"))?;
        let node = self
            .shared
            .topology
            .by_name(name)
            .ok_or_else(|| CommandError::not_found(format!("no backend named {name}")))?;
        node.set_drained(drained);
        info!(backend = %name, drained, "read rotation changed by command");
        Ok(json!({"backend": name, "drained": drained, "in_read_rotation": node.can_read()}))
    }

    /// `db.switchover [to=NAME]` / `db.failover [to=NAME]`.
    async fn change(&self, kind: Kind, args: &Map<String, Value>) -> Result<Value, CommandError> {
        let to = args.get("to").and_then(Value::as_str).map(str::to_string);
        self.monitor
            .request(Requested::Change { kind, to })
            .await
            .map_err(CommandError::failed)
    }

    /// `db.rejoin backend=NAME`: the server, read-only and holding nothing the writer lacks,
    /// replicates from the writer (what `failover.auto_rejoin` does on its own).
    async fn rejoin(&self, args: &Map<String, Value>) -> Result<Value, CommandError> {
        let backend = args
            .get("backend")
            .and_then(Value::as_str)
            .ok_or_else(|| CommandError::invalid_argument("needs backend=NAME"))?
            .to_string();
        self.monitor
            .request(Requested::Rejoin { backend })
            .await
            .map_err(CommandError::failed)
    }

    /// `route.explain sql="..." [pool=NAME | listener=NAME]`.
    fn explain(&self, args: &Map<String, Value>) -> Result<Value, CommandError> {
        let sql = args.get("sql").and_then(Value::as_str).ok_or_else(|| {
            CommandError::new(
                ErrorKind::InvalidArgument,
                "route.explain needs sql=\"...\"",
            )
        })?;
        let running = self.running.load();
        let pool = match (args.get("pool"), args.get("listener")) {
            (Some(p), _) => p.as_str().map(str::to_string),
            (None, Some(l)) => {
                let l = l.as_str().unwrap_or_default();
                running
                    .listeners
                    .iter()
                    .find(|b| b.bound.name == l)
                    .map(|b| b.bound.pool.clone())
            }
            (None, None) => running
                .listeners
                .first()
                .map(|b| b.bound.pool.clone())
                .or_else(|| running.routers.keys().next().cloned()),
        };
        let router = pool
            .as_ref()
            .and_then(|p| running.routers.get(p))
            .ok_or_else(|| CommandError::new(ErrorKind::NotFound, "no such pool or listener"))?;
        Ok(router.explain(sql))
    }
}

/// A router for every pool of `config`. A pool's connection pools carry over from `old` (the
/// reload applies its new settings with [`Pools::update`] once it commits), so a reload keeps
/// idle connections.
fn build_routers(
    config: &Config,
    shared: &Shared,
    old: &HashMap<String, Arc<Router>>,
    shutdown: &CancellationToken,
) -> HashMap<String, Arc<Router>> {
    let hold_writes = config.failover.hold_writes.get();
    config
        .pools
        .iter()
        .map(|(name, pool)| {
            let settings = &pool.connection_pool;
            let pools = match old.get(name) {
                Some(r) => r.pools.clone(),
                None => Arc::new(Pools::new(settings.clone(), shutdown.clone())),
            };
            let router = Router::new(name, pool, &shared.topology, hold_writes, pools);
            (name.clone(), Arc::new(router))
        })
        .collect()
}

/// The monitor's password, inline or from its file.
async fn monitor_password(config: &Config) -> Result<String, String> {
    match (&config.monitor.password, &config.monitor.password_file) {
        (Some(p), _) => Ok(p.0.clone()),
        (None, Some(path)) => tokio::fs::read_to_string(path)
            .await
            .map(|text| text.trim_end().to_string())
            .map_err(|e| {
                format!(
                    "cannot read the monitor password file {}: {e}",
                    path.display()
                )
            }),
        (None, None) => Err("the monitor needs password or password_file".into()),
    }
}
