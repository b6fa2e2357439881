//! The `mlops` command line: the registry for data scientists.
//!
//! Tables for people, `--json` for scripts. Server from `REGISTRY_URL`,
//! token from `MLOPS_TOKEN`.
//!
//! One module per command group (`models`, `versions`, `aliases`, `runs`,
//! `tokens`, `audit`); argument parsers live in `args`, rendering in
//! `output` and `json`, upload and download progress in `progress`.

mod aliases;
mod args;
mod audit;
mod json;
mod models;
mod output;
mod progress;
mod runs;
mod tokens;
mod versions;

use std::cell::RefCell;
use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mlops_registry_client::proto as pb;
use mlops_registry_client::{ClientError, RegistryClient};
use secrecy::SecretString;

use crate::output::{Output, detail};

#[derive(Parser)]
#[command(name = "mlops", version, about = "Model registry command line")]
pub struct Cli {
    /// Registry gRPC address.
    #[arg(
        long,
        env = "REGISTRY_URL",
        default_value = "http://localhost:50051",
        global = true
    )]
    registry_url: String,
    /// API token (keep it in the environment, not in shell history).
    #[arg(long, env = "MLOPS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Registered models.
    #[command(subcommand)]
    Models(models::ModelsCmd),
    /// Model versions and their artifacts.
    #[command(subcommand)]
    Versions(versions::VersionsCmd),
    /// Aliases such as champion and challenger.
    #[command(subcommand)]
    Alias(aliases::AliasCmd),
    /// Training runs.
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// The audit log, newest first.
    Audit {
        /// Only this model's events.
        model: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i32,
    },
    /// API tokens (admin).
    #[command(subcommand)]
    Tokens(tokens::TokensCmd),
    /// Show the token's principal and role.
    Whoami,
}

/// Runs a command, printing to stdout.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    run_with_output(cli, &mut std::io::stdout()).await
}

/// Runs a command, printing its result to `sink` (progress and notices go
/// to stderr).
pub async fn run_with_output(cli: Cli, sink: &mut dyn Write) -> anyhow::Result<()> {
    let token = cli
        .token
        .clone()
        .context("no token: set MLOPS_TOKEN (or pass --token)")?;
    let mut client = RegistryClient::connect(&cli.registry_url, &SecretString::from(token)).await?;
    let out = Output {
        json: cli.json,
        sink: RefCell::new(sink),
    };
    dispatch(&mut client, &out, cli.command)
        .await
        // gRPC errors read as `CODE: message`, like the client library's.
        .map_err(|e| match e.downcast::<tonic::Status>() {
            Ok(status) => ClientError::from(status).into(),
            Err(e) => e,
        })
}

async fn dispatch(
    client: &mut RegistryClient,
    out: &Output<'_>,
    command: Command,
) -> anyhow::Result<()> {
    match command {
        Command::Models(cmd) => models::run(client, out, cmd).await,
        Command::Versions(cmd) => versions::run(client, out, cmd).await,
        Command::Alias(cmd) => aliases::run(client, out, cmd).await,
        Command::Runs(cmd) => runs::run(client, out, cmd).await,
        Command::Tokens(cmd) => tokens::run(client, out, cmd).await,
        Command::Audit { model, limit } => audit::run(client, out, model, limit).await,
        Command::Whoami => {
            let me = client
                .raw()
                .who_am_i(pb::WhoAmIRequest {})
                .await?
                .into_inner();
            let value = serde_json::json!({"principal": me.principal, "role": json::role(me.role)});
            out.print(&value, || detail(&value))
        }
    }
}
