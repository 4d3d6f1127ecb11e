//! dbrouterd's command line: everything else is in the library.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "dbrouterd",
    version,
    about = "MySQL read/write splitting proxy of the HA stack"
)]
struct Args {
    #[command(flatten)]
    daemon: ha_core::daemon::DaemonArgs,
}

fn main() -> std::process::ExitCode {
    ha_core::daemon::main::<dbrouterd::Dbrouterd>(Args::parse().daemon)
}
