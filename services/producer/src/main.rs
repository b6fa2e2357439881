use clap::Parser;
use mlops_producer::ProducerConfig;
use mlops_producer::run::ProducerMetrics;
use mlops_runtime::{AdminServer, EnvReader, Readiness, Shutdown, TelemetryConfig, telemetry};
use prometheus_client::registry::Registry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ProducerConfig::parse();
    let mut env = EnvReader::from_process();
    let telemetry_config = TelemetryConfig::from_env(&mut env, "producer");
    if let Err(problems) = config.validate() {
        env.problem(problems);
    }
    env.finish()?;
    let telemetry = telemetry::init(&telemetry_config)?;

    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    let metrics = ProducerMetrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let readiness = Readiness::default();
    let admin = AdminServer::bind(config.admin_addr, registry, readiness.clone()).await?;
    tracing::info!(addr = %admin.local_addr()?, "admin server listening");
    let admin_task = tokio::spawn(admin.serve(shutdown.clone()));
    readiness.set(true);

    let outcome = mlops_producer::run(&config, &metrics, shutdown.clone()).await;
    readiness.set(false);
    shutdown.trigger();
    let _ = admin_task.await;
    let result = match outcome {
        Ok(summary) => {
            #[allow(clippy::print_stdout)]
            {
                println!("{}", summary.render());
            }
            Ok(())
        }
        Err(error) => Err(error.into()),
    };
    telemetry.shutdown();
    result
}
