use mlops_ingest::{App, IngestConfig};
use mlops_runtime::{EnvReader, Shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = IngestConfig::from_env(&mut EnvReader::from_process())?;
    let telemetry = telemetry::init(&config.telemetry)?;
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();

    let app = App::build(config).await?;
    tracing::info!(admin = %app.admin_addr()?, "ingest starting");
    let outcome = app.run(shutdown).await;
    if let Err(error) = &outcome {
        tracing::error!(%error, "ingest stopped with an error");
    }
    telemetry.shutdown();
    Ok(outcome?)
}
