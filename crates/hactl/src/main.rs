//! hactl: the operator's CLI. Finds every daemon's control socket and shows one combined
//! status, reloads daemons and runs any control command.
//!
//! Exit codes: 0 when everything asked about is healthy (or the command succeeded), 1 when a
//! daemon is down or unhealthy (or the command failed), 2 for usage errors.

mod call;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hactl",
    version,
    about = "Operate the HA stack's daemons over their control sockets"
)]
struct Cli {
    /// Where the daemons' control sockets are.
    #[arg(
        long,
        global = true,
        default_value = "/run/ha",
        env = "HACTL_SOCKET_DIR"
    )]
    socket_dir: PathBuf,
    /// Where their configuration files are: a daemon with a file here is expected to run.
    #[arg(
        long,
        global = true,
        default_value = "/etc/ha",
        env = "HACTL_CONFIG_DIR"
    )]
    config_dir: PathBuf,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for each daemon.
    #[arg(long, global = true, default_value = "3s", value_parser = ha_core::config::parse_duration)]
    timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Combined status of every daemon (or of the ones named).
    Status { daemons: Vec<String> },
    /// Re-read a daemon's configuration file; an invalid file is refused and the error shown.
    Reload { daemon: String },
    /// Run any control command: `hactl call proxyd backend.drain pool=app server=10.0.0.11:8080`.
    Call {
        daemon: String,
        cmd: String,
        /// Arguments as key=value; values that parse as JSON (numbers, true/false) are typed.
        args: Vec<String>,
    },
    /// dbrouterd's topology changes: `hactl db switchover [to=db2]`, `hactl db failover`,
    /// `hactl db rejoin backend=db1` (the same as `hactl call dbrouterd db.switchover ...`,
    /// waiting at least 30 s).
    Db {
        /// `switchover`, `failover` or `rejoin`.
        action: String,
        /// Arguments as key=value, e.g. `to=db2`.
        args: Vec<String>,
    },
}

/// The daemons of the stack, shown even when nothing of them is found.
pub const KNOWN_DAEMONS: [&str; 3] = ["vrrpd", "proxyd", "dbrouterd"];

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hactl: {e}");
            return ExitCode::from(2);
        }
    };
    let ctx = call::Target {
        socket_dir: cli.socket_dir,
        timeout: cli.timeout,
        json: cli.json,
    };
    let ok = runtime.block_on(async {
        match cli.command {
            Command::Status { daemons } => status::run(&ctx, &cli.config_dir, daemons).await,
            Command::Reload { daemon } => call::run(&ctx, &daemon, "reload", &[]).await,
            Command::Call { daemon, cmd, args } => call::run(&ctx, &daemon, &cmd, &args).await,
            Command::Db { action, args } => {
                let ctx = call::Target {
                    timeout: ctx.timeout.max(Duration::from_secs(30)),
                    ..ctx
                };
                call::run(&ctx, "dbrouterd", &format!("db.{action}"), &args).await
            }
        }
    });
    match ok {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("hactl: {message}");
            ExitCode::from(2)
        }
    }
}
