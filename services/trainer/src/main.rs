use clap::{Parser, Subcommand};
use mlops_trainer::{App, TrainerConfig};

/// Trains churn models on gold and registers them. Settings come from the
/// environment (see README, "trainer").
#[derive(Parser)]
#[command(name = "trainer", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train once on the latest gold version (or --gold-version) and exit.
    Run {
        /// Train on this gold version instead of the latest.
        #[arg(long)]
        gold_version: Option<u64>,
        /// Also write the fit, validation and test matrices as Parquet here.
        #[arg(long)]
        export_matrices: Option<String>,
    },
    /// Retrain whenever gold advanced by TRAINER_MIN_NEW_DAYS days, or
    /// every TRAINER_INTERVAL_SECONDS.
    Watch,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    mlops_runtime::service::main_with::<App>(|env| {
        match &args.command {
            Command::Run {
                gold_version,
                export_matrices,
            } => {
                env.set("TRAINER_MODE", "run");
                if let Some(v) = gold_version {
                    env.set("TRAINER_GOLD_VERSION", v.to_string());
                }
                if let Some(dir) = export_matrices {
                    env.set("TRAINER_EXPORT_MATRICES_DIR", dir.clone());
                }
            }
            Command::Watch => env.set("TRAINER_MODE", "watch"),
        }
        TrainerConfig::from_env(env)
    })
    .await
}
