//! vrrpd as a daemon ([`Service`]): starts an instance task per configured instance, runs the
//! sync-group coordinator and the notifier, answers `status`, `health`, `vrrp.priority` and
//! `vrrp.maintenance`, applies reloads instance by instance (unchanged instances are not
//! touched), and on stop shuts every instance down with a priority-0 advertisement so the
//! backups take over after their skew time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ha_core::config::Workers;
use ha_core::control::{Access, BoxFuture, Caller, CommandError};
use ha_core::daemon::{BoxError, Common, Context, Service};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::{Config, Instance};
use crate::control::{maintenance, priority};
use crate::instance::{self, Command, FaultEvent, InstanceHandle, Shared, View};
use crate::metrics::VrrpMetrics;
use crate::notify::Notifier;
use crate::sync_group::SyncGroups;

type Instances = Arc<Mutex<BTreeMap<String, Arc<InstanceHandle>>>>;

pub struct Vrrpd {
    instances: Instances,
    groups: Arc<Mutex<SyncGroups>>,
    shared: Shared,
    /// One reload or stop at a time.
    changes: tokio::sync::Mutex<()>,
}

impl Vrrpd {
    fn handles(&self) -> Vec<Arc<InstanceHandle>> {
        self.instances
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn views(&self) -> Vec<View> {
        self.handles().iter().map(|h| h.view()).collect()
    }

    /// The instances a command names (one, or all when `name` is `None`).
    fn targets(&self, name: Option<&str>) -> Result<Vec<Arc<InstanceHandle>>, CommandError> {
        let all = self.handles();
        match name {
            None => Ok(all),
            Some(name) => all
                .into_iter()
                .find(|h| h.config.name == name)
                .map(|h| vec![h])
                .ok_or_else(|| CommandError::not_found(format!("no instance named {name:?}"))),
        }
    }

    async fn apply(
        &self,
        name: Option<&str>,
        command: impl Fn() -> Command,
    ) -> Result<Value, CommandError> {
        let targets = self.targets(name)?;
        for handle in &targets {
            handle.command(command()).await;
        }
        Ok(json!({ "instances": targets.iter().map(|h| h.view()).collect::<Vec<_>>() }))
    }
}

fn start_instance(config: &Instance, shared: &Shared) -> Result<Arc<InstanceHandle>, String> {
    instance::start(config.clone(), shared.clone())
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Forwards "instance X (no longer) has its own fault" to the partners of its sync groups.
fn run_sync_groups(
    mut faults: mpsc::UnboundedReceiver<FaultEvent>,
    groups: Arc<Mutex<SyncGroups>>,
    instances: Instances,
) {
    tokio::spawn(async move {
        while let Some(event) = faults.recv().await {
            let changes = match groups.lock() {
                Ok(mut g) => g.fault_changed(&event.instance, event.faulted),
                Err(_) => continue,
            };
            tell_partners(&instances, changes).await;
        }
    });
}

async fn tell_partners(instances: &Instances, changes: Vec<(String, bool)>) {
    for (partner, on) in changes {
        let handle = instances.lock().ok().and_then(|m| m.get(&partner).cloned());
        if let Some(handle) = handle {
            info!(instance = %partner, on, "sync group fault");
            handle.command(Command::SyncFault(on)).await;
        }
    }
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

    fn start(config: Config, ctx: Context) -> BoxFuture<'static, Result<Arc<Self>, BoxError>> {
        Box::pin(async move {
            let metrics = VrrpMetrics::register(ctx.metrics.registry())?;
            let (faults_tx, faults_rx) = mpsc::unbounded_channel();
            let shared = Shared {
                metrics,
                notifier: Notifier::start(),
                faults: faults_tx,
            };
            let instances: Instances = Arc::new(Mutex::new(BTreeMap::new()));
            let groups = Arc::new(Mutex::new(SyncGroups::new(config.sync_groups.clone())));
            run_sync_groups(faults_rx, groups.clone(), instances.clone());
            let daemon = Vrrpd {
                instances,
                groups,
                shared,
                changes: tokio::sync::Mutex::new(()),
            };
            for inst in &config.instances {
                match start_instance(inst, &daemon.shared) {
                    Ok(handle) => {
                        if let Ok(mut map) = daemon.instances.lock() {
                            map.insert(inst.name.clone(), handle);
                        }
                    }
                    Err(e) => {
                        for handle in daemon.handles() {
                            handle.stop().await;
                        }
                        return Err(e.into());
                    }
                }
            }
            Ok(Arc::new(daemon))
        })
    }

    fn reload(&self, config: Config) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let _one = self.changes.lock().await;
            let current: BTreeMap<String, Arc<InstanceHandle>> =
                self.instances.lock().map(|m| m.clone()).unwrap_or_default();
            let wanted: BTreeMap<&str, &Instance> = config
                .instances
                .iter()
                .map(|i| (i.name.as_str(), i))
                .collect();
            let (mut added, mut removed, mut changed, mut unchanged) =
                (vec![], vec![], vec![], vec![]);
            for (name, handle) in &current {
                match wanted.get(name.as_str()) {
                    None => removed.push(name.clone()),
                    Some(new) if **new == handle.config => unchanged.push(name.clone()),
                    Some(_) => changed.push(name.clone()),
                }
            }
            for name in wanted.keys() {
                if !current.contains_key(*name) {
                    added.push(name.to_string());
                }
            }
            let mut errors = Vec::new();
            for name in removed.iter().chain(&changed) {
                if let Some(handle) = current.get(name) {
                    handle.stop().await;
                    self.shared.metrics.forget_instance(name);
                }
                if let Ok(mut map) = self.instances.lock() {
                    map.remove(name);
                }
            }
            for name in added.iter().chain(&changed) {
                let Some(inst) = wanted.get(name.as_str()) else {
                    continue;
                };
                match start_instance(inst, &self.shared) {
                    Ok(handle) => {
                        if let Ok(mut map) = self.instances.lock() {
                            map.insert(name.clone(), handle);
                        }
                    }
                    Err(e) => {
                        warn!(instance = %name, error = %e, "instance not started");
                        errors.push(e);
                    }
                }
            }
            let sync_changes = match self.groups.lock() {
                Ok(mut g) => g.set_groups(config.sync_groups.clone()),
                Err(_) => Vec::new(),
            };
            tell_partners(&self.instances, sync_changes).await;
            let changes = json!({
                "added": added, "removed": removed, "restarted": changed, "unchanged": unchanged,
            });
            if errors.is_empty() {
                Ok(changes)
            } else {
                Err(format!("{}; applied: {changes}", errors.join("; ")))
            }
        })
    }

    fn health(&self) -> Value {
        crate::status::health(&self.views())
    }

    fn status(&self) -> Value {
        crate::status::status(&self.views())
    }

    fn commands(&self) -> Vec<(&'static str, Access)> {
        vec![
            ("vrrp.priority", Access::Admin),
            ("vrrp.maintenance", Access::Admin),
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
                "vrrp.priority" => {
                    let p = priority::parse(args)?;
                    self.apply(p.instance.as_deref(), || Command::Priority(p.priority))
                        .await
                }
                "vrrp.maintenance" => {
                    let m = maintenance::parse(args)?;
                    self.apply(m.instance.as_deref(), || Command::Maintenance(m.on))
                        .await
                }
                other => Err(CommandError::new(
                    ha_core::control::ErrorKind::UnknownCommand,
                    format!("unknown command {other}"),
                )),
            }
        })
    }

    fn stop(&self, _deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _one = self.changes.lock().await;
            for handle in self.handles() {
                handle.stop().await;
            }
            info!("every instance stopped; virtual addresses removed");
        })
    }
}
