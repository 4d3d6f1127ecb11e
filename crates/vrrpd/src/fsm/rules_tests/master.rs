//! The master's rules (RFC 5798 §6.4.3) and the step-down on a priority drop.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn master_hearing_a_higher_priority_goes_backup_without_announcing() {
    let t0 = Instant::now();
    let mut fsm = master(config(100), t0);
    let now = t0 + Duration::from_secs(20);
    let actions = fsm.handle(now, heard(200, 1));
    assert_eq!(
        actions,
        vec![
            transition(
                State::Master,
                State::Backup,
                TransitionReason::HigherPriorityHeard
            ),
            Action::RemoveVips,
            Action::CancelTimers,
            Action::ScheduleMasterDownTimer(now + fsm.master_down_interval()),
        ]
    );
    assert_eq!(fsm.master_address(), Some(addr(1)));
}

#[test]
fn master_tie_is_broken_by_the_higher_address() {
    let t0 = Instant::now();
    let mut fsm = master(config(100), t0);
    let now = t0 + Duration::from_secs(20);
    // 198.18.0.9 < 198.18.0.10: we win and re-assert.
    let actions = fsm.handle(now, heard(100, 9));
    assert_eq!(fsm.state(), State::Master);
    assert!(actions.contains(&Action::SendAdvert { priority: 100 }));
    // 198.18.0.11 > 198.18.0.10: we lose.
    fsm.handle(now, heard(100, 11));
    assert_eq!(fsm.state(), State::Backup);
}

#[test]
fn master_hearing_a_lower_master_repairs_the_split_brain() {
    let t0 = Instant::now();
    let mut fsm = master(config(150), t0);
    let now = t0 + Duration::from_secs(20);
    let actions = fsm.handle(now, heard(100, 1));
    assert_eq!(
        actions,
        vec![
            Action::SendAdvert { priority: 150 },
            Action::SendGratuitous {
                reason: GratuitousReason::SplitBrainRepair
            },
            Action::ScheduleAdvertTimer(now + INTERVAL),
        ]
    );
}

#[test]
fn master_hearing_priority_zero_advertises_at_once() {
    let t0 = Instant::now();
    let mut fsm = master(config(150), t0);
    let now = t0 + Duration::from_secs(20);
    let actions = fsm.handle(now, heard(0, 1));
    assert_eq!(
        actions,
        vec![
            Action::SendAdvert { priority: 150 },
            Action::ScheduleAdvertTimer(now + INTERVAL)
        ]
    );
}

#[test]
fn master_steps_down_at_once_when_its_priority_drops_below_a_known_peer() {
    let t0 = Instant::now();
    let mut fsm = backup(config(200), t0);
    fsm.handle(t0, heard(150, 1)); // the peer was master once: we know its priority
    fsm.handle(t0 + Duration::from_secs(10), Input::MasterDownTimerFired);
    assert_eq!(fsm.state(), State::Master);
    let now = t0 + Duration::from_secs(20);
    let actions = fsm.handle(now, Input::EffectivePriorityChanged(100));
    assert_eq!(
        actions,
        vec![
            transition(
                State::Master,
                State::Backup,
                TransitionReason::PriorityDropped
            ),
            Action::SendPriorityZero,
            Action::RemoveVips,
            Action::CancelTimers,
            Action::ScheduleMasterDownTimer(now + fsm.master_down_interval()),
        ]
    );
}

#[test]
fn master_readvertises_a_lower_priority_when_no_peer_outranks_it() {
    let t0 = Instant::now();
    let mut fsm = master(config(200), t0);
    let now = t0 + Duration::from_secs(20);
    let actions = fsm.handle(now, Input::EffectivePriorityChanged(120));
    assert_eq!(
        actions,
        vec![
            Action::SendAdvert { priority: 120 },
            Action::ScheduleAdvertTimer(now + INTERVAL)
        ]
    );
    assert_eq!(fsm.effective_priority(), 120);
    // Priority 0 is reserved for leaving; tracking cannot push us there.
    fsm.handle(now, Input::EffectivePriorityChanged(0));
    assert_eq!(fsm.effective_priority(), 1);
}

#[test]
fn own_looped_back_advert_is_ignored() {
    let t0 = Instant::now();
    let mut fsm = master(config(100), t0);
    assert_eq!(fsm.handle(t0, heard(100, 10)), vec![]);
    assert_eq!(fsm.state(), State::Master);
}

#[test]
fn master_re_advertises_on_its_timer() {
    let t0 = Instant::now();
    let mut fsm = fsm(config(255));
    fsm.handle(t0, Input::Startup);
    let actions = fsm.handle(t0 + INTERVAL, Input::AdvertTimerFired);
    assert_eq!(
        actions,
        vec![
            Action::SendAdvert { priority: 255 },
            Action::ScheduleAdvertTimer(t0 + 2 * INTERVAL)
        ]
    );
    // A late firing (stalled process) re-arms from now rather than in the past.
    let late = t0 + 5 * INTERVAL;
    let actions = fsm.handle(late, Input::AdvertTimerFired);
    assert_eq!(
        actions.last(),
        Some(&Action::ScheduleAdvertTimer(late + INTERVAL))
    );
}
