//! Where a server is reached: an IP address as configured, or the addresses a host name
//! resolved to, kept and refreshed in the background every `resolve_interval` (nginx's
//! `resolver valid=`, HAProxy's `hold valid`).
//!
//! Connections and health checks take the kept addresses ([`Target::next_addr`], rotating
//! among them), so no new connection waits for the resolver. A failed refresh keeps the
//! last good addresses and is counted; a name that never resolved leaves the server without
//! an address, shown as down with "cannot resolve NAME". The refresh task holds only a weak
//! reference and ends when the server is dropped (a reload that replaces it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tracing::{debug, info, warn};

/// A server's address: fixed, or a host name and what it resolved to.
#[derive(Debug)]
pub enum Target {
    Ip(SocketAddr),
    Name(Arc<Resolved>),
}

/// The addresses a host name resolved to, and how resolving went.
#[derive(Debug)]
pub struct Resolved {
    /// `host:port` as configured.
    name: String,
    state: Mutex<State>,
    next: AtomicUsize,
    failures: AtomicU64,
    /// Bumped when the addresses change, so idle connections to a former one are dropped.
    generation: AtomicU64,
    interval: Duration,
    /// Whether the refresh task runs (it starts with the first runtime that sees the server).
    refreshing: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    addrs: Vec<SocketAddr>,
    /// The last refresh's error, if it failed.
    error: Option<String>,
    /// Whether a resolution has been attempted at all.
    attempted: bool,
}

impl Target {
    /// The target for `address`; a host name starts its refresh task when a runtime runs.
    pub fn new(address: &str, interval: Duration) -> Self {
        if let Ok(addr) = address.parse::<SocketAddr>() {
            return Target::Ip(addr);
        }
        let resolved = Arc::new(Resolved {
            name: address.to_owned(),
            state: Mutex::new(State::default()),
            next: AtomicUsize::new(0),
            failures: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            interval,
            refreshing: AtomicBool::new(false),
        });
        resolved.start_refreshing();
        Target::Name(resolved)
    }

    /// The address for the next connection: the fixed one, or the next of the kept ones.
    /// A name not resolved yet is resolved here, once.
    pub async fn next_addr(&self) -> Result<SocketAddr, String> {
        match self {
            Target::Ip(addr) => Ok(*addr),
            Target::Name(resolved) => {
                resolved.start_refreshing();
                if !resolved.lock().attempted {
                    resolved.refresh().await;
                }
                resolved.pick()
            }
        }
    }

    /// Why the server has no address, when a host name never resolved.
    pub fn unresolved(&self) -> Option<String> {
        match self {
            Target::Ip(_) => None,
            Target::Name(resolved) => resolved.unresolved(),
        }
    }

    /// Changes of the addresses so far (always 0 for an IP address).
    pub fn generation(&self) -> u64 {
        match self {
            Target::Ip(_) => 0,
            Target::Name(resolved) => resolved.generation.load(Ordering::Acquire),
        }
    }

    /// Whether a connection to `peer` still goes where the server is: always for an IP
    /// address, and for a host name while `peer` is one of its addresses.
    pub fn still_serves(&self, peer: SocketAddr) -> bool {
        match self {
            Target::Ip(_) => true,
            Target::Name(resolved) => resolved.lock().addrs.contains(&peer),
        }
    }

    pub fn is_name(&self) -> bool {
        matches!(self, Target::Name(_))
    }

    /// Failed resolutions of the host name so far (0 for an IP address).
    pub fn resolve_failures(&self) -> u64 {
        match self {
            Target::Ip(_) => 0,
            Target::Name(resolved) => resolved.failures.load(Ordering::Relaxed),
        }
    }
}

impl Resolved {
    /// Starts the refresh task unless it runs; outside a runtime (a pool built to check a
    /// configuration) it is left to the first connection.
    fn start_refreshing(self: &Arc<Self>) {
        if self.refreshing.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.refreshing.swap(true, Ordering::Relaxed) {
            runtime.spawn(refresh_loop(Arc::downgrade(self), self.interval));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pick(&self) -> Result<SocketAddr, String> {
        let state = self.lock();
        if state.addrs.is_empty() {
            return Err(self.cannot_resolve(&state));
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % state.addrs.len();
        Ok(state.addrs[i])
    }

    fn cannot_resolve(&self, state: &State) -> String {
        match &state.error {
            Some(e) => format!("cannot resolve {}: {e}", self.name),
            None => format!("cannot resolve {}", self.name),
        }
    }

    fn unresolved(&self) -> Option<String> {
        let state = self.lock();
        (state.attempted && state.addrs.is_empty()).then(|| self.cannot_resolve(&state))
    }

    /// Resolves the name once and keeps the outcome; see the [module docs](self).
    async fn refresh(&self) {
        let result = tokio::net::lookup_host(self.name.as_str())
            .await
            .map(|addrs| {
                let mut addrs: Vec<SocketAddr> = addrs.collect();
                addrs.sort();
                addrs.dedup();
                addrs
            });
        let outcome = match result {
            Ok(addrs) if addrs.is_empty() => Err("no address".to_owned()),
            Ok(addrs) => Ok(addrs),
            Err(e) => Err(e.to_string()),
        };
        self.apply(outcome);
    }

    fn apply(&self, outcome: Result<Vec<SocketAddr>, String>) {
        let mut state = self.lock();
        state.attempted = true;
        match outcome {
            Ok(addrs) => {
                if addrs != state.addrs {
                    self.generation.fetch_add(1, Ordering::Release);
                    info!(server = %self.name, old = ?state.addrs, new = ?addrs, "server name resolves to new addresses");
                }
                state.addrs = addrs;
                state.error = None;
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if state.error.as_deref() == Some(e.as_str()) {
                    // Still failing the same way: said already, counted above.
                    debug!(server = %self.name, error = %e, "cannot resolve server name");
                } else if state.addrs.is_empty() {
                    warn!(server = %self.name, error = %e, "cannot resolve server name; the server is down");
                } else {
                    warn!(server = %self.name, error = %e, kept = ?state.addrs, "cannot resolve server name; keeping the last addresses");
                }
                state.error = Some(e);
            }
        }
    }
}

async fn refresh_loop(resolved: Weak<Resolved>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(resolved) = resolved.upgrade() else {
            return;
        };
        resolved.refresh().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(address: &str) -> Arc<Resolved> {
        match Target::new(address, Duration::from_secs(30)) {
            Target::Name(resolved) => resolved,
            Target::Ip(_) => panic!("{address} is a host name"),
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn ip_literals_are_never_resolved() {
        let target = Target::new("127.0.0.1:80", Duration::from_secs(30));
        assert!(matches!(target, Target::Ip(a) if a == addr("127.0.0.1:80")));
        assert_eq!(target.unresolved(), None);
    }

    #[test]
    fn connections_rotate_among_the_addresses() {
        let resolved = name("app.test:80");
        resolved.apply(Ok(vec![addr("127.0.0.1:80"), addr("127.0.0.2:80")]));
        let picks: Vec<_> = (0..4).map(|_| resolved.pick()).collect();
        assert_eq!(
            picks,
            vec![
                Ok(addr("127.0.0.1:80")),
                Ok(addr("127.0.0.2:80")),
                Ok(addr("127.0.0.1:80")),
                Ok(addr("127.0.0.2:80")),
            ]
        );
    }

    #[test]
    fn a_failed_refresh_keeps_the_last_good_addresses() {
        let resolved = name("app.test:80");
        resolved.apply(Ok(vec![addr("127.0.0.2:80")]));
        resolved.apply(Err("no such host".into()));
        assert_eq!(resolved.pick(), Ok(addr("127.0.0.2:80")));
        assert_eq!(resolved.unresolved(), None);
        assert_eq!(resolved.failures.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_change_of_addresses_retires_connections_to_the_former_ones() {
        let resolved = name("app.test:80");
        let target = Target::Name(Arc::clone(&resolved));
        resolved.apply(Ok(vec![addr("127.0.0.1:80")]));
        let before = target.generation();
        resolved.apply(Ok(vec![addr("127.0.0.1:80")]));
        assert_eq!(
            target.generation(),
            before,
            "the same addresses are no change"
        );
        resolved.apply(Ok(vec![addr("127.0.0.2:80")]));
        assert_ne!(target.generation(), before);
        assert!(!target.still_serves(addr("127.0.0.1:80")));
        assert!(target.still_serves(addr("127.0.0.2:80")));
    }

    #[test]
    fn a_name_that_never_resolved_has_no_address() {
        let resolved = name("app.test:80");
        assert_eq!(resolved.unresolved(), None, "not attempted yet");
        resolved.apply(Err("no such host".into()));
        assert_eq!(
            resolved.unresolved().as_deref(),
            Some("cannot resolve app.test:80: no such host")
        );
        assert!(resolved.pick().is_err());
    }
}
