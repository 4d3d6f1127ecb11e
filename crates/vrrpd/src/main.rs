//! vrrpd's command line: everything else is in the library.

use clap::Parser;

#[derive(Parser)]
#[command(name = "vrrpd", version, about = "VRRP daemon of the HA stack")]
struct Args {
    #[command(flatten)]
    daemon: ha_core::daemon::DaemonArgs,
}

fn main() -> std::process::ExitCode {
    ha_core::daemon::main::<vrrpd::Vrrpd>(Args::parse().daemon)
}
