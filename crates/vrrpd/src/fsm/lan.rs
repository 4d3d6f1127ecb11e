//! A tiny simulated LAN for election tests: several [`Fsm`]s on a shared segment with a
//! virtual clock. Each node's `SendAdvert` / `SendPriorityZero` reaches every other connected
//! node after a fixed latency, timers fire when the clock reaches them, and the LAN tracks
//! who holds the virtual addresses and every transition with its time.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;

/// One-way delivery time on the segment.
pub(super) const LATENCY: Duration = Duration::from_millis(1);

/// A transition as seen on the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    pub at: Instant,
    pub node: usize,
    pub from: State,
    pub to: State,
    pub reason: TransitionReason,
}

struct Node {
    fsm: Fsm,
    /// Powered: a dead node neither sends, receives nor runs timers.
    alive: bool,
    /// Cabled: a disconnected node runs but its packets go nowhere and none reach it.
    connected: bool,
    advert_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    preempt_timer: Option<Instant>,
    holds_vips: bool,
    gratuitous: Vec<GratuitousReason>,
}

struct InFlight {
    arrives: Instant,
    to: usize,
    advert: PeerAdvert,
}

pub(super) struct Lan {
    pub start: Instant,
    pub now: Instant,
    nodes: Vec<Node>,
    in_flight: Vec<InFlight>,
    pub seen: Vec<Seen>,
}

/// The address of node `index`: 198.18.0.(index + 1).
pub(super) fn node_address(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, index as u8 + 1))
}

impl Lan {
    pub fn new() -> Self {
        let start = Instant::now();
        Lan {
            start,
            now: start,
            nodes: Vec::new(),
            in_flight: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Adds a node; `configure` adjusts its config, whose address is filled in by the LAN.
    pub fn add(&mut self, priority: u8, configure: impl FnOnce(&mut Config)) -> usize {
        let index = self.nodes.len();
        let mut config = Config::new(
            51,
            priority,
            Duration::from_millis(100),
            node_address(index),
        );
        configure(&mut config);
        let fsm = match Fsm::new(config) {
            Ok(fsm) => fsm,
            Err(e) => panic!("node {index}: invalid test config: {e}"),
        };
        self.nodes.push(Node {
            fsm,
            alive: true,
            connected: true,
            advert_timer: None,
            master_down_timer: None,
            preempt_timer: None,
            holds_vips: false,
            gratuitous: Vec::new(),
        });
        index
    }

    /// Delivers `input` to `node` now and carries out what it asks.
    pub fn input(&mut self, node: usize, input: Input) {
        let now = self.now;
        let actions = self.nodes[node].fsm.handle(now, input);
        self.apply(node, actions);
    }

    /// Pulls the power on `node`: it goes silent without a shutdown.
    pub fn kill(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.alive = false;
        n.advert_timer = None;
        n.master_down_timer = None;
        n.preempt_timer = None;
        n.holds_vips = false;
    }

    pub fn set_connected(&mut self, node: usize, connected: bool) {
        self.nodes[node].connected = connected;
    }

    /// Runs the LAN until `duration` has passed, firing timers and delivering packets in
    /// time order (ties in node order).
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while let Some((at, event)) = self.next_event().filter(|(at, _)| *at <= end) {
            self.now = at;
            match event {
                Event::Packet(index) => {
                    let packet = self.in_flight.remove(index);
                    let node = &self.nodes[packet.to];
                    if node.alive && node.connected {
                        self.input(packet.to, Input::AdvertReceived(packet.advert));
                    }
                }
                Event::Timer(node, input) => {
                    let n = &mut self.nodes[node];
                    match input {
                        Input::AdvertTimerFired => n.advert_timer = None,
                        Input::MasterDownTimerFired => n.master_down_timer = None,
                        _ => n.preempt_timer = None,
                    }
                    self.input(node, input);
                }
            }
        }
        self.now = end;
    }

    pub fn state(&self, node: usize) -> State {
        self.nodes[node].fsm.state()
    }

    pub fn fsm(&self, node: usize) -> &Fsm {
        &self.nodes[node].fsm
    }

    /// The nodes that currently have the virtual addresses configured.
    pub fn vip_holders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].holds_vips)
            .collect()
    }

    pub fn gratuitous(&self, node: usize) -> &[GratuitousReason] {
        &self.nodes[node].gratuitous
    }

    /// The first transition of `node` into `to` at or after `since`.
    pub fn became(&self, node: usize, to: State, since: Instant) -> Option<Seen> {
        self.seen
            .iter()
            .copied()
            .find(|s| s.node == node && s.to == to && s.at >= since)
    }

    fn next_event(&self) -> Option<(Instant, Event)> {
        let packets = self
            .in_flight
            .iter()
            .enumerate()
            .map(|(i, p)| (p.arrives, Event::Packet(i)));
        let timers = self.nodes.iter().enumerate().flat_map(|(i, n)| {
            [
                n.advert_timer
                    .map(|t| (t, Event::Timer(i, Input::AdvertTimerFired))),
                n.master_down_timer
                    .map(|t| (t, Event::Timer(i, Input::MasterDownTimerFired))),
                n.preempt_timer
                    .map(|t| (t, Event::Timer(i, Input::PreemptDelayElapsed))),
            ]
            .into_iter()
            .flatten()
        });
        // Packets before timers at the same instant; `min_by_key` keeps the first minimum.
        packets.chain(timers).min_by_key(|(at, _)| *at)
    }

    fn apply(&mut self, from: usize, actions: Vec<Action>) {
        for action in actions {
            let node = &mut self.nodes[from];
            match action {
                Action::SendAdvert { priority } => self.broadcast(from, priority),
                Action::SendPriorityZero => self.broadcast(from, 0),
                Action::AddVips => node.holds_vips = true,
                Action::RemoveVips => node.holds_vips = false,
                Action::SendGratuitous { reason } => node.gratuitous.push(reason),
                Action::ScheduleAdvertTimer(at) => node.advert_timer = Some(at),
                Action::ScheduleMasterDownTimer(at) => node.master_down_timer = Some(at),
                Action::SchedulePreemptTimer(at) => node.preempt_timer = Some(at),
                Action::CancelTimers => {
                    node.advert_timer = None;
                    node.master_down_timer = None;
                    node.preempt_timer = None;
                }
                Action::Transition {
                    from: was,
                    to,
                    reason,
                } => self.seen.push(Seen {
                    at: self.now,
                    node: from,
                    from: was,
                    to,
                    reason,
                }),
            }
        }
    }

    fn broadcast(&mut self, from: usize, priority: u8) {
        let sender = &self.nodes[from];
        if !sender.alive || !sender.connected {
            return;
        }
        let advert = PeerAdvert {
            priority,
            source: sender.fsm.config().primary_address,
            max_advert_interval: sender.fsm.config().advert_interval,
        };
        let arrives = self.now + LATENCY;
        for to in (0..self.nodes.len()).filter(|to| *to != from) {
            self.in_flight.push(InFlight {
                arrives,
                to,
                advert,
            });
        }
    }
}

enum Event {
    Packet(usize),
    Timer(usize, Input),
}
