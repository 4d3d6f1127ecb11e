//! [`Fsm`]: one virtual router's state machine, RFC 5798 §6.4 with keepalived's extras
//! (fault state, maintenance, preempt delay, fast step-down on a tracked-check failure).
//!
//! The machine is a plain struct: the shell calls [`Fsm::handle`] with the time and an
//! [`Input`] and carries out the returned [`Action`]s in order. It reads no clock and does no
//! I/O, so every rule below is exercised by unit tests with a virtual clock.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::actions::{Action, GratuitousReason, TransitionReason};
use super::config::{Config, ConfigError};
use super::events::{FaultReason, Input, PeerAdvert};
use super::peers::{outranks, PeerTable};
use super::state::State;
use super::timers::{master_down_interval, skew_time, Deadlines, Takeover};
use crate::packet::Version;

/// The state machine of one VRRP instance.
#[derive(Debug, Clone)]
pub struct Fsm {
    config: Config,
    state: State,
    /// Configured priority adjusted by tracking.
    priority: u8,
    /// Master_Adver_Interval: learnt from the master's advertisements (v3), else ours.
    master_adver_interval: Duration,
    deadlines: Deadlines,
    faults: Vec<FaultReason>,
    maintenance: bool,
    takeover: Takeover,
    peers: PeerTable,
    /// The current master as far as we know: us, or the source of the last accepted advert.
    master: Option<IpAddr>,
}

impl Fsm {
    /// A machine in Initialize; deliver [`Input::Startup`] to start it.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Fsm {
            priority: config.priority,
            master_adver_interval: config.advert_interval,
            config,
            state: State::Initialize,
            deadlines: Deadlines::default(),
            faults: Vec::new(),
            maintenance: false,
            takeover: Takeover::Silence,
            peers: PeerTable::default(),
            master: None,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The priority we advertise: the configured one adjusted by tracking.
    pub fn effective_priority(&self) -> u8 {
        self.priority
    }

    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    /// Our address when master; the master we last accepted when backup; else `None`.
    pub fn master_address(&self) -> Option<IpAddr> {
        self.master
    }

    pub fn in_maintenance(&self) -> bool {
        self.maintenance
    }

    pub fn faults(&self) -> &[FaultReason] {
        &self.faults
    }

    /// Skew_Time at our current priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        let interval = self.master_adver_interval;
        skew_time(self.config.version, self.priority, interval)
    }

    /// Master_Down_Interval at our current priority and Master_Adver_Interval.
    pub fn master_down_interval(&self) -> Duration {
        let interval = self.master_adver_interval;
        master_down_interval(self.config.version, self.priority, interval)
    }

    /// Feeds one input at time `now`; returns what the shell must do, in order.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Startup => self.start(now, &mut out),
            Input::Shutdown => self.shut_down(now, &mut out),
            Input::AdvertReceived(advert) => self.advert_received(now, advert, &mut out),
            Input::AdvertTimerFired => self.advert_timer_fired(now, &mut out),
            Input::MasterDownTimerFired => self.master_down_timer_fired(now, &mut out),
            Input::PreemptDelayElapsed => self.preempt_delay_elapsed(now, &mut out),
            Input::EffectivePriorityChanged(priority) => {
                self.priority_changed(now, priority, &mut out)
            }
            Input::Fault(reason) => self.fault(now, reason, &mut out),
            Input::FaultCleared(reason) => self.fault_cleared(now, reason, &mut out),
            Input::Maintenance(on) => self.set_maintenance(now, on, &mut out),
        }
        out
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state == State::Initialize {
            self.come_up(now, TransitionReason::Startup, out);
        }
    }

    /// Initialize or Fault -> the state our situation calls for (RFC 5798 §6.4.1).
    fn come_up(&mut self, now: Instant, reason: TransitionReason, out: &mut Vec<Action>) {
        if let Some(&fault) = self.faults.first() {
            self.transition(State::Fault, TransitionReason::Fault(fault), out);
            out.push(self.deadlines.cancel_all());
        } else if self.priority == 255 && !self.maintenance {
            let reason = match reason {
                TransitionReason::Startup => TransitionReason::OwnerStartup,
                other => other,
            };
            self.become_master(now, reason, out);
        } else {
            self.master_adver_interval = self.config.advert_interval;
            self.leave(now, State::Backup, reason, false, out);
        }
    }

    fn shut_down(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            self.leave(
                now,
                State::Initialize,
                TransitionReason::Shutdown,
                true,
                out,
            );
            self.peers.clear();
        }
    }

    fn advert_received(&mut self, now: Instant, advert: PeerAdvert, out: &mut Vec<Action>) {
        if advert.source == self.config.primary_address {
            return; // our own, looped back
        }
        self.peers.record(advert.source, advert.priority);
        match self.state {
            State::Backup => self.backup_heard(now, advert, out),
            State::Master => self.master_heard(now, advert, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 5798 §6.4.2, plus the preempt delay.
    fn backup_heard(&mut self, now: Instant, advert: PeerAdvert, out: &mut Vec<Action>) {
        if advert.priority == 0 {
            self.master = None;
            if !self.maintenance {
                self.takeover = Takeover::PriorityZero;
                out.push(self.deadlines.arm_master_down(now + self.skew_time()));
            }
            return;
        }
        // The address owner always preempts, whatever `preempt` says.
        let preempt = self.config.preempt || self.priority == 255;
        if preempt && advert.priority < self.priority && !self.maintenance {
            if self.config.preempt_delay.is_zero() {
                // RFC 5798 §6.4.2 discards the advertisement and lets the master-down timer
                // run out, which costs a whole Master_Down_Interval while a live master is
                // asking to be replaced (e.g. its tracked service died and it does not know
                // our priority, because backups are silent). With no preempt delay there is
                // nothing to wait for: take over now; the old master steps down on our first
                // advertisement.
                self.become_master(now, TransitionReason::Preempt, out);
                return;
            }
            if self.deadlines.preempt.is_none() {
                out.push(self.deadlines.arm_preempt(now + self.config.preempt_delay));
            }
            // Until the delay is over this master is followed as if it outranked us.
        } else {
            // A stale PreemptDelayElapsed will find no deadline and be ignored.
            self.deadlines.preempt = None;
        }
        self.learn_interval(&advert);
        self.master = Some(advert.source);
        self.takeover = Takeover::Silence;
        self.arm_master_down(now, out);
    }

    /// RFC 5798 §6.4.3, plus split-brain repair when we win.
    fn master_heard(&mut self, now: Instant, advert: PeerAdvert, out: &mut Vec<Action>) {
        let ours = self.config.primary_address;
        if advert.priority == 0 {
            // Another master left: advertise now so its backups settle on us at once.
            out.push(self.advert());
            out.push(self.deadlines.arm_advert(now + self.config.advert_interval));
        } else if outranks(advert.priority, advert.source, self.priority, ours) {
            self.learn_interval(&advert);
            let reason = TransitionReason::HigherPriorityHeard;
            self.leave(now, State::Backup, reason, false, out);
            self.master = Some(advert.source);
        } else {
            // Two masters: a partition healed. Re-assert so the other steps down and the LAN
            // relearns where the virtual addresses live.
            out.push(self.advert());
            out.push(Action::SendGratuitous {
                reason: GratuitousReason::SplitBrainRepair,
            });
            out.push(self.deadlines.arm_advert(now + self.config.advert_interval));
        }
    }

    fn advert_timer_fired(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Master {
            return;
        }
        let Some(due) = Deadlines::take_due(&mut self.deadlines.advert, now) else {
            return;
        };
        out.push(self.advert());
        // Keep the cadence unless we fell behind by a whole interval (a stalled process).
        let interval = self.config.advert_interval;
        let next = Some(due + interval)
            .filter(|next| *next > now)
            .unwrap_or(now + interval);
        out.push(self.deadlines.arm_advert(next));
    }

    fn master_down_timer_fired(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Backup || self.maintenance {
            return;
        }
        if Deadlines::take_due(&mut self.deadlines.master_down, now).is_none() {
            return;
        }
        let reason = match self.takeover {
            Takeover::Silence => TransitionReason::MasterDownTimerExpired,
            Takeover::PriorityZero => TransitionReason::PriorityZeroHeard,
        };
        self.become_master(now, reason, out);
    }

    fn preempt_delay_elapsed(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state != State::Backup || self.maintenance {
            return;
        }
        if Deadlines::take_due(&mut self.deadlines.preempt, now).is_some() {
            self.become_master(now, TransitionReason::Preempt, out);
        }
    }

    /// A master whose priority falls below a peer it knows of steps down at once with a
    /// priority-0 advertisement, so that peer takes over after its Skew_Time; otherwise it
    /// advertises the new priority right away so backups can preempt.
    fn priority_changed(&mut self, now: Instant, priority: u8, out: &mut Vec<Action>) {
        let priority = priority.max(1);
        if priority == self.priority {
            return;
        }
        self.priority = priority;
        if self.state != State::Master {
            return;
        }
        let ours = self.config.primary_address;
        let outranked = self
            .peers
            .strongest()
            .is_some_and(|(peer, peer_priority)| outranks(peer_priority, peer, priority, ours));
        if outranked {
            self.leave(
                now,
                State::Backup,
                TransitionReason::PriorityDropped,
                true,
                out,
            );
        } else {
            out.push(Action::SendAdvert { priority });
            out.push(self.deadlines.arm_advert(now + self.config.advert_interval));
        }
    }

    fn fault(&mut self, now: Instant, reason: FaultReason, out: &mut Vec<Action>) {
        if !self.faults.contains(&reason) {
            self.faults.push(reason);
        }
        if matches!(self.state, State::Backup | State::Master) {
            self.leave(
                now,
                State::Fault,
                TransitionReason::Fault(reason),
                true,
                out,
            );
        }
    }

    fn fault_cleared(&mut self, now: Instant, reason: FaultReason, out: &mut Vec<Action>) {
        self.faults.retain(|fault| *fault != reason);
        if self.state == State::Fault && self.faults.is_empty() {
            self.come_up(now, TransitionReason::FaultCleared, out);
        }
    }

    fn set_maintenance(&mut self, now: Instant, on: bool, out: &mut Vec<Action>) {
        if on == self.maintenance {
            return;
        }
        self.maintenance = on;
        match (self.state, on) {
            (State::Master, true) => {
                self.leave(now, State::Backup, TransitionReason::Operator, true, out)
            }
            (State::Backup, true) => out.push(self.deadlines.cancel_all()),
            (State::Backup, false) => self.arm_master_down(now, out),
            _ => {}
        }
    }

    fn become_master(&mut self, now: Instant, reason: TransitionReason, out: &mut Vec<Action>) {
        self.transition(State::Master, reason, out);
        out.push(self.deadlines.cancel_all());
        out.push(self.advert());
        out.push(Action::AddVips);
        out.push(Action::SendGratuitous {
            reason: GratuitousReason::BecameMaster,
        });
        out.push(self.deadlines.arm_advert(now + self.config.advert_interval));
        self.master_adver_interval = self.config.advert_interval;
        self.master = Some(self.config.primary_address);
        self.takeover = Takeover::Silence;
    }

    /// Moves to Backup, Fault or Initialize; a master removes its addresses and, when
    /// `announce` is set, first tells the LAN with a priority-0 advertisement.
    fn leave(
        &mut self,
        now: Instant,
        to: State,
        reason: TransitionReason,
        announce: bool,
        out: &mut Vec<Action>,
    ) {
        let was_master = self.state == State::Master;
        self.transition(to, reason, out);
        if was_master {
            if announce {
                out.push(Action::SendPriorityZero);
            }
            out.push(Action::RemoveVips);
        }
        out.push(self.deadlines.cancel_all());
        self.takeover = Takeover::Silence;
        self.master = None;
        if to == State::Backup {
            self.arm_master_down(now, out);
        }
    }

    fn arm_master_down(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.maintenance {
            let at = now + self.master_down_interval();
            out.push(self.deadlines.arm_master_down(at));
        }
    }

    /// VRRPv3 backups adopt the master's interval; VRRPv2 has only the configured one.
    fn learn_interval(&mut self, advert: &PeerAdvert) {
        if self.config.version == Version::V3 && !advert.max_advert_interval.is_zero() {
            self.master_adver_interval = advert.max_advert_interval;
        }
    }

    fn advert(&self) -> Action {
        Action::SendAdvert {
            priority: self.priority,
        }
    }

    fn transition(&mut self, to: State, reason: TransitionReason, out: &mut Vec<Action>) {
        out.push(Action::Transition {
            from: self.state,
            to,
            reason,
        });
        self.state = to;
    }
}
