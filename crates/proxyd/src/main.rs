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
    /// Binary upgrade: take the listening sockets of the proxyd running on this file's control
    /// socket, serve on them, then make the old process drain and exit.
    #[arg(long)]
    upgrade: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.upgrade && !args.daemon.check {
        let path = args.daemon.config_path("proxyd");
        if let Err(why) = proxyd::upgrade::takeover::take_over(&path) {
            eprintln!("proxyd: upgrade failed, the running proxyd keeps serving: {why}");
            return std::process::ExitCode::from(1);
        }
    }
    ha_core::daemon::main::<proxyd::Proxyd>(args.daemon)
}
