//! proxyd's command line: everything else is in the library.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "proxyd",
    version,
    about = "HTTP and TCP load balancer of the HA stack"
)]
struct Args {
    #[command(flatten)]
    daemon: ha_core::daemon::DaemonArgs,
}

fn main() -> std::process::ExitCode {
    ha_core::daemon::main::<proxyd::Proxyd>(Args::parse().daemon)
}
