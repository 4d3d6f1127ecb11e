//! Elections between simulated routers on the test [`Lan`]: each scenario starts machines,
//! lets the virtual clock run, disturbs something and checks who ends up master, when, and
//! why. Advertisement interval 100ms (VRRPv3) unless said otherwise.

use std::time::Duration;

use super::lan::{Lan, LATENCY};
use super::*;
use crate::packet::Version;

const INTERVAL: Duration = Duration::from_millis(100);

fn assert_single_master(lan: &Lan, master: usize) {
    assert_eq!(lan.state(master), State::Master, "node {master} is master");
    assert_eq!(
        lan.vip_holders(),
        vec![master],
        "only the master holds the VIPs"
    );
}

/// Starts `priorities` together and lets the election settle.
fn elected(priorities: &[u8]) -> Lan {
    let mut lan = Lan::new();
    for priority in priorities {
        lan.add(*priority, |_| {});
    }
    for node in 0..priorities.len() {
        lan.input(node, Input::Startup);
    }
    lan.run_for(Duration::from_secs(1));
    lan
}

#[test]
fn highest_priority_wins_among_three() {
    let lan = elected(&[100, 150, 200]);
    assert_single_master(&lan, 2);
    assert_eq!(lan.state(0), State::Backup);
    assert_eq!(lan.state(1), State::Backup);
    // The highest priority has the shortest skew: 300ms + 56 * 100ms / 256.
    let seen = lan.became(2, State::Master, lan.start);
    assert_eq!(
        seen.map(|s| s.at - lan.start),
        Some(Duration::from_micros(321_875))
    );
    assert_eq!(lan.seen.iter().filter(|s| s.to == State::Master).count(), 1);
}

#[test]
fn equal_priority_is_won_by_the_higher_address() {
    let lan = elected(&[100, 100]);
    // Both time out together and become master; node 1 (198.18.0.2) outranks node 0.
    assert_single_master(&lan, 1);
    let lost = lan.became(0, State::Backup, lan.start + Duration::from_millis(300));
    assert_eq!(
        lost.map(|s| s.reason),
        Some(TransitionReason::HigherPriorityHeard)
    );
    assert!(lan
        .gratuitous(1)
        .contains(&GratuitousReason::SplitBrainRepair));
}

#[test]
fn a_higher_priority_router_joining_later_preempts() {
    let mut lan = elected(&[100]);
    let joiner = lan.add(200, |_| {});
    let joined = lan.now;
    lan.input(joiner, Input::Startup);
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, joiner);
    let seen = lan.became(joiner, State::Master, joined);
    assert_eq!(seen.map(|s| s.reason), Some(TransitionReason::Preempt));
    // It preempts on the first advertisement it hears, not after its master-down interval.
    let at = seen.map(|s| s.at - joined).unwrap_or(Duration::MAX);
    assert!(at <= Duration::from_millis(100) + LATENCY, "{at:?}");
}

#[test]
fn backup_takes_over_one_master_down_interval_after_the_last_advert() {
    let mut lan = elected(&[200, 100]);
    assert_single_master(&lan, 0);
    // Node 0 became master at 321.875ms and advertises every 100ms; at 1s its last advert
    // left at 921.875ms and reached node 1 at 922.875ms.
    let last_arrival = lan.start + Duration::from_micros(921_875) + LATENCY;
    lan.kill(0);
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, 1);
    let mdi = lan.fsm(1).master_down_interval(); // 300ms + 156 * 100ms / 256
    assert_eq!(
        mdi,
        Duration::from_micros(360_937) + Duration::from_nanos(500)
    );
    let seen = lan.became(1, State::Master, lan.start);
    assert_eq!(seen.map(|s| s.at), Some(last_arrival + mdi));
    assert_eq!(
        seen.map(|s| s.reason),
        Some(TransitionReason::MasterDownTimerExpired)
    );
}

#[test]
fn priority_zero_hands_over_after_skew_time() {
    let mut lan = elected(&[200, 100]);
    let stopped = lan.now;
    lan.input(0, Input::Shutdown);
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, 1);
    let skew = lan.fsm(1).skew_time(); // 156 * 100ms / 256 = 60.9375ms
    let seen = lan.became(1, State::Master, stopped);
    assert_eq!(seen.map(|s| s.at), Some(stopped + LATENCY + skew));
    assert_eq!(
        seen.map(|s| s.reason),
        Some(TransitionReason::PriorityZeroHeard)
    );
}

#[test]
fn three_routers_master_death_elects_the_next_highest() {
    let mut lan = elected(&[200, 150, 100]);
    lan.kill(0);
    lan.run_for(Duration::from_secs(2));
    assert_single_master(&lan, 1);
    assert_eq!(lan.state(2), State::Backup);
    assert_eq!(lan.became(2, State::Master, lan.start), None);
}

#[test]
fn nopreempt_backup_leaves_a_lower_master_alone() {
    let mut lan = elected(&[100]);
    let joiner = lan.add(200, |c| c.preempt = false);
    lan.input(joiner, Input::Startup);
    lan.run_for(Duration::from_secs(5));
    assert_single_master(&lan, 0);
    assert_eq!(lan.state(joiner), State::Backup);
}

#[test]
fn preempt_delay_postpones_the_takeover() {
    let mut lan = elected(&[100]);
    let joiner = lan.add(200, |c| c.preempt_delay = Duration::from_secs(2));
    let joined = lan.now;
    lan.input(joiner, Input::Startup);
    lan.run_for(Duration::from_millis(1900));
    assert_single_master(&lan, 0);
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, joiner);
    let seen = lan.became(joiner, State::Master, joined);
    assert_eq!(seen.map(|s| s.reason), Some(TransitionReason::Preempt));
    // The delay counts from the first lower-priority advert, at most one interval in.
    let after = seen.map(|s| s.at - joined).unwrap_or_default();
    assert!(after >= Duration::from_secs(2), "{after:?}");
    assert!(
        after <= Duration::from_secs(2) + INTERVAL + LATENCY,
        "{after:?}"
    );
}

#[test]
fn address_owner_takes_over_at_startup() {
    let mut lan = elected(&[200]);
    let owner = lan.add(255, |_| {});
    let joined = lan.now;
    lan.input(owner, Input::Startup);
    let seen = lan.became(owner, State::Master, joined);
    assert_eq!(seen.map(|s| s.at), Some(joined));
    assert_eq!(seen.map(|s| s.reason), Some(TransitionReason::OwnerStartup));
    lan.run_for(Duration::from_millis(10));
    assert_single_master(&lan, owner);
    let lost = lan.became(0, State::Backup, joined);
    assert_eq!(lost.map(|s| s.at), Some(joined + LATENCY));
}

#[test]
fn fault_hands_over_and_recovery_takes_back() {
    let mut lan = elected(&[200, 100]);
    let failed = lan.now;
    lan.input(0, Input::Fault(FaultReason::LinkDown));
    assert_eq!(lan.state(0), State::Fault);
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, 1);
    let seen = lan.became(1, State::Master, failed);
    assert_eq!(
        seen.map(|s| s.reason),
        Some(TransitionReason::PriorityZeroHeard)
    );

    let recovered = lan.now;
    lan.input(0, Input::FaultCleared(FaultReason::LinkDown));
    assert_eq!(lan.state(0), State::Backup);
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, 0);
    let back = lan.became(0, State::Master, recovered);
    assert_eq!(back.map(|s| s.reason), Some(TransitionReason::Preempt));
}

#[test]
fn tracked_check_failure_steps_down_at_once_when_the_peer_is_known() {
    // Node 1 (150) is master first; node 0 (200) preempts it and so knows its priority.
    let mut lan = Lan::new();
    lan.add(200, |_| {});
    lan.add(150, |_| {});
    lan.input(1, Input::Startup);
    lan.run_for(Duration::from_secs(1));
    lan.input(0, Input::Startup);
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, 0);

    let dropped = lan.now;
    lan.input(0, Input::EffectivePriorityChanged(100));
    let stepped = lan.became(0, State::Backup, dropped);
    assert_eq!(stepped.map(|s| s.at), Some(dropped));
    assert_eq!(
        stepped.map(|s| s.reason),
        Some(TransitionReason::PriorityDropped)
    );
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, 1);
    let skew = lan.fsm(1).skew_time(); // 106 * 100ms / 256
    let took = lan.became(1, State::Master, dropped);
    assert_eq!(took.map(|s| s.at), Some(dropped + LATENCY + skew));
}

#[test]
fn priority_drop_below_an_unknown_backup_is_resolved_by_preemption() {
    let mut lan = elected(&[200]);
    let backup = lan.add(150, |_| {});
    lan.input(backup, Input::Startup);
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, 0);

    let dropped = lan.now;
    lan.input(0, Input::EffectivePriorityChanged(100));
    assert_eq!(lan.state(0), State::Master, "no known peer outranks it yet");
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, backup);
    let took = lan.became(backup, State::Master, dropped);
    assert_eq!(took.map(|s| s.reason), Some(TransitionReason::Preempt));
    let within = took.map(|s| s.at - dropped).unwrap_or_default();
    assert!(within <= lan.fsm(backup).master_down_interval() + LATENCY);
}

#[test]
fn healed_partition_leaves_one_master_and_refreshes_arp() {
    let mut lan = elected(&[200, 100]);
    lan.set_connected(0, false);
    // Node 0 advertises at x.x21875s, node 1 (master since 1.2838125s) at x.x838125s:
    // healing at 2.05s lets node 1 speak first, so node 0 hears the lower master.
    lan.run_for(Duration::from_millis(1050));
    assert_eq!(lan.state(0), State::Master);
    assert_eq!(lan.state(1), State::Master);
    assert_eq!(
        lan.vip_holders(),
        vec![0, 1],
        "split brain while partitioned"
    );

    lan.set_connected(0, true);
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, 0);
    assert!(lan
        .gratuitous(0)
        .contains(&GratuitousReason::SplitBrainRepair));
}

#[test]
fn maintenance_moves_mastership_away_and_back() {
    let mut lan = elected(&[200, 100]);
    lan.input(0, Input::Maintenance(true));
    lan.run_for(Duration::from_secs(2));
    assert_single_master(&lan, 1);
    assert_eq!(lan.state(0), State::Backup);
    lan.input(0, Input::Maintenance(false));
    lan.run_for(Duration::from_secs(1));
    assert_single_master(&lan, 0);
}

#[test]
fn vrrpv2_election_uses_whole_second_timers() {
    let mut lan = Lan::new();
    for priority in [200, 100] {
        lan.add(priority, |c| {
            c.version = Version::V2;
            c.advert_interval = Duration::from_secs(1);
        });
    }
    lan.input(0, Input::Startup);
    lan.input(1, Input::Startup);
    lan.run_for(Duration::from_secs(5));
    assert_single_master(&lan, 0);
    let killed = lan.now;
    lan.kill(0);
    lan.run_for(Duration::from_secs(5));
    assert_single_master(&lan, 1);
    // 3 * 1s + (256 - 100) / 256 s after the last advert, which left less than 1s before.
    let mdi = Duration::from_micros(3_609_375);
    let took = lan.became(1, State::Master, killed);
    let after = took.map(|s| s.at - killed).unwrap_or_default();
    assert!(
        after > mdi - Duration::from_secs(1) && after <= mdi,
        "{after:?}"
    );
}
