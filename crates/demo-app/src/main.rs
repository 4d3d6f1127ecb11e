//! demo-app: parse the command line and run the service (see the library's docs).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = demo_app::Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    demo_app::run(args).await
}
