//! What one monitor check of one backend found, and the pure verdict on it: may this backend
//! serve reads, and how far behind is it.
//!
//! Lag is the larger of `Seconds_Behind_Master` (whole seconds) and the heartbeat distance: the
//! monitor writes `NOW(6)` of the writer into `ha.heartbeat` on every check of the writer, and a
//! replica's lag is how much older the newest heartbeat it has applied is than the heartbeat
//! the writer had one check earlier — both timestamps from the writer's clock, so replicas'
//! clocks do not matter and the resolution is the check interval, well below a second.

use std::time::Duration;

/// The `ha.topology` row a server holds: the epoch of the last topology change it has seen and
/// the writer that change named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRecord {
    pub epoch: u64,
    pub writer: String,
}

/// `SHOW SLAVE STATUS`, the part that matters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replication {
    /// `Yes`; `Connecting` and `No` are not running.
    pub io_running: bool,
    /// `No`: stopped, not trying to connect either.
    pub io_stopped: bool,
    pub sql_running: bool,
    /// NULL when the SQL thread stopped or the IO thread is not connected.
    pub seconds_behind: Option<u64>,
    /// The GTIDs received from the master (`Gtid_IO_Pos`).
    pub gtid_io_pos: String,
    pub master: String,
    pub last_error: String,
}

/// The writer's semi-synchronous replication, from its status variables. Zero loss on a
/// failover needs it: with asynchronous replication a primary can acknowledge commits that no
/// standby has when it dies, whatever the proxy does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SemiSync {
    /// `Rpl_semi_sync_master_status`: ON while commits wait for a replica's acknowledgement
    /// (OFF when disabled, or fallen back to asynchronous after a timeout).
    pub active: bool,
    /// `Rpl_semi_sync_master_clients`: semi-synchronous replicas connected (counted also
    /// while the master side is disabled).
    pub clients: u32,
    /// `rpl_semi_sync_master_enabled`, with the settings commits wait under (`None`: disabled,
    /// or the variables could not be read).
    pub master: Option<SemiSyncMaster>,
}

/// A semi-synchronous master's settings, as a new writer takes them from the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemiSyncMaster {
    pub wait_point: WaitPoint,
    /// `rpl_semi_sync_master_timeout`: how long a commit waits before the master falls back
    /// to asynchronous replication.
    pub timeout_ms: u64,
}

/// `rpl_semi_sync_master_wait_point`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitPoint {
    /// The commit waits before the storage engine commits (lossless).
    AfterSync,
    /// The commit waits after the storage engine committed (MariaDB's default).
    AfterCommit,
}

impl WaitPoint {
    pub fn parse(text: &str) -> Option<WaitPoint> {
        if text.eq_ignore_ascii_case("AFTER_SYNC") {
            Some(WaitPoint::AfterSync)
        } else if text.eq_ignore_ascii_case("AFTER_COMMIT") {
            Some(WaitPoint::AfterCommit)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WaitPoint::AfterSync => "AFTER_SYNC",
            WaitPoint::AfterCommit => "AFTER_COMMIT",
        }
    }
}

/// One check of one backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// `None`: the check succeeded; else why it failed (connect, login, timeout, query).
    pub error: Option<String>,
    pub server_id: u32,
    pub read_only: bool,
    pub gtid_current_pos: String,
    pub gtid_binlog_pos: String,
    pub gtid_slave_pos: String,
    pub replication: Option<Replication>,
    pub epoch: Option<EpochRecord>,
    /// The newest heartbeat this server holds, microseconds since the Unix epoch.
    pub heartbeat_us: Option<i64>,
    /// On the writer: the heartbeat written by this check.
    pub heartbeat_written_us: Option<i64>,
    /// On the writer: its semi-synchronous replication (`None`: not the writer, or the server
    /// has no such status variables).
    pub semi_sync: Option<SemiSync>,
}

impl Check {
    pub fn failed(why: impl Into<String>) -> Self {
        Check {
            error: Some(why.into()),
            ..Default::default()
        }
    }

    pub fn is_reachable(&self) -> bool {
        self.error.is_none()
    }

    /// Reachable and read_only=OFF: it would accept writes.
    pub fn claims_writer(&self) -> bool {
        self.is_reachable() && !self.read_only
    }
}

/// Why a reader leaves the rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    Down(String),
    Broken(String),
    Lagging { lag_ms: u64 },
}

impl Unusable {
    /// `down`, `broken` or `lagging`, as status shows it.
    pub fn state(&self) -> &'static str {
        match self {
            Unusable::Down(_) => "down",
            Unusable::Broken(_) => "broken",
            Unusable::Lagging { .. } => "lagging",
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Unusable::Down(why) | Unusable::Broken(why) => why.clone(),
            Unusable::Lagging { lag_ms } => format!("replication lag {lag_ms} ms"),
        }
    }
}

/// What a reader's check is measured against.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadContext {
    /// This backend is the current writer (it reads without replicating).
    pub is_writer: bool,
    /// The writer cannot be reached: replicas' IO threads are reconnecting, their data is as
    /// fresh as it can be, and they keep serving reads.
    pub writer_down: bool,
    /// The writer's heartbeat of the previous check (microseconds since the Unix epoch).
    pub reference_heartbeat_us: Option<i64>,
    pub max_lag: Duration,
}

/// The replica's lag in milliseconds, when it is known.
pub fn lag_ms(check: &Check, ctx: &ReadContext) -> Option<u64> {
    let r = check.replication.as_ref()?;
    let sbm = r.seconds_behind?.saturating_mul(1000);
    let heartbeat = match (ctx.reference_heartbeat_us, check.heartbeat_us) {
        (Some(reference), Some(seen)) => (reference.saturating_sub(seen).max(0) / 1000) as u64,
        _ => 0,
    };
    Some(sbm.max(heartbeat))
}

/// May this backend serve reads? `Ok(lag_ms)` when it may.
pub fn assess_reader(check: &Check, ctx: &ReadContext) -> Result<Option<u64>, Unusable> {
    if let Some(why) = &check.error {
        return Err(Unusable::Down(why.clone()));
    }
    if ctx.is_writer {
        return Ok(None);
    }
    let Some(r) = &check.replication else {
        return Err(Unusable::Broken("not replicating".into()));
    };
    if !r.sql_running {
        let why = if r.last_error.is_empty() {
            "replication SQL thread stopped".to_string()
        } else {
            format!("replication SQL thread stopped: {}", r.last_error)
        };
        return Err(Unusable::Broken(why));
    }
    if !r.io_running {
        if ctx.writer_down {
            return Ok(None);
        }
        let why = if r.last_error.is_empty() {
            String::new()
        } else {
            format!(": {}", r.last_error)
        };
        return Err(Unusable::Broken(format!(
            "replication IO thread not running (master {}){why}",
            r.master
        )));
    }
    match lag_ms(check, ctx) {
        None => Err(Unusable::Broken("Seconds_Behind_Master is NULL".into())),
        Some(lag) if u128::from(lag) > ctx.max_lag.as_millis() => {
            Err(Unusable::Lagging { lag_ms: lag })
        }
        Some(lag) => Ok(Some(lag)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(sbm: Option<u64>, heartbeat_us: Option<i64>) -> Check {
        Check {
            read_only: true,
            replication: Some(Replication {
                io_running: true,
                sql_running: true,
                seconds_behind: sbm,
                master: "127.0.0.1:3306".into(),
                ..Default::default()
            }),
            heartbeat_us,
            ..Default::default()
        }
    }

    fn ctx(reference: Option<i64>) -> ReadContext {
        ReadContext {
            reference_heartbeat_us: reference,
            max_lag: Duration::from_millis(1500),
            ..Default::default()
        }
    }

    #[test]
    fn a_replica_in_step_reads_and_its_lag_is_known_below_a_second() {
        let c = replica(Some(0), Some(10_000_000));
        assert_eq!(assess_reader(&c, &ctx(Some(10_000_000))), Ok(Some(0)));
        assert_eq!(assess_reader(&c, &ctx(Some(10_400_000))), Ok(Some(400)));
        // A heartbeat newer than the reference (another dbrouterd wrote it) is no lag.
        assert_eq!(assess_reader(&c, &ctx(Some(9_000_000))), Ok(Some(0)));
    }

    #[test]
    fn lag_over_the_limit_by_heartbeat_or_seconds_behind_master_leaves_rotation() {
        let c = replica(Some(0), Some(10_000_000));
        assert_eq!(
            assess_reader(&c, &ctx(Some(12_000_000))),
            Err(Unusable::Lagging { lag_ms: 2000 })
        );
        let c = replica(Some(3), None);
        assert_eq!(
            assess_reader(&c, &ctx(None)),
            Err(Unusable::Lagging { lag_ms: 3000 })
        );
    }

    #[test]
    fn null_lag_stopped_threads_and_no_replication_are_broken() {
        let c = replica(None, Some(1));
        assert!(matches!(
            assess_reader(&c, &ctx(None)),
            Err(Unusable::Broken(_))
        ));
        let mut c = replica(Some(0), None);
        if let Some(r) = c.replication.as_mut() {
            r.sql_running = false;
        }
        assert!(matches!(
            assess_reader(&c, &ctx(None)),
            Err(Unusable::Broken(_))
        ));
        let c = Check::default();
        assert!(matches!(
            assess_reader(&c, &ctx(None)),
            Err(Unusable::Broken(_))
        ));
        let c = Check::failed("connection refused");
        assert_eq!(
            assess_reader(&c, &ctx(None)),
            Err(Unusable::Down("connection refused".into()))
        );
        // A stopped IO thread says why, as the server does.
        let mut c = replica(Some(0), None);
        if let Some(r) = c.replication.as_mut() {
            r.io_running = false;
            r.last_error = "Got fatal error 1236 from master".into();
        }
        match assess_reader(&c, &ctx(None)) {
            Err(Unusable::Broken(why)) => {
                assert!(why.ends_with(": Got fatal error 1236 from master"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn while_the_writer_is_down_replicas_reconnecting_keep_serving_reads() {
        let mut c = replica(None, None);
        if let Some(r) = c.replication.as_mut() {
            r.io_running = false;
        }
        let mut down = ctx(None);
        assert!(assess_reader(&c, &down).is_err());
        down.writer_down = true;
        assert_eq!(assess_reader(&c, &down), Ok(None));
    }

    #[test]
    fn the_writer_reads_without_replicating() {
        let c = Check::default();
        let w = ReadContext {
            is_writer: true,
            ..ctx(None)
        };
        assert_eq!(assess_reader(&c, &w), Ok(None));
    }
}
