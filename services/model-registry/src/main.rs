use clap::Parser;
use mlops_model_registry::{App, RegistryConfig, app};
use mlops_runtime::{EnvReader, Shutdown, telemetry};

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
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = RegistryConfig::from_env(&mut EnvReader::from_process())?;
    let telemetry = telemetry::init(&config.telemetry)?;
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate(&config).await,
        Command::Serve => serve(config).await,
    };
    if let Err(error) = &outcome {
        tracing::error!(error = %error, "model-registry stopped with an error");
    }
    telemetry.shutdown();
    outcome
}

async fn migrate(config: &RegistryConfig) -> anyhow::Result<()> {
    let store = app::connect_store(config).await?;
    store.migrate().await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn serve(config: RegistryConfig) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let app = App::build(config).await?;
    tracing::info!(grpc = %app.grpc_addr()?, admin = %app.admin_addr()?, "model-registry starting");
    app.run(shutdown).await?;
    Ok(())
}
