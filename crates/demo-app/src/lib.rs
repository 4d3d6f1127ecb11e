//! The demo application of the HA stack: the "application server" of the layered picture.
//!
//! A small HTTP service that reads and writes MariaDB through the dbrouterd running next to it
//! (a sidecar on localhost), so that the whole path client → VIP → proxyd → demo-app →
//! dbrouterd → databases carries real traffic in `make demo` and in the chaos tests:
//!
//! | request | what it does | answer |
//! |---|---|---|
//! | `GET /healthz` | nothing (the process answers) | `200 ok` |
//! | `GET /read` | `SELECT @@server_id` (a read: dbrouterd sends it to a replica) | `200 {"app":…,"server_id":…}` |
//! | `POST /write?id=N` | `INSERT` of row `N` into `appdb.demo_writes` (autocommit) | `200 {"app":…,"id":N,…}` once committed |
//! | `GET /count` | `SELECT COUNT(*)` on the primary | `200 {"app":…,"count":…}` |
//!
//! A failed database call answers `503` with the error, so the load balancer may retry an
//! idempotent request on another application server; the app itself never retries. A `POST` for
//! an id that is already present answers `200` with `"duplicate":true`: the row was committed by an
//! earlier attempt whose answer was lost, so acknowledging it again is true.
//!
//! [`store`] holds the SQL, [`http`] the request handling; [`run`] ties them together.

pub mod http;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;
use tracing::{info, warn};

/// The command line.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "demo-app",
    version,
    about = "The HA stack's demo application: HTTP reads and writes through dbrouterd"
)]
pub struct Args {
    /// Where to serve HTTP.
    #[arg(long, default_value = "0.0.0.0:8000")]
    pub listen: SocketAddr,
    /// The dbrouterd listener to use (normally the sidecar on localhost).
    #[arg(long, default_value = "127.0.0.1:6033")]
    pub db: SocketAddr,
    /// Database user.
    #[arg(long, default_value = "app")]
    pub user: String,
    /// Database password.
    #[arg(
        long,
        env = "DEMO_APP_PASSWORD",
        default_value = "apppw",
        hide_env_values = true
    )]
    pub password: String,
    /// Database holding the demo table.
    #[arg(long, default_value = "appdb")]
    pub database: String,
    /// The name this server answers with, e.g. its host name.
    #[arg(long, default_value = "app")]
    pub name: String,
    /// How long to keep trying to create the demo table at start-up.
    #[arg(long, default_value = "60s", value_parser = parse_seconds)]
    pub schema_timeout: Duration,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let digits = text.strip_suffix('s').unwrap_or(text);
    digits
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("expected whole seconds such as 60s, got '{text}'"))
}

/// Creates the demo table (retrying while dbrouterd or the primary are not there yet), then serves
/// HTTP until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let store = Arc::new(store::Store::new(&args));
    store
        .ensure_schema(args.schema_timeout)
        .await
        .context("creating the demo table through dbrouterd")?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    info!(listen = %args.listen, db = %args.db, name = %args.name, "serving");
    let app = Arc::new(http::App::new(args.name.clone(), store.clone()));

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(http::serve_connection(app.clone(), stream, peer));
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    info!("stopping");
    store.close().await;
    Ok(())
}
