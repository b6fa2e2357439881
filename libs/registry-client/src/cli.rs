//! The `mlops` command line: the registry for data scientists.
//!
//! Tables for people, `--json` for scripts. Server from `REGISTRY_URL`,
//! token from `MLOPS_TOKEN`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};
use mlops_proto::registry::v1 as pb;
use secrecy::SecretString;
use serde_json::Value;

use crate::{RegistryClient, json};

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
    Models(ModelsCmd),
    /// Model versions and their artifacts.
    #[command(subcommand)]
    Versions(VersionsCmd),
    /// Aliases such as champion and challenger.
    #[command(subcommand)]
    Alias(AliasCmd),
    /// Training runs.
    #[command(subcommand)]
    Runs(RunsCmd),
    /// The audit log, newest first.
    Audit {
        /// Only this model's events.
        model: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i32,
    },
    /// API tokens (admin).
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// Show the token's principal and role.
    Whoami,
}

#[derive(Subcommand)]
enum ModelsCmd {
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// key=value, repeatable.
        #[arg(long = "tag", value_parser = key_value)]
        tags: Vec<(String, String)>,
    },
    List {
        /// e.g. "name LIKE 'churn%' AND tags.team = 'retention'".
        #[arg(long, default_value = "")]
        filter: String,
        #[arg(long, default_value = "")]
        order_by: String,
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    Show {
        name: String,
    },
    Archive {
        name: String,
    },
}

#[derive(Args)]
struct RegisterArgs {
    model: String,
    /// The artifact to upload (an ONNX file).
    #[arg(long)]
    file: PathBuf,
    #[arg(long, default_value = "onnx")]
    format: String,
    /// key=number, repeatable.
    #[arg(long = "metric", value_parser = key_number)]
    metrics: Vec<(String, f64)>,
    /// key=value, repeatable.
    #[arg(long = "param", value_parser = key_value)]
    params: Vec<(String, String)>,
    /// key=value, repeatable.
    #[arg(long = "tag", value_parser = key_value)]
    tags: Vec<(String, String)>,
    /// name:dtype:shape, e.g. features:float32:-1x12; repeatable.
    #[arg(long = "input", value_parser = tensor)]
    inputs: Vec<pb::TensorSpec>,
    #[arg(long = "output", value_parser = tensor)]
    outputs: Vec<pb::TensorSpec>,
    /// The training run that produced it.
    #[arg(long, default_value = "")]
    run: String,
    /// Training data as TABLE_URI@VERSION.
    #[arg(long, value_parser = dataset)]
    dataset: Option<pb::DatasetLineage>,
    #[arg(long, default_value = "")]
    description: String,
}

#[derive(Subcommand)]
enum VersionsCmd {
    /// Create a version and upload its artifact (with a progress bar).
    Register(Box<RegisterArgs>),
    /// MODEL VERSION or MODEL @ALIAS.
    Show { model: String, version: String },
    Search {
        /// e.g. "name = 'churn' AND metrics.auc > 0.8 AND status = 'READY'".
        #[arg(long, default_value = "")]
        filter: String,
        #[arg(long, default_value = "")]
        order_by: String,
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// Download an artifact; its size and sha256 are verified.
    Download {
        model: String,
        /// A version number or @alias.
        version: String,
        /// Output file (default: the artifact's file name).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AliasCmd {
    /// Point an alias at a version (moves it if it exists).
    Set {
        model: String,
        alias: String,
        version: i64,
    },
    Delete {
        model: String,
        alias: String,
    },
    /// The version an alias points at, now or at a past time.
    Get {
        model: String,
        alias: String,
        /// RFC 3339 time, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        at: Option<String>,
    },
    History {
        model: String,
        alias: Option<String>,
    },
}

#[derive(Subcommand)]
enum RunsCmd {
    Create {
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long = "param", value_parser = key_value)]
        params: Vec<(String, String)>,
        #[arg(long, value_parser = dataset)]
        dataset: Option<pb::DatasetLineage>,
    },
    Show {
        run_id: String,
    },
    /// Record metrics and optionally end the run.
    Update {
        run_id: String,
        #[arg(long = "metric", value_parser = key_number)]
        metrics: Vec<(String, f64)>,
        /// finished or failed ends the run.
        #[arg(long)]
        status: Option<String>,
    },
    Delete {
        run_id: String,
    },
}

#[derive(Subcommand)]
enum TokensCmd {
    /// Mint a token; its secret is printed once.
    Create {
        name: String,
        /// reader, writer, approver or admin.
        #[arg(long)]
        role: String,
    },
    List,
    Revoke {
        token_id: String,
    },
}

fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected key=value, got {raw:?}"))
}

fn key_number(raw: &str) -> Result<(String, f64), String> {
    let (k, v) = key_value(raw)?;
    let n = v
        .parse::<f64>()
        .map_err(|_| format!("{k}: {v:?} is not a number"))?;
    Ok((k, n))
}

fn tensor(raw: &str) -> Result<pb::TensorSpec, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let [name, dtype, shape] = parts[..] else {
        return Err(format!(
            "expected name:dtype:shape (e.g. features:float32:-1x12), got {raw:?}"
        ));
    };
    let shape = shape
        .split('x')
        .map(|d| {
            d.parse::<i64>()
                .map_err(|_| format!("shape dimension {d:?} is not a number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pb::TensorSpec {
        name: name.to_string(),
        dtype: dtype.to_string(),
        shape,
    })
}

fn dataset(raw: &str) -> Result<pb::DatasetLineage, String> {
    let (uri, version) = raw
        .rsplit_once('@')
        .ok_or_else(|| format!("expected TABLE_URI@VERSION, got {raw:?}"))?;
    let table_version = version
        .parse()
        .map_err(|_| format!("table version {version:?} is not a number"))?;
    Ok(pb::DatasetLineage {
        table_uri: uri.to_string(),
        table_version,
        upstream: HashMap::new(),
    })
}

fn role(raw: &str) -> anyhow::Result<pb::Role> {
    Ok(match raw {
        "reader" => pb::Role::Reader,
        "writer" => pb::Role::Writer,
        "approver" => pb::Role::Approver,
        "admin" => pb::Role::Admin,
        other => bail!("role {other:?} is not one of reader, writer, approver, admin"),
    })
}

/// `3` or `@champion`.
enum VersionRef {
    Number(i64),
    Alias(String),
}

fn version_ref(raw: &str) -> anyhow::Result<VersionRef> {
    if let Some(alias) = raw.strip_prefix('@') {
        return Ok(VersionRef::Alias(alias.to_string()));
    }
    raw.parse()
        .map(VersionRef::Number)
        .with_context(|| format!("{raw:?} is neither a version number nor @alias"))
}

struct Output<'a> {
    json: bool,
    sink: RefCell<&'a mut dyn Write>,
}

impl Output<'_> {
    fn print(&self, value: &Value, table: impl FnOnce() -> Table) -> anyhow::Result<()> {
        let mut out = self.sink.borrow_mut();
        if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
        } else {
            writeln!(out, "{}", table())?;
        }
        Ok(())
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    t.set_header(header.to_vec());
    t
}

fn pairs<V: std::fmt::Display>(map: &HashMap<String, V>) -> String {
    let mut items: Vec<_> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    items.sort();
    items.join(", ")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn detail(value: &Value) -> Table {
    let mut t = table(&["field", "value"]);
    if let Value::Object(map) = value {
        for (k, v) in map {
            t.add_row(vec![k.clone(), text(v)]);
        }
    }
    t
}

fn versions_table(versions: &[pb::ModelVersion]) -> Table {
    let mut t = table(&[
        "model",
        "version",
        "status",
        "aliases",
        "metrics",
        "created by",
        "created at",
    ]);
    for v in versions {
        t.add_row(vec![
            v.model_name.clone(),
            v.version.to_string(),
            json::status(v.status).to_string(),
            v.aliases.join(", "),
            pairs(&v.metrics),
            v.created_by.clone(),
            text(&json::time(&v.created_at)),
        ]);
    }
    t
}

fn progress_bar(len: u64, json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
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
            Ok(status) => crate::ClientError::from(status).into(),
            Err(e) => e,
        })
}

async fn dispatch(
    client: &mut RegistryClient,
    out: &Output<'_>,
    command: Command,
) -> anyhow::Result<()> {
    match command {
        Command::Models(cmd) => models(client, out, cmd).await,
        Command::Versions(cmd) => versions(client, out, cmd).await,
        Command::Alias(cmd) => aliases(client, out, cmd).await,
        Command::Runs(cmd) => runs(client, out, cmd).await,
        Command::Tokens(cmd) => tokens(client, out, cmd).await,
        Command::Audit { model, limit } => {
            let resp = client
                .raw()
                .list_audit_events(pb::ListAuditEventsRequest {
                    model_name: model.unwrap_or_default(),
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            let value: Value = resp.events.iter().map(json::audit).collect();
            out.print(&value, || {
                let mut t = table(&[
                    "id",
                    "at",
                    "principal",
                    "action",
                    "target",
                    "before",
                    "after",
                ]);
                for e in &resp.events {
                    t.add_row(vec![
                        e.id.to_string(),
                        text(&json::time(&e.at)),
                        e.principal.clone(),
                        e.action.clone(),
                        e.target.clone(),
                        e.before_json.clone(),
                        e.after_json.clone(),
                    ]);
                }
                t
            })
        }
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

async fn models(
    client: &mut RegistryClient,
    out: &Output<'_>,
    cmd: ModelsCmd,
) -> anyhow::Result<()> {
    let model = match cmd {
        ModelsCmd::Create {
            name,
            description,
            tags,
        } => {
            client
                .raw()
                .create_registered_model(pb::CreateRegisteredModelRequest {
                    name,
                    description,
                    tags: tags.into_iter().collect(),
                })
                .await?
        }
        ModelsCmd::Show { name } => {
            client
                .raw()
                .get_registered_model(pb::GetRegisteredModelRequest { name })
                .await?
        }
        ModelsCmd::Archive { name } => {
            client
                .raw()
                .archive_registered_model(pb::ArchiveRegisteredModelRequest { name })
                .await?
        }
        ModelsCmd::List {
            filter,
            order_by,
            limit,
        } => {
            let resp = client
                .raw()
                .search_registered_models(pb::SearchRegisteredModelsRequest {
                    filter,
                    order_by,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            let value: Value = resp.models.iter().map(json::model).collect();
            return out.print(&value, || {
                let mut t = table(&[
                    "name",
                    "latest",
                    "aliases",
                    "tags",
                    "archived",
                    "updated at",
                ]);
                for m in &resp.models {
                    t.add_row(vec![
                        m.name.clone(),
                        m.latest_version.to_string(),
                        pairs(&m.aliases),
                        pairs(&m.tags),
                        m.archived.to_string(),
                        text(&json::time(&m.updated_at)),
                    ]);
                }
                t
            });
        }
    };
    let value = json::model(&model.into_inner());
    out.print(&value, || detail(&value))
}

async fn versions(
    client: &mut RegistryClient,
    out: &Output<'_>,
    cmd: VersionsCmd,
) -> anyhow::Result<()> {
    match cmd {
        VersionsCmd::Register(args) => {
            let (size, sha256) = crate::sha256_file(&args.file)
                .await
                .with_context(|| format!("reading {}", args.file.display()))?;
            let created = client
                .raw()
                .create_model_version(pb::CreateModelVersionRequest {
                    model_name: args.model.clone(),
                    format: args.format,
                    signature: Some(pb::Signature {
                        inputs: args.inputs,
                        outputs: args.outputs,
                    }),
                    metrics: args.metrics.into_iter().collect(),
                    params: args.params.into_iter().collect(),
                    tags: args.tags.into_iter().collect(),
                    description: args.description,
                    run_id: args.run,
                    dataset: args.dataset,
                })
                .await?
                .into_inner();
            eprintln!(
                "created {}/{} (sha256 {sha256}); uploading {size} bytes",
                created.model_name, created.version
            );
            let bar = progress_bar(size, out.json);
            let tick = bar.clone();
            let version = client
                .upload_file(
                    &created.model_name,
                    created.version,
                    &args.file,
                    move |sent| tick.set_position(sent),
                )
                .await
                .with_context(|| {
                    format!(
                        "uploading the artifact of {}/{}",
                        created.model_name, created.version
                    )
                })?;
            bar.finish_and_clear();
            let value = json::version(&version);
            out.print(&value, || detail(&value))
        }
        VersionsCmd::Show { model, version } => {
            let v = match version_ref(&version)? {
                VersionRef::Number(version) => {
                    client
                        .raw()
                        .get_model_version(pb::GetModelVersionRequest {
                            model_name: model,
                            version,
                        })
                        .await?
                }
                VersionRef::Alias(alias) => {
                    client
                        .raw()
                        .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
                            model_name: model,
                            alias,
                            at_time: None,
                        })
                        .await?
                }
            }
            .into_inner();
            let value = json::version(&v);
            out.print(&value, || detail(&value))
        }
        VersionsCmd::Search {
            filter,
            order_by,
            limit,
        } => {
            let resp = client
                .raw()
                .search_model_versions(pb::SearchModelVersionsRequest {
                    filter,
                    order_by,
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            let value: Value = resp.versions.iter().map(json::version).collect();
            out.print(&value, || versions_table(&resp.versions))
        }
        VersionsCmd::Download {
            model,
            version,
            out: path,
        } => {
            let (version, alias) = match version_ref(&version)? {
                VersionRef::Number(v) => (v, String::new()),
                VersionRef::Alias(a) => (0, a),
            };
            // Write to a temporary name and rename once verified, so a
            // failed download never leaves a plausible-looking file.
            let staging = tempfile_in_cwd(path.as_deref())?;
            let mut file = tokio::fs::File::create(&staging)
                .await
                .with_context(|| format!("creating {}", staging.display()))?;
            let bar = progress_bar(0, out.json);
            let started_bar = bar.clone();
            let info = client
                .download_artifact(
                    pb::DownloadArtifactRequest {
                        model_name: model,
                        version,
                        alias,
                    },
                    &mut file,
                    |info| started_bar.set_length(info.size_bytes as u64),
                    |n| bar.set_position(n),
                )
                .await;
            bar.finish_and_clear();
            let info = match info {
                Ok(info) => info,
                Err(e) => {
                    let _ = std::fs::remove_file(&staging);
                    return Err(e.into());
                }
            };
            let target = path.unwrap_or_else(|| PathBuf::from(&info.filename));
            std::fs::rename(&staging, &target)
                .with_context(|| format!("moving the download to {}", target.display()))?;
            let value = serde_json::json!({
                "model_name": info.model_name, "version": info.version, "path": target.display().to_string(),
                "size_bytes": info.size_bytes, "sha256": info.sha256,
            });
            out.print(&value, || detail(&value))
        }
    }
}

fn tempfile_in_cwd(target: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let dir = target
        .and_then(|p| p.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(dir.join(format!(".mlops-download-{}", std::process::id())))
}

async fn aliases(
    client: &mut RegistryClient,
    out: &Output<'_>,
    cmd: AliasCmd,
) -> anyhow::Result<()> {
    match cmd {
        AliasCmd::Set {
            model,
            alias,
            version,
        } => {
            let a = client
                .raw()
                .set_alias(pb::SetAliasRequest {
                    model_name: model,
                    alias,
                    version,
                })
                .await?
                .into_inner();
            let value = json::alias(&a);
            out.print(&value, || detail(&value))
        }
        AliasCmd::Delete { model, alias } => {
            client
                .raw()
                .delete_alias(pb::DeleteAliasRequest {
                    model_name: model.clone(),
                    alias: alias.clone(),
                })
                .await?;
            let value = serde_json::json!({"model_name": model, "alias": alias, "deleted": true});
            out.print(&value, || detail(&value))
        }
        AliasCmd::Get { model, alias, at } => {
            let at_time = at
                .map(|raw| {
                    chrono::DateTime::parse_from_rfc3339(&raw)
                        .map(|t| prost_types::Timestamp {
                            seconds: t.timestamp(),
                            nanos: t.timestamp_subsec_nanos() as i32,
                        })
                        .with_context(|| format!("--at {raw:?} is not an RFC 3339 time"))
                })
                .transpose()?;
            let v = client
                .raw()
                .get_model_version_by_alias(pb::GetModelVersionByAliasRequest {
                    model_name: model,
                    alias,
                    at_time,
                })
                .await?
                .into_inner();
            let value = json::version(&v);
            out.print(&value, || detail(&value))
        }
        AliasCmd::History { model, alias } => {
            let resp = client
                .raw()
                .list_alias_history(pb::ListAliasHistoryRequest {
                    model_name: model,
                    alias: alias.unwrap_or_default(),
                })
                .await?
                .into_inner();
            let value: Value = resp.entries.iter().map(json::alias_history).collect();
            out.print(&value, || {
                let mut t = table(&["set at", "alias", "version", "set by"]);
                for e in &resp.entries {
                    let version = if e.version == 0 {
                        "(deleted)".to_string()
                    } else {
                        e.version.to_string()
                    };
                    t.add_row(vec![
                        text(&json::time(&e.set_at)),
                        e.alias.clone(),
                        version,
                        e.set_by.clone(),
                    ]);
                }
                t
            })
        }
    }
}

async fn runs(client: &mut RegistryClient, out: &Output<'_>, cmd: RunsCmd) -> anyhow::Result<()> {
    let run = match cmd {
        RunsCmd::Create {
            name,
            params,
            dataset,
        } => {
            client
                .raw()
                .create_run(pb::CreateRunRequest {
                    name,
                    params: params.into_iter().collect(),
                    dataset,
                })
                .await?
        }
        RunsCmd::Show { run_id } => client.raw().get_run(pb::GetRunRequest { run_id }).await?,
        RunsCmd::Update {
            run_id,
            metrics,
            status,
        } => {
            let status = match status.as_deref() {
                None | Some("running") => pb::RunStatus::Unspecified,
                Some("finished") => pb::RunStatus::Finished,
                Some("failed") => pb::RunStatus::Failed,
                Some(other) => bail!("--status {other:?} is not one of running, finished, failed"),
            };
            client
                .raw()
                .update_run(pb::UpdateRunRequest {
                    run_id,
                    status: status as i32,
                    metrics: metrics.into_iter().collect(),
                })
                .await?
        }
        RunsCmd::Delete { run_id } => {
            client
                .raw()
                .delete_run(pb::DeleteRunRequest {
                    run_id: run_id.clone(),
                })
                .await?;
            let value = serde_json::json!({"run_id": run_id, "deleted": true});
            return out.print(&value, || detail(&value));
        }
    };
    let value = json::run(&run.into_inner());
    out.print(&value, || detail(&value))
}

async fn tokens(
    client: &mut RegistryClient,
    out: &Output<'_>,
    cmd: TokensCmd,
) -> anyhow::Result<()> {
    match cmd {
        TokensCmd::Create {
            name,
            role: raw_role,
        } => {
            let resp = client
                .raw()
                .create_api_token(pb::CreateApiTokenRequest {
                    name,
                    role: role(&raw_role)? as i32,
                })
                .await?
                .into_inner();
            let mut value = resp.token.as_ref().map(json::token).unwrap_or(Value::Null);
            value["secret"] = Value::String(resp.secret.clone());
            if !out.json {
                eprintln!("store the secret now; it is not shown again");
            }
            out.print(&value, || detail(&value))
        }
        TokensCmd::List => {
            let resp = client
                .raw()
                .list_api_tokens(pb::ListApiTokensRequest {})
                .await?
                .into_inner();
            let value: Value = resp.tokens.iter().map(json::token).collect();
            out.print(&value, || {
                let mut t = table(&["token id", "name", "role", "created by", "revoked at"]);
                for tok in &resp.tokens {
                    t.add_row(vec![
                        tok.token_id.clone(),
                        tok.name.clone(),
                        json::role(tok.role).to_string(),
                        tok.created_by.clone(),
                        text(&json::time(&tok.revoked_at)),
                    ]);
                }
                t
            })
        }
        TokensCmd::Revoke { token_id } => {
            let tok = client
                .raw()
                .revoke_api_token(pb::RevokeApiTokenRequest { token_id })
                .await?
                .into_inner();
            let value = json::token(&tok);
            out.print(&value, || detail(&value))
        }
    }
}
