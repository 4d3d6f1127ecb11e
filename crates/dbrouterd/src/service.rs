//! dbrouterd as a daemon: starts the data path (topology, routers with their connection pools,
//! listeners), answers `health`, `status` and `route.explain`, applies reloads, and stops by
//! closing the listeners and letting sessions finish until the deadline.
//!
//! Reload applies the users (new logins see them at once); listeners, backends and pools are
//! built at start and need a restart to change (the reload answer says so).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ha_core::control::{Access, BoxFuture, Caller, CommandError, ErrorKind};
use ha_core::daemon::{BoxError, Common, Context, Service};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::config::Config;
use crate::listener::{listen, Bound, Shared};
use crate::pool::{BackendConn, Login};
use crate::router::Router;
use crate::stats::Stats;
use crate::topology::Topology;
use crate::users::{BackendSecret, Users};

pub struct Dbrouterd {
    config: ArcSwap<Config>,
    shared: Arc<Shared>,
    routers: HashMap<String, Arc<Router>>,
    listeners: Vec<Bound>,
    accepting: CancellationToken,
    sessions: TaskTracker,
}

impl Service for Dbrouterd {
    const NAME: &'static str = "dbrouterd";
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
            let topology = Topology::from_config(&config);
            let stats = Stats::register(ctx.metrics.registry(), &topology)?;
            let shared = Arc::new(Shared::new(
                Users::from_config(&config.users),
                stats,
                topology,
            ));
            let routers: HashMap<String, Arc<Router>> = config
                .pools
                .iter()
                .map(|(name, pool)| {
                    let router = Router::new(name, pool, &shared.topology, ctx.shutdown.clone());
                    (name.clone(), Arc::new(router))
                })
                .collect();
            let accepting = ctx.shutdown.child_token();
            let sessions = TaskTracker::new();
            let mut listeners = Vec::new();
            for l in &config.listeners {
                let router = routers
                    .get(&l.pool)
                    .cloned()
                    .ok_or_else(|| format!("listener {} names no pool {}", l.name, l.pool))?;
                let bound = listen(
                    &l.name,
                    &l.listen,
                    router,
                    shared.clone(),
                    accepting.clone(),
                    sessions.clone(),
                )
                .await?;
                listeners.push(bound);
            }
            tokio::spawn(probe_version(config.clone(), shared.clone()));
            Ok(Arc::new(Dbrouterd {
                config: ArcSwap::from_pointee(config),
                shared,
                routers,
                listeners,
                accepting,
                sessions,
            }))
        })
    }

    fn reload(&self, config: Config) -> BoxFuture<'_, Result<Value, String>> {
        self.shared
            .users
            .store(Arc::new(Users::from_config(&config.users)));
        let changes = json!({
            "users": config.users.len(),
            "note": "users applied; listeners, backends and pools take effect at restart",
        });
        self.config.store(Arc::new(config));
        Box::pin(async move { Ok(changes) })
    }

    fn health(&self) -> Value {
        let ready = !self.accepting.is_cancelled();
        json!({
            "ready": ready,
            "reason": if ready { "listeners bound" } else { "stopping" },
            "listeners": self.listeners.iter().map(|l| l.address.to_string()).collect::<Vec<_>>(),
        })
    }

    fn status(&self) -> Value {
        let stats = self.shared.stats.snapshot();
        let backends: Vec<Value> = self
            .shared
            .topology
            .nodes
            .iter()
            .map(|n| {
                json!({
                    "name": n.name,
                    "address": n.address,
                    "role": format!("{:?}", n.role).to_lowercase(),
                    "reachable": n.reachable_flag(),
                    "connections_open": n.open_connections.load(Ordering::Relaxed),
                    "sessions_using": n.in_use.load(Ordering::Relaxed),
                    "queries": stats["backends"][&n.name]["queries"].clone(),
                })
            })
            .collect();
        let summary = format!(
            "{} sessions; {}",
            stats["sessions"],
            self.shared
                .topology
                .nodes
                .iter()
                .map(|n| format!(
                    "{} {} ({} conns)",
                    n.name,
                    if n.reachable_flag() {
                        "up"
                    } else {
                        "unreachable"
                    },
                    n.open_connections.load(Ordering::Relaxed)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        json!({
            "summary": summary,
            "listeners": self.listeners.iter().map(|l| json!({"name": l.name, "address": l.address.to_string(), "pool": l.pool})).collect::<Vec<_>>(),
            "sessions": stats["sessions"],
            "sessions_total": stats["sessions_total"],
            "backends": backends,
            "errors": stats["errors"],
        })
    }

    fn commands(&self) -> Vec<(&'static str, Access)> {
        vec![("route.explain", Access::Read)]
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
    /// `route.explain sql="..." [pool=NAME | listener=NAME]`.
    fn explain(&self, args: &Map<String, Value>) -> Result<Value, CommandError> {
        let sql = args.get("sql").and_then(Value::as_str).ok_or_else(|| {
            CommandError::new(
                ErrorKind::InvalidArgument,
                "route.explain needs sql=\"...\"",
            )
        })?;
        let pool = match (args.get("pool"), args.get("listener")) {
            (Some(p), _) => p.as_str().map(str::to_string),
            (None, Some(l)) => {
                let l = l.as_str().unwrap_or_default();
                self.listeners
                    .iter()
                    .find(|b| b.name == l)
                    .map(|b| b.pool.clone())
            }
            (None, None) => self
                .listeners
                .first()
                .map(|b| b.pool.clone())
                .or_else(|| self.routers.keys().next().cloned()),
        };
        let router = pool
            .as_ref()
            .and_then(|p| self.routers.get(p))
            .ok_or_else(|| CommandError::new(ErrorKind::NotFound, "no such pool or listener"))?;
        Ok(router.explain(sql))
    }
}

/// Learns the backends' server version (shown in the greeting) with the monitor account.
async fn probe_version(config: Config, shared: Arc<Shared>) {
    let password = match (&config.monitor.password, &config.monitor.password_file) {
        (Some(p), _) => p.0.clone(),
        (None, Some(path)) => match tokio::fs::read_to_string(path).await {
            Ok(text) => text.trim_end().to_string(),
            Err(_) => return,
        },
        (None, None) => return,
    };
    let login = Login {
        user: config.monitor.user.clone(),
        secret: BackendSecret::Password(password.into_bytes()),
        caps: crate::protocol::Capabilities::empty(),
        charset: crate::session::handshake::DEFAULT_CHARSET,
        init_sql: None,
    };
    for node in &shared.topology.nodes {
        match BackendConn::connect(node.clone(), &login, Duration::from_secs(2)).await {
            Ok(conn) => {
                shared.learn_server_version(&conn.server_version);
                return;
            }
            Err(e) => debug!(backend = %node.name, error = %e, "version probe failed"),
        }
    }
}
