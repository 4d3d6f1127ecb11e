//! Reload: a new file applied whole, or refused whole with the reason.
//!
//! In three steps, so that nothing of the new file takes effect when any part of it cannot:
//! 1. **Check** what only a restart can change ([`needing_restart`]: backends, the monitor's
//!    login, workers, control, metrics, log) and the monitor's password as its file says now.
//! 2. **Prepare** everything that can fail: a router for every pool, every listener's TLS,
//!    and every new address bound (not yet accepting). A failure drops what was prepared.
//! 3. **Commit**, which cannot fail: users; pool limits; every kept listener (same address)
//!    hands new clients the new router, name and TLS; new listeners accept; removed ones stop
//!    accepting while their sessions finish; the new [`Running`] and [`Config`] are stored
//!    (the monitor takes its settings from the latter before its next round).
//!
//! Sessions in flight keep the router they started with (an `Arc`), so they finish on the
//! old pool settings; new sessions get the new ones.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tracing::info;

use super::{build_routers, monitor_password, Dbrouterd, Running};
use crate::config::change::needing_restart;
use crate::config::Config;
use crate::listener::{bind, load_tls, serve, Bound, Live, Serving, Socket};
use crate::router::Router;
use crate::users::Users;

/// The listeners of a new file, ready to commit.
#[derive(Default)]
struct Listeners {
    /// Index in the running listeners (same address) and what it serves from now on.
    kept: Vec<(usize, Serving)>,
    /// Newly bound addresses with their configured `listen`.
    added: Vec<(Socket, String, Serving)>,
}

impl Dbrouterd {
    pub(super) async fn reload_file(&self, config: Config) -> Result<Value, String> {
        let refused =
            |why: String| format!("reload refused, the running configuration stays: {why}");
        let restart = self.needing_restart(&config).await.map_err(refused)?;
        if !restart.is_empty() {
            return Err(refused(format!(
                "{}; these cannot change while dbrouterd runs: restart it to apply them",
                restart.join("; ")
            )));
        }
        let running = self.running.load_full();
        let routers = build_routers(&config, &self.shared, &running.routers, &self.shutdown);
        let listeners = self
            .prepare_listeners(&config, &running, &routers)
            .await
            .map_err(refused)?;
        Ok(self.commit(config, &running, routers, listeners))
    }

    /// What in `config` needs a restart, the content of the monitor's password file included;
    /// an error when that file cannot be read.
    async fn needing_restart(&self, config: &Config) -> Result<Vec<String>, String> {
        let running = self.config.load();
        let mut restart = needing_restart(&running, config);
        let same_source = running.monitor.password == config.monitor.password
            && running.monitor.password_file == config.monitor.password_file;
        if same_source && monitor_password(config).await? != self.monitor_password {
            restart.push("the monitor's password changed".into());
        }
        Ok(restart)
    }

    /// Every listener's router and TLS, and new addresses bound.
    async fn prepare_listeners(
        &self,
        config: &Config,
        running: &Running,
        routers: &HashMap<String, Arc<Router>>,
    ) -> Result<Listeners, String> {
        let mut prepared = Listeners::default();
        for l in &config.listeners {
            let router = routers
                .get(&l.pool)
                .cloned()
                .ok_or_else(|| format!("listener {} names no pool {}", l.name, l.pool))?;
            let serving = Serving {
                name: l.name.clone(),
                router,
                tls: load_tls(&l.name, l.tls.as_ref()).map_err(|e| e.to_string())?,
            };
            match running.listeners.iter().position(|r| r.listen == l.listen) {
                Some(i) => prepared.kept.push((i, serving)),
                None => {
                    let socket = bind(&l.name, &l.listen, &self.threads)
                        .await
                        .map_err(|e| e.to_string())?;
                    prepared.added.push((socket, l.listen.clone(), serving));
                }
            }
        }
        Ok(prepared)
    }

    /// Puts the prepared file in force; answers what changed.
    fn commit(
        &self,
        config: Config,
        running: &Running,
        routers: HashMap<String, Arc<Router>>,
        prepared: Listeners,
    ) -> Value {
        self.shared
            .users
            .store(Arc::new(Users::from_config(&config.users)));
        for router in routers.values() {
            router.pools.update(&router.config.connection_pool);
        }
        let mut listeners = Vec::new();
        let mut kept = vec![false; running.listeners.len()];
        for (i, serving) in prepared.kept {
            let old = &running.listeners[i];
            kept[i] = true;
            listeners.push(Live {
                bound: Bound {
                    name: serving.name.clone(),
                    address: old.bound.address,
                    pool: serving.router.name.clone(),
                },
                ..old.clone()
            });
            old.serving.store(Arc::new(serving));
        }
        let mut removed = Vec::new();
        for (old, _) in running.listeners.iter().zip(&kept).filter(|(_, k)| !**k) {
            info!(listener = %old.bound.name, listen = %old.bound.address, "listener removed by reload: no new clients, its sessions finish");
            old.stop.cancel();
            removed.push(old.bound.name.clone());
        }
        let mut added = Vec::new();
        for (socket, listen, serving) in prepared.added {
            added.push(serving.name.clone());
            listeners.push(serve(socket, &listen, serving, &self.shared, &self.threads));
        }
        let generation = running.generation + 1;
        let answer = json!({
            "generation": generation,
            "users": config.users.len(),
            "pools": routers.keys().collect::<Vec<_>>(),
            "listeners": { "added": added, "removed": removed, "kept": listeners.len() - added.len() },
            "monitor": "interval, timeout, rise/fall, lag and failover settings from its next round",
            "note": "sessions already open finish on the settings they started with",
        });
        self.running.store(Arc::new(Running {
            generation,
            routers,
            listeners,
        }));
        self.config.store(Arc::new(config));
        answer
    }
}
