#[tokio::main]
async fn main() -> std::process::ExitCode {
    mlops_runtime::service::main::<mlops_ingest::App>().await
}
