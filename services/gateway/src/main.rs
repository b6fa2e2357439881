/// Serves the registry's champion models over the Open Inference Protocol.
/// Settings come from the environment (see README, "gateway").
#[tokio::main]
async fn main() -> std::process::ExitCode {
    mlops_runtime::service::main::<mlops_gateway::App>().await
}
