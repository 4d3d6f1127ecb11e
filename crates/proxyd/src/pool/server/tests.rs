//! Unit tests of [`super::Server`]: limits, health and slow start.
use super::*;
use ha_core::health::HealthState;

fn server(slow_start: Option<Duration>) -> Arc<Server> {
    let spec = ServerSpec {
        address: "127.0.0.1:8080".into(),
        weight: 2,
        max_conns: Some(2),
        backup: false,
        upstream: Settings::default(),
        resolve_interval: Duration::from_secs(30),
    };
    Arc::new(Server::new(
        &spec,
        PassiveHealth::new(1, Duration::from_secs(10)),
        true,
        Some(HealthTracker::new(1, 2, HealthState::Up).expect("tracker")),
        slow_start,
    ))
}

#[test]
fn max_conns_makes_a_server_unavailable_until_a_request_ends() {
    let s = server(None);
    let a = s.begin();
    assert!(s.is_available());
    let b = s.begin();
    assert!(!s.is_available());
    assert_eq!(s.describe().0, "full");
    drop(a);
    assert!(s.is_available());
    drop(b);
    assert_eq!(s.in_flight(), 0);
    assert_eq!(s.requests(), 2);
}

#[test]
fn a_passive_failure_takes_it_out_and_active_checks_bring_it_back_with_slow_start() {
    let s = server(Some(Duration::from_secs(100)));
    assert!(s.record_failure(Instant::now(), "connection refused"));
    assert!(!s.is_available());
    assert_eq!(s.describe().0, "down");

    let s = server(Some(Duration::from_secs(100)));
    assert_eq!(s.record_check(Instant::now(), Err("refused".into())), None);
    assert_eq!(
        s.record_check(Instant::now(), Err("refused".into())),
        Some(Transition::WentDown)
    );
    assert!(!s.is_available());
    assert_eq!(
        s.record_check(Instant::now(), Ok(())),
        Some(Transition::WentUp)
    );
    assert!(s.is_available());
    assert!(s.weight() < 2 * WEIGHT_SCALE, "ramping: {}", s.weight());
    assert!(s.weight() >= 1);
}
