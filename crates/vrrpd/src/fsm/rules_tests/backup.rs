//! The backup's rules (RFC 5798 §6.4.2): timers, priority 0, preemption and its delay.

use std::time::{Duration, Instant};

use super::*;
use crate::packet::Version;

#[test]
fn stale_timer_firings_are_ignored() {
    let t0 = Instant::now();
    let mut fsm = backup(config(100), t0);
    assert_eq!(fsm.handle(t0, Input::AdvertTimerFired), vec![]);
    assert_eq!(fsm.handle(t0, Input::PreemptDelayElapsed), vec![]);
    // The advert resets the master-down deadline; the old firing time is now early.
    fsm.handle(t0 + Duration::from_secs(3), heard(200, 1));
    assert_eq!(
        fsm.handle(t0 + Duration::from_secs(4), Input::MasterDownTimerFired),
        vec![]
    );
    assert_eq!(fsm.state(), State::Backup);
}

#[test]
fn backup_hearing_priority_zero_waits_only_skew_time() {
    let t0 = Instant::now();
    let mut fsm = backup(config(100), t0);
    fsm.handle(t0, heard(200, 1));
    let now = t0 + Duration::from_millis(500);
    let actions = fsm.handle(now, heard(0, 1));
    let skew = Duration::from_micros(609_375);
    assert_eq!(actions, vec![Action::ScheduleMasterDownTimer(now + skew)]);
    let actions = fsm.handle(now + skew, Input::MasterDownTimerFired);
    assert_eq!(
        actions.first(),
        Some(&transition(
            State::Backup,
            State::Master,
            TransitionReason::PriorityZeroHeard
        ))
    );
}

#[test]
fn backup_learns_master_adver_interval_in_v3_only() {
    let t0 = Instant::now();
    let mut fsm = backup(config(100), t0);
    let slow = PeerAdvert {
        priority: 200,
        source: addr(1),
        max_advert_interval: Duration::from_secs(2),
    };
    let actions = fsm.handle(t0, Input::AdvertReceived(slow));
    assert_eq!(fsm.master_adver_interval(), Duration::from_secs(2));
    // 3 * 2s + (156 * 2s) / 256
    let mdi = Duration::from_micros(7_218_750);
    assert_eq!(actions, vec![Action::ScheduleMasterDownTimer(t0 + mdi)]);

    let mut v2 = config(100);
    v2.version = Version::V2;
    let mut fsm = backup(v2, t0);
    fsm.handle(t0, Input::AdvertReceived(slow));
    assert_eq!(fsm.master_adver_interval(), INTERVAL);
}

#[test]
fn backup_with_preempt_takes_over_at_once_from_a_lower_master() {
    // RFC 5798 would discard the advertisement and wait for the master-down timer; with no
    // preempt delay vrrpd takes over on the spot (see `backup_heard`).
    let t0 = Instant::now();
    let mut fsm = backup(config(150), t0);
    let actions = fsm.handle(t0 + INTERVAL, heard(100, 1));
    assert_eq!(
        actions.first(),
        Some(&transition(
            State::Backup,
            State::Master,
            TransitionReason::Preempt
        ))
    );
    assert!(actions.contains(&Action::AddVips));
    assert!(actions.contains(&Action::SendAdvert { priority: 150 }));
    assert_eq!(fsm.state(), State::Master);
}

#[test]
fn backup_with_nopreempt_follows_a_lower_master() {
    let t0 = Instant::now();
    let mut cfg = config(150);
    cfg.preempt = false;
    let mut fsm = backup(cfg, t0);
    let actions = fsm.handle(t0 + INTERVAL, heard(100, 1));
    assert_eq!(
        actions,
        vec![Action::ScheduleMasterDownTimer(
            t0 + INTERVAL + fsm.master_down_interval()
        )]
    );
    assert_eq!(fsm.master_address(), Some(addr(1)));
}

#[test]
fn owner_preempts_even_with_nopreempt() {
    let t0 = Instant::now();
    let mut cfg = config(255);
    cfg.preempt = false;
    let mut fsm = fsm(cfg);
    fsm.handle(t0, Input::Maintenance(true));
    fsm.handle(t0, Input::Startup);
    fsm.handle(t0, Input::Maintenance(false));
    assert_eq!(fsm.state(), State::Backup);
    let actions = fsm.handle(t0 + INTERVAL, heard(200, 1));
    assert_eq!(
        actions.first(),
        Some(&transition(
            State::Backup,
            State::Master,
            TransitionReason::Preempt
        ))
    );
}

#[test]
fn backup_does_not_preempt_an_equal_priority_master() {
    let t0 = Instant::now();
    let mut fsm = backup(config(100), t0);
    // 198.18.0.1 < our 198.18.0.10, but a running master is not preempted on a tie.
    let actions = fsm.handle(t0, heard(100, 1));
    assert_eq!(actions.len(), 1);
    assert!(matches!(actions[0], Action::ScheduleMasterDownTimer(_)));
}

#[test]
fn preempt_delay_postpones_preemption() {
    let t0 = Instant::now();
    let mut cfg = config(150);
    cfg.preempt_delay = Duration::from_secs(5);
    let mut fsm = backup(cfg, t0);
    let first = t0 + INTERVAL;
    let actions = fsm.handle(first, heard(100, 1));
    assert!(actions.contains(&Action::SchedulePreemptTimer(
        first + Duration::from_secs(5)
    )));
    // While waiting, the lower master's adverts keep the master-down timer from firing.
    let actions = fsm.handle(first + INTERVAL, heard(100, 1));
    assert_eq!(actions.len(), 1, "no second preempt timer: {actions:?}");
    let actions = fsm.handle(first + Duration::from_secs(5), Input::PreemptDelayElapsed);
    assert_eq!(
        actions.first(),
        Some(&transition(
            State::Backup,
            State::Master,
            TransitionReason::Preempt
        ))
    );
}

#[test]
fn preempt_delay_is_abandoned_when_a_higher_master_appears() {
    let t0 = Instant::now();
    let mut cfg = config(150);
    cfg.preempt_delay = Duration::from_secs(5);
    let mut fsm = backup(cfg, t0);
    fsm.handle(t0, heard(100, 1));
    fsm.handle(t0 + INTERVAL, heard(200, 2));
    let later = t0 + Duration::from_secs(5);
    assert_eq!(fsm.handle(later, Input::PreemptDelayElapsed), vec![]);
    assert_eq!(fsm.state(), State::Backup);
}
