//! One server of a pool: its address, weight and limits, the counters shown in status, and
//! the health flags the balancer reads on every pick.
//!
//! The hot path reads atomics only: `is_available` checks the active-check flag, the passive
//! "out until" instant and `max_conns`; `weight` applies slow start when a ramp is running.
//! Health changes take the mutex around [`PassiveHealth`] and the active [`HealthTracker`].

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use ha_core::balance::Backend;
use ha_core::health::{HealthTracker, Transition};
use hyper::http::uri::Authority;

use super::admin::{AdminState, AtomicAdmin};
use super::passive::PassiveHealth;
use super::resolve::Target;
use super::stats::ServerStats;
use super::upstream::{ConnPool, Settings};

/// Weights are scaled by this so slow start can ramp in small steps.
const WEIGHT_SCALE: u32 = 16;

/// Instants stored in atomics as nanoseconds since this process-wide origin (0 = none).
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(|| Instant::now() - Duration::from_secs(1))
}

fn to_nanos(at: Instant) -> u64 {
    at.saturating_duration_since(origin()).as_nanos() as u64
}

fn from_nanos(nanos: u64) -> Instant {
    origin() + Duration::from_nanos(nanos)
}

/// How a server is configured (from `pools.<name>.servers[i]`).
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub address: String,
    pub weight: u32,
    pub max_conns: Option<u32>,
    pub backup: bool,
    /// Upstream connections (HTTP): connect timeout and keep-alive.
    pub upstream: Settings,
    /// How often a host name is resolved again.
    pub resolve_interval: Duration,
}

#[derive(Debug)]
struct Health {
    passive: PassiveHealth,
    active: Option<HealthTracker>,
    last_check_error: Option<String>,
    last_failure: Option<String>,
}

#[derive(Debug)]
pub struct Server {
    id: String,
    authority: Option<Authority>,
    /// As configured, or as `backend.weight` set it.
    weight: AtomicU32,
    /// Set by an operator: ready, drain or disabled.
    admin: AtomicAdmin,
    /// What the server was built from; a reload that gives the same keeps this server (its
    /// health, counters and idle connections).
    fingerprint: String,
    /// The pool's queue, woken when a request ends here (only when the pool has a queue).
    release: Option<Arc<tokio::sync::Notify>>,
    stats: ServerStats,
    max_conns: Option<u32>,
    backup: bool,
    slow_start: Option<Duration>,
    /// Whether passive health may take this server out (not in a pool of one).
    passive_enabled: bool,
    active_down: AtomicBool,
    passive_down_until: AtomicU64,
    ramp_start: AtomicU64,
    in_flight: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    health: Mutex<Health>,
    /// Where connections and health checks go: the address, or a host name's kept addresses.
    target: Arc<Target>,
    connections: ConnPool,
}

/// Counts a request or connection on a server while it lives.
#[derive(Debug)]
pub struct InFlight(Arc<Server>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(queue) = &self.0.release {
            queue.notify_one();
        }
    }
}

impl InFlight {
    pub fn server(&self) -> &Arc<Server> {
        &self.0
    }
}

impl Server {
    pub fn new(
        spec: &ServerSpec,
        passive: PassiveHealth,
        passive_enabled: bool,
        active: Option<HealthTracker>,
        slow_start: Option<Duration>,
    ) -> Self {
        let target = Arc::new(Target::new(&spec.address, spec.resolve_interval));
        Self {
            id: spec.address.clone(),
            authority: spec.address.parse().ok(),
            weight: AtomicU32::new(spec.weight),
            admin: AtomicAdmin::default(),
            fingerprint: String::new(),
            release: None,
            stats: ServerStats::default(),
            max_conns: spec.max_conns,
            backup: spec.backup,
            slow_start,
            passive_enabled,
            active_down: AtomicBool::new(false),
            passive_down_until: AtomicU64::new(0),
            ramp_start: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            health: Mutex::new(Health {
                passive,
                active,
                last_check_error: None,
                last_failure: None,
            }),
            connections: ConnPool::new(spec.upstream.clone(), Arc::clone(&target)),
            target,
        }
    }

    /// Sets what the server was built from and the pool queue it wakes (see the fields).
    pub fn with_identity(
        mut self,
        fingerprint: String,
        release: Option<Arc<tokio::sync::Notify>>,
    ) -> Self {
        self.fingerprint = fingerprint;
        self.release = release;
        self
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn admin(&self) -> AdminState {
        self.admin.get()
    }

    pub fn set_admin(&self, state: AdminState) {
        self.admin.set(state);
    }

    /// Sets the weight (`backend.weight`); the next picks use it.
    pub fn set_weight(&self, weight: u32) {
        self.weight.store(weight, Ordering::Relaxed);
    }

    /// The weight without slow start's ramp.
    pub fn configured_weight(&self) -> u32 {
        self.weight.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// `host:port` as configured.
    pub fn address(&self) -> &str {
        &self.id
    }

    /// The address as a URI authority (for HTTP requests).
    pub fn authority(&self) -> Option<&Authority> {
        self.authority.as_ref()
    }

    /// The address the next connection or health check goes to; see [`Target`].
    pub async fn next_addr(&self) -> Result<std::net::SocketAddr, String> {
        self.target.next_addr().await
    }

    /// Failed resolutions of the server's host name so far.
    pub fn resolve_failures(&self) -> u64 {
        self.target.resolve_failures()
    }

    /// The server's idle upstream connections (HTTP).
    pub fn connections(&self) -> &ConnPool {
        &self.connections
    }

    pub fn is_backup(&self) -> bool {
        self.backup
    }

    /// Starts counting a request or connection on this server.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A failure seen on live traffic. Returns true when it took the server out.
    pub fn record_failure(&self, now: Instant, why: &str) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut health = self.lock();
        health.last_failure = Some(why.to_owned());
        if !self.passive_enabled {
            return false;
        }
        if health.passive.record_failure(now) {
            if let Some(until) = health.passive.down_until(now) {
                self.passive_down_until
                    .store(to_nanos(until), Ordering::Relaxed);
                // The ramp starts when the server comes back.
                if self.slow_start.is_some() {
                    self.ramp_start.store(to_nanos(until), Ordering::Relaxed);
                }
            }
            return true;
        }
        false
    }

    /// One active check result; returns the transition it caused.
    pub fn record_check(&self, now: Instant, result: Result<(), String>) -> Option<Transition> {
        let mut health = self.lock();
        let ok = result.is_ok();
        health.last_check_error = result.err();
        let transition = health.active.as_mut()?.record(ok);
        match transition {
            Some(Transition::WentDown) => self.active_down.store(true, Ordering::Relaxed),
            Some(Transition::WentUp) => {
                self.active_down.store(false, Ordering::Relaxed);
                if self.slow_start.is_some() {
                    self.ramp_start.store(to_nanos(now), Ordering::Relaxed);
                }
            }
            None => {}
        }
        transition
    }

    fn passive_down(&self, now: Instant) -> bool {
        let until = self.passive_down_until.load(Ordering::Relaxed);
        until != 0 && now < from_nanos(until)
    }

    pub fn is_healthy(&self) -> bool {
        self.target.unresolved().is_none()
            && !self.active_down.load(Ordering::Relaxed)
            && !self.passive_down(Instant::now())
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The state for status output: `up`, `down` or `full`, and why.
    pub fn describe(&self) -> (&'static str, String) {
        match self.admin() {
            AdminState::Ready => {}
            AdminState::Drain if self.in_flight() > 0 => {
                return (
                    "draining",
                    format!(
                        "drained by an operator; {} still in flight",
                        self.in_flight()
                    ),
                )
            }
            AdminState::Drain => {
                return (
                    "drained",
                    "drained by an operator; nothing in flight".into(),
                )
            }
            AdminState::Disabled => return ("disabled", "disabled by an operator".into()),
        }
        if let Some(why) = self.target.unresolved() {
            return ("down", why);
        }
        let now = Instant::now();
        let health = self.lock();
        if self.active_down.load(Ordering::Relaxed) {
            let fall = health.active.as_ref().map_or(0, |t| t.fall());
            let last = health.last_check_error.as_deref().unwrap_or("unknown");
            return (
                "down",
                format!("active check failed {fall} time(s) in a row, last: {last}"),
            );
        }
        if let Some(until) = health.passive.down_until(now) {
            return (
                "down",
                format!(
                    "{} failure(s) within {:?} (passive), last: {}; back in {:.1}s",
                    health.passive.max_fails(),
                    health.passive.fail_timeout(),
                    health.last_failure.as_deref().unwrap_or("unknown"),
                    until.saturating_duration_since(now).as_secs_f64()
                ),
            );
        }
        if self
            .max_conns
            .is_some_and(|max| self.in_flight() >= u64::from(max))
        {
            return ("full", "max_conns reached".to_owned());
        }
        let ramp = self.ramp_fraction(now);
        if ramp < 1.0 {
            return ("up", format!("slow start at {:.0}% weight", ramp * 100.0));
        }
        ("up", "healthy".to_owned())
    }

    fn ramp_fraction(&self, now: Instant) -> f64 {
        let (Some(slow_start), start) = (self.slow_start, self.ramp_start.load(Ordering::Relaxed))
        else {
            return 1.0;
        };
        if start == 0 || slow_start.is_zero() {
            return 1.0;
        }
        let elapsed = now.saturating_duration_since(from_nanos(start));
        if elapsed >= slow_start {
            self.ramp_start.store(0, Ordering::Relaxed);
            return 1.0;
        }
        elapsed.as_secs_f64() / slow_start.as_secs_f64()
    }
}

impl Backend for Server {
    fn weight(&self) -> u32 {
        let full = self
            .weight
            .load(Ordering::Relaxed)
            .saturating_mul(WEIGHT_SCALE);
        if self.ramp_start.load(Ordering::Relaxed) == 0 {
            return full;
        }
        let fraction = self.ramp_fraction(Instant::now());
        ((f64::from(full) * fraction) as u32).max(1)
    }

    fn is_available(&self) -> bool {
        if !self.admin.is_ready() || self.active_down.load(Ordering::Relaxed) {
            return false;
        }
        if self.passive_down_until.load(Ordering::Relaxed) != 0 && self.passive_down(Instant::now())
        {
            return false;
        }
        if self.target.unresolved().is_some() {
            return false;
        }
        self.max_conns
            .is_none_or(|max| self.in_flight() < u64::from(max))
    }

    fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests;
