use clap::Parser;
use mlops_producer::{App, ProducerConfig, ProducerFlags};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let flags = ProducerFlags::parse();
    mlops_runtime::service::main_with::<App>(|env| {
        flags.apply(env);
        ProducerConfig::from_env(env)
    })
    .await
}
