//! Which servers a topology change left behind: the pure rule `failover.auto_rejoin` acts on
//! (`monitor::rejoin` carries it out, after checking that the server holds nothing the writer
//! lacks).
//!
//! While a writer takes writes, a reachable read-only server other than the writer is left
//! behind when it does not receive from the writer:
//! - it replicates from nobody (an old writer back after a failover);
//! - its IO thread does not run and it points elsewhere (a replica that was down during the
//!   failover, back pointing at the dead old writer);
//! - its replication is stopped, pointing at the writer, and it has not seen the latest
//!   topology change (an old writer whose replication stopped when it was promoted long ago);
//! - it streams from another backend that itself receives from nobody (a replica back on the
//!   fenced old writer).
//!
//! It must look so for [`REJOIN_AFTER_ROUNDS`] rounds in a row, which a replica that a change
//! (by this dbrouterd or another one) is repointing never does. A replica an operator stopped
//! after the last change, still pointing at the writer, and a replica chained behind one that
//! follows the writer, are left alone.

use super::check::Check;
use super::state::NodeSpec;

/// Rounds in a row a server must look left behind before it is rejoined.
pub const REJOIN_AFTER_ROUNDS: u32 = 5;

/// How many rounds in a row each backend has looked left behind.
#[derive(Debug, Clone)]
pub struct LeftBehind {
    rounds: Vec<u32>,
}

impl LeftBehind {
    pub fn new(backends: usize) -> Self {
        LeftBehind {
            rounds: vec![0; backends],
        }
    }

    /// Takes in one round's checks (`writer`: the writer confirmed this round, `None` when
    /// there is none or rejoining is off; `epoch`: the latest topology change); answers the
    /// backends left behind for [`REJOIN_AFTER_ROUNDS`] rounds now.
    pub fn observe(
        &mut self,
        nodes: &[NodeSpec],
        checks: &[Check],
        writer: Option<usize>,
        epoch: u64,
    ) -> Vec<usize> {
        let now = writer.map_or_else(Vec::new, |w| left_behind(nodes, checks, w, epoch));
        let mut due = Vec::new();
        for (i, rounds) in self.rounds.iter_mut().enumerate() {
            *rounds = if now.contains(&i) {
                rounds.saturating_add(1)
            } else {
                0
            };
            if *rounds >= REJOIN_AFTER_ROUNDS {
                due.push(i);
            }
        }
        due
    }
}

/// The backends that look left behind in this one round (the module docs' rule).
fn left_behind(nodes: &[NodeSpec], checks: &[Check], writer: usize, epoch: u64) -> Vec<usize> {
    let Some(writer_address) = nodes.get(writer).map(|n| n.address.as_str()) else {
        return Vec::new();
    };
    // A backend other than the writer that receives from nobody.
    let dead_end = |master: &str| {
        nodes.iter().zip(checks).enumerate().any(|(j, (n, c))| {
            j != writer
                && n.address == master
                && c.is_reachable()
                && c.replication.as_ref().is_none_or(|r| !r.io_running)
        })
    };
    (0..checks.len())
        .filter(|&i| {
            let c = &checks[i];
            if i == writer || !c.is_reachable() || !c.read_only {
                return false;
            }
            match &c.replication {
                None => true,
                Some(r) if r.io_running => dead_end(&r.master),
                Some(r) if r.master != writer_address => true,
                Some(r) => {
                    let seen = c.epoch.as_ref().map_or(0, |e| e.epoch);
                    r.io_stopped && !r.sql_running && seen < epoch
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;
    use crate::monitor::check::{EpochRecord, Replication};

    fn nodes() -> Vec<NodeSpec> {
        ["db1", "db2", "db3"]
            .iter()
            .zip([Role::Writer, Role::Standby, Role::Replica])
            .map(|(name, role)| NodeSpec {
                name: name.to_string(),
                role,
                address: format!("{name}:3306"),
            })
            .collect()
    }

    /// A server that has seen `epoch`, replicating from `master` with its IO thread `io`
    /// ("Yes", "Connecting" or "No"; the SQL thread runs unless both are stopped).
    fn following(master: &str, io: &str, epoch: u64) -> Check {
        Check {
            read_only: true,
            replication: Some(Replication {
                master: master.into(),
                io_running: io == "Yes",
                io_stopped: io == "No",
                sql_running: io != "No",
                ..Default::default()
            }),
            epoch: Some(EpochRecord {
                epoch,
                writer: "db2".into(),
            }),
            ..Default::default()
        }
    }

    /// db2 is the writer since epoch 3.
    fn writer() -> Check {
        Check {
            epoch: Some(EpochRecord {
                epoch: 3,
                writer: "db2".into(),
            }),
            ..Default::default()
        }
    }

    /// What is rejoined when `db1` and `db3` look the same for REJOIN_AFTER_ROUNDS rounds (and
    /// nothing before).
    fn due(db1: Check, db3: Check) -> Vec<usize> {
        let mut left = LeftBehind::new(3);
        let checks = [db1, writer(), db3];
        for _ in 1..REJOIN_AFTER_ROUNDS {
            let early = left.observe(&nodes(), &checks, Some(1), 3);
            assert!(early.is_empty(), "too early: {early:?}");
        }
        left.observe(&nodes(), &checks, Some(1), 3)
    }

    #[test]
    fn servers_that_do_not_receive_from_the_writer_are_left_behind() {
        let healthy = following("db2:3306", "Yes", 3);
        let back = Check {
            read_only: true,
            ..Default::default()
        };
        assert!(due(healthy.clone(), healthy.clone()).is_empty());
        assert_eq!(due(back.clone(), healthy.clone()), vec![0], "from nobody");
        assert!(
            due(Check::failed("down"), healthy.clone()).is_empty(),
            "unreachable"
        );
        let writable = Check {
            read_only: false,
            ..back.clone()
        };
        assert!(due(writable, healthy.clone()).is_empty(), "fenced first");
        // Stopped long ago pointing at db2, epoch 3 not seen: an old writer's configuration.
        assert_eq!(
            due(following("db2:3306", "No", 1), healthy.clone()),
            vec![0]
        );
        // Back pointing at the dead old writer.
        assert_eq!(
            due(healthy.clone(), following("db1:3306", "Connecting", 2)),
            vec![2]
        );
        // Stopped by hand after following db2, or repointed and still connecting.
        assert!(due(healthy.clone(), following("db2:3306", "No", 3)).is_empty());
        assert!(due(healthy.clone(), following("db2:3306", "Connecting", 2)).is_empty());
        // Streaming from db1: a chain while db1 follows db2; a dead end while db1 receives
        // from nobody.
        assert!(due(healthy.clone(), following("db1:3306", "Yes", 2)).is_empty());
        assert_eq!(due(back, following("db1:3306", "Yes", 2)), vec![0, 2]);
    }

    #[test]
    fn the_count_starts_over_when_a_server_stops_looking_left_behind() {
        let mut left = LeftBehind::new(3);
        let back = Check {
            read_only: true,
            ..Default::default()
        };
        let healthy = following("db2:3306", "Yes", 3);
        let behind = [back, writer(), healthy.clone()];
        let fine = [healthy.clone(), writer(), healthy];
        for _ in 1..REJOIN_AFTER_ROUNDS {
            assert!(left.observe(&nodes(), &behind, Some(1), 3).is_empty());
        }
        assert!(left.observe(&nodes(), &fine, Some(1), 3).is_empty());
        assert!(
            left.observe(&nodes(), &behind, Some(1), 3).is_empty(),
            "one round is not enough after a good one"
        );
        for _ in 0..REJOIN_AFTER_ROUNDS {
            assert!(
                left.observe(&nodes(), &behind, None, 3).is_empty(),
                "no writer: nobody is rejoined"
            );
        }
    }
}
