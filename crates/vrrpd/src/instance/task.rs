//! The per-instance task: feeds packets, timer firings, check results and commands into
//! the [`Fsm`] and carries out the [`Action`]s it returns (send, add/remove addresses,
//! announce, arm timers), recording every transition with its reason and time.
//!
//! Everything runs on this one task, so the machine needs no lock; the [`View`] is copied out
//! after each event for the control channel.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::timers::{Due, Timers};
use super::{Command, FaultEvent, Shared, View};
use crate::addresses::AddressManager;
use crate::config;
use crate::fsm::{Action, FaultReason, Fsm, Input, State, TransitionReason};
use crate::instance::view::TransitionRecord;
use crate::metrics::state_number;
use crate::notify::Notification;
use crate::packet::{Advertisement, DropReason, Expectations};
use crate::track::assess::{assess, CheckStatus};
use crate::track::{self, CheckEvent, Trackers};
use crate::transport::Transport;

/// How long the machine waits for every check's first result before starting anyway.
const FIRST_RESULTS_WAIT: Duration = Duration::from_secs(3);

pub(super) struct Task {
    config: config::Instance,
    fsm: Fsm,
    transport: Transport,
    addresses: AddressManager,
    expect: Expectations,
    commands: mpsc::Receiver<(Command, oneshot::Sender<()>)>,
    view: Arc<Mutex<View>>,
    shared: Shared,
    timers: Timers,
    checks: Vec<CheckStatus>,
    check_events: mpsc::Receiver<CheckEvent>,
    _trackers: Trackers,
    base_priority: u8,
    /// Faults currently reported to the machine.
    faults: Vec<FaultReason>,
    sync_fault: bool,
    /// Whether our own checks put us in fault, as last told to the sync groups.
    own_fault: bool,
    mac: [u8; 6],
    last_error: Option<String>,
}

impl Task {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: config::Instance,
        fsm: Fsm,
        transport: Transport,
        mut addresses: AddressManager,
        expect: Expectations,
        commands: mpsc::Receiver<(Command, oneshot::Sender<()>)>,
        view: Arc<Mutex<View>>,
        shared: Shared,
    ) -> Self {
        let (events_tx, check_events) = mpsc::channel(64);
        let (checks, trackers) = track::start(&config, events_tx);
        let mac = addresses.link().ok().and_then(|l| l.mac).unwrap_or([0; 6]);
        Task {
            base_priority: config.priority,
            config,
            fsm,
            transport,
            addresses,
            expect,
            commands,
            view,
            shared,
            timers: Timers::default(),
            checks,
            check_events,
            _trackers: trackers,
            faults: Vec::new(),
            sync_fault: false,
            own_fault: false,
            mac,
            last_error: None,
        }
    }

    pub(super) async fn run(mut self) {
        self.wait_for_first_results().await;
        self.assess(Instant::now());
        let actions = self.fsm.handle(Instant::now(), Input::Startup);
        self.execute(actions);
        self.publish(true);
        loop {
            let sleep = tokio::time::sleep_until(
                self.timers
                    .next()
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600)),
            );
            tokio::select! {
                command = self.commands.recv() => {
                    let Some((command, done)) = command else { break };
                    let stop = matches!(command, Command::Stop);
                    self.command(command);
                    let _ = done.send(());
                    if stop { break; }
                }
                Some(event) = self.check_events.recv() => {
                    self.check_changed(event);
                    self.assess(Instant::now());
                }
                received = self.transport.receive(&self.expect) => match received {
                    Ok(packet) => self.packet(packet),
                    Err(e) => {
                        warn!(error = %e, "receive failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                () = sleep => self.timers_due(),
            }
            self.publish(true);
        }
        self.publish(false);
    }

    /// Lets every check report once, so the machine does not start on guesses.
    async fn wait_for_first_results(&mut self) {
        let deadline = tokio::time::Instant::now() + FIRST_RESULTS_WAIT;
        while self.checks.iter().any(|c| c.up.is_none()) {
            match tokio::time::timeout_at(deadline, self.check_events.recv()).await {
                Ok(Some(event)) => self.check_changed(event),
                _ => break,
            }
        }
    }

    fn check_changed(&mut self, event: CheckEvent) {
        if let Some(check) = self.checks.get_mut(event.check) {
            if check.up != Some(event.up) {
                info!(check = %check.name, up = event.up, detail = %event.detail, "tracked check changed");
            }
            check.up = Some(event.up);
            check.detail = event.detail;
            let value = i64::from(event.up);
            self.shared
                .metrics
                .check_up
                .with_label_values(&[&self.config.name, &check.name])
                .set(value);
        }
    }

    /// Re-derives priority and faults from the checks and tells the machine what changed.
    fn assess(&mut self, now: Instant) {
        let assessment = assess(self.base_priority, &self.checks);
        let mut wanted = assessment.faults;
        let own_fault = !wanted.is_empty();
        if own_fault != self.own_fault {
            self.own_fault = own_fault;
            let _ = self.shared.faults.send(FaultEvent {
                instance: self.config.name.clone(),
                faulted: own_fault,
            });
        }
        if self.sync_fault {
            wanted.push(FaultReason::SyncGroup);
        }
        let mut actions = Vec::new();
        actions.extend(
            self.fsm
                .handle(now, Input::EffectivePriorityChanged(assessment.priority)),
        );
        for fault in wanted.iter().filter(|f| !self.faults.contains(f)) {
            actions.extend(self.fsm.handle(now, Input::Fault(*fault)));
        }
        for fault in self.faults.clone().iter().filter(|f| !wanted.contains(f)) {
            actions.extend(self.fsm.handle(now, Input::FaultCleared(*fault)));
        }
        self.faults = wanted;
        self.execute(actions);
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Priority(priority) => {
                self.base_priority = priority.unwrap_or(self.config.priority);
                info!(priority = self.base_priority, "priority set by operator");
                self.assess(now);
            }
            Command::Maintenance(on) => {
                info!(on, "maintenance set by operator");
                let actions = self.fsm.handle(now, Input::Maintenance(on));
                self.execute(actions);
            }
            Command::SyncFault(on) => {
                self.sync_fault = on;
                self.assess(now);
            }
            Command::Stop => {
                let actions = self.fsm.handle(now, Input::Shutdown);
                self.execute(actions);
                if let Err(e) = self.addresses.remove_all() {
                    error!(error = %e, "virtual addresses could not be removed at stop");
                }
            }
        }
    }

    fn packet(&mut self, packet: Result<Advertisement, DropReason>) {
        let name = self.config.name.as_str();
        match packet {
            Ok(advert) => {
                self.shared
                    .metrics
                    .adverts_received
                    .with_label_values(&[name])
                    .inc();
                if let Ok(mut view) = self.view.lock() {
                    view.counters.adverts_received += 1;
                }
                let actions = self
                    .fsm
                    .handle(Instant::now(), Input::AdvertReceived((&advert).into()));
                self.execute(actions);
            }
            Err(reason) => {
                debug!(reason = %reason, "packet dropped");
                let label = reason.label();
                self.shared
                    .metrics
                    .dropped
                    .with_label_values(&[name, label])
                    .inc();
                if let Ok(mut view) = self.view.lock() {
                    *view.counters.dropped.entry(label).or_insert(0) += 1;
                }
            }
        }
    }

    fn timers_due(&mut self) {
        let now = Instant::now();
        for due in self.timers.take_due(now) {
            let input = match due {
                Due::Advert => Input::AdvertTimerFired,
                Due::MasterDown => Input::MasterDownTimerFired,
                Due::Preempt => Input::PreemptDelayElapsed,
                Due::Gratuitous => {
                    self.addresses.announce(self.mac);
                    continue;
                }
                Due::Refresh => {
                    if self.fsm.state() == State::Master {
                        self.addresses.announce(self.mac);
                        let refresh = self.config.garp.refresh.map(|r| now + r.get());
                        self.timers.set_refresh(refresh);
                    }
                    continue;
                }
            };
            let actions = self.fsm.handle(now, input);
            self.execute(actions);
        }
    }

    fn execute(&mut self, actions: Vec<Action>) {
        let now = Instant::now();
        for action in actions {
            match action {
                Action::SendAdvert { priority } => self.advertise(priority),
                Action::SendPriorityZero => self.advertise(0),
                Action::AddVips => {
                    if let Err(e) = self.addresses.add_all() {
                        error!(error = %e, "cannot add virtual addresses");
                        self.last_error = Some(e.to_string());
                    }
                }
                Action::RemoveVips => {
                    self.timers.stop_announcing();
                    if let Err(e) = self.addresses.remove_all() {
                        error!(error = %e, "cannot remove virtual addresses");
                        self.last_error = Some(e.to_string());
                    }
                }
                Action::SendGratuitous { reason } => {
                    debug!(?reason, "announcing virtual addresses");
                    if self.mac == [0; 6] {
                        self.mac = self
                            .addresses
                            .link()
                            .ok()
                            .and_then(|l| l.mac)
                            .unwrap_or([0; 6]);
                    }
                    self.addresses.announce(self.mac);
                    let garp = &self.config.garp;
                    self.timers.start_burst(
                        now,
                        garp.repeat.saturating_sub(1),
                        garp.interval.get(),
                    );
                    self.timers.set_refresh(garp.refresh.map(|r| now + r.get()));
                }
                Action::ScheduleAdvertTimer(at) => self.timers.advert = Some(at),
                Action::ScheduleMasterDownTimer(at) => self.timers.master_down = Some(at),
                Action::SchedulePreemptTimer(at) => self.timers.preempt = Some(at),
                Action::CancelTimers => self.timers.cancel_fsm(),
                Action::Transition { from, to, reason } => self.transition(from, to, reason),
            }
        }
    }

    fn advertise(&mut self, priority: u8) {
        match self.transport.advertise(priority) {
            Ok(()) => {
                let name = self.config.name.as_str();
                self.shared
                    .metrics
                    .adverts_sent
                    .with_label_values(&[name])
                    .inc();
                if let Ok(mut view) = self.view.lock() {
                    view.counters.adverts_sent += 1;
                }
            }
            Err(e) => {
                debug!(error = %e, "advertisement not sent");
                self.last_error = Some(e.to_string());
            }
        }
    }

    fn transition(&mut self, from: State, to: State, reason: TransitionReason) {
        let priority = self.fsm.effective_priority();
        info!(%from, %to, reason = %reason, priority, "state changed");
        let name = self.config.name.clone();
        self.shared
            .metrics
            .transitions
            .with_label_values(&[&name, to.label(), reason.label()])
            .inc();
        if let Ok(mut view) = self.view.lock() {
            view.record(TransitionRecord::now(
                from,
                to,
                reason.label(),
                reason.to_string(),
                priority,
            ));
        }
        let notify = self.config.notify.as_ref();
        self.shared.notifier.notify(Notification {
            instance: name.clone(),
            state: to.label(),
            priority,
            reason: reason.label(),
            script: notify.and_then(|n| n.script.clone()),
            sockets: notify.map(|n| n.sockets.clone()).unwrap_or_default(),
            timeout: notify
                .map(|n| n.timeout.get())
                .unwrap_or(Duration::from_secs(5)),
        });
    }

    /// Copies the instance's state into the shared view and the metrics.
    fn publish(&mut self, running: bool) {
        let name = self.config.name.as_str();
        let m = &self.shared.metrics;
        let state = self.fsm.state();
        m.state.with_label_values(&[name]).set(state_number(state));
        m.priority
            .with_label_values(&[name, "base"])
            .set(i64::from(self.base_priority));
        m.priority
            .with_label_values(&[name, "effective"])
            .set(i64::from(self.fsm.effective_priority()));
        let Ok(mut view) = self.view.lock() else {
            return;
        };
        view.state = state;
        view.base_priority = self.base_priority;
        view.effective_priority = self.fsm.effective_priority();
        view.master_address = self.fsm.master_address();
        view.vips_held = state == State::Master;
        view.maintenance = self.fsm.in_maintenance();
        view.faults = self.fsm.faults().to_vec();
        view.checks.clone_from(&self.checks);
        view.initialized = running && state != State::Initialize;
        view.last_error.clone_from(&self.last_error);
    }
}
