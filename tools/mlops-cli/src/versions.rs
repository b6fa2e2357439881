//! `mlops versions`: model versions and their artifacts.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::Table;
use mlops_registry_client::RegistryClient;
use mlops_registry_client::proto as pb;
use serde_json::Value;

use crate::args::{VersionRef, dataset, key_number, key_value, tensor, version_ref};
use crate::json;
use crate::output::{Output, detail, pairs, table, text};
use crate::progress::progress_bar;

#[derive(Args)]
pub(crate) struct RegisterArgs {
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
pub(crate) enum VersionsCmd {
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

pub(crate) async fn run(
    client: &mut RegistryClient,
    out: &Output<'_>,
    cmd: VersionsCmd,
) -> anyhow::Result<()> {
    match cmd {
        VersionsCmd::Register(args) => {
            let (size, sha256) = mlops_registry_client::sha256_file(&args.file)
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

fn tempfile_in_cwd(target: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let dir = target
        .and_then(|p| p.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(dir.join(format!(".mlops-download-{}", std::process::id())))
}
