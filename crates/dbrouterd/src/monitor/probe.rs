//! One check of one backend over the monitor's own connection (kept open between checks,
//! reopened after a failure): reachable, `read_only`, GTID positions, `SHOW SLAVE STATUS`, the
//! `ha.topology` epoch record, and the heartbeat (written on the writer, read everywhere).
//! Everything a check finds goes into a [`Check`]; what it means is decided in
//! [`super::state`].

use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use super::check::{Check, EpochRecord, Replication, SemiSync, SemiSyncMaster, WaitPoint};
use super::sql::{self, Rows, SqlError};
use crate::pool::{BackendConn, Login};
use crate::topology::BackendNode;

/// ER_NO_SUCH_TABLE, ER_TABLEACCESS_DENIED_ERROR, ER_BAD_DB_ERROR: no epoch recorded there.
const NOT_RECORDED: [u16; 3] = [1146, 1142, 1049];

const HEARTBEAT_WRITE: &str = "REPLACE INTO ha.heartbeat (server_id, ts) \
     SELECT @@server_id, NOW(6) FROM DUAL WHERE @@global.read_only = 0";
const HEARTBEAT_READ: &str =
    "SELECT CAST(UNIX_TIMESTAMP(MAX(ts)) * 1000000 AS SIGNED) FROM ha.heartbeat";

const SEMI_SYNC_STATUS: &str = "SHOW GLOBAL STATUS WHERE Variable_name IN \
     ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients')";

/// The semi-sync master's settings, read with [`semi_sync_master`].
pub const SEMI_SYNC_SETTINGS: &str =
    "SELECT @@global.rpl_semi_sync_master_enabled + 0 AS enabled, \
     @@global.rpl_semi_sync_master_wait_point AS wait_point, \
     @@global.rpl_semi_sync_master_timeout AS timeout_ms";

/// The monitor's connection to one backend.
pub struct Prober {
    pub node: Arc<BackendNode>,
    login: Login,
    timeout: Duration,
    conn: Option<BackendConn>,
}

impl Prober {
    pub fn new(node: Arc<BackendNode>, login: Login, timeout: Duration) -> Self {
        Prober {
            node,
            login,
            timeout,
            conn: None,
        }
    }

    /// The server's version, once connected.
    pub fn server_version(&self) -> Option<&str> {
        self.conn.as_ref().map(|c| c.server_version.as_str())
    }

    /// Checks the backend within the monitor's timeout; `writer`: this backend is the current
    /// writer, so the check writes the heartbeat.
    pub async fn check(&mut self, writer: bool) -> Check {
        match tokio::time::timeout(self.timeout, self.check_inner(writer)).await {
            Ok(Ok(check)) => check,
            Ok(Err(e)) => {
                self.conn = None;
                Check::failed(e.to_string())
            }
            Err(_) => {
                self.conn = None;
                Check::failed(format!("check did not finish within {:?}", self.timeout))
            }
        }
    }

    async fn check_inner(&mut self, writer: bool) -> Result<Check, SqlError> {
        if !self.conn.as_ref().is_some_and(BackendConn::is_healthy) {
            self.conn = None;
            let conn = BackendConn::connect(self.node.clone(), &self.login, self.timeout).await?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(Check::failed("no monitor connection"));
        };
        let vars = sql::query(
            conn,
            "SELECT @@server_id, @@global.read_only, @@gtid_current_pos, @@gtid_binlog_pos, \
             @@gtid_slave_pos",
        )
        .await?;
        let text = |i: usize| vars.first(i).unwrap_or_default().to_string();
        let mut check = Check {
            server_id: text(0).parse().unwrap_or(0),
            read_only: text(1) != "0",
            gtid_current_pos: text(2),
            gtid_binlog_pos: text(3),
            gtid_slave_pos: text(4),
            ..Default::default()
        };
        check.replication = replication(&sql::query(conn, "SHOW SLAVE STATUS").await?);
        check.epoch =
            match sql::query(conn, "SELECT epoch, writer FROM ha.topology WHERE id = 1").await {
                Ok(rows) => epoch_record(&rows),
                Err(e) if e.code().is_some_and(|c| NOT_RECORDED.contains(&c)) => None,
                Err(e) => return Err(e),
            };
        if writer && !check.read_only {
            match sql::execute(conn, HEARTBEAT_WRITE).await {
                Ok(()) => {}
                Err(e @ SqlError::Conn(_)) => return Err(e),
                Err(e) => debug!(backend = %self.node.name, error = %e, "heartbeat not written"),
            }
        }
        match sql::query(conn, HEARTBEAT_READ).await {
            Ok(rows) => check.heartbeat_us = rows.first(0).and_then(|v| v.parse().ok()),
            Err(e @ SqlError::Conn(_)) => return Err(e),
            Err(e) => debug!(backend = %self.node.name, error = %e, "heartbeat not read"),
        }
        if writer && !check.read_only {
            check.heartbeat_written_us = check.heartbeat_us;
            match sql::query(conn, SEMI_SYNC_STATUS).await {
                Ok(rows) => check.semi_sync = semi_sync(&rows),
                Err(e @ SqlError::Conn(_)) => return Err(e),
                Err(e) => {
                    debug!(backend = %self.node.name, error = %e, "semi-sync status not read")
                }
            }
            if let Some(s) = check.semi_sync.as_mut() {
                match sql::query(conn, SEMI_SYNC_SETTINGS).await {
                    Ok(rows) => s.master = semi_sync_master(&rows),
                    Err(e @ SqlError::Conn(_)) => return Err(e),
                    Err(e) => {
                        debug!(backend = %self.node.name, error = %e, "semi-sync settings not read")
                    }
                }
            }
        }
        Ok(check)
    }
}

/// `SHOW SLAVE STATUS` (no row: not a replica).
pub fn replication(rows: &Rows) -> Option<Replication> {
    rows.rows.first()?;
    let get = |name: &str| rows.get(0, name).unwrap_or_default().to_string();
    let errors: Vec<String> = ["Last_SQL_Error", "Last_IO_Error"]
        .iter()
        .map(|n| get(n))
        .filter(|e| !e.is_empty())
        .collect();
    Some(Replication {
        io_running: get("Slave_IO_Running") == "Yes",
        io_stopped: get("Slave_IO_Running") == "No",
        sql_running: get("Slave_SQL_Running") == "Yes",
        seconds_behind: rows
            .get(0, "Seconds_Behind_Master")
            .and_then(|v| v.parse().ok()),
        gtid_io_pos: get("Gtid_IO_Pos"),
        master: format!("{}:{}", get("Master_Host"), get("Master_Port")),
        last_error: errors.join("; "),
    })
}

/// `SHOW GLOBAL STATUS` rows (`Variable_name`, `Value`) of the semi-sync master; `None` when
/// the server has none of them.
pub fn semi_sync(rows: &Rows) -> Option<SemiSync> {
    let value = |name: &str| {
        (0..rows.rows.len()).find_map(|i| {
            rows.get(i, "Variable_name")
                .filter(|n| n.eq_ignore_ascii_case(name))
                .and_then(|_| rows.get(i, "Value"))
        })
    };
    let status = value("Rpl_semi_sync_master_status")?;
    Some(SemiSync {
        active: status.eq_ignore_ascii_case("ON"),
        clients: value("Rpl_semi_sync_master_clients")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        master: None,
    })
}

/// The row of [`SEMI_SYNC_SETTINGS`]: the master side's settings when it is enabled.
pub fn semi_sync_master(rows: &Rows) -> Option<SemiSyncMaster> {
    if rows.get(0, "enabled") != Some("1") {
        return None;
    }
    Some(SemiSyncMaster {
        wait_point: rows
            .get(0, "wait_point")
            .and_then(WaitPoint::parse)
            .unwrap_or(WaitPoint::AfterSync),
        timeout_ms: rows
            .get(0, "timeout_ms")
            .and_then(|t| t.parse().ok())
            .unwrap_or(10_000),
    })
}

fn epoch_record(rows: &Rows) -> Option<EpochRecord> {
    Some(EpochRecord {
        epoch: rows.first(0)?.parse().ok()?,
        writer: rows.first(1)?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slave_status_is_read_by_column_name() {
        let rows = Rows {
            columns: [
                "Master_Host",
                "Master_Port",
                "Slave_IO_Running",
                "Slave_SQL_Running",
                "Last_SQL_Error",
                "Seconds_Behind_Master",
                "Gtid_IO_Pos",
            ]
            .map(String::from)
            .to_vec(),
            rows: vec![vec![
                Some("127.0.0.1".into()),
                Some("3306".into()),
                Some("Connecting".into()),
                Some("Yes".into()),
                Some(String::new()),
                None,
                Some("0-1-42".into()),
            ]],
        };
        let r = replication(&rows).expect("a replica");
        assert!(!r.io_running && r.sql_running);
        assert_eq!(r.seconds_behind, None);
        assert_eq!(r.gtid_io_pos, "0-1-42");
        assert_eq!(r.master, "127.0.0.1:3306");
        assert_eq!(replication(&Rows::default()), None);
    }

    #[test]
    fn semi_sync_status_is_read_from_show_status_rows() {
        let rows = |status: &str, clients: &str| Rows {
            columns: vec!["Variable_name".into(), "Value".into()],
            rows: vec![
                vec![
                    Some("Rpl_semi_sync_master_clients".into()),
                    Some(clients.into()),
                ],
                vec![
                    Some("Rpl_semi_sync_master_status".into()),
                    Some(status.into()),
                ],
            ],
        };
        assert_eq!(
            semi_sync(&rows("ON", "1")),
            Some(SemiSync {
                active: true,
                clients: 1,
                master: None,
            })
        );
        assert_eq!(
            semi_sync(&rows("OFF", "x")),
            Some(SemiSync {
                active: false,
                clients: 0,
                master: None,
            })
        );
        assert_eq!(semi_sync(&Rows::default()), None);
    }

    #[test]
    fn semi_sync_master_settings_are_read_only_when_enabled() {
        let row = |enabled: &str, wait_point: &str, timeout: &str| Rows {
            columns: vec!["enabled".into(), "wait_point".into(), "timeout_ms".into()],
            rows: vec![vec![
                Some(enabled.into()),
                Some(wait_point.into()),
                Some(timeout.into()),
            ]],
        };
        assert_eq!(
            semi_sync_master(&row("1", "AFTER_COMMIT", "2500")),
            Some(SemiSyncMaster {
                wait_point: WaitPoint::AfterCommit,
                timeout_ms: 2500
            })
        );
        // What cannot be read takes the lossless wait point and the server's default timeout.
        assert_eq!(
            semi_sync_master(&row("1", "later", "soon")),
            Some(SemiSyncMaster {
                wait_point: WaitPoint::AfterSync,
                timeout_ms: 10_000
            })
        );
        assert_eq!(semi_sync_master(&row("0", "AFTER_SYNC", "10000")), None);
        assert_eq!(semi_sync_master(&Rows::default()), None);
    }
}
