//! `mlops runs`: training runs.

use anyhow::bail;
use clap::Subcommand;
use mlops_registry_client::RegistryClient;
use mlops_registry_client::proto as pb;

use crate::args::{dataset, key_number, key_value};
use crate::json;
use crate::output::{Output, detail};

#[derive(Subcommand)]
pub(crate) enum RunsCmd {
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

pub(crate) async fn run(
    client: &mut RegistryClient,
    out: &Output<'_>,
    cmd: RunsCmd,
) -> anyhow::Result<()> {
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
                    tags: Default::default(),
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
                    set_tags: Default::default(),
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
