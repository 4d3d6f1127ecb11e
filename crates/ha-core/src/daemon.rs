//! The life of a daemon, the same for all of them: command line, `--check`, logging, metrics,
//! control socket, systemd notification, reload on SIGHUP or `reload`, graceful stop.
//!
//! A daemon implements [`Service`] (start, reload, health, status, its own commands, stop) and
//! its `main.rs` calls [`main`]. Everything else here is shared.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use tracing::{error, info, warn};

use crate::config::{
    self, ConfigErrors, ControlConfig, LogConfig, MetricsConfig, Validate, Workers,
};
use crate::control::{
    Access, BoxFuture, Caller, CommandError, CommandHandler, ControlServer, ErrorKind,
};
use crate::lifecycle::{notify, Notify, Shutdown, Signal, Signals};
use crate::metrics::Metrics;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The command line every daemon takes (plus `--version`, from clap).
#[derive(Clone, Debug, clap::Args)]
pub struct DaemonArgs {
    /// Configuration file (default /etc/ha/<daemon>.yaml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration file, print every error (or `ok`) and exit.
    #[arg(long)]
    pub check: bool,
    /// How long a graceful stop may let in-flight work run before it is cut.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = config::parse_duration)]
    pub stop_timeout: Duration,
}

impl DaemonArgs {
    pub fn config_path(&self, daemon: &str) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/etc/ha/{daemon}.yaml")))
    }
}

/// The sections every daemon's configuration has.
pub struct Common<'a> {
    pub control: &'a ControlConfig,
    pub metrics: &'a MetricsConfig,
    pub log: &'a LogConfig,
    pub workers: Workers,
}

/// What a daemon is given when it starts.
#[derive(Clone)]
pub struct Context {
    pub metrics: Metrics,
    /// Cancelled when the daemon must stop.
    pub shutdown: Shutdown,
    pub config_path: PathBuf,
}

/// A daemon: the part that differs between vrrpd, proxyd and dbrouterd.
pub trait Service: Sized + Send + Sync + 'static {
    const NAME: &'static str;
    /// Whether the daemon serves its connections on its own [`crate::workers::Workers`] (one
    /// runtime per `workers` thread). Its main runtime (control socket, health checks,
    /// monitors, timers) then needs one thread instead of `workers` more.
    const SERVES_ON_WORKERS: bool = false;
    type Config: DeserializeOwned + Validate + Send + Sync + 'static;

    fn common(config: &Self::Config) -> Common<'_>;

    /// Starts serving with the first configuration.
    fn start(config: Self::Config, ctx: Context)
        -> BoxFuture<'static, Result<Arc<Self>, BoxError>>;

    /// Applies a new configuration that already passed validation; answers what changed.
    fn reload(&self, config: Self::Config) -> BoxFuture<'_, Result<Value, String>>;

    /// Cheap liveness and readiness: `{"ready": bool, "reason": ...}`.
    fn health(&self) -> Value;

    /// Everything an operator wants to see; a `summary` string is shown by `hactl status`.
    fn status(&self) -> Value;

    /// The daemon's own commands (beyond hello, health, status, reload).
    fn commands(&self) -> Vec<(&'static str, Access)> {
        Vec::new()
    }

    fn call<'a>(
        &'a self,
        cmd: &'a str,
        _args: &'a Map<String, Value>,
        _caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        Box::pin(async move {
            Err(CommandError::new(
                ErrorKind::UnknownCommand,
                format!("unknown command {cmd}"),
            ))
        })
    }

    /// Stops accepting, lets in-flight work finish until `deadline`, then returns.
    fn stop(&self, deadline: Instant) -> BoxFuture<'_, ()>;
}

/// Runs a daemon to completion: the whole of its `main`.
pub fn main<S: Service>(args: DaemonArgs) -> ExitCode {
    let path = args.config_path(S::NAME);
    let config = match config::load::<S::Config>(&path) {
        Ok(c) => c,
        Err(errors) => {
            print_errors(&errors);
            return ExitCode::from(1);
        }
    };
    if args.check {
        println!("ok");
        return ExitCode::SUCCESS;
    }
    let common = S::common(&config);
    crate::log::init(common.log);
    let threads = if S::SERVES_ON_WORKERS {
        1
    } else {
        common.workers.resolve()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start runtime: {e}", S::NAME);
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run::<S>(config, path, args.stop_timeout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "{} failed", S::NAME);
            eprintln!("{}: {e}", S::NAME);
            ExitCode::from(1)
        }
    }
}

fn print_errors(errors: &ConfigErrors) {
    for e in &errors.0 {
        eprintln!("{e}");
    }
    eprintln!("{} error(s)", errors.0.len());
}

async fn run<S: Service>(
    config: S::Config,
    path: PathBuf,
    stop_timeout: Duration,
) -> Result<(), BoxError> {
    let shutdown = Shutdown::new();
    let metrics = Metrics::new()?;
    let mut signals = Signals::install()?;
    let common = S::common(&config);
    let control = ControlServer::bind(S::NAME, common.control, metrics.registry()).await?;
    if let Some(addr) = common.metrics.listen {
        metrics.serve(addr, shutdown.clone()).await?;
    }
    let ctx = Context {
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        config_path: path.clone(),
    };
    let service = S::start(config, ctx).await?;
    let handler = Arc::new(Control {
        service: service.clone(),
        path,
        started: Instant::now(),
        reloads: Reloads::register(metrics.registry())?,
        vrrp_events: Mutex::new(VecDeque::new()),
    });
    let control_task = tokio::spawn(control.serve(handler.clone(), shutdown.clone()));
    crate::memory::spawn_release();
    notify(&[
        Notify::Ready,
        Notify::Status(format!("{} serving", S::NAME)),
    ]);
    info!(version = env!("CARGO_PKG_VERSION"), "{} started", S::NAME);

    while let Signal::Reload = signals.next().await {
        if let Err(e) = handler.reload().await {
            warn!(error = %e.message, "reload refused; the running configuration stays");
        }
    }
    info!(timeout = ?stop_timeout, "stopping gracefully");
    notify(&[Notify::Stopping]);
    let deadline = Instant::now() + stop_timeout;
    service.stop(deadline).await;
    shutdown.cancel();
    let _ = control_task.await;
    info!("{} stopped", S::NAME);
    Ok(())
}

/// Reloads and their results, for `status` and as `ha_reloads_total{result}` on /metrics
/// (every reload, also a file refused by validation before the daemon saw it).
struct Reloads {
    ok: prometheus::IntCounter,
    failed: prometheus::IntCounter,
    last_error: Mutex<Option<String>>,
    /// One reload at a time.
    lock: tokio::sync::Mutex<()>,
}

impl Reloads {
    fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let counter = prometheus::IntCounterVec::new(
            prometheus::Opts::new("ha_reloads_total", "Configuration reloads, by result"),
            &["result"],
        )?;
        registry.register(Box::new(counter.clone()))?;
        Ok(Reloads {
            ok: counter.with_label_values(&["ok"]),
            failed: counter.with_label_values(&["failed"]),
            last_error: Mutex::new(None),
            lock: tokio::sync::Mutex::new(()),
        })
    }
}

/// The control commands every daemon has, around its [`Service`].
struct Control<S: Service> {
    service: Arc<S>,
    path: PathBuf,
    started: Instant,
    reloads: Reloads,
    /// The last VRRP transitions vrrpd told this daemon of (`notify.sockets`), newest last.
    vrrp_events: Mutex<VecDeque<Value>>,
}

/// How many VRRP transitions `status` keeps.
const VRRP_EVENTS_KEPT: usize = 16;

impl<S: Service> Control<S> {
    /// Records a transition vrrpd announced (instance, state, priority, reason), so an operator
    /// sees in this daemon's status when its node gained or lost the VIP.
    fn record_vrrp_event(&self, args: &Map<String, Value>) -> Value {
        let mut event = args.clone();
        event.insert("received_unix_ms".into(), json!(unix_ms()));
        let event = Value::Object(event);
        info!(event = %event, "vrrp transition announced");
        if let Ok(mut events) = self.vrrp_events.lock() {
            if events.len() == VRRP_EVENTS_KEPT {
                events.pop_front();
            }
            events.push_back(event.clone());
        }
        event
    }

    /// Re-reads the file; an invalid one is refused whole and the running config stays.
    async fn reload(&self) -> Result<Value, CommandError> {
        let _one_at_a_time = self.reloads.lock.lock().await;
        notify(&[Notify::Reloading]);
        let result = match load_blocking::<S::Config>(&self.path).await {
            Err(errors) => Err(format!(
                "{} is invalid, the running configuration stays:\n{errors}",
                self.path.display()
            )),
            Ok(config) => self.service.reload(config).await,
        };
        notify(&[Notify::Ready]);
        match result {
            Ok(changes) => {
                self.reloads.ok.inc();
                info!(changes = %changes, "configuration reloaded");
                Ok(changes)
            }
            Err(message) => {
                self.reloads.failed.inc();
                if let Ok(mut last) = self.reloads.last_error.lock() {
                    *last = Some(message.clone());
                }
                Err(CommandError::new(ErrorKind::Failed, message))
            }
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn load_blocking<T: DeserializeOwned + Validate + Send + 'static>(
    path: &Path,
) -> Result<T, ConfigErrors> {
    let path = path.to_path_buf();
    let for_error = path.clone();
    tokio::task::spawn_blocking(move || config::load::<T>(&path))
        .await
        .unwrap_or_else(|e| {
            Err(ConfigErrors(vec![config::ConfigError {
                file: for_error,
                path: config::KeyPath::root(),
                position: None,
                message: format!("loader failed: {e}"),
            }]))
        })
}

impl<S: Service> CommandHandler for Control<S> {
    fn commands(&self) -> Vec<(&'static str, Access)> {
        let mut list = vec![
            ("health", Access::Read),
            ("status", Access::Read),
            ("reload", Access::Admin),
            ("vrrp.transition", Access::Admin),
        ];
        list.extend(self.service.commands());
        list
    }

    fn call<'a>(
        &'a self,
        cmd: &'a str,
        args: &'a Map<String, Value>,
        caller: &'a Caller,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        match cmd {
            "health" => {
                let health = self.service.health();
                Box::pin(async move { Ok(health) })
            }
            "status" => Box::pin(async move {
                let last_error = self.reloads.last_error.lock().ok().and_then(|g| g.clone());
                Ok(json!({
                    "daemon": S::NAME,
                    "version": env!("CARGO_PKG_VERSION"),
                    "pid": std::process::id(),
                    "uptime_s": self.started.elapsed().as_secs(),
                    "config": self.path.display().to_string(),
                    "health": self.service.health(),
                    "reloads": {
                        "ok": self.reloads.ok.get(),
                        "failed": self.reloads.failed.get(),
                        "last_error": last_error,
                    },
                    "vrrp_events": self.vrrp_events.lock().map(|e| e.iter().cloned().collect::<Vec<_>>()).unwrap_or_default(),
                    "service": self.service.status(),
                }))
            }),
            "reload" => Box::pin(self.reload()),
            "vrrp.transition" => {
                let event = self.record_vrrp_event(args);
                Box::pin(async move { Ok(event) })
            }
            _ => self.service.call(cmd, args, caller),
        }
    }
}
