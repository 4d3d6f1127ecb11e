//! Tracked checks: each runs as its own task (a daemon's `health` over its control socket,
//! a script, a link) and reports up/down changes to its instance as [`CheckEvent`]s. The
//! instance turns the set of results into an effective priority and faults with
//! [`assess`](assess::assess).

pub mod assess;
mod daemon;
mod interface;
mod poll;
pub mod script;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Instance, Track};
use assess::{CheckKind, CheckStatus};

/// A check changed state (or gave its first result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEvent {
    /// Index into the instance's check list.
    pub check: usize,
    pub up: bool,
    pub detail: String,
}

impl CheckEvent {
    pub fn new(check: usize, up: bool, detail: String) -> Self {
        CheckEvent { check, up, detail }
    }
}

/// The running checks of one instance; dropping it stops them.
pub struct Trackers {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Trackers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts every check of `instance` (its own interface first); returns their initial status
/// list and the tasks.
pub fn start(
    instance: &Instance,
    events: mpsc::Sender<CheckEvent>,
) -> (Vec<CheckStatus>, Trackers) {
    let mut checks = vec![CheckStatus::new(
        &instance.interface,
        CheckKind::OwnInterface,
        0,
    )];
    let mut tasks = vec![tokio::spawn(interface::run(
        0,
        instance.interface.clone(),
        events.clone(),
    ))];
    for track in &instance.track {
        let index = checks.len();
        let events = events.clone();
        match track {
            Track::Daemon(d) => {
                checks.push(CheckStatus::new(&d.name, CheckKind::Daemon, d.weight));
                tasks.push(tokio::spawn(daemon::run(index, d.clone(), events)));
            }
            Track::Script(s) => {
                checks.push(CheckStatus::new(&s.name, CheckKind::Script, s.weight));
                tasks.push(tokio::spawn(script::run(index, s.clone(), events)));
            }
            Track::Interface(i) => {
                checks.push(CheckStatus::new(&i.name, CheckKind::Interface, i.weight));
                tasks.push(tokio::spawn(interface::run(index, i.name.clone(), events)));
            }
        }
    }
    (checks, Trackers { tasks })
}
