//! The monitor's pure core: from one round of [`Check`]s of every backend to what the data path
//! should believe (which backends read, which one takes writes) and what the monitor should do
//! (fence a second writer, fail over). No I/O: the round's checks go in, a [`Decision`] comes
//! out, and the unit tests drive it with made-up checks.
//!
//! Rules:
//! - **Readers** leave the rotation after `fall` bad checks in a row (down, replication broken,
//!   lag over `max_replication_lag`) and return after `rise` good ones; a backend's first check
//!   sets its state directly, so a broken replica never serves at start.
//! - **Epochs**: every topology change carries an epoch, recorded on the new writer in
//!   `ha.topology` (and replicated from there). A check that shows a newer epoch than ours makes
//!   us follow it: its writer becomes ours.
//! - **The writer** takes writes only while its last check succeeded and said read_only=OFF,
//!   and only while no other server also claims to be writable; such a second claimer is fenced
//!   (read_only=1) when `fence_old_writer` is on.
//! - **Failover**: the writer failing `confirm_checks` checks in a row, with `auto` on, plans a
//!   failover to the standby (or else writer) that is reachable and replicating and has received
//!   the most of the old writer's transactions (the first configured one among equals).
//! - **Rejoin** (`auto_rejoin`, as MaxScale's): while a writer takes writes, a server a topology
//!   change left behind ([`super::left_behind`]) is made its replica again (carried out by
//!   `monitor::rejoin`, which first checks that it holds nothing the writer lacks).

use std::time::Duration;

use ha_core::health::{HealthState, HealthTracker};

use super::check::{assess_reader, Check, ReadContext};
use super::gtid::GtidPos;
use super::left_behind::LeftBehind;
use crate::config::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub rise: u32,
    pub fall: u32,
    pub max_lag: Duration,
    pub confirm_checks: u32,
    pub auto_failover: bool,
    pub fence_old_writer: bool,
    pub auto_rejoin: bool,
}

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub role: Role,
    /// `HOST:PORT` as configured; a replica's `Master_Host:Master_Port` is compared with it.
    pub address: String,
}

/// What one backend should look like to the data path after a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub readable: bool,
    /// `up`, `down`, `broken`, `lagging`.
    pub state: &'static str,
    pub reason: Option<String>,
    pub lag_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub nodes: Vec<Verdict>,
    /// The backend confirmed writable for this round, if any.
    pub writer: Option<usize>,
    /// A newer epoch was seen: its writer (index) and epoch.
    pub followed: Option<(usize, u64)>,
    /// Servers other than the writer that claim to be writable.
    pub conflict: Vec<usize>,
    /// Servers to make read-only.
    pub fence: Vec<usize>,
    /// Fail over from the first to the second.
    pub failover: Option<(usize, usize)>,
    /// Servers to make replicas of the writer again (`auto_rejoin`).
    pub rejoin: Vec<usize>,
}

pub struct MonitorState {
    settings: Settings,
    nodes: Vec<NodeSpec>,
    trackers: Vec<Option<HealthTracker>>,
    last: Vec<Check>,
    writer_failures: u32,
    left_behind: LeftBehind,
    reference_heartbeat_us: Option<i64>,
    pub epoch: u64,
    pub designated: Option<usize>,
}

impl MonitorState {
    /// `designated`: the configured writer, until an epoch says otherwise.
    pub fn new(settings: Settings, nodes: Vec<NodeSpec>) -> Self {
        let designated = nodes.iter().position(|n| n.role == Role::Writer);
        MonitorState {
            trackers: nodes.iter().map(|_| None).collect(),
            last: nodes.iter().map(|_| Check::default()).collect(),
            left_behind: LeftBehind::new(nodes.len()),
            settings,
            nodes,
            writer_failures: 0,
            reference_heartbeat_us: None,
            epoch: 0,
            designated,
        }
    }

    /// New settings from a reload, from the next round on. Each backend keeps its state
    /// (up or down); its streak towards `rise` or `fall` starts over under the new thresholds.
    pub fn set_settings(&mut self, settings: Settings) {
        if (settings.rise, settings.fall) != (self.settings.rise, self.settings.fall) {
            for tracker in self.trackers.iter_mut() {
                if let Some(t) = tracker {
                    *tracker = HealthTracker::new(settings.rise, settings.fall, t.state()).ok();
                }
            }
        }
        self.settings = settings;
    }

    pub fn last_check(&self, index: usize) -> Option<&Check> {
        self.last.get(index)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The epoch a new topology change must carry: above every epoch seen anywhere.
    pub fn next_epoch(&self) -> u64 {
        let seen = self
            .last
            .iter()
            .filter_map(|c| c.epoch.as_ref().map(|e| e.epoch))
            .max()
            .unwrap_or(0);
        self.epoch.max(seen) + 1
    }

    /// A topology change to `writer` at `epoch` took effect.
    pub fn promoted(&mut self, writer: usize, epoch: u64) {
        self.designated = Some(writer);
        self.epoch = self.epoch.max(epoch);
        self.writer_failures = 0;
        self.reference_heartbeat_us = None;
    }

    /// The failover target: among the standbys (then the writers) other than `from` whose
    /// last check succeeded and whose replication SQL thread runs, the one that has received
    /// the most of the old writer's transactions (`Gtid_IO_Pos`), the first configured one
    /// among equals. With semi-synchronous replication every acknowledged commit reached at
    /// least one standby: promoting another one would lose it.
    pub fn candidate(&self, from: Option<usize>) -> Option<usize> {
        let received = |i: usize| {
            self.last[i]
                .replication
                .as_ref()
                .and_then(|r| GtidPos::parse(&r.gtid_io_pos).ok())
                .unwrap_or_default()
        };
        let most_advanced = |role: Role| {
            let eligible: Vec<(usize, GtidPos)> = (0..self.nodes.len())
                .filter(|&i| {
                    Some(i) != from
                        && self.nodes[i].role == role
                        && self.last[i].is_reachable()
                        && self.last[i]
                            .replication
                            .as_ref()
                            .is_some_and(|r| r.sql_running)
                })
                .map(|i| (i, received(i)))
                .collect();
            // Fewest transactions missing from what the others received, summed over them.
            eligible
                .iter()
                .min_by_key(|(i, pos)| {
                    let missing: u64 = eligible.iter().map(|(_, other)| pos.behind(other)).sum();
                    (missing, *i)
                })
                .map(|(i, _)| *i)
        };
        most_advanced(Role::Standby).or_else(|| most_advanced(Role::Writer))
    }

    /// Takes in one round of checks (one per backend, in configuration order).
    pub fn observe(&mut self, checks: Vec<Check>) -> Decision {
        let mut d = Decision::default();
        // 1. Follow the newest epoch any reachable server holds.
        let newest = checks
            .iter()
            .filter_map(|c| c.epoch.as_ref())
            .max_by_key(|e| e.epoch)
            .cloned();
        if let Some(record) = newest.filter(|r| r.epoch > self.epoch) {
            if let Some(i) = self.index_of(&record.writer) {
                self.promoted(i, record.epoch);
                d.followed = Some((i, record.epoch));
            }
        }
        // 2. The writer's health.
        let writer_check = self.designated.and_then(|w| checks.get(w));
        let writer_down = writer_check.is_some_and(|c| !c.is_reachable());
        if writer_down {
            self.writer_failures = self.writer_failures.saturating_add(1);
        } else {
            self.writer_failures = 0;
        }
        let reference = self.reference_heartbeat_us;
        if let Some(hb) = writer_check.and_then(|c| c.heartbeat_written_us) {
            self.reference_heartbeat_us = Some(hb);
        }
        // 3. Readers, with rise/fall.
        for (i, check) in checks.iter().enumerate() {
            let ctx = ReadContext {
                is_writer: Some(i) == self.designated,
                writer_down,
                reference_heartbeat_us: reference,
                max_lag: self.settings.max_lag,
            };
            let verdict = assess_reader(check, &ctx);
            let ok = verdict.is_ok();
            let tracker = &mut self.trackers[i];
            let up = match tracker {
                Some(t) => {
                    t.record(ok);
                    t.is_up()
                }
                None => {
                    let initial = if ok {
                        HealthState::Up
                    } else {
                        HealthState::Down
                    };
                    *tracker =
                        HealthTracker::new(self.settings.rise, self.settings.fall, initial).ok();
                    ok
                }
            };
            d.nodes.push(match verdict {
                Ok(lag_ms) => Verdict {
                    readable: up,
                    state: if up { "up" } else { "rising" },
                    reason: None,
                    lag_ms,
                },
                Err(why) => Verdict {
                    readable: up,
                    state: if up { "failing" } else { why.state() },
                    reason: Some(why.reason()),
                    lag_ms: match why {
                        super::check::Unusable::Lagging { lag_ms } => Some(lag_ms),
                        _ => None,
                    },
                },
            });
        }
        // 4. More than one writer claimed: refuse writes, fence the others.
        d.conflict = (0..checks.len())
            .filter(|&i| Some(i) != self.designated && checks[i].claims_writer())
            .collect();
        if self.settings.fence_old_writer {
            d.fence = d.conflict.clone();
        }
        d.writer = self
            .designated
            .filter(|&w| checks.get(w).is_some_and(Check::claims_writer))
            .filter(|_| d.conflict.is_empty());
        // 5. A writer down for confirm_checks checks: fail over.
        if self.settings.auto_failover && self.writer_failures >= self.settings.confirm_checks {
            if let Some(from) = self.designated {
                self.last = checks.clone();
                d.failover = self.candidate(Some(from)).map(|to| (from, to));
            }
        }
        // 6. Servers a topology change left behind follow the writer again.
        let writer = d
            .writer
            .filter(|_| self.settings.auto_rejoin && d.failover.is_none());
        d.rejoin = self
            .left_behind
            .observe(&self.nodes, &checks, writer, self.epoch);
        self.last = checks;
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::check::{EpochRecord, Replication};

    fn state(auto: bool) -> MonitorState {
        let node = |name: &str, role| NodeSpec {
            name: name.into(),
            role,
            address: format!("{name}:3306"),
        };
        MonitorState::new(
            Settings {
                rise: 2,
                fall: 2,
                max_lag: Duration::from_secs(1),
                confirm_checks: 3,
                auto_failover: auto,
                fence_old_writer: true,
                auto_rejoin: false,
            },
            vec![
                node("db1", Role::Writer),
                node("db2", Role::Standby),
                node("db3", Role::Replica),
            ],
        )
    }

    fn primary() -> Check {
        Check {
            read_only: false,
            heartbeat_written_us: Some(1_000_000),
            ..Default::default()
        }
    }

    fn replica() -> Check {
        Check {
            read_only: true,
            replication: Some(Replication {
                io_running: true,
                sql_running: true,
                seconds_behind: Some(0),
                ..Default::default()
            }),
            heartbeat_us: Some(1_000_000),
            ..Default::default()
        }
    }

    fn broken() -> Check {
        let mut c = replica();
        c.replication = c.replication.map(|r| Replication {
            sql_running: false,
            ..r
        });
        c
    }

    #[test]
    fn a_healthy_topology_writes_to_the_primary_and_reads_everywhere() {
        let mut s = state(true);
        let d = s.observe(vec![primary(), replica(), replica()]);
        assert_eq!(d.writer, Some(0));
        assert!(d.nodes.iter().all(|n| n.readable));
        assert!(d.failover.is_none() && d.fence.is_empty());
    }

    #[test]
    fn a_replica_leaves_after_fall_bad_checks_and_returns_after_rise_good_ones() {
        let mut s = state(true);
        s.observe(vec![primary(), replica(), replica()]);
        let d = s.observe(vec![primary(), replica(), broken()]);
        assert!(d.nodes[2].readable, "one bad check is not enough");
        let d = s.observe(vec![primary(), replica(), broken()]);
        assert!(!d.nodes[2].readable);
        assert_eq!(d.nodes[2].state, "broken");
        let d = s.observe(vec![primary(), replica(), replica()]);
        assert!(!d.nodes[2].readable, "one good check is not enough");
        let d = s.observe(vec![primary(), replica(), replica()]);
        assert!(d.nodes[2].readable);
    }

    #[test]
    fn a_broken_replica_at_start_never_serves() {
        let mut s = state(true);
        let d = s.observe(vec![primary(), replica(), broken()]);
        assert!(!d.nodes[2].readable);
    }

    #[test]
    fn the_writer_must_say_read_only_off_and_be_alone() {
        let mut s = state(true);
        let mut ro = primary();
        ro.read_only = true;
        assert_eq!(s.observe(vec![ro, replica(), replica()]).writer, None);
        let mut second = replica();
        second.read_only = false;
        let d = s.observe(vec![primary(), second, replica()]);
        assert_eq!(d.writer, None, "two writers: writes refused");
        assert_eq!(d.conflict, vec![1]);
        assert_eq!(d.fence, vec![1]);
    }

    #[test]
    fn failover_only_after_confirm_checks_and_only_when_auto() {
        for auto in [true, false] {
            let mut s = state(auto);
            s.observe(vec![primary(), replica(), replica()]);
            let down = || vec![Check::failed("refused"), replica(), replica()];
            assert!(s.observe(down()).failover.is_none());
            let d = s.observe(down());
            assert!(d.failover.is_none());
            assert_eq!(d.writer, None, "no writes to a writer that failed a check");
            assert!(
                d.nodes[1].readable,
                "replicas keep reading while the writer is down"
            );
            let d = s.observe(down());
            assert_eq!(d.failover, auto.then_some((0, 1)));
        }
    }

    #[test]
    fn the_standby_that_received_the_most_is_the_candidate_the_first_among_equals() {
        let node = |name: &str, role| NodeSpec {
            name: name.into(),
            role,
            address: format!("{name}:3306"),
        };
        let mut s = MonitorState::new(
            state(true).settings,
            vec![
                node("db1", Role::Writer),
                node("db2", Role::Standby),
                node("db3", Role::Standby),
                node("db4", Role::Replica),
            ],
        );
        let received = |pos: &str| {
            let mut c = replica();
            c.replication = c.replication.map(|r| Replication {
                gtid_io_pos: pos.into(),
                ..r
            });
            c
        };
        let round = |a: &str, b: &str| {
            vec![
                Check::failed("down"),
                received(a),
                received(b),
                received("0-1-200"),
            ]
        };
        s.observe(round("0-1-100", "0-1-120"));
        assert_eq!(s.candidate(Some(0)), Some(2), "db3 received 20 more");
        s.observe(round("0-1-120,1-2-5", "0-1-120"));
        assert_eq!(s.candidate(Some(0)), Some(1), "db2 has another domain too");
        s.observe(round("0-1-120", "0-1-120"));
        assert_eq!(
            s.candidate(Some(0)),
            Some(1),
            "equals: the first configured"
        );
        s.observe(round("garbage", "0-1-1"));
        assert_eq!(
            s.candidate(Some(0)),
            Some(2),
            "an unreadable position counts as none"
        );
        s.observe(vec![
            Check::failed("down"),
            received("0-1-100"),
            broken(),
            received("0-1-200"),
        ]);
        assert_eq!(
            s.candidate(Some(0)),
            Some(1),
            "a standby whose SQL thread stopped is never the candidate, a replica neither"
        );
    }

    #[test]
    fn no_candidate_without_a_replicating_standby() {
        let mut s = state(true);
        s.observe(vec![primary(), broken(), replica()]);
        for _ in 0..3 {
            s.observe(vec![Check::failed("x"), broken(), replica()]);
        }
        assert_eq!(s.candidate(Some(0)), None);
    }

    #[test]
    fn a_newer_epoch_is_followed_and_an_older_one_ignored() {
        let mut s = state(true);
        let mut promoted = replica();
        promoted.read_only = false;
        promoted.replication = None;
        promoted.epoch = Some(EpochRecord {
            epoch: 4,
            writer: "db2".into(),
        });
        let mut fenced = primary();
        fenced.read_only = true;
        let d = s.observe(vec![fenced.clone(), promoted.clone(), replica()]);
        assert_eq!(d.followed, Some((1, 4)));
        assert_eq!(d.writer, Some(1));
        assert!(d.conflict.is_empty());
        assert_eq!(s.next_epoch(), 5);
        let mut stale = promoted;
        stale.epoch = Some(EpochRecord {
            epoch: 2,
            writer: "db1".into(),
        });
        let d = s.observe(vec![fenced, stale, replica()]);
        assert_eq!(d.followed, None);
        assert_eq!(s.designated, Some(1));
    }

    #[test]
    fn servers_left_behind_are_rejoined_only_with_auto_rejoin_and_a_confirmed_writer() {
        use crate::monitor::left_behind::REJOIN_AFTER_ROUNDS;
        let mut s = state(true);
        // db1 back after a failover to db2 (epoch 3): read-only, replicating from nobody.
        let mut writer = primary();
        writer.epoch = Some(EpochRecord {
            epoch: 3,
            writer: "db2".into(),
        });
        let mut back = primary();
        back.read_only = true;
        let mut db3 = replica();
        db3.replication = db3.replication.map(|r| Replication {
            master: "db2:3306".into(),
            ..r
        });
        let round = vec![back.clone(), writer, db3.clone()];
        let rejoined = |s: &mut MonitorState, checks: &[Check]| {
            (0..REJOIN_AFTER_ROUNDS)
                .map(|_| s.observe(checks.to_vec()).rejoin)
                .last()
                .unwrap_or_default()
        };
        assert!(rejoined(&mut s, &round).is_empty(), "auto_rejoin is off");
        let mut settings = s.settings.clone();
        settings.auto_rejoin = true;
        s.set_settings(settings);
        assert_eq!(rejoined(&mut s, &round), vec![0]);
        // The writer down: nothing is rejoined (and the failover comes first).
        let writer_down = vec![back, Check::failed("down"), db3];
        assert!(rejoined(&mut s, &writer_down).is_empty());
    }

    #[test]
    fn reloaded_settings_apply_from_the_next_round_and_keep_each_backends_state() {
        let mut s = state(true);
        s.observe(vec![primary(), replica(), replica()]);
        let mut settings = s.settings.clone();
        settings.fall = 1;
        settings.auto_failover = false;
        s.set_settings(settings);
        let d = s.observe(vec![primary(), replica(), broken()]);
        assert!(!d.nodes[2].readable, "fall 1: one bad check takes it out");
        assert!(d.nodes[1].readable, "the others stay up");
        for _ in 0..4 {
            let d = s.observe(vec![Check::failed("down"), replica(), replica()]);
            assert!(
                d.failover.is_none(),
                "auto failover switched off by the reload"
            );
        }
    }
}
