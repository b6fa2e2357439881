use clap::Parser;
use mlops_model_registry::app::{App, Migration};
use mlops_runtime::service;

/// Model registry. Configured by environment variables (see the README).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Serve gRPC and the admin endpoints (the default).
    Serve,
    /// Apply pending database migrations and exit (for a Kubernetes Job).
    Migrate,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => service::main::<App>().await,
        Command::Migrate => service::main::<Migration>().await,
    }
}
