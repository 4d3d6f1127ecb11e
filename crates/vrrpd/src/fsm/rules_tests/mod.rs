//! One test per rule of the state machine, driving a single [`Fsm`] with hand-made inputs:
//! startup and lifecycle here, the backup's rules in `backup.rs`, the master's in
//! `master.rs`. The instance under test is 198.18.0.10 with a 1s advertisement interval.

mod backup;
mod master;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;

pub(super) const INTERVAL: Duration = Duration::from_secs(1);

pub(super) fn addr(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, last))
}

/// Our instance is 198.18.0.10.
pub(super) fn config(priority: u8) -> Config {
    Config::new(51, priority, INTERVAL, addr(10))
}

pub(super) fn fsm(config: Config) -> Fsm {
    match Fsm::new(config) {
        Ok(fsm) => fsm,
        Err(e) => panic!("test config is valid: {e}"),
    }
}

pub(super) fn heard(priority: u8, last: u8) -> Input {
    Input::AdvertReceived(PeerAdvert {
        priority,
        source: addr(last),
        max_advert_interval: INTERVAL,
    })
}

pub(super) fn backup(config: Config, t0: Instant) -> Fsm {
    let mut fsm = fsm(config);
    fsm.handle(t0, Input::Startup);
    assert_eq!(fsm.state(), State::Backup);
    fsm
}

pub(super) fn master(config: Config, t0: Instant) -> Fsm {
    let mut fsm = backup(config, t0);
    fsm.handle(t0 + Duration::from_secs(10), Input::MasterDownTimerFired);
    assert_eq!(fsm.state(), State::Master);
    fsm
}

pub(super) fn transition(from: State, to: State, reason: TransitionReason) -> Action {
    Action::Transition { from, to, reason }
}

#[test]
fn startup_goes_backup_and_arms_master_down_interval() {
    let t0 = Instant::now();
    let mut fsm = fsm(config(100));
    let actions = fsm.handle(t0, Input::Startup);
    let mdi = Duration::from_micros(3_609_375); // 3s + (256-100)/256 s
    assert_eq!(
        actions,
        vec![
            transition(State::Initialize, State::Backup, TransitionReason::Startup),
            Action::CancelTimers,
            Action::ScheduleMasterDownTimer(t0 + mdi),
        ]
    );
    assert_eq!(
        fsm.handle(t0, Input::Startup),
        vec![],
        "a second startup is a no-op"
    );
}

#[test]
fn owner_goes_master_at_startup() {
    let t0 = Instant::now();
    let mut fsm = fsm(config(255));
    let actions = fsm.handle(t0, Input::Startup);
    assert_eq!(
        actions,
        vec![
            transition(
                State::Initialize,
                State::Master,
                TransitionReason::OwnerStartup
            ),
            Action::CancelTimers,
            Action::SendAdvert { priority: 255 },
            Action::AddVips,
            Action::SendGratuitous {
                reason: GratuitousReason::BecameMaster
            },
            Action::ScheduleAdvertTimer(t0 + INTERVAL),
        ]
    );
    assert_eq!(fsm.master_address(), Some(addr(10)));
}

#[test]
fn master_down_timer_makes_backup_master() {
    let t0 = Instant::now();
    let mut fsm = backup(config(100), t0);
    let at = t0 + fsm.master_down_interval();
    assert_eq!(
        fsm.handle(at - Duration::from_millis(1), Input::MasterDownTimerFired),
        vec![]
    );
    let actions = fsm.handle(at, Input::MasterDownTimerFired);
    assert_eq!(
        actions.first(),
        Some(&transition(
            State::Backup,
            State::Master,
            TransitionReason::MasterDownTimerExpired
        ))
    );
    assert!(actions.contains(&Action::AddVips));
}

#[test]
fn shutdown_from_master_sends_priority_zero_and_removes_vips() {
    let t0 = Instant::now();
    let mut fsm = master(config(100), t0);
    let actions = fsm.handle(t0, Input::Shutdown);
    assert_eq!(
        actions,
        vec![
            transition(State::Master, State::Initialize, TransitionReason::Shutdown),
            Action::SendPriorityZero,
            Action::RemoveVips,
            Action::CancelTimers,
        ]
    );
    let mut fsm = backup(config(100), t0);
    let actions = fsm.handle(t0, Input::Shutdown);
    assert_eq!(
        actions,
        vec![
            transition(State::Backup, State::Initialize, TransitionReason::Shutdown),
            Action::CancelTimers,
        ]
    );
    assert_eq!(fsm.handle(t0, Input::Shutdown), vec![]);
}

#[test]
fn fault_from_master_announces_leaves_and_recovers_only_when_all_faults_clear() {
    let t0 = Instant::now();
    let mut fsm = master(config(100), t0);
    let actions = fsm.handle(t0, Input::Fault(FaultReason::LinkDown));
    let link_down = TransitionReason::Fault(FaultReason::LinkDown);
    assert_eq!(
        actions,
        vec![
            transition(State::Master, State::Fault, link_down),
            Action::SendPriorityZero,
            Action::RemoveVips,
            Action::CancelTimers,
        ]
    );
    fsm.handle(t0, Input::Fault(FaultReason::TrackedCheckFailed));
    assert_eq!(
        fsm.handle(t0, heard(50, 1)),
        vec![],
        "a faulty instance ignores adverts"
    );
    assert_eq!(
        fsm.handle(t0, Input::FaultCleared(FaultReason::LinkDown)),
        vec![]
    );
    let actions = fsm.handle(t0, Input::FaultCleared(FaultReason::TrackedCheckFailed));
    assert_eq!(
        actions.first(),
        Some(&transition(
            State::Fault,
            State::Backup,
            TransitionReason::FaultCleared
        ))
    );
}

#[test]
fn startup_with_a_pending_fault_goes_to_fault() {
    let t0 = Instant::now();
    let mut fsm = fsm(config(255));
    fsm.handle(t0, Input::Fault(FaultReason::LinkDown));
    assert_eq!(fsm.state(), State::Initialize);
    fsm.handle(t0, Input::Startup);
    assert_eq!(fsm.state(), State::Fault);
    let actions = fsm.handle(t0, Input::FaultCleared(FaultReason::LinkDown));
    assert_eq!(
        actions.first(),
        Some(&transition(
            State::Fault,
            State::Master,
            TransitionReason::FaultCleared
        ))
    );
}

#[test]
fn maintenance_forces_backup_and_holds_it_there() {
    let t0 = Instant::now();
    let mut fsm = master(config(200), t0);
    let actions = fsm.handle(t0, Input::Maintenance(true));
    assert_eq!(
        actions,
        vec![
            transition(State::Master, State::Backup, TransitionReason::Operator),
            Action::SendPriorityZero,
            Action::RemoveVips,
            Action::CancelTimers,
        ]
    );
    // No master-down timer while in maintenance, even when the master leaves.
    assert_eq!(fsm.handle(t0, heard(0, 1)), vec![]);
    assert_eq!(
        fsm.handle(t0 + Duration::from_secs(60), Input::MasterDownTimerFired),
        vec![]
    );
    let later = t0 + Duration::from_secs(60);
    let actions = fsm.handle(later, Input::Maintenance(false));
    assert_eq!(
        actions,
        vec![Action::ScheduleMasterDownTimer(
            later + fsm.master_down_interval()
        )]
    );
}

#[test]
fn invalid_config_is_refused() {
    assert!(matches!(
        Fsm::new(config(0)),
        Err(ConfigError::ZeroPriority)
    ));
}
