use clap::Parser;
use mlops_runtime::{EnvReader, Shutdown, telemetry};
use mlops_transform::{App, TransformConfig};

/// Bronze → silver → gold. Settings come from the environment (see README).
#[derive(Parser)]
#[command(name = "transform", version)]
struct Args {
    /// Run once and exit (for scheduled jobs) instead of polling.
    #[arg(long)]
    once: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = TransformConfig::from_env(&mut EnvReader::from_process())?;
    let telemetry = telemetry::init(&config.telemetry)?;
    let app = App::build(config).await?;
    tracing::info!(admin = %app.admin_addr()?, once = args.once, "transform starting");
    let outcome = if args.once {
        app.run_once().await.map(|report| {
            tracing::info!(
                bronze_rows = report.silver.rows_in,
                silver_rows = report.silver.rows_out,
                quarantined = report.silver.quarantined,
                duplicates = report.silver.duplicates,
                feature_rows = report.gold.feature_rows,
                kpi_rows = report.gold.kpi_rows,
                "transform run complete"
            );
        })
    } else {
        let shutdown = Shutdown::new();
        shutdown.listen_for_signals();
        app.run(shutdown).await
    };
    if let Err(error) = &outcome {
        tracing::error!(%error, "transform stopped with an error");
    }
    telemetry.shutdown();
    Ok(outcome?)
}
