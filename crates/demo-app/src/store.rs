//! The demo's SQL, over a pool of connections to dbrouterd.
//!
//! Every call takes a pooled connection, runs one statement with autocommit on and gives the
//! connection back, so dbrouterd routes each statement by itself: `SELECT @@server_id` to a
//! replica, the `INSERT` and the hinted `COUNT(*)` to the primary. Each call is bounded by
//! [`CALL_TIMEOUT`], so a hung path becomes an error the HTTP layer can answer with.

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use tracing::{info, warn};

use crate::Args;

/// The longest one database call may take, connecting included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// MariaDB's ER_DUP_ENTRY.
const ER_DUP_ENTRY: u16 = 1062;

/// The table the demo writes to.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS demo_writes (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    app VARCHAR(64) NOT NULL,
    at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB";

/// Why a call failed, as the HTTP answer says it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] mysql_async::Error),
    #[error("database call timed out after {0:?}")]
    Timeout(Duration),
    #[error("the query returned no row")]
    NoRow,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The row was inserted and committed now.
    Inserted,
    /// The row was already there (an earlier attempt committed it).
    AlreadyPresent,
}

/// The pool of connections to dbrouterd.
pub struct Store {
    pool: Pool,
}

impl Store {
    pub fn new(args: &Args) -> Store {
        let constraints = PoolConstraints::new(0, 32).unwrap_or_default();
        let opts: Opts = OptsBuilder::default()
            .ip_or_hostname(args.db.ip().to_string())
            .tcp_port(args.db.port())
            .user(Some(args.user.clone()))
            .pass(Some(args.password.clone()))
            .db_name(Some(args.database.clone()))
            .prefer_socket(false)
            .pool_opts(PoolOpts::default().with_constraints(constraints))
            .into();
        Store {
            pool: Pool::new(opts),
        }
    }

    /// Creates the demo table, retrying every 200 ms until it works or `within` has passed.
    pub async fn ensure_schema(&self, within: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let attempt = self
                .bounded(async {
                    let mut conn = self.pool.get_conn().await?;
                    conn.query_drop(CREATE_TABLE).await
                })
                .await;
            match attempt {
                Ok(()) => {
                    info!("demo table ready");
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    warn!(error = %e, "cannot create the demo table yet; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// `@@server_id` of the server that answered a plain read.
    pub async fn read_server_id(&self) -> Result<u32, StoreError> {
        self.bounded(async {
            let mut conn = self.pool.get_conn().await?;
            conn.query_first::<u32, _>("SELECT @@server_id").await
        })
        .await?
        .ok_or(StoreError::NoRow)
    }

    /// Inserts row `id` written by `app`; returns once the server has committed it.
    pub async fn write(&self, id: u64, app: &str) -> Result<Written, StoreError> {
        let outcome = self
            .bounded(async {
                let mut conn = self.pool.get_conn().await?;
                conn.exec_drop("INSERT INTO demo_writes (id, app) VALUES (?, ?)", (id, app))
                    .await
            })
            .await;
        match outcome {
            Ok(()) => Ok(Written::Inserted),
            Err(StoreError::Database(mysql_async::Error::Server(e))) if e.code == ER_DUP_ENTRY => {
                Ok(Written::AlreadyPresent)
            }
            Err(e) => Err(e),
        }
    }

    /// The number of rows written so far, counted on the primary.
    pub async fn count(&self) -> Result<u64, StoreError> {
        self.bounded(async {
            let mut conn = self.pool.get_conn().await?;
            conn.query_first::<u64, _>("SELECT /* route=primary */ COUNT(*) FROM demo_writes")
                .await
        })
        .await?
        .ok_or(StoreError::NoRow)
    }

    /// Closes the pooled connections.
    pub async fn close(&self) {
        if let Err(e) = self.pool.clone().disconnect().await {
            warn!(error = %e, "closing the database pool");
        }
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(CALL_TIMEOUT)),
        }
    }
}
