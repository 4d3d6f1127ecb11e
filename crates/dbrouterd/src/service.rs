//! dbrouterd as a daemon: the running configuration, control commands and stop.
//!
//! The MySQL data path (listeners, sessions, pools, monitor) is not built yet: this daemon
//! validates and holds its configuration and serves the control channel and metrics.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use ha_core::control::BoxFuture;
use ha_core::daemon::{BoxError, Common, Context, Service};
use serde_json::{json, Value};

use crate::config::Config;

pub struct Dbrouterd {
    config: ArcSwap<Config>,
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

    fn start(config: Config, _ctx: Context) -> BoxFuture<'static, Result<Arc<Self>, BoxError>> {
        Box::pin(async move {
            Ok(Arc::new(Dbrouterd {
                config: ArcSwap::from_pointee(config),
            }))
        })
    }

    fn reload(&self, config: Config) -> BoxFuture<'_, Result<Value, String>> {
        let changes = json!({ "backends": config.backends.len(), "pools": config.pools.len() });
        self.config.store(Arc::new(config));
        Box::pin(async move { Ok(changes) })
    }

    fn health(&self) -> Value {
        json!({ "ready": true })
    }

    fn status(&self) -> Value {
        let c = self.config.load();
        json!({
            "summary": format!("{} backends, {} pools configured; MySQL data path not implemented yet", c.backends.len(), c.pools.len()),
            "backends": c.backends.iter().map(|b| json!({"name": b.name, "address": b.address, "role": format!("{:?}", b.role).to_lowercase()})).collect::<Vec<_>>(),
        })
    }

    fn stop(&self, _deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
