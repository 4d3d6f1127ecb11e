//! proxyd as a daemon: the running configuration behind an atomically swapped pointer, the
//! control commands, and stop.
//!
//! The data path (listeners, pools, health checks) is not built yet: this daemon validates
//! and holds its configuration and serves the control channel and metrics.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use ha_core::control::BoxFuture;
use ha_core::daemon::{BoxError, Common, Context, Service};
use serde_json::{json, Value};

use crate::config::Config;

pub struct Proxyd {
    config: ArcSwap<Config>,
}

impl Service for Proxyd {
    const NAME: &'static str = "proxyd";
    type Config = Config;

    fn common(c: &Config) -> Common<'_> {
        Common {
            control: &c.control,
            metrics: &c.metrics,
            log: &c.log,
            workers: c.workers,
        }
    }

    fn start(config: Config, _ctx: Context) -> BoxFuture<'static, Result<Arc<Self>, BoxError>> {
        Box::pin(async move {
            Ok(Arc::new(Proxyd {
                config: ArcSwap::from_pointee(config),
            }))
        })
    }

    fn reload(&self, config: Config) -> BoxFuture<'_, Result<Value, String>> {
        let changes = json!({
            "listeners": config.listeners.len(),
            "pools": config.pools.len(),
        });
        self.config.store(Arc::new(config));
        Box::pin(async move { Ok(changes) })
    }

    fn health(&self) -> Value {
        json!({ "ready": true })
    }

    fn status(&self) -> Value {
        let c = self.config.load();
        let pools: Value = c
            .pools
            .iter()
            .map(|(name, p)| {
                (
                    name.clone(),
                    json!({ "servers": p.servers.iter().map(|s| &s.address).collect::<Vec<_>>() }),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        json!({
            "summary": format!("{} listeners, {} pools configured; data path not implemented yet", c.listeners.len(), c.pools.len()),
            "listeners": c.listeners.iter().map(|l| json!({"name": l.name, "listen": l.listen})).collect::<Vec<_>>(),
            "pools": pools,
        })
    }

    fn stop(&self, _deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
