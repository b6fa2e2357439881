use clap::Parser;
use mlops_transform::{App, TransformConfig};

/// Bronze → silver → gold. Settings come from the environment (see README).
#[derive(Parser)]
#[command(name = "transform", version)]
struct Args {
    /// Run once and exit (for scheduled jobs) instead of polling; the same
    /// as TRANSFORM_ONCE=true.
    #[arg(long)]
    once: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    mlops_runtime::service::main_with::<App>(|env| {
        if args.once {
            env.set("TRANSFORM_ONCE", "true");
        }
        TransformConfig::from_env(env)
    })
    .await
}
