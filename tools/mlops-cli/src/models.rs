//! `mlops models`: registered models.

use clap::Subcommand;
use mlops_registry_client::RegistryClient;
use mlops_registry_client::proto as pb;
use serde_json::Value;

use crate::args::key_value;
use crate::json;
use crate::output::{Output, detail, pairs, table, text};

#[derive(Subcommand)]
pub(crate) enum ModelsCmd {
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

pub(crate) async fn run(
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
