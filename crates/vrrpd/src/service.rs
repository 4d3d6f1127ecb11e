//! vrrpd as a daemon: the running configuration, control commands and stop.
//!
//! The VRRP transport (raw sockets, netlink, trackers) is not built yet: this daemon validates
//! and holds its configuration and serves the control channel and metrics.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use ha_core::config::Workers;
use ha_core::control::BoxFuture;
use ha_core::daemon::{BoxError, Common, Context, Service};
use serde_json::{json, Value};

use crate::config::Config;

pub struct Vrrpd {
    config: ArcSwap<Config>,
}

impl Service for Vrrpd {
    const NAME: &'static str = "vrrpd";
    type Config = Config;

    fn common(c: &Config) -> Common<'_> {
        // VRRP timers are light work: one worker keeps them off the other daemons' cores.
        Common {
            control: &c.control,
            metrics: &c.metrics,
            log: &c.log,
            workers: Workers::Count(1),
        }
    }

    fn start(config: Config, _ctx: Context) -> BoxFuture<'static, Result<Arc<Self>, BoxError>> {
        Box::pin(async move {
            Ok(Arc::new(Vrrpd {
                config: ArcSwap::from_pointee(config),
            }))
        })
    }

    fn reload(&self, config: Config) -> BoxFuture<'_, Result<Value, String>> {
        let changes = json!({ "instances": config.instances.len() });
        self.config.store(Arc::new(config));
        Box::pin(async move { Ok(changes) })
    }

    fn health(&self) -> Value {
        json!({ "ready": true })
    }

    fn status(&self) -> Value {
        let c = self.config.load();
        json!({
            "summary": format!("{} instances configured; VRRP transport not implemented yet", c.instances.len()),
            "instances": c.instances.iter().map(|i| json!({
                "name": i.name, "interface": i.interface, "vrid": i.vrid, "priority": i.priority,
                "virtual_addresses": i.virtual_addresses,
            })).collect::<Vec<_>>(),
        })
    }

    fn stop(&self, _deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
